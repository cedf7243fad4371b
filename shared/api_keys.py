"""API keys: long-lived credentials for shop backends. Nothing here commits.

A key reads `sk_<lookup>_<secret>`. `lookup` is public and finds the row; only the SHA-256 of
`secret` is stored, compared in constant time. A fast hash is enough here (unlike passwords):
the secret is 256 random bits, so there is nothing to guess from the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from .db import db, utcnow
from .errors import Conflict, NotFound
from .models import ApiKey, User

PREFIX = "sk_"
"""How every key starts, so a leaked one is recognisable (secret scanners, logs)."""

MAX_KEYS_PER_USER = 20
"""Live keys one account may hold; revoke one to make another."""

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per key, not on every request."""


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(user: User, name: str) -> tuple[ApiKey, str]:
    """A new key for `user` and its full secret text, which is never readable again."""
    live = db.session.scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    )
    if live >= MAX_KEYS_PER_USER:
        raise Conflict(f"at most {MAX_KEYS_PER_USER} API keys per account: revoke one first")
    lookup, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = ApiKey(user_id=user.id, name=name, lookup=lookup, secret_hash=_digest(secret))
    db.session.add(key)
    db.session.flush()
    return key, f"{PREFIX}{lookup}_{secret}"


def display_prefix(key: ApiKey) -> str:
    """The part of a key shown in lists: enough to tell keys apart, useless to authenticate."""
    return f"{PREFIX}{key.lookup}"


def live_keys(user_id: int) -> list[ApiKey]:
    return list(
        db.session.scalars(
            select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)
        )
    )


def revoke(user_id: int, key_id: int) -> ApiKey:
    """Revoke one of the user's keys; someone else's key or a revoked one is 404."""
    key = db.session.get(ApiKey, key_id) if 0 < key_id < 2**63 else None
    if key is None or key.user_id != user_id or key.revoked_at is not None:
        raise NotFound("API key not found")
    key.revoked_at = utcnow()
    return key


def authenticate(presented: str) -> ApiKey | None:
    """The live key a presented text names, or None for a malformed, unknown or revoked key.

    Whether the account is still active is checked where the account is loaded, as for tokens.
    """
    lookup, sep, secret = presented.removeprefix(PREFIX).partition("_")
    if not presented.startswith(PREFIX) or not sep or not lookup or not secret or len(presented) > 200:
        return None
    key = db.session.scalar(select(ApiKey).where(ApiKey.lookup == lookup, ApiKey.revoked_at.is_(None)))
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(secret)):
        return None
    return key


def record_use(key: ApiKey, now: datetime | None = None) -> bool:
    """Note that `key` was used, at most once per LAST_USED_RESOLUTION; True if a write is pending.

    Conditional, so concurrent requests with one key write it once.
    """
    now = now or utcnow()
    stale = now - LAST_USED_RESOLUTION
    if key.last_used_at is not None and key.last_used_at >= stale:
        return False
    result = db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < stale))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount > 0
