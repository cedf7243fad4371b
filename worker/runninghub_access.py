"""How this process reaches RunningHub: the configured client, the workflow mapping, and the
concurrency gate that all our workers share.

Built once per process and cached, so a job asks for them instead of constructing them; the
worker preloads the workflow mapping at start-up so a bad mapping stops the process, not a task.
"""

from __future__ import annotations

import time
from functools import cache

from shared.app import redis_client, settings
from shared.workflows import WorkflowMap, load_workflows

from .runninghub import RunningHubClient

GATE_KEY = "shopimage:runninghub:running"
"""Sorted set of our task ids currently on RunningHub (score: when the slot was taken)."""

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
    return 1
end
return 0
"""


@cache
def _client(base_url: str, api_key: str, read_timeout: float) -> RunningHubClient:
    return RunningHubClient(base_url, api_key, timeout=(5, read_timeout))


def client() -> RunningHubClient:
    config = settings()
    return _client(
        config.RUNNINGHUB_BASE_URL, config.RUNNINGHUB_API_KEY, config.RUNNINGHUB_READ_TIMEOUT_SECONDS
    )


@cache
def _workflows(path: str) -> WorkflowMap:
    return load_workflows(path)


def workflows() -> WorkflowMap:
    return _workflows(settings().RUNNINGHUB_WORKFLOWS_FILE)


def acquire_slot(task_id: str) -> bool:
    """Take one of the `RUNNINGHUB_MAX_CONCURRENCY` slots for the task (again, if it holds one).

    A slot older than the task timeout plus a minute is freed first: its task is over by now.
    """
    now = time.time()
    stale = now - settings().TASK_TIMEOUT_SECONDS - 60
    return bool(
        redis_client().eval(_ACQUIRE, 1, GATE_KEY, task_id, settings().RUNNINGHUB_MAX_CONCURRENCY, stale, now)
    )


def release_slot(task_id: str) -> None:
    redis_client().zrem(GATE_KEY, task_id)
