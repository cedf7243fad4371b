"""Operator CLI: users create / grant, quota audit."""

from __future__ import annotations

from sqlalchemy import select

from shared.db import db
from shared.models import QuotaLedger, User


def user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def test_create_user_defaults_to_non_member_with_zero_quota(runner):
    result = runner.invoke(args=["users", "create", "Op@Example.com", "--password", "abc12345"])
    assert result.exit_code == 0, result.output
    created = user("op@example.com")
    assert (created.is_member, created.quota, created.is_admin) == (False, 0, False)


def test_create_member_admin_with_quota_goes_through_ledger(runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "a@example.com",
            "--password",
            "abc12345",
            "--member",
            "--quota",
            "7",
            "--admin",
        ]
    )
    assert result.exit_code == 0, result.output
    created = user("a@example.com")
    assert (created.is_member, created.quota, created.is_admin) == (True, 7, True)
    entries = db.session.scalars(select(QuotaLedger).where(QuotaLedger.user_id == created.id)).all()
    assert [(e.amount, e.balance_after, e.reason) for e in entries] == [(7, 7, "grant")]


def test_create_duplicate_fails(runner):
    runner.invoke(args=["users", "create", "d@example.com", "--password", "abc12345"])
    result = runner.invoke(args=["users", "create", "D@example.com", "--password", "abc12345"])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_grant_membership_days_and_quota_never_below_zero(runner):
    runner.invoke(args=["users", "create", "g@example.com", "--password", "abc12345"])
    result = runner.invoke(
        args=["users", "grant", "g@example.com", "--member", "--member-days", "30", "--quota", "3"]
    )
    assert result.exit_code == 0, result.output
    granted = user("g@example.com")
    assert granted.is_member and granted.member_until is not None and granted.quota == 3
    result = runner.invoke(args=["users", "grant", "g@example.com", "--quota", "-10"])
    assert result.exit_code == 0
    assert user("g@example.com").quota == 0
    amounts = db.session.scalars(select(QuotaLedger.amount).where(QuotaLedger.user_id == granted.id)).all()
    assert amounts == [3, -3]
    result = runner.invoke(args=["users", "grant", "g@example.com", "--no-member"])
    assert user("g@example.com").is_member is False


def test_grant_unknown_user(runner):
    result = runner.invoke(args=["users", "grant", "ghost@example.com", "--quota", "1"])
    assert result.exit_code != 0 and "no account" in result.output


def test_quota_audit_clean_then_detects_tampering(runner, make_user):
    tampered = make_user(quota=4)
    assert runner.invoke(args=["quota", "audit"]).exit_code == 0
    tampered.quota = 9
    db.session.commit()
    result = runner.invoke(args=["quota", "audit"])
    assert result.exit_code == 1
    assert "balance 9 but ledger sums to 4" in result.output
