"""Scenario 2: Redis flushed, and separately restarted, with tasks pending and processing.

Our redis-server runs with --save "" --appendonly no, so a restart loses every queue, job and
worker registration, like a flush, and is also a few seconds of refused connections. The database
is the source of truth: the reconciler re-enqueues every active task whose job Redis no longer
holds, a running job finishes against the database, and creates during the outage commit and are
picked up by the reconciler. TASK_TIMEOUT_SECONDS is long (300 s) so that the sweeper cannot hide
a lost task: every task must *succeed*.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import wait_for
from tests.photos import product_photo

from .cluster import Stack
from .invariants import check_invariants

BATCH = 12


def counts(stack: Stack) -> dict[str, int]:
    return dict(stack.query("SELECT status, COUNT(*) FROM tasks GROUP BY status"))


def prepare(stack: Stack):
    stack.start_web()
    stack.start_workers(TASK_TIMEOUT_SECONDS="300")
    token = stack.create_users({"redis@example.com": 100})["redis@example.com"]
    api = stack.api(token)
    url = api.upload(product_photo())
    stack.wait_workers_ready(2, timeout=120)
    for _ in range(BATCH):
        api.create_id("basic_clean", url)
    # Wait for a mix: some processing (and perhaps done), most still pending.
    wait_for(
        lambda: counts(stack).get("processing", 0) >= 1,
        timeout=90,
        interval=0.05,
        message="a task processing",
    )
    return api, url


def finish(stack: Stack, started: float, extra: dict, allow=frozenset()) -> dict:
    outcome = check_invariants(stack, timeout=240, allow_503=allow)
    assert outcome.statuses == {"success": outcome.tasks}, (outcome.as_dict(), stack.worker_output())
    log = stack.worker_output(200_000)
    return {
        **extra,
        **outcome.as_dict(),
        "reconciler_reenqueued_lines": log.count("reconciler re-enqueued"),
        "recovery_seconds": round(time.monotonic() - started, 1),
        "load_avg_end": os.getloadavg()[0],
    }


def test_redis_flush_with_tasks_pending_and_processing(make_stack, figures):
    stack = make_stack()
    api, url = prepare(stack)
    before = counts(stack)
    stack.cluster.redis.client().flushall()
    started = time.monotonic()
    after_ids = [api.create_id("basic_clean", url) for _ in range(3)]
    assert all(api.get(f"/api/task/{t}").status_code == 200 for t in after_ids)
    figures("2a_redis_flush", finish(stack, started, {"at_flush": before}))


@pytest.mark.chaos_full
def test_redis_restart_with_tasks_pending_and_processing(make_stack, figures):
    stack = make_stack()
    api, url = prepare(stack)
    before = counts(stack)
    stack.recorder.phase = "redis-down"
    stack.cluster.redis.stop()
    # While Redis is down: creates commit (the enqueue fails and is logged); reads work;
    # readiness says 503 in the envelope.
    during = [api.create("basic_clean", url) for _ in range(3)]
    ready = api.get("/readyz", auth=False)
    time.sleep(3)
    stack.cluster.redis.start()
    stack.recorder.phase = "normal"
    started = time.monotonic()
    assert ready.status_code == 503 and ready.json()["code"] == 5003
    statuses = [r.status_code for r in during]
    after_ids = [api.create_id("basic_clean", url) for _ in range(3)]
    assert all(api.get(f"/api/task/{t}").status_code == 200 for t in after_ids)
    figures(
        "2b_redis_restart",
        finish(stack, started, {"at_restart": before, "creates_while_down": statuses}, allow={"redis-down"}),
    )
