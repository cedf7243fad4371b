"""Caps on open event streams, so streams cannot take every server thread.

An open stream holds one of the web process's threads (WEB_THREADS) for up to SSE_MAX_SECONDS.
Without a cap, a few streams from one member stop every other request of that process. Two caps:
- per process (`SSE_MAX_STREAMS_PER_PROCESS`, default half of WEB_THREADS): the rest of the
  threads stay free for ordinary requests; the excess is refused with 503;
- per user (`SSE_MAX_STREAMS_PER_USER`), counted in Redis across processes and dynos; the excess
  is refused with 429.
Both refusals carry `Retry-After`; a refused client polls `GET /api/task/:id` meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from flask import current_app

from shared.app import redis_client
from shared.errors import RateLimited, Unavailable

RETRY_AFTER_SECONDS = 30
"""What a refused stream client is told to wait before trying again (it polls meanwhile)."""

USER_KEY = "shopimage:streams:user:{}"

OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
"""Take a slot in the user's set KEYS[1] unless ARGV[2] unexpired slots are held (ARGV[1]: now;
ARGV[3]: this slot's expiry; ARGV[4]: its id; ARGV[5]: the set's time to live). A process that
dies without releasing its slot loses it at the expiry, a little after the longest stream."""


class ProcessSlots:
    """How many streams this process serves at once (a counter under a lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)


def init_app(app) -> None:
    config = app.config
    limit = config["SSE_MAX_STREAMS_PER_PROCESS"] or max(1, config["WEB_THREADS"] // 2)
    app.extensions["stream_slots"] = ProcessSlots(limit)


def open_slot(user_id: int) -> Callable[[], None]:
    """Reserve a stream for `user_id`, or raise 429/503; returns the function that releases it."""
    config = current_app.config
    redis = redis_client()
    key = USER_KEY.format(user_id)
    slot = uuid.uuid4().hex
    now = time.time()
    lifetime = config["SSE_MAX_SECONDS"] + 60
    script = current_app.extensions.get("stream_open_script")
    if script is None:
        script = current_app.extensions["stream_open_script"] = redis.register_script(OPEN)
    taken = script(keys=[key], args=[now, config["SSE_MAX_STREAMS_PER_USER"], now + lifetime, slot, lifetime])
    if not taken:
        raise RateLimited(
            f"too many open event streams for this account (at most {config['SSE_MAX_STREAMS_PER_USER']});"
            " poll GET /api/task/<id> instead",
            details={"retryAfter": RETRY_AFTER_SECONDS},
        )
    slots: ProcessSlots = current_app.extensions["stream_slots"]
    if not slots.take():
        redis.zrem(key, slot)
        raise Unavailable(
            "this server has no room for another event stream; poll GET /api/task/<id> instead",
            details={"retryAfter": RETRY_AFTER_SECONDS},
        )

    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            slots.give_back()
            redis.zrem(key, slot)

    return release
