"""Accounts: creation, password checks, membership. Nothing here commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from . import quota
from .app import settings
from .db import db, utcnow
from .errors import Conflict
from .models import User

PASSWORD_ALGORITHM = "pbkdf2:sha256"
"""werkzeug's PBKDF2; scrypt's memory cost would throttle login on a small dyno. The rounds come
from `PASSWORD_HASH_ROUNDS` (600,000 by default, OWASP's figure for PBKDF2-SHA256)."""


def password_method() -> str:
    """werkzeug's method string for new hashes, e.g. `pbkdf2:sha256:600000`."""
    return f"{PASSWORD_ALGORITHM}:{settings().PASSWORD_HASH_ROUNDS}"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=password_method())


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    """A hash to check against when the email is unknown, at the cost of a real one."""
    return generate_password_hash("timing-equaliser", method=method)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(email: str, password: str, *, is_admin: bool = False) -> User:
    """A new account: not a member, quota 0 (grants go through the ledger)."""
    email = normalize_email(email)
    if find_by_email(email) is not None:
        raise Conflict("an account with this email already exists")
    user = User(
        email=email,
        password_hash=hash_password(password),
        is_admin=is_admin,
        is_member=False,
        quota=0,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (same cost whether or not the email exists).

    A hash made with other settings (fewer rounds) is replaced by one with the current settings;
    the caller commits.
    """
    user = find_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(password_method()), password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    if not user.password_hash.startswith(password_method() + "$"):
        user.password_hash = hash_password(password)
    return user


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)


def set_membership(user: User, *, member: bool, days: int | None = None, now: datetime | None = None) -> None:
    """Switch membership on (optionally for `days` from now, extending an active term) or off."""
    now = now or utcnow()
    user.is_member = member
    if not member:
        user.member_until = None
    elif days is not None:
        start = user.member_until if user.member_until and user.membership_active(now) else now
        if start.tzinfo is None:
            start = start.replace(tzinfo=now.tzinfo)
        user.member_until = start + timedelta(days=days)


def grant(
    user: User,
    *,
    member: bool | None = None,
    days: int | None = None,
    quota_delta: int = 0,
    note: str | None = None,
) -> None:
    if member is not None or days is not None:
        set_membership(user, member=True if member is None else member, days=days)
    if quota_delta:
        quota.grant(user, quota_delta, note=note)
