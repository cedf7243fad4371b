"""Task service: create (charge + row + idempotency record in one transaction), read, list.

`create_task` commits; its caller announces the task and enqueues its job after the commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, DateTime, Row, and_, bindparam, func, insert, select, text, true
from sqlalchemy.dialects import postgresql, sqlite

from . import quota
from .db import db, read_only_connection, utcnow
from .errors import AccountDisabled, AccountUnavailable, BadRequest, Conflict, NotFound, TooManyActiveTasks
from .models import ACTIVE_STATUSES, IdempotencyRecord, Task, User, new_task_id

IDEMPOTENCY_KEY_MAX = 255

ACTIVE_LIMIT_LOCK = 0x5318
"""First key of the advisory lock that serializes one user's creates while the active limit is checked."""


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


def stored_answer(user_id: int, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The record of the first request made with this key (None: the key is free); the same key
    with another body is a client mistake (409)."""
    record = db.session.get(IdempotencyRecord, (user_id, key))
    if record is not None and record.request_hash != fingerprint:
        raise Conflict("Idempotency-Key was already used with a different request body")
    return record


def find_replay(user_id: int, key: str, fingerprint: str) -> Created | None:
    record = stored_answer(user_id, key, fingerprint)
    if record is None:
        return None
    return Created(record.status_code, record.response, record.response["data"]["taskId"], "", True)


def claim_key(
    connection: Connection, user_id: int, key: str, fingerprint: str, response: dict[str, Any], now: datetime
) -> bool:
    """Take the idempotency key for this request (`INSERT ... ON CONFLICT DO NOTHING`); False when
    it is already taken (the caller replays). The PostgreSQL task create does this inside its
    single statement (`CREATE_STATEMENT`)."""
    values = {
        "user_id": user_id,
        "key": key,
        "request_hash": fingerprint,
        "status_code": 201,
        "response": response,
        "created_at": now,
    }
    statement = _CLAIM_KEY[connection.dialect.name == "postgresql"]
    return connection.execute(statement, values).first() is not None


def create_task(
    user_id: int,
    task_type: str,
    input_image_url: str,
    params: dict[str, Any],
    *,
    webhook_url: str | None = None,
    idempotency: tuple[str, str] | None = None,
    active_limit: int = 0,
) -> Created:
    """Charge one unit and write the task (and the idempotency record) in one transaction.

    `active_limit` (0: none): refuse with `TooManyActiveTasks`, before any charge, when the user
    already has that many tasks pending or processing (`check_active_limit`).

    The steps, in order: claim the idempotency key (`INSERT ... ON CONFLICT DO NOTHING`), the
    conditional quota UPDATE, the task row and the ledger row; then commit. On PostgreSQL they
    are one statement (`CREATE_STATEMENT`, one round trip); on SQLite (`make run`)
    four Core statements. Two concurrent requests with one key: the second's INSERT waits on the
    first's uncommitted row, then inserts nothing, and the second replays the first's response
    (or, had the first rolled back, goes on as the only one). A refusal rolls everything back,
    the claimed key included. The caller announces the task and enqueues its job.
    """
    now = utcnow()
    task_id = new_task_id()
    body = {
        "success": True,
        "data": {"taskId": task_id, "type": task_type, "status": "pending", "createdAt": _iso(now)},
    }
    key, fingerprint = idempotency or (None, None)
    values = {
        "user_id": user_id,
        "key": key,
        "request_hash": fingerprint,
        "response": body,
        "task_id": task_id,
        "type": task_type,
        "input_image_url": input_image_url,
        "params": params,
        "webhook_url": webhook_url,
        "now": now,
    }
    connection = db.session.connection()
    try:
        if active_limit > 0:
            check_active_limit(user_id, active_limit, idempotency)
        if connection.dialect.name == "postgresql":
            claimed, balance = connection.execute(CREATE_STATEMENT, values).one()
        else:
            claimed, balance = _create_in_steps(connection, values)
        if key is not None and not claimed:
            db.session.rollback()
            return _replay(user_id, key, fingerprint)
        if balance is None:
            db.session.rollback()
            raise quota.refusal(user_id, now)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return Created(201, body, task_id, task_type, False)


def lock_user_creates(user_id: int) -> None:
    """Serialize one user's creates (tasks and batches) until this transaction ends (PostgreSQL;
    SQLite serializes writers anyway), so limits counted after it cannot be passed together."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:space, :user_id)"),
            {"space": ACTIVE_LIMIT_LOCK, "user_id": user_id},
        )


def check_active_limit(user_id: int, limit: int, idempotency: tuple[str, str] | None = None) -> None:
    """Refuse a new task when the user has `limit` single tasks pending or processing (a replay
    passes). A batch's tasks have their own limit (`batches`: batches in progress).

    Cancelling refunds, so without a limit one unit could keep every worker busy (create, cancel,
    repeat). On PostgreSQL a transaction-scoped advisory lock serializes one user's creates until
    the create commits or rolls back, so concurrent creates cannot all pass the same count (the
    count runs after the lock, in a statement with a fresh snapshot). SQLite serializes writers.
    """
    lock_user_creates(user_id)
    if idempotency is not None and find_replay(user_id, *idempotency) is not None:
        return
    active = db.session.scalar(
        select(func.count()).where(
            Task.user_id == user_id, Task.status.in_(ACTIVE_STATUSES), Task.batch_id.is_(None)
        )
    )
    if active >= limit:
        raise TooManyActiveTasks(
            f"too many tasks queued or running ({active}, the limit is {limit}): "
            "wait for one to finish or cancel one, then create again",
            details={"limit": limit, "active": active},
        )


CREATE_STATEMENT = text(
    """
    WITH claim AS (
        INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response, created_at)
        SELECT :user_id, CAST(:key AS varchar), :request_hash, 201, :response, :now
        WHERE CAST(:key AS varchar) IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING 1
    ), charged AS (
        UPDATE users SET quota = quota - 1, updated_at = :now
        WHERE id = :user_id AND quota > 0 AND is_active AND is_member
          AND (member_until IS NULL OR member_until > :now)
          AND (CAST(:key AS varchar) IS NULL OR EXISTS (SELECT 1 FROM claim))
        RETURNING quota
    ), task AS (
        INSERT INTO tasks (id, user_id, type, status, input_image_url, params, result_urls,
                           progress, webhook_url, created_at, updated_at)
        SELECT :task_id, :user_id, :type, 'pending', :input_image_url, :params, CAST('[]' AS json),
               0, :webhook_url, :now, :now
        FROM charged
    ), ledger AS (
        INSERT INTO quota_ledger (user_id, amount, balance_after, reason, task_id, created_at)
        SELECT :user_id, -1, quota, 'deduct', :task_id, :now FROM charged
    )
    SELECT EXISTS (SELECT 1 FROM claim) AS claimed, (SELECT quota FROM charged) AS balance
    """
).bindparams(
    bindparam("response", type_=postgresql.JSON),
    bindparam("params", type_=postgresql.JSON),
    bindparam("now", type_=DateTime(timezone=True)),
)
"""The create as one PostgreSQL statement: the same steps and ledger row as `_create_in_steps`
(`quota.take_one`), each depending on the one before through the CTEs. `claimed` is false when
the key was already taken (nothing else happened); `balance` is NULL when the charge was refused."""


def _create_in_steps(connection: Connection, values: dict[str, Any]) -> tuple[bool, int | None]:
    """SQLite's create: the statement's steps one by one, with the same outcome pair."""
    if values["key"] is not None and not claim_key(
        connection,
        values["user_id"],
        values["key"],
        values["request_hash"],
        values["response"],
        values["now"],
    ):
        return False, None
    balance = quota.take_one(connection, values["user_id"], values["task_id"], values["now"])
    if balance is None:
        return True, None
    connection.execute(
        _TASK_INSERT,
        {
            "id": values["task_id"],
            "user_id": values["user_id"],
            "type": values["type"],
            "status": "pending",
            "input_image_url": values["input_image_url"],
            "params": values["params"],
            "result_urls": [],
            "progress": 0,
            "webhook_url": values["webhook_url"],
            "created_at": values["now"],
            "updated_at": values["now"],
        },
    )
    return True, balance


_TASK_INSERT = insert(Task.__table__)


_idempotency = IdempotencyRecord.__table__
_CLAIM_KEY = {
    on_postgresql: dialect.insert(_idempotency)
    .on_conflict_do_nothing(index_elements=[_idempotency.c.user_id, _idempotency.c.key])
    .returning(_idempotency.c.key)
    for on_postgresql, dialect in ((False, sqlite), (True, postgresql))
}
"""`INSERT ... ON CONFLICT DO NOTHING RETURNING` for the idempotency record, per dialect."""


def _replay(user_id: int, key: str, fingerprint: str) -> Created:
    """The stored answer for a key already used; a disabled or deleted account gets no replay."""
    check_account_for_replay(user_id)
    replay = find_replay(user_id, key, fingerprint)
    if replay is None:  # the holder's record was pruned in between: the key is free again
        raise Conflict("Idempotency-Key is being released; retry the request")
    return replay


def check_account_for_replay(user_id: int) -> None:
    user = db.session.get(User, user_id)
    if user is None:
        raise AccountUnavailable()
    if not user.is_active:
        raise AccountDisabled()


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


def read_owned(task_id: str, user_id: int) -> Row:
    """The caller's task as a row, checking the account in the same query (one round trip).

    A disabled account gets 1004 as everywhere else; someone else's task is reported missing.
    For read-only requests: it puts the session's connection in autocommit (`read_only_connection`).
    """
    if not _plausible_id(task_id):
        task_id = ""
    row = read_only_connection().execute(_READ_OWNED, {"user_id": user_id, "task_id": task_id}).first()
    _check_account(row)
    if row.id is None:
        raise NotFound("task not found")
    return row


def list_for_user(
    user_id: int, *, limit: int, offset: int, status: str | None = None, task_type: str | None = None
) -> tuple[list[Row], int]:
    """A page of the user's tasks, newest first, and the total matching the filters.

    One query: the account row, the count and the page (joined as a subquery); the account is
    checked like `read_owned` does. For read-only requests, like `read_owned`.
    """
    rows = (
        read_only_connection()
        .execute(
            _list_query(bool(status), bool(task_type)),
            {"user_id": user_id, "status": status, "type": task_type, "limit": limit, "offset": offset},
        )
        .all()
    )
    _check_account(rows[0] if rows else None)
    return [row for row in rows if row.id is not None], int(rows[0].total)


def _check_account(row: Row | None) -> None:
    if row is None:
        raise AccountUnavailable()
    if not row.account_active:
        raise AccountDisabled()


_tasks = Task.__table__
_users = User.__table__
_READ_OWNED = (
    select(_users.c.is_active.label("account_active"), *_tasks.c)
    .select_from(
        _users.outerjoin(_tasks, and_(_tasks.c.id == bindparam("task_id"), _tasks.c.user_id == _users.c.id))
    )
    .where(_users.c.id == bindparam("user_id"))
)


@cache
def _list_query(by_status: bool, by_type: bool):
    conditions = [_tasks.c.user_id == bindparam("user_id")]
    if by_status:
        conditions.append(_tasks.c.status == bindparam("status"))
    if by_type:
        conditions.append(_tasks.c.type == bindparam("type"))
    total = select(func.count()).select_from(_tasks).where(*conditions).scalar_subquery()
    page = (
        select(_tasks)
        .where(*conditions)
        .order_by(_tasks.c.created_at.desc(), _tasks.c.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    return (
        select(_users.c.is_active.label("account_active"), total.label("total"), *page.c)
        .select_from(_users.outerjoin(page, true()))
        .where(_users.c.id == bindparam("user_id"))
        .order_by(page.c.created_at.desc(), page.c.id.desc())
    )


def prune_idempotency_records(older_than_seconds: int) -> int:
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    result = db.session.execute(
        IdempotencyRecord.__table__.delete().where(IdempotencyRecord.created_at < cutoff)
    )
    return result.rowcount or 0


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
