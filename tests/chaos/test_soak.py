"""Scenario 6: a soak of 1,000 basic_clean tasks (400×400) through two worker processes.

The resident memory (VmRSS) of each rq worker process must stay flat: growth under 50 MB between
the warm-up sample (after 100 tasks) and the end. Creates are paced to keep about 20 tasks
queued, so no task waits long enough for the sweeper. Full-only (minutes of CPU).
"""

from __future__ import annotations

import os
import time

import pytest
from rq import Worker

from shared import queues
from tests.photos import product_photo

from .cluster import Stack
from .invariants import check_invariants

TOTAL = int(os.environ.get("CHAOS_SOAK_TASKS", "1000"))
WARMUP = 100
BACKLOG = 20
MAX_GROWTH_MB = 50


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def worker_pids(stack: Stack) -> list[int]:
    ours = {pid for pool in stack.workers for pid in pool.pids()}
    # The image workers (the webhook lane is an rq worker of its own, without the model).
    workers = Worker.all(connection=stack.redis)
    return sorted(w.pid for w in workers if w.pid in ours and queues.IMAGES in w.queue_names())


def done(stack: Stack) -> int:
    return stack.query("SELECT COUNT(*) FROM tasks WHERE status IN ('success', 'failed')")[0][0]


@pytest.mark.chaos_full
def test_soak_1000_basic_clean_memory_stays_flat(make_stack, figures):
    stack = make_stack(TASK_TIMEOUT_SECONDS="1800", LOG_LEVEL="WARNING")
    stack.start_web()
    stack.start_workers()
    token = stack.create_users({"soak@example.com": TOTAL + 10})["soak@example.com"]
    api = stack.api(token)
    url = api.upload(product_photo(400, 400))
    stack.wait_workers_ready(2, timeout=120)
    pids = worker_pids(stack)
    assert len(pids) == 2
    samples: list[dict] = [{"done": 0, "rss_mb": {p: round(rss_mb(p), 1) for p in pids}}]
    started = time.monotonic()
    created = 0
    next_sample = WARMUP
    while True:
        finished = done(stack)
        if created < TOTAL and created - finished < BACKLOG:
            batch = min(10, TOTAL - created)
            for _ in range(batch):
                api.create_id("basic_clean", url)
            created += batch
        if finished >= next_sample:
            samples.append(
                {
                    "done": finished,
                    "seconds": round(time.monotonic() - started, 1),
                    "rss_mb": {p: round(rss_mb(p), 1) for p in pids},
                }
            )
            next_sample += 100
        if finished >= TOTAL:
            break
        assert time.monotonic() - started < 3600, "soak took over an hour"
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    assert worker_pids(stack) == pids, "a worker process was replaced during the soak"
    warm = next(s for s in samples if s["done"] >= WARMUP)
    end = samples[-1]
    growth = {p: round(end["rss_mb"][p] - warm["rss_mb"][p], 1) for p in pids}
    outcome = check_invariants(stack, timeout=120)
    assert outcome.statuses == {"success": TOTAL}, outcome.as_dict()
    figures(
        "6_soak",
        {
            "tasks": TOTAL,
            "seconds": round(elapsed, 1),
            "tasks_per_second": round(TOTAL / elapsed, 2),
            "rss_warm_mb": warm["rss_mb"],
            "rss_end_mb": end["rss_mb"],
            "rss_growth_mb": growth,
            "samples": samples,
            **outcome.as_dict(),
            "load_avg_end": os.getloadavg()[0],
        },
    )
    assert max(growth.values()) < MAX_GROWTH_MB, (growth, samples)
