// The task page: live status (polling), progress and time left, results gallery with a
// before/after slider, lightbox, per-image and zip downloads, cancel and retry.

import { api } from "./api.js";
import { ACTIVE, clampProgress, confirmedAction, describeError, paramLabel, pollNotices, resultFileName, resultLabel, saveDownload, statusTag, typeLabel, valueLabel } from "./common.js";
import { h, mount, safeUrl, toast } from "./dom.js";
import { formatDateTime, formatDuration, t } from "./i18n.js";
import { Poller, maxAttemptsSetting } from "./poller.js";

const COMPARE_MAX_HEIGHT = 480;

export function renderTask(root, ctx, taskId) {
  const content = h("div", { class: "task-content", id: "task-content" });
  const notice = h("div", { class: "poll-notice", id: "poll-notice", role: "status", hidden: true });
  const lightbox = new Lightbox();
  let compareChoice = 0;
  let endedBefore = null;

  mount(
    root,
    h(
      "div",
      { class: "task-page" },
      h("a", { href: "#/", class: "back-link" }, t("task.back")),
      h("section", { class: "card", id: "task-card" }, notice, content),
    ),
  );
  mount(content, h("div", { class: "loading" }, h("span", { class: "spinner" })));

  const notices = pollNotices({ notice, content, notFound: t("task.notFound"), restart: () => poller.start() });
  const poller = new Poller({
    ...notices,
    maxAttempts: maxAttemptsSetting(),
    load: (signal) => api.getTask(taskId, signal),
    isActive: (task) => ACTIVE.has(task.status),
    onChange: (task) => {
      notices.setNotice();
      draw(task);
      // A task that ended may have refunded its unit: reload the quota once.
      const ended = !ACTIVE.has(task.status);
      if (ended && endedBefore !== true) ctx.refreshAccount();
      endedBefore = ended;
    },
  });

  function draw(task) {
    const active = ACTIVE.has(task.status);
    mount(
      content,
      h(
        "div",
        { class: "task-head" },
        h("h1", null, t("task.title"), h("span", { class: "muted mono", id: "task-id" }, `#${task.id}`)),
        h("span", { id: "task-status" }, statusTag(task.status)),
      ),
      active ? progressSection(task) : null,
      active ? cancelSection(task) : null,
      task.status === "failed" ? failedSection(task) : null,
      task.status === "success" ? resultsSection(task) : null,
      infoSection(task),
    );
  }

  function progressSection(task) {
    const progress = clampProgress(task.progress);
    const bar = h("div", { class: `progress-bar${task.status === "pending" ? " waiting" : ""}` });
    bar.style.width = `${progress}%`;
    let text;
    if (task.status === "pending") {
      text = task.workersStarting
        ? t("task.workersStarting")
        : typeof task.queuePosition === "number"
          ? t("task.queue", { n: task.queuePosition })
          : t("task.queueUnknown");
    } else {
      const left = estimateSecondsLeft(task);
      text = left === null ? t("task.etaUnknown") : t("task.eta", { time: formatDuration(left) });
    }
    return h(
      "div",
      { class: "progress-section" },
      h(
        "div",
        {
          class: "progress",
          id: "progress",
          role: "progressbar",
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": String(progress),
          "aria-label": t("task.progress"),
        },
        bar,
      ),
      h("div", { class: "progress-text" }, h("span", { id: "progress-value" }, `${progress}%`), h("span", { id: "eta", class: "muted" }, text)),
    );
  }

  function cancelSection(task) {
    return confirmedAction({
      id: "cancel-task",
      confirmId: "cancel-confirm",
      label: t("task.cancel"),
      question: t("task.cancelConfirm"),
      run: async () => {
        try {
          await api.cancelTask(task.id);
          toast(t("task.cancelled"));
        } catch (err) {
          toast(describeError(err), "error");
        }
        poller.start();
      },
    });
  }

  function failedSection(task) {
    const message = task.errorMessage || "";
    const hint = failureHint(message);
    const retry = h(
      "button",
      {
        type: "button",
        class: "btn btn-primary",
        id: "retry-task",
        onclick: async () => {
          retry.disabled = true;
          retry.textContent = t("task.retrying");
          try {
            const data = await api.retryTask(task.id);
            toast(t("task.retried"), "success");
            ctx.refreshAccount();
            ctx.navigate(`#/task/${encodeURIComponent(data.taskId)}`);
          } catch (err) {
            if (err.code === 1002 || err.code === 1003) ctx.refreshAccount(true);
            toast(describeError(err), "error", 6000);
            retry.disabled = false;
            retry.textContent = t("task.retry");
          }
        },
      },
      t("task.retry"),
    );
    return h(
      "div",
      { class: "failure", id: "task-failure", role: "alert" },
      h("h2", null, t("task.failedTitle")),
      h("p", null, t("task.failedReason"), h("span", { id: "error-message", class: "error-text" }, message)),
      hint ? h("p", { class: "muted" }, hint) : null,
      h("p", { class: "muted" }, t("task.failedRefund")),
      h("div", { class: "actions" }, retry),
    );
  }

  function resultsSection(task) {
    const urls = task.resultUrls || [];
    if (!urls.length) return h("p", { class: "muted" }, t("task.noResults"));
    const files = task.results || [];
    const items = urls.map((url, i) => ({
      url,
      label: resultLabel(url, i),
      name: (files[i] && files[i].name) || resultFileName(url, i),
      info: files[i] && files[i].width ? `${files[i].width}×${files[i].height} · ${String(files[i].format).toUpperCase()}` : "",
    }));
    const downloadAll = h(
      "button",
      {
        type: "button",
        class: "btn btn-primary",
        id: "download-all",
        onclick: async () => {
          downloadAll.disabled = true;
          downloadAll.textContent = t("task.downloading");
          try {
            await saveZip(task.id);
          } catch (err) {
            toast(describeError(err), "error", 6000);
          } finally {
            downloadAll.disabled = false;
            downloadAll.textContent = t("task.downloadAll");
          }
        },
      },
      t("task.downloadAll"),
    );
    const gallery = h(
      "div",
      { class: "gallery", id: "gallery" },
      items.map((item, i) =>
        h(
          "figure",
          { class: "result" },
          h(
            "button",
            { type: "button", class: "result-open checker", title: t("task.openFull"), onclick: () => lightbox.open(items, i) },
            h("img", { src: item.url, alt: item.label, loading: "lazy", class: "result-img" }),
          ),
          h(
            "figcaption",
            null,
            h("span", null, item.label),
            item.info ? h("small", { class: "muted result-info" }, item.info) : null,
            h("a", { href: item.url, download: item.name, target: "_blank", rel: "noopener", class: "btn btn-small" }, t("task.download")),
          ),
        ),
      ),
    );
    return h(
      "div",
      { class: "results" },
      h("div", { class: "results-head" }, h("h2", null, t("task.results")), downloadAll),
      task.type === "basic_clean" && task.inputImageUrl ? compareSection(task, items) : null,
      gallery,
    );
  }

  function compareSection(task, items) {
    if (compareChoice >= items.length) compareChoice = 0;
    // The cut-out keeps the input's framing, so the slider lines up; the white canvases are square.
    const preferred = items.findIndex((item) => /matting/.test(item.url));
    if (compareChoice === 0 && preferred > 0) compareChoice = preferred;
    const before = h("img", { src: task.inputImageUrl, alt: t("task.before"), class: "compare-img" });
    const after = h("img", { src: items[compareChoice].url, alt: t("task.after"), class: "compare-img" });
    const afterWrap = h("div", { class: "compare-after checker" }, after);
    const divider = h("div", { class: "compare-divider", "aria-hidden": "true" });
    const setPosition = (value) => {
      afterWrap.style.clipPath = `inset(0 0 0 ${value}%)`;
      divider.style.left = `${value}%`;
    };
    const slider = h("input", {
      type: "range",
      min: "0",
      max: "100",
      value: "50",
      class: "compare-range",
      id: "compare-range",
      "aria-label": t("task.compareSlider"),
      oninput: () => setPosition(slider.value),
    });
    setPosition(50);
    const box = h(
      "div",
      { class: "compare", id: "compare" },
      before,
      afterWrap,
      divider,
      h("span", { class: "compare-label left" }, t("task.before")),
      h("span", { class: "compare-label right" }, t("task.after")),
      slider,
    );
    // Different framings cannot be overlaid: show them side by side instead.
    const checkFit = () => {
      if (!before.naturalWidth || !after.naturalWidth) return;
      const a = before.naturalWidth / before.naturalHeight;
      const b = after.naturalWidth / after.naturalHeight;
      const aligned = Math.abs(a - b) / a <= 0.02;
      box.classList.toggle("side-by-side", !aligned);
      box.style.aspectRatio = aligned ? String(a) : "";
      box.style.maxWidth = aligned ? `${Math.round(COMPARE_MAX_HEIGHT * a)}px` : "";
    };
    before.addEventListener("load", checkFit);
    after.addEventListener("load", checkFit);
    const chooser =
      items.length > 1
        ? h(
            "label",
            { class: "compare-choose" },
            t("task.compareWith"),
            " ",
            h(
              "select",
              {
                id: "compare-select",
                onchange: (event) => {
                  compareChoice = Number(event.target.value);
                  after.setAttribute("src", safeUrl(items[compareChoice].url));
                },
              },
              items.map((item, i) => h("option", { value: String(i), selected: i === compareChoice }, item.label)),
            ),
          )
        : null;
    return h(
      "div",
      { class: "compare-block" },
      h("div", { class: "compare-head" }, h("h3", null, t("task.compare")), chooser),
      box,
    );
  }

  function infoSection(task) {
    const params = task.params || {};
    const rows = [
      [t("task.type"), typeLabel(task.type)],
      [t("task.created"), formatDateTime(task.createdAt)],
    ];
    if (task.batchId) {
      const name = task.ref || `#${task.index + 1}`;
      rows.push([t("task.batch"), h("a", { href: `#/batch/${encodeURIComponent(task.batchId)}`, id: "task-batch" }, name), null]);
    }
    if (task.completedAt) {
      const took = secondsBetween(task.startedAt || task.createdAt, task.completedAt);
      rows.push([t("task.completed"), formatDateTime(task.completedAt) + (took === null ? "" : ` · ${t("task.took", { time: formatDuration(took) })}`)]);
    }
    for (const [name, value] of Object.entries(params)) {
      if (value === "" || value === null || value === undefined) continue;
      const id = name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
      rows.push([paramLabel(name), valueLabel(name, value), id]);
    }
    return h(
      "div",
      { class: "task-info" },
      h(
        "div",
        { class: "input-box" },
        h("h3", null, t("task.input")),
        h(
          "button",
          {
            type: "button",
            class: "result-open checker",
            title: t("task.openFull"),
            onclick: () => lightbox.open([{ url: task.inputImageUrl, label: t("task.input"), name: "input" }], 0),
          },
          h("img", { src: task.inputImageUrl, alt: t("task.input"), class: "input-img", id: "task-input-img" }),
        ),
        h("p", { class: "url small muted" }, task.inputImageUrl),
      ),
      h(
        "dl",
        { class: "facts" },
        rows.map(([name, value, id]) => [h("dt", null, name), h("dd", id ? { id } : null, value)]),
      ),
    );
  }

  poller.start();
  return () => {
    poller.stop();
    lightbox.close();
  };
}

function secondsBetween(fromIso, toIso) {
  const from = Date.parse(fromIso);
  const to = Date.parse(toIso);
  return Number.isFinite(from) && Number.isFinite(to) && to >= from ? (to - from) / 1000 : null;
}

/**
 * Time left from the progress rate measured on the server's own clock
 * (startedAt → updatedAt, when the last progress was reported), so client clock skew does not matter.
 */
export function estimateSecondsLeft(task) {
  const progress = clampProgress(task.progress);
  if (progress <= 0 || progress >= 100) return null;
  const elapsed = secondsBetween(task.startedAt || task.createdAt, task.updatedAt);
  if (!elapsed) return null;
  return (elapsed * (100 - progress)) / progress;
}

function failureHint(message) {
  if (/超时|timed? ?out/i.test(message)) return t("task.hintTimeout");
  if (/取消|cancel/i.test(message)) return t("task.hintCancelled");
  if (/HTTP \d|download|connect|image URL|fetch/i.test(message)) return t("task.hintFetch");
  if (/not an image|image is|truncated|pixels|decompression/i.test(message)) return t("task.hintImage");
  return "";
}

/** "Download all": the zip needs the Authorization header, so fetch it and save it from a blob. */
async function saveZip(taskId) {
  await saveDownload(await api.downloadZip(taskId), `task-${taskId}.zip`);
}

class Lightbox {
  constructor() {
    this.element = null;
    this.onKey = (event) => {
      if (event.key === "Escape") this.close();
      else if (event.key === "ArrowRight") this.show(this.index + 1);
      else if (event.key === "ArrowLeft") this.show(this.index - 1);
    };
  }

  open(items, index) {
    this.close();
    this.items = items;
    this.image = h("img", { class: "lightbox-img", alt: "" });
    this.caption = h("span", { class: "lightbox-caption" });
    this.download = h("a", { class: "btn btn-small", target: "_blank", rel: "noopener" }, t("task.download"));
    const many = items.length > 1;
    this.element = h(
      "div",
      {
        class: "lightbox",
        id: "lightbox",
        role: "dialog",
        "aria-modal": "true",
        onclick: (event) => {
          if (event.target === this.element) this.close();
        },
      },
      h("button", { type: "button", class: "lightbox-close", "aria-label": t("lightbox.close"), onclick: () => this.close() }, "×"),
      many ? h("button", { type: "button", class: "lightbox-nav prev", "aria-label": t("lightbox.prev"), onclick: () => this.show(this.index - 1) }, "‹") : null,
      h("div", { class: "lightbox-stage checker" }, this.image),
      many ? h("button", { type: "button", class: "lightbox-nav next", "aria-label": t("lightbox.next"), onclick: () => this.show(this.index + 1) }, "›") : null,
      h("div", { class: "lightbox-bar" }, this.caption, this.download),
    );
    document.body.appendChild(this.element);
    document.addEventListener("keydown", this.onKey);
    this.show(index);
  }

  show(index) {
    if (!this.element) return;
    const count = this.items.length;
    this.index = ((index % count) + count) % count;
    const item = this.items[this.index];
    this.image.setAttribute("src", safeUrl(item.url));
    this.image.setAttribute("alt", item.label);
    this.caption.textContent = count > 1 ? `${item.label} (${this.index + 1}/${count})` : item.label;
    this.download.setAttribute("href", safeUrl(item.url));
    this.download.setAttribute("download", item.name);
  }

  close() {
    if (!this.element) return;
    this.element.remove();
    this.element = null;
    document.removeEventListener("keydown", this.onKey);
  }
}
