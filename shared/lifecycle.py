"""The task state machine: pending → processing → success | failed (and pending → failed).

Every transition is one conditional UPDATE on the task's current status, so a late or
duplicate report can never move a task out of `success` or `failed`, and the transition to
`failed` (which carries the refund) happens at most once however many parties report it.
Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update

from . import batches, events, quota
from .db import db, utcnow
from .models import ACTIVE_STATUSES, Task

LEGAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"processing", "failed"}),
    "processing": frozenset({"success", "failed"}),
    "success": frozenset(),
    "failed": frozenset(),
}
"""Where each status may go next; terminal states go nowhere."""

CANCELLED_MESSAGE = "任务已取消 (cancelled by user)"


def timeout_message(seconds: int) -> str:
    """The seed's timeout text, with the number following the configured timeout."""
    if seconds % 60 == 0:
        return f"任务超时({seconds // 60}分钟未处理)"
    return f"任务超时({seconds}秒未处理)"


def start(task_id: str) -> Task | None:
    """Mark a task `processing`; return it, or None when it already ended (skip the job).

    A task already `processing` is returned as is: its job is being re-run after a worker
    restart or a reconcile, and must finish the work.
    """
    now = utcnow()
    started = db.session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == "pending")
        .values(status="processing", started_at=now, updated_at=now)
        .returning(Task.type)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if started is not None:
        events.record(db.session, events.TaskEvent(task_id, started, "processing", progress=0))
    task = db.session.get(Task, task_id, populate_existing=True)
    if task is None or task.status not in ACTIVE_STATUSES:
        return None
    return task


def set_progress(task_id: str, progress: int) -> None:
    """Record progress (0-100) of an active task; never moves backwards."""
    task_type = db.session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status.in_(ACTIVE_STATUSES), Task.progress < progress)
        .values(progress=progress, updated_at=utcnow())
        .returning(Task.type)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if task_type is not None:
        events.record(db.session, events.TaskEvent(task_id, task_type, "processing", progress=progress))


def succeed(task_id: str, result_urls: Sequence[str], result_files: Sequence[dict] | None = None) -> bool:
    """processing → success. False when the task is not processing (ended, or never started).

    `result_files`: what each result holds (`shared.result_files.ResultFile` records), when known.
    """
    now = utcnow()
    row = db.session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == "processing")
        .values(
            status="success",
            result_urls=list(result_urls),
            result_files=list(result_files) if result_files else None,
            progress=100,
            error_message=None,
            completed_at=now,
            updated_at=now,
        )
        .returning(Task.type, Task.started_at, Task.webhook_url, Task.batch_id)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return False
    _ended(task_id, "success", row, now)
    return True


def fail(task_id: str, message: str) -> bool:
    """pending|processing → failed, refunding the task's unit. False when it had already ended."""
    now = utcnow()
    row = db.session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status.in_(ACTIVE_STATUSES))
        .values(status="failed", error_message=message[:2000], completed_at=now, updated_at=now)
        .returning(Task.user_id, Task.type, Task.started_at, Task.webhook_url, Task.batch_id)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return False
    quota.refund(row.user_id, task_id, note=message[:255])
    _ended(task_id, "failed", row, now)
    return True


def _ended(task_id: str, status: str, row, now: datetime) -> None:
    started = row.started_at
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=now.tzinfo)
    seconds = (now - started).total_seconds() if started is not None else None
    evt = events.TaskEvent(
        task_id, row.type, status, 100 if status == "success" else None, seconds, bool(row.webhook_url)
    )
    events.record(db.session, evt)
    if row.batch_id is not None:
        completed = batches.task_ended(row.batch_id, now)
        if completed is not None:
            events.record_batch(db.session, events.BatchEvent(completed.id, bool(completed.webhook_url)))


def transition(
    task_id: str, status: str, result_urls: Sequence[str] = (), error_message: str | None = None
) -> bool:
    """Apply an externally reported status (the internal status endpoint).

    Returns False when the move is not legal from the task's current status.
    """
    current = db.session.scalar(select(Task.status).where(Task.id == task_id))
    if current is None or status not in LEGAL_TRANSITIONS[current]:
        return False
    if status == "processing":
        return start(task_id) is not None
    if status == "success":
        return succeed(task_id, result_urls)
    return fail(task_id, error_message or "任务处理失败")


def sweep_timeouts(
    timeout_seconds: int, now: datetime | None = None, batch_timeout_seconds: int | None = None
) -> list[str]:
    """Fail (and refund) every active task created more than `timeout_seconds` ago; a batch's
    task gets `batch_timeout_seconds` (it waits behind its batch's earlier items), if given."""
    now = now or utcnow()
    failed = []
    kinds = [(Task.batch_id.is_(None), timeout_seconds)]
    kinds.append((Task.batch_id.is_not(None), batch_timeout_seconds or timeout_seconds))
    for kind, seconds in kinds:
        cutoff = now - timedelta(seconds=seconds)
        stale = db.session.scalars(
            select(Task.id).where(Task.status.in_(ACTIVE_STATUSES), Task.created_at < cutoff, kind).limit(500)
        ).all()
        message = timeout_message(seconds)
        failed += [task_id for task_id in stale if fail(task_id, message)]
    return failed
