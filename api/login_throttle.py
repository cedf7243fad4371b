"""Failed-login throttle per account, beside the per-address login limit.

After `LOGIN_LOCK_FAILURES` wrong passwords for one account within `LOGIN_LOCK_SECONDS`, password
logins to that account answer 429 (with `Retry-After`) until that window ends; attempts while
locked are not counted, so the lock never outlasts the window, and a correct password afterwards
works. Guessing is then bounded per account, however many addresses the guesses come from.

So that an attacker cannot cheaply keep the owner out, failures are counted per bucket: an
address the account logged in from successfully (remembered `KNOWN_ADDRESS_DAYS`) has a budget
of its own, every other address shares one. Guesses from elsewhere lock only the shared bucket;
the owner's own address (and every token already issued) keeps working.

If Redis cannot be reached, logins go through unthrottled, as with the rate limiter.
"""

from __future__ import annotations

import hashlib
import logging
import math

from flask import current_app
from redis.exceptions import RedisError

from shared.app import redis_client
from shared.errors import RateLimited
from shared.users import normalize_email

log = logging.getLogger(__name__)

KEY_PREFIX = "shopimage:login"
KNOWN_ADDRESS_DAYS = 30
"""How long an address of a successful login keeps a failure budget of its own."""


class AccountLocked(RateLimited):
    message = "too many failed logins for this account; try again later"


def bucket(email: str, address: str) -> str:
    """The Redis key counting this account's failures from this address's bucket."""
    account = _account(email)
    try:
        known = redis_client().sismember(f"{KEY_PREFIX}:known:{account}", address)
    except RedisError:
        known = False
    return f"{KEY_PREFIX}:failures:{account}:{address if known else 'elsewhere'}"


def check_not_locked(key: str) -> None:
    """Raise AccountLocked while the bucket holds `LOGIN_LOCK_FAILURES` failures."""
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            count, left_ms = pipe.get(key).pttl(key).execute()
    except RedisError:
        log.warning("login throttle not checked: Redis unavailable", exc_info=True)
        return
    if count is not None and int(count) >= current_app.config["LOGIN_LOCK_FAILURES"]:
        retry_after = max(1, math.ceil(left_ms / 1000))
        raise AccountLocked(details={"retryAfter": retry_after})


def record_failure(key: str) -> None:
    """Count a wrong password; the first failure starts the window."""
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            pipe.incr(key).expire(key, current_app.config["LOGIN_LOCK_SECONDS"], nx=True).execute()
    except RedisError:
        log.warning("login failure not counted: Redis unavailable", exc_info=True)


def record_success(key: str, email: str, address: str) -> None:
    """Clear the bucket and remember the address as one the account uses."""
    known = f"{KEY_PREFIX}:known:{_account(email)}"
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            pipe.delete(key).sadd(known, address).expire(known, KNOWN_ADDRESS_DAYS * 86400).execute()
    except RedisError:
        log.warning("login success not recorded: Redis unavailable", exc_info=True)


def _account(email: str) -> str:
    """The account's key part: a digest, so Redis holds no email address."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]
