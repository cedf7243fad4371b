"""Task service: create (charge + row + idempotency record in one transaction), read, list.

Nothing here commits except `create_task`'s caller; enqueueing happens only after the commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from . import events, quota
from .db import db, utcnow
from .errors import BadRequest, Conflict, NotFound
from .models import IdempotencyRecord, Task, new_task_id

IDEMPOTENCY_KEY_MAX = 255


@dataclass(frozen=True)
class Created:
    """The outcome of a create: the response to send, and whether a job must be enqueued."""

    status_code: int
    body: dict[str, Any]
    task_id: str
    task_type: str
    replayed: bool


def request_fingerprint(payload: dict[str, Any]) -> str:
    """Stable hash of a create request body, to tell a replay from a misuse of the same key."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} printable characters")
    return key


def find_replay(user_id: int, key: str, fingerprint: str) -> Created | None:
    record = db.session.get(IdempotencyRecord, (user_id, key))
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise Conflict("Idempotency-Key was already used with a different request body")
    return Created(record.status_code, record.response, record.response["data"]["taskId"], "", True)


def create_task(
    user_id: int,
    task_type: str,
    input_image_url: str,
    params: dict[str, Any],
    *,
    webhook_url: str | None = None,
    idempotency: tuple[str, str] | None = None,
) -> Created:
    """Charge one unit and write the task (and the idempotency record), then commit.

    Two concurrent requests with one key: the second blocks on the record's primary key until the
    first commits, then fails with an IntegrityError and replays the first's response.
    """
    now = utcnow()
    task_id = new_task_id()
    body = {
        "success": True,
        "data": {"taskId": task_id, "type": task_type, "status": "pending", "createdAt": _iso(now)},
    }
    try:
        if idempotency:
            key, fingerprint = idempotency
            db.session.add(
                IdempotencyRecord(
                    user_id=user_id,
                    key=key,
                    request_hash=fingerprint,
                    status_code=201,
                    response=body,
                    created_at=now,
                )
            )
            db.session.flush()
        quota.charge(user_id, task_id, now=now)
        db.session.add(
            Task(
                id=task_id,
                user_id=user_id,
                type=task_type,
                status="pending",
                input_image_url=input_image_url,
                params=params,
                result_urls=[],
                progress=0,
                webhook_url=webhook_url,
                created_at=now,
                updated_at=now,
            )
        )
        events.record(db.session, events.TaskEvent(task_id, task_type, "pending", progress=0))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if idempotency:
            replay = find_replay(user_id, *idempotency)
            if replay is not None:
                return replay
        raise
    except Exception:
        db.session.rollback()
        raise
    return Created(201, body, task_id, task_type, False)


def get_owned(task_id: str, user_id: int) -> Task:
    """The caller's task; someone else's is reported as missing, so existence does not leak."""
    task = db.session.get(Task, task_id) if _plausible_id(task_id) else None
    if task is None or task.user_id != user_id:
        raise NotFound("task not found")
    return task


def get_any(task_id: str) -> Task:
    task = db.session.get(Task, task_id) if _plausible_id(task_id) else None
    if task is None:
        raise NotFound("task not found")
    return task


def _plausible_id(task_id: str) -> bool:
    """Ids are short printable strings; anything else cannot exist (and must not reach SQL)."""
    if len(task_id) > 64 or not task_id.isprintable():
        return False
    try:
        task_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def list_for_user(
    user_id: int, *, limit: int, offset: int, status: str | None = None, task_type: str | None = None
) -> tuple[list[Task], int]:
    """A page of the user's tasks, newest first, and the total matching the filters."""
    query = select(Task).where(Task.user_id == user_id)
    if status:
        query = query.where(Task.status == status)
    if task_type:
        query = query.where(Task.type == task_type)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = db.session.scalars(
        query.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit).offset(offset)
    )
    return list(page), int(total or 0)


def prune_idempotency_records(older_than_seconds: int) -> int:
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    result = db.session.execute(
        IdempotencyRecord.__table__.delete().where(IdempotencyRecord.created_at < cutoff)
    )
    return result.rowcount or 0


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
