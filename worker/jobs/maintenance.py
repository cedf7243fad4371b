"""Periodic jobs (see `shared.queues.SCHEDULES`): timeout sweeper, reconciler, pruning."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from shared import cancel, lifecycle, queues, sessions, task_types, tasks, uploads
from shared.app import redis_client, settings, storage
from shared.db import db, utcnow
from shared.models import ACTIVE_STATUSES, Task

from ..app import app_context

log = logging.getLogger(__name__)


def sweep_timeouts() -> list[str]:
    """Fail and refund tasks that have not finished `TASK_TIMEOUT_SECONDS` after creation."""
    with app_context():
        config = settings()
        failed = lifecycle.sweep_timeouts(
            config.TASK_TIMEOUT_SECONDS, batch_timeout_seconds=config.BATCH_TASK_TIMEOUT_SECONDS
        )
        db.session.commit()
        types = dict(db.session.execute(select(Task.id, Task.type).where(Task.id.in_(failed))).all())
        db.session.close()
        for task_id in failed:
            cancel.stop_work(redis_client(), storage(), task_id, types[task_id])
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
            select(Task.id, Task.type, Task.params, Task.batch_id)
            .where(Task.status.in_(ACTIVE_STATUSES), Task.updated_at < cutoff)
            .limit(1000)
        ).all()
        db.session.close()
        redis = redis_client()
        requeued = []
        for task_id, task_type, params, batch_id in rows:
            known = task_types.registry().find(task_type)
            if known is None:
                log.warning("task %s has unknown type %r; left to the sweeper", task_id, task_type)
            elif not queues.job_is_alive(redis, task_id):
                spec = known.job_spec(config.JOB_OVERRIDES, params, in_batch=batch_id is not None)
                queues.enqueue_task(redis, task_id, task_type, spec, config.RETRY_DELAY_FACTOR)
                requeued.append(task_id)
        if requeued:
            log.warning("reconciler re-enqueued %d task(s): %s", len(requeued), ", ".join(requeued))
        return requeued


def prune_idempotency_keys() -> int:
    with app_context():
        removed = tasks.prune_idempotency_records(settings().IDEMPOTENCY_TTL_SECONDS)
        db.session.commit()
        return removed


def delete_unused_uploads() -> int:
    """Delete uploads no task used within `UPLOAD_UNUSED_SECONDS` (rows, then files)."""
    with app_context():
        keys = uploads.forget_unused(settings().UPLOAD_UNUSED_SECONDS)
        db.session.commit()
        uploads.delete_files(storage(), keys)
        if keys:
            log.info("deleted %d unused upload(s)", len(keys))
        return len(keys)


def prune_refresh_tokens() -> int:
    """Delete refresh tokens past their expiry: they can neither be used nor reused."""
    with app_context():
        removed = sessions.prune_expired()
        db.session.commit()
        return removed
