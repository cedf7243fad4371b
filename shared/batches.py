"""Batches: many tasks of one type and params, charged all or nothing and followed as one.

Each item becomes an ordinary task (same lifecycle, refunds, events, webhooks), created in one
transaction with the batch row, one conditional charge of N units (`quota.take`), N ledger rows
and the idempotency record. The tasks' jobs go to the bulk twin of their queue
(`shared.queues.bulk`), which workers serve after the single-task queues. Nothing here but
`create_batch` commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, func, insert, select, update

from . import quota, tasks
from .db import db, read_only_connection, utcnow
from .errors import Conflict, NotFound, TooManyActiveTasks
from .models import TASK_STATUSES, TERMINAL_STATUSES, Batch, IdempotencyRecord, Task, new_task_id
from .schemas import iso_timestamp

REF_MAX = 100


@dataclass(frozen=True)
class Item:
    input_image_url: str
    ref: str | None


@dataclass(frozen=True)
class Created:
    """The outcome of a batch create: the answer, and the tasks to enqueue (none on a replay)."""

    status_code: int
    body: dict[str, Any]
    batch_id: str
    task_ids: tuple[str, ...]
    replayed: bool


def create_batch(
    user_id: int,
    task_type: str,
    params: dict[str, Any],
    items: Sequence[Item],
    *,
    webhook_url: str | None = None,
    idempotency: tuple[str, str] | None = None,
    active_limit: int = 0,
) -> Created:
    """Write the batch, its tasks and their charge in one transaction, and commit.

    Order: the active-batch limit (under the user's advisory lock, as `tasks.check_active_limit`),
    the idempotency claim (a key already used replays its first answer), then the charge: one
    `UPDATE users SET quota = quota - N WHERE quota >= N ...`. A refusal rolls everything back and
    says how many units were needed and how many are left (402/1003).
    """
    now = utcnow()
    batch_id = new_task_id()
    task_ids = [new_task_id() for _ in items]
    batch = Batch(
        id=batch_id,
        user_id=user_id,
        type=task_type,
        params=params,
        total=len(items),
        ended=0,
        webhook_url=webhook_url,
        created_at=now,
    )
    body = {"success": True, "data": document(batch, {"pending": len(items)}, progress_sum=0)}
    key, fingerprint = idempotency or (None, None)
    connection = db.session.connection()
    try:
        if active_limit > 0:
            _check_active_batches(user_id, active_limit, idempotency)
        if key is not None and not tasks.claim_key(connection, user_id, key, fingerprint, body, now):
            db.session.rollback()
            return _replay(user_id, key, fingerprint)
        if quota.take(connection, user_id, task_ids, now) is None:
            db.session.rollback()
            raise quota.refusal(user_id, now, needed=len(items))
        connection.execute(insert(Batch.__table__), [_row(batch)])
        connection.execute(
            insert(Task.__table__),
            [
                {
                    "id": task_id,
                    "user_id": user_id,
                    "type": task_type,
                    "status": "pending",
                    "input_image_url": item.input_image_url,
                    "params": params,
                    "result_urls": [],
                    "progress": 0,
                    "batch_id": batch_id,
                    "batch_index": index,
                    "batch_ref": item.ref,
                    "created_at": now,
                    "updated_at": now,
                }
                for index, (task_id, item) in enumerate(zip(task_ids, items, strict=True))
            ],
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return Created(201, body, batch_id, tuple(task_ids), False)


def _row(batch: Batch) -> dict[str, Any]:
    return {column.name: getattr(batch, column.key) for column in Batch.__table__.columns}


def _check_active_batches(user_id: int, limit: int, idempotency: tuple[str, str] | None) -> None:
    """Refuse a new batch while the user has `limit` batches not completed (a replay passes).

    Serialized with the user's other creates by the same advisory lock as the task limit.
    """
    tasks.lock_user_creates(user_id)
    if idempotency is not None and db.session.get(IdempotencyRecord, (user_id, idempotency[0])) is not None:
        return
    active = db.session.scalar(
        select(func.count()).where(Batch.user_id == user_id, Batch.completed_at.is_(None))
    )
    if active >= limit:
        raise TooManyActiveTasks(
            f"too many batches in progress ({active}, the limit is {limit}): "
            "wait for one to complete or cancel one, then submit again",
            details={"limit": limit, "active": active},
        )


def _replay(user_id: int, key: str, fingerprint: str) -> Created:
    """The stored answer for a key already used; a disabled or deleted account gets no replay."""
    tasks.check_account_for_replay(user_id)
    record = tasks.stored_answer(user_id, key, fingerprint)
    if record is None:  # pruned in between: the key is free again
        raise Conflict("Idempotency-Key is being released; retry the request")
    return Created(record.status_code, record.response, record.response["data"]["id"], (), True)


# Reads ------------------------------------------------------------------------------------


def get_owned(batch_id: str, user_id: int) -> Batch:
    """The caller's batch; someone else's is reported missing, so existence does not leak."""
    batch = db.session.get(Batch, batch_id) if _plausible_id(batch_id) else None
    if batch is None or batch.user_id != user_id:
        raise NotFound("batch not found")
    return batch


def _plausible_id(batch_id: str) -> bool:
    return 0 < len(batch_id) <= 32 and all(c in "0123456789abcdef" for c in batch_id)


def batch_tasks(batch_id: str) -> list[Task]:
    return list(db.session.scalars(select(Task).where(Task.batch_id == batch_id).order_by(Task.batch_index)))


def list_for_user(user_id: int, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the user's batches, newest first, as documents (without tasks), and the total."""
    connection = read_only_connection()
    total = connection.execute(select(func.count()).where(Batch.user_id == user_id)).scalar_one()
    page = connection.execute(
        select(Batch.__table__)
        .where(Batch.user_id == user_id)
        .order_by(Batch.created_at.desc(), Batch.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    tallies = _tallies(connection, [row.id for row in page])
    return [document(row, *tallies.get(row.id, ({}, 0))) for row in page], total


def summary(batch: Batch) -> dict[str, Any]:
    """The batch document (without tasks), its counts read now."""
    counts, progress_sum = _tallies(db.session.connection(), [batch.id]).get(batch.id, ({}, 0))
    return document(batch, counts, progress_sum)


def tally(members: Iterable[Task]) -> tuple[dict[str, int], int]:
    """`_tallies` of tasks already loaded (the detail has them all): counts and progress sum."""
    counts: dict[str, int] = {}
    progress = 0
    for task in members:
        counts[task.status] = counts.get(task.status, 0) + 1
        progress += 100 if task.status in TERMINAL_STATUSES else task.progress
    return counts, progress


def _tallies(connection, batch_ids: Iterable[str]) -> dict[str, tuple[dict[str, int], int]]:
    """Per batch: the number of tasks in each status, and the sum of their progress (an ended
    task counts 100), in one grouped query."""
    ids = list(batch_ids)
    if not ids:
        return {}
    done = case((Task.status.in_(TERMINAL_STATUSES), 100), else_=Task.progress)
    rows = connection.execute(
        select(Task.batch_id, Task.status, func.count(), func.sum(done))
        .where(Task.batch_id.in_(ids))
        .group_by(Task.batch_id, Task.status)
    ).all()
    tallies: dict[str, tuple[dict[str, int], int]] = {}
    for batch_id, status, count, progress in rows:
        counts, total = tallies.get(batch_id, ({}, 0))
        counts[status] = count
        tallies[batch_id] = (counts, total + int(progress or 0))
    return tallies


def document(batch: Batch, counts: dict[str, int], progress_sum: int) -> dict[str, Any]:
    """The batch as clients see it: status, counts per task status, overall progress (0-100)."""
    counts = {status: counts.get(status, 0) for status in TASK_STATUSES}
    if batch.completed_at is not None:
        status = "completed"
    elif counts["pending"] < batch.total:
        status = "processing"
    else:
        status = "pending"
    data: dict[str, Any] = {
        "id": batch.id,
        "type": batch.type,
        "params": dict(batch.params or {}),
        "status": status,
        "total": batch.total,
        "counts": counts,
        "progress": progress_sum // batch.total if batch.total else 100,
        "webhookUrl": batch.webhook_url,
        "createdAt": iso_timestamp(batch.created_at),
    }
    if batch.completed_at is not None:
        data["completedAt"] = iso_timestamp(batch.completed_at)
    return data


# Ends -------------------------------------------------------------------------------------


def task_ended(batch_id: str, now: datetime) -> Row | None:
    """Count one of the batch's tasks as ended; `(id, webhook_url)` when this end completed it.

    One UPDATE on the batch row: concurrent ends serialize on its lock, so exactly one of them
    sees `ended` reach `total`. Runs in the transaction of the task's own end (`lifecycle`).
    """
    row = db.session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(
            ended=Batch.ended + 1,
            completed_at=case((Batch.ended + 1 >= Batch.total, now), else_=Batch.completed_at),
        )
        .returning(Batch.id, Batch.ended, Batch.total, Batch.webhook_url)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    return row if row is not None and row.ended == row.total else None


def active_task_ids(batch_id: str) -> list[tuple[str, str]]:
    """(id, type) of the batch's tasks that have not ended."""
    return [
        (task_id, task_type)
        for task_id, task_type in db.session.execute(
            select(Task.id, Task.type).where(Task.batch_id == batch_id, Task.status.not_in(TERMINAL_STATUSES))
        )
    ]


def archive_entries(batch_tasks: Sequence[Task]) -> list[tuple[str, str]]:
    """The zip entries of a batch's successful results: `<ref>/<result name>`.

    An item without a ref is named by its place (`001`, ...). Items sharing a ref (several photos
    of one SKU) share its folder, their files numbered by occurrence: `<ref>/1-<name>`, `2-...`.
    """
    folders = [task.batch_ref or f"{task.batch_index + 1:03d}" for task in batch_tasks]
    repeats = {folder for folder, count in Counter(folders).items() if count > 1}
    seen: dict[str, int] = {}
    entries = []
    for task, folder in zip(batch_tasks, folders, strict=True):
        seen[folder] = seen.get(folder, 0) + 1
        if task.status != "success":
            continue
        prefix = f"{seen[folder]}-" if folder in repeats else ""
        for key in task.result_urls or []:
            if not key.startswith(("http://", "https://")):
                entries.append((f"{folder}/{prefix}{key.rsplit('/', 1)[-1]}", key))
    return entries
