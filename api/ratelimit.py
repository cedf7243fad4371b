"""Rate limits: fixed windows counted in Redis, one round trip per request.

Every API request is counted against one limit:
- an endpoint's own limit (`@rate_limiter.limit(...)`: task creation, login, registration), or
- the default: `RATELIMIT_AUTHENTICATED` per user when a valid access token is offered,
  `RATELIMIT_ANONYMOUS` per client address otherwise.
Limits are strings such as "600/minute" (the `limits` package's notation), read from the config
on every request. /rq and /metrics share `RATELIMIT_ADMIN` per client address, so guessing their
passwords is slow. Exempt: health, the console, the API docs, signed file links.

One Lua script increments the window's counter, starts the window on the first hit and returns the
count with the time left, so the answer and its `RateLimit-*` headers cost one Redis round trip
(flask-limiter, used before, made three plus its own bookkeeping: see docs/PERFORMANCE.md).
If Redis cannot be reached the request goes through: a rate limiter must not take the API down.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from limits import parse
from redis.exceptions import RedisError

from shared.errors import RateLimited

from .auth import access_identity

log = logging.getLogger(__name__)

KEY_PREFIX = "shopimage:ratelimit"
WINDOW = "shopimage.rate_limit_window"
"""WSGI environ key: this request's counted window, for the headers (per request, like TOKEN_IDENTITY)."""
EXCEEDED = "shopimage.rate_limit_exceeded"
"""WSGI environ key: set when this request was refused for passing its window (it gets `Retry-After`)."""

HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""
"""Count one hit in the window at KEYS[1] (ARGV[1]: window length in ms); returns {count, ms left}."""


@dataclass(frozen=True)
class Rule:
    limit: Callable[[], str]
    key: Callable[[], str]
    scope: str | None = None


@dataclass(frozen=True)
class Window:
    limit: int
    remaining: int
    reset_seconds: int


def user_or_ip() -> str:
    """The token's user when a valid access token is offered, else the client address."""
    identity = access_identity(optional=True)
    return f"user:{identity}" if identity else by_address()


def client_address() -> str:
    return request.remote_addr or "unknown"


def by_address() -> str:
    """The client address, for limits that must hold whatever credentials are offered."""
    return f"ip:{client_address()}"


def admin_limit() -> str:
    return current_app.config["RATELIMIT_ADMIN"]


@lru_cache(maxsize=64)
def _parse(text: str) -> tuple[int, int]:
    item = parse(text)
    return item.amount, item.get_expiry() * 1000


class RateLimiter:
    def __init__(self) -> None:
        self._exempt_views: set[Callable] = set()
        self._exempt_blueprints: set[str] = set()
        self._blueprint_rules: dict[str, Rule] = {}

    def init_app(self, app: Flask) -> None:
        app.extensions["rate_limiter"] = self
        app.before_request(self._check)
        app.after_request(self._add_headers)

    def limit(
        self, limit: Callable[[], str], *, key: Callable[[], str] = user_or_ip, scope: str | None = None
    ) -> Callable:
        """An endpoint's own limit, instead of the default; views sharing a `scope` share a budget."""

        def decorate(view: Callable) -> Callable:
            view._rate_limit = Rule(limit, key, scope)  # type: ignore[attr-defined]
            return view

        return decorate

    def limit_blueprint(
        self, blueprint: Blueprint, limit: Callable[[], str], *, key: Callable[[], str], scope: str
    ) -> None:
        """One limit for every view of a blueprint we do not own (rq-dashboard's)."""
        self._blueprint_rules[blueprint.name] = Rule(limit, key, scope)

    def exempt(self, target: Blueprint | Callable) -> None:
        if isinstance(target, Blueprint):
            self._exempt_blueprints.add(target.name)
        else:
            self._exempt_views.add(target)

    def _check(self) -> None:
        config = current_app.config
        if not config["RATELIMIT_ENABLED"] or request.endpoint is None or request.method == "OPTIONS":
            return
        if request.blueprint in self._exempt_blueprints:
            return
        view = current_app.view_functions[request.endpoint]
        if view in self._exempt_views:
            return
        rule: Rule | None = getattr(view, "_rate_limit", None) or self._blueprint_rules.get(
            request.blueprint or ""
        )
        if rule is not None:
            who, text, scope = rule.key(), rule.limit(), rule.scope or request.endpoint
        else:
            who = user_or_ip()
            scope = "api"
            text = config["RATELIMIT_AUTHENTICATED" if who.startswith("user:") else "RATELIMIT_ANONYMOUS"]
        amount, window_ms = _parse(text)
        try:
            count, left_ms = _hit_script()(keys=[f"{KEY_PREFIX}:{scope}:{who}:{text}"], args=[window_ms])
        except RedisError:
            log.warning("rate limit not checked: Redis unavailable", exc_info=True)
            return
        window = Window(amount, max(0, amount - count), max(1, math.ceil(left_ms / 1000)))
        request.environ[WINDOW] = window
        if count > amount:
            request.environ[EXCEEDED] = True
            raise RateLimited(f"too many requests: the limit is {text}")

    @staticmethod
    def _add_headers(response: Response) -> Response:
        window: Window | None = request.environ.get(WINDOW)
        if window is not None:
            response.headers["RateLimit-Limit"] = str(window.limit)
            response.headers["RateLimit-Remaining"] = str(window.remaining)
            response.headers["RateLimit-Reset"] = str(window.reset_seconds)
            # Only the limiter's own refusal waits for the window; another 429 (1005: too many tasks
            # or batches in progress) ends when work ends, which no window tells.
            if request.environ.get(EXCEEDED) and "Retry-After" not in response.headers:
                response.headers["Retry-After"] = str(window.reset_seconds)
        return response


def _hit_script() -> Any:
    """The registered script on the app's Redis client (EVALSHA, loaded again after a flush)."""
    extensions = current_app.extensions
    script = extensions.get("rate_limit_script")
    if script is None:
        script = extensions["rate_limit_script"] = extensions["redis"].register_script(HIT)
    return script


rate_limiter = RateLimiter()
