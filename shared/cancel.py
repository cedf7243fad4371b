"""What follows a task we ended ourselves (a cancel, a timeout): its work stopped and undone.

Called after the transaction that failed (and refunded) the task has committed.
"""

from __future__ import annotations

from redis import Redis

from . import queues, results, task_types
from .storage import Storage


def stop_work(redis: Redis, store: Storage, task_id: str, type_name: str) -> None:
    """Drop or stop the task's job, delete any result it stored, and run its type's cancel job
    (which frees what the task holds outside us, e.g. a RunningHub render)."""
    queues.cancel_job(redis, task_id)
    results.discard(store, task_id)
    task_type = task_types.registry().find(type_name)
    if task_type is not None and task_type.cancel_job:
        queues.enqueue_follow_up(redis, task_type.cancel_job, task_id, queue=task_type.job.queue)
