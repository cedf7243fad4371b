"""Time from create to `processing` with an idle worker (median of N), through the real API and worker.

Usage: python bench/lifecycle_latency.py [--count 20]
The API runs in-process (Flask test client: the request path is the real one); the worker is a
real `python worker.py`; both use PostgreSQL and Redis. The job body is the lifecycle stub (the
time measured ends when the job marks the task `processing`, before any image work).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, in_process_api, median_ms, percentile_ms, record, scratch_env, start, stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    (ROOT / "var").mkdir(exist_ok=True)
    env = scratch_env(
        "shopimage_bench_latency",
        JOB_OVERRIDES="basic_clean=tests.jobs.succeed_after_pause",
        WORKER_PRELOAD="0",
        WORKER_PROCESSES="1",
    )
    client, headers = in_process_api(env, "bench@example.com", args.count + 5)
    from shared.db import db
    from shared.models import Task

    worker = start([sys.executable, "worker.py"], env, "bench-latency-worker.log")
    try:
        time.sleep(3)  # let the worker come up and go idle
        samples = []
        for _ in range(args.count):
            sent = time.time()
            task_id = client.post(
                "/api/task/create",
                json={"type": "basic_clean", "inputImageUrl": "https://images.example.com/p.jpg"},
                headers=headers,
            ).get_json()["data"]["taskId"]
            while True:
                db.session.expire_all()
                task = db.session.get(Task, task_id)
                if task.status == "success":
                    break
                time.sleep(0.005)
            samples.append(task.started_at.timestamp() - sent)
            time.sleep(0.2)
    finally:
        stop(worker)
    print(f"create → processing, idle worker, n={len(samples)}")
    print(
        f"  median {median_ms(samples):.1f} ms   p90 {percentile_ms(samples, 0.9):.1f} ms   "
        f"min {min(samples) * 1000:.1f} ms   max {max(samples) * 1000:.1f} ms"
    )
    record(
        "lifecycle_latency",
        [
            (
                f"create -> processing, idle worker (median of {len(samples)})",
                f"{median_ms(samples):.1f} ms (p90 {percentile_ms(samples, 0.9):.1f} ms)",
                "",
                "",
            )
        ],
    )


if __name__ == "__main__":
    main()
