// The seed's polling strategy: a fixed interval while the task runs, exponential backoff on
// errors, a bounded number of attempts, a stop when the task ends or the view is left, and
// no callback when the answer has not changed.

export const POLL_INTERVAL_MS = 3_000;
export const MAX_ATTEMPTS = 200;
export const MAX_BACKOFF_MS = 60_000;

/** The attempt limit; a test may lower it with sessionStorage["shopimage.pollMaxAttempts"]. */
export function maxAttemptsSetting() {
  try {
    return Number(sessionStorage.getItem("shopimage.pollMaxAttempts")) || MAX_ATTEMPTS;
  } catch (_) {
    return MAX_ATTEMPTS;
  }
}

export class Poller {
  /**
   * @param {object} options
   * @param {(signal: AbortSignal) => Promise<any>} options.load  one request
   * @param {(data: any) => boolean} options.isActive  keep polling while true
   * @param {(data: any) => void} options.onChange  called only when the JSON differs from last time
   * @param {(err: Error, delayMs: number) => boolean|void} [options.onError]  return false to stop
   * @param {(attempts: number) => void} [options.onGiveUp]  the attempt limit was reached
   * @param {() => void} [options.onRecover]  a request succeeded after failures
   */
  constructor({ load, isActive, onChange, onError, onGiveUp, onRecover, interval, maxAttempts }) {
    this.load = load;
    this.isActive = isActive;
    this.onChange = onChange;
    this.onError = onError || (() => {});
    this.onGiveUp = onGiveUp || (() => {});
    this.onRecover = onRecover || (() => {});
    this.interval = interval || POLL_INTERVAL_MS;
    this.maxAttempts = maxAttempts || MAX_ATTEMPTS;
    this.timer = null;
    this.controller = null;
    this.running = false;
    this.attempts = 0;
    this.failures = 0;
    this.lastJson = null;
  }

  /** Start (or restart after a give-up) with a request right away. */
  start() {
    this.stop();
    this.running = true;
    this.attempts = 0;
    this.failures = 0;
    this.tick();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  schedule(delay) {
    if (!this.running) return;
    if (this.attempts >= this.maxAttempts) {
      this.running = false;
      this.onGiveUp(this.attempts);
      return;
    }
    this.timer = setTimeout(() => this.tick(), delay);
  }

  async tick() {
    if (!this.running) return;
    this.attempts += 1;
    const controller = new AbortController();
    this.controller = controller;
    let data;
    try {
      data = await this.load(controller.signal);
    } catch (err) {
      if (!this.running || controller.signal.aborted) return;
      this.failures += 1;
      const delay = Math.min(this.interval * 2 ** this.failures, MAX_BACKOFF_MS);
      if (this.onError(err, delay) === false) {
        this.stop();
        return;
      }
      this.schedule(delay);
      return;
    }
    if (!this.running) return;
    if (this.failures > 0) this.onRecover();
    this.failures = 0;
    const json = JSON.stringify(data);
    if (json !== this.lastJson) {
      this.lastJson = json;
      this.onChange(data);
    }
    if (!this.isActive(data)) {
      this.stop();
      return;
    }
    this.schedule(this.interval);
  }
}
