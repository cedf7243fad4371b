"""Business metrics kept in Redis, so every web and worker process (on any dyno) adds to one count.

HTTP request metrics are per web process (prometheus_client, see `api/metrics.py`); these are
task-level: created/succeeded/failed by type, processing time histograms, RunningHub errors by
code. `/metrics` renders them in the Prometheus text format.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from redis import Redis
from redis.client import Pipeline

TASKS_KEY = "shopimage:metrics:tasks"
DURATION_KEY = "shopimage:metrics:duration"
RUNNINGHUB_KEY = "shopimage:metrics:runninghub_errors"

BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
"""Processing-time histogram bounds, seconds (an image clean-up takes ~1 s, AI model photos minutes)."""

EVENT_NAMES = {"pending": "created", "success": "succeeded", "failed": "failed"}


def count_task_event(pipe: Pipeline | Redis, status: str, task_type: str, seconds: float | None) -> None:
    name = EVENT_NAMES.get(status)
    if name is None:
        return
    pipe.hincrby(TASKS_KEY, f"{name}|{task_type}", 1)
    if seconds is not None and status in ("success", "failed"):
        for bound in BUCKETS:
            if seconds <= bound:
                pipe.hincrby(DURATION_KEY, f"{task_type}|{status}|{bound}", 1)
        pipe.hincrby(DURATION_KEY, f"{task_type}|{status}|+Inf", 1)
        pipe.hincrbyfloat(DURATION_KEY, f"{task_type}|{status}|sum", seconds)


def count_runninghub_error(redis: Redis, code: int | None) -> None:
    redis.hincrby(RUNNINGHUB_KEY, str(code if code is not None else "transport"), 1)


def render(redis: Redis, task_types: Iterable[str] = ()) -> Iterator[str]:
    """The task-level metrics as Prometheus text lines.

    Every event of each of `task_types` is present (0 until counted), so a new type's series
    exist from the start and a rate over them is defined.
    """
    yield "# HELP shopimage_tasks_total Tasks by lifecycle event and type."
    yield "# TYPE shopimage_tasks_total counter"
    counts = {f"{name}|{t}": 0 for name in EVENT_NAMES.values() for t in task_types}
    counts |= {field.decode(): int(value) for field, value in redis.hgetall(TASKS_KEY).items()}
    for field, value in sorted(counts.items()):
        event, task_type = field.split("|")
        yield f'shopimage_tasks_total{{event="{event}",type="{task_type}"}} {value}'

    yield "# HELP shopimage_task_processing_seconds Time from started to ended, by type and outcome."
    yield "# TYPE shopimage_task_processing_seconds histogram"
    durations = {k.decode(): v.decode() for k, v in redis.hgetall(DURATION_KEY).items()}
    series = sorted({tuple(k.split("|")[:2]) for k in durations})
    for task_type, status in series:
        labels = f'type="{task_type}",status="{status}"'
        for bound in (*BUCKETS, "+Inf"):
            count = durations.get(f"{task_type}|{status}|{bound}", "0")
            yield f'shopimage_task_processing_seconds_bucket{{{labels},le="{bound}"}} {count}'
        yield f"shopimage_task_processing_seconds_sum{{{labels}}} {durations.get(f'{task_type}|{status}|sum', '0')}"
        yield f"shopimage_task_processing_seconds_count{{{labels}}} {durations.get(f'{task_type}|{status}|+Inf', '0')}"

    yield "# HELP shopimage_runninghub_errors_total RunningHub answers other than success, by code."
    yield "# TYPE shopimage_runninghub_errors_total counter"
    for code, value in sorted(redis.hgetall(RUNNINGHUB_KEY).items()):
        yield f'shopimage_runninghub_errors_total{{code="{code.decode()}"}} {int(value)}'
