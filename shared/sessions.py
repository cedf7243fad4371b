"""Login sessions: refresh-token families, rotation with reuse detection, logout. Nothing here commits.

A login starts a family. Every refresh token is good for one use: refreshing marks it used and
issues the next one of the same family. Presenting a used (or revoked) token again means two
parties hold it, so the whole family is revoked (the OWASP rotation rule). Access tokens carry the
family as their session id; revoking a family also denies its access tokens, through a Redis key
that lives as long as an access token can, so logout takes effect at once and costs one small
key per session ended.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, update

from .db import db, utcnow
from .errors import Unauthorized
from .models import RefreshToken

log = logging.getLogger(__name__)

FAMILY_CLAIM = "fam"
"""Refresh-token claim naming its family."""
SESSION_CLAIM = "sid"
"""Access-token claim naming the family (the session) it was issued for."""


class SessionEnded(Unauthorized):
    message = "session ended: log in again"


def _denied_key(family: str) -> str:
    return f"shopimage:session-ended:{family}"


def start(user_id: int, refresh_lifetime: timedelta, family: str | None = None) -> tuple[str, str]:
    """Record a new refresh token (in a new family unless given); returns (family, jti)."""
    family = family or secrets.token_hex(16)
    jti = secrets.token_hex(16)
    db.session.add(
        RefreshToken(jti=jti, family=family, user_id=user_id, expires_at=utcnow() + refresh_lifetime)
    )
    return family, jti


def rotate(user_id: int, claims: dict[str, Any], refresh_lifetime: timedelta) -> tuple[str, str]:
    """Spend a verified refresh token and record its successor: (family, new jti).

    Raises SessionEnded for a token used before, revoked or unknown; a reused token first revokes
    its family, and the caller must commit before raising on so that the revocation sticks.
    """
    now = utcnow()
    jti, family = str(claims.get("jti", "")), claims.get(FAMILY_CLAIM)
    if family is None:
        return _adopt_legacy(user_id, jti, now, refresh_lifetime)
    spent = db.session.scalar(
        update(RefreshToken)
        .where(
            RefreshToken.jti == jti,
            RefreshToken.user_id == user_id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .returning(RefreshToken.family)
    )
    if spent is None:
        revoke_family(family, now)
        raise SessionEnded("refresh token already used or revoked: log in again")
    return start(user_id, refresh_lifetime, family=family)


def _adopt_legacy(user_id: int, jti: str, now: datetime, lifetime: timedelta) -> tuple[str, str]:
    """A refresh token issued before families existed: spend it once into a new family."""
    if db.session.get(RefreshToken, jti) is not None:
        raise SessionEnded()
    family = secrets.token_hex(16)
    db.session.add(
        RefreshToken(jti=jti, family=family, user_id=user_id, expires_at=now + lifetime, used_at=now)
    )
    return start(user_id, lifetime, family=family)


def revoke_family(family: str, now: datetime | None = None) -> bool:
    """Revoke every token of a family; True if any was still live."""
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount > 0


def end(claims: dict[str, Any]) -> str | None:
    """Log out the session a token (access or refresh) belongs to; returns its family."""
    family = claims.get(FAMILY_CLAIM) or claims.get(SESSION_CLAIM)
    if family is None and claims.get("type") == "refresh" and claims.get("jti"):
        # A token older than families: record it as revoked so it cannot be used again.
        if db.session.get(RefreshToken, str(claims["jti"])) is None:
            db.session.add(
                RefreshToken(
                    jti=str(claims["jti"]),
                    family=secrets.token_hex(16),
                    user_id=int(claims["sub"]),
                    expires_at=utcnow() + timedelta(days=1),
                    revoked_at=utcnow(),
                )
            )
        return None
    if family is not None:
        revoke_family(str(family))
    return family


def end_all(user_id: int) -> list[str]:
    """Revoke every live session of a user (password change); returns their families."""
    families = db.session.scalars(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(RefreshToken.family)
    ).all()
    return list(dict.fromkeys(families))


def deny_access(redis: Redis, families: Iterable[str], access_lifetime: timedelta) -> None:
    """After the revocation committed: refuse the families' access tokens until they expire."""
    ttl = int(access_lifetime.total_seconds()) + 60
    with redis.pipeline(transaction=False) as pipe:
        for family in families:
            pipe.set(_denied_key(family), 1, ex=ttl)
        pipe.execute()


def access_denied(redis: Redis, family: str) -> bool:
    """Whether the session of an access token was ended. Fails open when Redis is unreachable
    (as the rate limiter does): an ended session's access token then lives out its 15 minutes."""
    try:
        return bool(redis.exists(_denied_key(family)))
    except RedisError:
        log.warning("could not check ended sessions: Redis unreachable", exc_info=True)
        return False


def prune_expired(before: datetime | None = None) -> int:
    """Delete refresh tokens past their expiry (nothing can use them)."""
    result = db.session.execute(delete(RefreshToken).where(RefreshToken.expires_at < (before or utcnow())))
    return result.rowcount
