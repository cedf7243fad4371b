"""Scenario 3: PostgreSQL restarted (`pg_ctl restart -m fast`) under create load.

Three client threads post creates to the real web server, each create with its own Idempotency-Key,
retrying a 503 with the same key (as a well-behaved client does after `Retry-After`). While the
database is down the API must answer 503/5003 in the envelope, never 500; it must recover by
itself (connections checked after idling, a dead busy one dropped on its first failure) and, afterwards:

- every 201 names a task that exists, and every task in the database was answered 201 to some
  request (no half-created task, no deduction the client was not told about);
- one task per logical request (a retried key replays, it never charges twice);
- every task charged exactly once and the quota audit is clean (no orphaned deduction).

The workers run the real pipeline through the outage too (their jobs fail and are retried).
The full variant keeps PostgreSQL down for 5 s (`pg_ctl stop -m fast`, then `start`).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import requests

from tests.photos import product_photo

from .cluster import Stack
from .invariants import check_invariants

THREADS = 3
PAUSE = 0.15
QUICK_PAUSE = 0.6


def run_pg_restart(stack: Stack, down_seconds: float, pause: float = PAUSE) -> dict:
    stack.start_web()
    stack.start_workers(TASK_TIMEOUT_SECONDS="300")
    tokens = stack.create_users({f"pg{i}@example.com": 200 for i in range(THREADS)})
    apis = [stack.api(token) for token in tokens.values()]
    url = apis[0].upload(product_photo(256, 256))
    urls = [url] + [api.upload(product_photo(256, 256)) for api in apis[1:]]
    stack.wait_workers_ready(2, timeout=120)

    stop = threading.Event()
    lock = threading.Lock()
    created: dict[str, str] = {}  # idempotency key → task id
    retries_needed = []
    transport_errors = []
    missing_retry_after = []
    timeline: list[tuple[float, int]] = []

    def client(index: int) -> None:
        api = stack.api(list(tokens.values())[index])
        while not stop.is_set():
            key = uuid.uuid4().hex
            for attempt in range(200):  # noqa: B007 - read after the loop
                try:
                    response = api.create(
                        "basic_clean",
                        urls[index],
                        {"template": "white_bg"},
                        headers={"Idempotency-Key": key},
                        timeout=30,
                    )
                except requests.RequestException as exc:
                    with lock:
                        transport_errors.append(repr(exc))
                    time.sleep(0.2)
                    continue
                with lock:
                    timeline.append((time.monotonic(), response.status_code))
                if response.status_code == 503:
                    if response.headers.get("Retry-After") is None:
                        missing_retry_after.append(1)
                    time.sleep(0.2)
                    continue
                break
            with lock:
                if response.status_code == 201:
                    created[key] = response.json()["data"]["taskId"]
                    if attempt:
                        retries_needed.append(attempt)
            time.sleep(pause)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stack.recorder.phase = "postgres-down"
    outage_started = time.monotonic()
    if down_seconds:
        stack.cluster.pg.stop("fast")
        time.sleep(down_seconds)
        stack.cluster.pg.start()
    else:
        stack.cluster.pg.restart("fast")
    back = time.monotonic()
    # Until the API has answered 201 again for a while.
    deadline = back + 60
    while time.monotonic() < deadline:
        with lock:
            ok_after = [t for t, status in timeline if t > back and status == 201]
        if len(ok_after) >= 10:
            break
        time.sleep(0.2)
    stack.recorder.phase = "normal"
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(60)

    with lock:
        served_503 = [t for t, status in timeline if status == 503]
        first_ok_after = min((t for t, status in timeline if t > back and status == 201), default=None)
        other = sorted({status for _, status in timeline} - {201, 503})
    assert first_ok_after is not None, "the API did not recover by itself"
    assert not other, f"unexpected statuses {other}"
    assert not missing_retry_after, "503 without Retry-After"

    outcome = check_invariants(stack, timeout=300, allow_503={"postgres-down"})
    in_db = {row[0] for row in stack.query("SELECT id FROM tasks")}
    answered = set(created.values())
    assert len(answered) == len(created), "two keys got the same task"
    assert answered == in_db, (
        f"tasks without a 201: {sorted(in_db - answered)[:10]}; 201s without a task: {sorted(answered - in_db)[:10]}"
    )
    return {
        "pg_outage": "restart -m fast" if not down_seconds else f"stop -m fast, {down_seconds}s down, start",
        "outage_command_seconds": round(back - outage_started, 2),
        "creates_201": len(created),
        "answers_503": len(served_503),
        "creates_that_needed_retries": len(retries_needed),
        "max_retries_for_one_create": max(retries_needed, default=0),
        "transport_errors": len(transport_errors),
        "first_503_after_outage_start_s": round(min(served_503) - outage_started, 2) if served_503 else None,
        "last_503_after_pg_back_s": round(max(served_503) - back, 2) if served_503 else None,
        "first_201_after_pg_back_s": round(first_ok_after - back, 2),
        **outcome.as_dict(),
        "load_avg_end": os.getloadavg()[0],
    }


def test_postgres_restart_under_create_load(make_stack, figures):
    figures("3a_postgres_restart", run_pg_restart(make_stack(), down_seconds=0, pause=QUICK_PAUSE))


@pytest.mark.chaos_full
def test_postgres_down_5s_under_create_load(make_stack, figures):
    figures("3b_postgres_down_5s", run_pg_restart(make_stack(), down_seconds=5))
