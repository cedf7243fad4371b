"""Periodic jobs (see `shared.queues.SCHEDULES`): timeout sweeper, reconciler, pruning."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from shared import lifecycle, queues, tasks
from shared.app import redis_client, settings
from shared.db import db, utcnow
from shared.models import ACTIVE_STATUSES, Task

from ..app import app_context

log = logging.getLogger(__name__)


def sweep_timeouts() -> list[str]:
    """Fail and refund tasks that have not finished `TASK_TIMEOUT_SECONDS` after creation."""
    with app_context():
        failed = lifecycle.sweep_timeouts(settings().TASK_TIMEOUT_SECONDS)
        db.session.commit()
        model_tasks = set(
            db.session.scalars(select(Task.id).where(Task.id.in_(failed), Task.type == "model_pose12"))
        )
        for task_id in failed:
            queues.cancel_job(redis_client(), task_id)
            if task_id in model_tasks:
                queues.enqueue_follow_up(redis_client(), queues.CANCEL_MODEL_JOB, task_id)
        if failed:
            log.warning("sweeper failed %d timed-out task(s): %s", len(failed), ", ".join(failed))
        return failed


def reconcile_tasks() -> list[str]:
    """Re-enqueue active tasks whose job Redis no longer holds (restart, flush, failed enqueue).

    The database is the source of truth; the job frame resumes a task left `processing`.
    """
    with app_context():
        config = settings()
        cutoff = utcnow() - timedelta(seconds=config.RECONCILE_GRACE_SECONDS)
        rows = db.session.execute(
            select(Task.id, Task.type, Task.params)
            .where(Task.status.in_(ACTIVE_STATUSES), Task.updated_at < cutoff)
            .limit(1000)
        ).all()
        db.session.close()
        redis = redis_client()
        requeued = []
        for task_id, task_type, params in rows:
            if not queues.job_is_alive(redis, task_id):
                queues.enqueue_task(
                    redis, task_id, task_type, config.JOB_OVERRIDES, config.RETRY_DELAY_FACTOR, params=params
                )
                requeued.append(task_id)
        if requeued:
            log.warning("reconciler re-enqueued %d task(s): %s", len(requeued), ", ".join(requeued))
        return requeued


def prune_idempotency_keys() -> int:
    with app_context():
        removed = tasks.prune_idempotency_records(settings().IDEMPOTENCY_TTL_SECONDS)
        db.session.commit()
        return removed
