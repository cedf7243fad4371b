"""Quota: charges, refunds and grants, each recorded in the ledger.

The balance lives on the user row; the ledger holds every change. A charge is one conditional
UPDATE (`quota > 0 AND member AND active`), so concurrent creates can never drive the balance
below zero; the CHECK constraint on `users.quota` backs that up. Nothing here commits: the
request handler or job that calls it owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update

from .db import db, utcnow
from .errors import AccountDisabled, AccountUnavailable, NotMember, QuotaExhausted
from .models import QuotaLedger, Task, User


def take_one(connection: Connection, user_id: int, task_id: str, now: datetime) -> int | None:
    """Charge one unit for `task_id`: the conditional UPDATE and its ledger row as two Core
    statements; the new balance, or None if refused (`refusal` explains why).

    On PostgreSQL the create path does the same inside its single statement
    (`shared.tasks.CREATE_STATEMENT`); keep the two in step.
    """
    return take(connection, user_id, [task_id], now)


def take(connection: Connection, user_id: int, task_ids: list[str], now: datetime) -> int | None:
    """Charge one unit per task, all or nothing: one conditional UPDATE (`quota >= N`), then a
    ledger row per task; the new balance, or None if refused (nothing charged).

    Concurrent charges serialize on the user's row: of two batches racing for the last units,
    the second's UPDATE re-checks `quota >= N` against the first's committed balance.
    """
    count = len(task_ids)
    balance = connection.execute(
        _CHARGE, {"user_id": user_id, "now": now, "count": count}
    ).scalar_one_or_none()
    if balance is None:
        return None
    connection.execute(
        _LEDGER_INSERT,
        [
            {
                "user_id": user_id,
                "amount": -1,
                "balance_after": balance + count - 1 - position,
                "reason": "deduct",
                "task_id": task_id,
                "note": None,
                "created_at": now,
            }
            for position, task_id in enumerate(task_ids)
        ],
    )
    return balance


_CHARGE = (
    update(User.__table__)
    .where(
        User.id == bindparam("user_id"),
        User.quota >= bindparam("count"),
        User.is_active.is_(True),
        User.is_member.is_(True),
        or_(User.member_until.is_(None), User.member_until > bindparam("now")),
    )
    .values(quota=User.quota - bindparam("count"), updated_at=bindparam("now"))
    .returning(User.quota)
)
_LEDGER_INSERT = insert(QuotaLedger.__table__)


def refund(user_id: int, task_id: str, note: str | None = None) -> int:
    """Give back the unit charged for `task_id`; return the new balance.

    Call it only from the transition that moves a task to `failed` (which happens once); the
    ledger's unique `(task_id, reason)` constraint rejects a second refund regardless.
    """
    now = utcnow()
    balance = db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(quota=User.quota + 1, updated_at=now)
        .returning(User.quota)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    _record(user_id, 1, balance, "refund", task_id, note=note, now=now)
    return balance


def grant(user: User, amount: int, note: str | None = None) -> int:
    """Add (or, with a negative amount, take away) quota; never below zero. Returns the change."""
    locked = db.session.execute(select(User).where(User.id == user.id).with_for_update()).scalar_one()
    new_balance = max(0, locked.quota + amount)
    change = new_balance - locked.quota
    if change:
        locked.quota = new_balance
        _record(locked.id, change, new_balance, "grant", None, note=note)
    return change


def recent_entries(user_id: int, limit: int = 20) -> list[QuotaLedger]:
    return list(
        db.session.scalars(
            select(QuotaLedger)
            .where(QuotaLedger.user_id == user_id)
            .order_by(QuotaLedger.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class AuditProblem:
    user_id: int | None
    task_id: str | None
    problem: str


def audit() -> list[AuditProblem]:
    """Check balances against the ledger and refunds against task outcomes."""
    problems: list[AuditProblem] = []
    sums = (
        select(QuotaLedger.user_id, func.coalesce(func.sum(QuotaLedger.amount), 0).label("total"))
        .group_by(QuotaLedger.user_id)
        .subquery()
    )
    rows = db.session.execute(
        select(User.id, User.quota, func.coalesce(sums.c.total, 0)).outerjoin(sums, sums.c.user_id == User.id)
    )
    for user_id, balance, total in rows:
        if balance != total:
            problems.append(AuditProblem(user_id, None, f"balance {balance} but ledger sums to {total}"))

    refunded = select(QuotaLedger.task_id).where(QuotaLedger.reason == "refund")
    charged = select(QuotaLedger.task_id).where(QuotaLedger.reason == "deduct")
    failed_unrefunded = select(Task.user_id, Task.id).where(Task.status == "failed", Task.id.not_in(refunded))
    for user_id, task_id in db.session.execute(failed_unrefunded):
        problems.append(AuditProblem(user_id, task_id, "failed task was not refunded"))
    refunded_not_failed = select(Task.user_id, Task.id).where(Task.status != "failed", Task.id.in_(refunded))
    for user_id, task_id in db.session.execute(refunded_not_failed):
        problems.append(AuditProblem(user_id, task_id, "task refunded but not failed"))
    uncharged = select(Task.user_id, Task.id).where(Task.id.not_in(charged))
    for user_id, task_id in db.session.execute(uncharged):
        problems.append(AuditProblem(user_id, task_id, "task has no charge in the ledger"))
    return problems


def refusal(user_id: int, now: datetime, needed: int | None = None) -> Exception:
    """The error explaining why a charge was refused; with `needed` (a batch's units) the quota
    refusal says how many were needed and how many are left."""
    user = db.session.get(User, user_id)
    if user is None:
        return AccountUnavailable()
    if not user.is_active:
        return AccountDisabled()
    if not user.membership_active(now):
        if user.is_member:
            return NotMember("membership expired: renew it to create tasks")
        return NotMember()
    if needed is not None:
        return QuotaExhausted(
            f"not enough quota: this needs {needed} units and {user.quota} are left",
            details={"needed": needed, "balance": user.quota},
        )
    return QuotaExhausted()


def _record(
    user_id: int,
    amount: int,
    balance_after: int,
    reason: str,
    task_id: str | None,
    *,
    note: str | None = None,
    now: datetime | None = None,
) -> None:
    db.session.add(
        QuotaLedger(
            user_id=user_id,
            amount=amount,
            balance_after=balance_after,
            reason=reason,
            task_id=task_id,
            note=note,
            created_at=now or utcnow(),
        )
    )
