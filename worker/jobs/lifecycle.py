"""rq callbacks that keep tasks consistent with their jobs."""

from __future__ import annotations

import logging

from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.timeouts import JobTimeoutException
from sqlalchemy import select

from shared import lifecycle, queues, results, task_types
from shared.app import storage
from shared.db import db
from shared.models import Task

from ..app import app_context
from ..stop import JobStopped

log = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "任务处理失败：内部错误，额度已退还 (internal error; your quota unit was refunded)"
TIMEOUT_MESSAGE = (
    "任务处理失败：处理超时，额度已退还 (processing took too long; your quota unit was refunded)"
)
STOPPED_MESSAGE = "任务已停止，额度已退还 (the task was stopped; your quota unit was refunded)"
ABANDONED_MESSAGE = (
    "任务处理失败：处理进程中断，额度已退还 (the worker stopped; your quota unit was refunded)"
)


def failure_message(exc_type: type[BaseException] | None, exc_value: BaseException | None = None) -> str:
    if getattr(exc_value, "user_message", None):
        return f"任务处理失败：{exc_value.user_message}"
    if exc_type is not None and issubclass(exc_type, JobTimeoutException):
        return TIMEOUT_MESSAGE
    if exc_type is not None and issubclass(exc_type, AbandonedJobError):
        return ABANDONED_MESSAGE
    if exc_type is not None and issubclass(exc_type, JobStopped):
        return STOPPED_MESSAGE
    return INTERNAL_ERROR_MESSAGE


def on_job_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """Fail and refund the task once rq has no retries left for its job (called on every failure).

    A stopped job is never retried by rq; its task was usually ended (and refunded) by whoever
    stopped it, and `lifecycle.fail` refunds at most once, so a stop costs no second refund.
    """
    task_id = job.args[0] if job.args else job.id
    stopped = exc_type is not None and issubclass(exc_type, JobStopped)
    if job.should_retry and not stopped:
        log.warning(
            "task %s job failed (%s); rq will retry", task_id, getattr(exc_type, "__name__", exc_type)
        )
        return
    with app_context():
        if lifecycle.fail(task_id, failure_message(exc_type, exc_value)):
            db.session.commit()
            log.error("task %s failed after retries: %r", task_id, exc_value)
        else:
            db.session.rollback()
        results.discard(storage(), task_id)
        name = db.session.scalar(select(Task.type).where(Task.id == task_id))
        db.session.close()
        task_type = task_types.registry().find(name)
        cancel_job = task_type.cancel_job if task_type else None
        if cancel_job:
            queues.resolve(cancel_job)(task_id)  # frees what the task holds outside us
