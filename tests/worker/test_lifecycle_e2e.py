"""The task lifecycle through a real `python worker.py` process (stub job bodies, shipped frame)."""

from __future__ import annotations

import os
import signal

from rq import Worker
from sqlalchemy import func, select

from shared import quota
from shared.db import db
from shared.models import QuotaLedger, Task, User
from tests.conftest import wait_for

BASE = "https://images.example.com/p.jpg"


def create(client, headers, url: str = BASE) -> str:
    response = client.post(
        "/api/task/create", json={"type": "basic_clean", "inputImageUrl": url}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]["taskId"]


def task_row(task_id: str) -> Task:
    db.session.expire_all()
    return db.session.get(Task, task_id)


def ended(task_id: str) -> Task | None:
    task = task_row(task_id)
    return task if task.status in ("success", "failed") else None


def refunds(task_id: str) -> int:
    return db.session.scalar(
        select(func.count()).where(QuotaLedger.task_id == task_id, QuotaLedger.reason == "refund")
    )


def balance(user_id: int) -> int:
    db.session.expire_all()
    return db.session.get(User, user_id).quota


def test_success_reject_and_crash_paths(client, auth, make_user, start_worker):
    user = make_user(quota=3)
    headers = auth.headers(user)
    ok = create(client, headers, BASE + "?sleep=0.3")
    rejected = create(client, headers, BASE + "?reject=image+is+too+small")
    crashed = create(client, headers, BASE + "?raise=1")
    worker = start_worker()

    done = wait_for(lambda: ended(ok), message="stub success")
    assert done.status == "success", worker.output()
    assert done.result_urls == [f"https://results.example.com/{ok}/out.png"]
    assert done.progress == 100 and done.started_at and done.completed_at
    detail = client.get(f"/api/task/{ok}", headers=headers).get_json()["data"]
    assert detail["status"] == "success" and detail["startedAt"] and "queuePosition" not in detail

    failed = wait_for(lambda: ended(rejected), message="rejection")
    assert (failed.status, failed.error_message) == ("failed", "image is too small")

    # Crashes are retried by rq (2 retries in the spec), then the failure callback fails the task.
    crashed_task = wait_for(lambda: ended(crashed), message="crash after retries")
    assert crashed_task.status == "failed"
    assert "internal error" in crashed_task.error_message
    assert refunds(rejected) == 1 and refunds(crashed) == 1 and refunds(ok) == 0
    assert balance(user.id) == 2
    assert quota.audit() == []


def test_sweeper_times_out_a_task_and_stops_its_job(client, auth, make_user, start_worker):
    user = make_user(quota=1)
    headers = auth.headers(user)
    slow = create(client, headers, BASE + "?sleep=5")
    worker = start_worker(TASK_TIMEOUT_SECONDS="2", WORKER_PROCESSES="2")
    swept = wait_for(lambda: ended(slow), timeout=20, message="sweeper")
    assert swept.status == "failed", worker.output()
    assert swept.error_message == "任务超时(2秒未处理)"
    # The stub job would run on for seconds: the sweeper stops it, and it reports nothing.
    wait_for(lambda: "stopped on request" in worker.output(), timeout=20, message="the job stopped")
    assert "ended elsewhere" not in worker.output()
    assert task_row(slow).status == "failed"
    assert refunds(slow) == 1 and balance(user.id) == 1
    assert quota.audit() == []


def test_reconciler_reenqueues_tasks_lost_by_a_redis_flush(client, auth, make_user, start_worker, redis):
    user = make_user(quota=3)
    headers = auth.headers(user)
    lost = [create(client, headers) for _ in range(3)]
    redis.flushdb()
    worker = start_worker()
    for task_id in lost:
        assert wait_for(lambda t=task_id: ended(t), timeout=30, message="reconciled").status == "success", (
            worker.output()
        )
    assert "reconciler re-enqueued" in worker.output()
    assert balance(user.id) == 0 and quota.audit() == []


def test_worker_sigkill_mid_job_task_still_ends_and_is_refunded_once(
    client, auth, make_user, start_worker, redis
):
    user = make_user(quota=1)
    headers = auth.headers(user)
    task_id = create(client, headers, BASE + "?sleep=60")
    start_worker(TASK_TIMEOUT_SECONDS="4", WORKER_PROCESSES="2")
    wait_for(lambda: task_row(task_id).status == "processing", message="job started")
    busy = [w for w in Worker.all(connection=redis) if w.get_current_job_id() == task_id]
    assert len(busy) == 1
    os.kill(busy[0].pid, signal.SIGKILL)
    failed = wait_for(lambda: ended(task_id), timeout=30, message="sweeper after SIGKILL")
    assert failed.status == "failed" and failed.error_message.startswith("任务超时")
    assert refunds(task_id) == 1 and balance(user.id) == 1
    assert quota.audit() == []


def test_a_killed_workers_job_is_resumed_at_once_not_left_to_the_sweeper(
    client, auth, make_user, start_worker, redis
):
    user = make_user(quota=1)
    task_id = create(client, auth.headers(user), BASE + "?sleep=4")
    worker = start_worker(WORKER_PROCESSES="2")
    wait_for(lambda: task_row(task_id).status == "processing", message="job started")
    busy = [w for w in Worker.all(connection=redis) if w.get_current_job_id() == task_id]
    os.kill(busy[0].pid, signal.SIGKILL)
    done = wait_for(lambda: ended(task_id), timeout=40, message="resumed after SIGKILL")
    assert done.status == "success", worker.output()[-3000:]
    assert "died running job" in worker.output()
    assert refunds(task_id) == 0 and balance(user.id) == 0
    assert quota.audit() == []


def test_sigterm_stops_the_worker_dyno_within_its_grace_period(client, auth, make_user, start_worker):
    """A job that outlasts the grace period is killed so the dyno exits cleanly before the platform does."""
    user = make_user(quota=1)
    task_id = create(client, auth.headers(user), BASE + "?sleep=60")
    worker = start_worker(WORKER_SHUTDOWN_GRACE_SECONDS="2")
    wait_for(lambda: task_row(task_id).status == "processing", message="job started")
    os.killpg(worker.proc.pid, signal.SIGTERM)
    assert worker.proc.wait(20) == 0, worker.output()[-3000:]
    assert "did not stop in" in worker.output()
