"""Queue names, job specs, retry policies and periodic schedules: defined once, as data.

The web process enqueues by dotted path and never imports `worker/`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.worker_registration import get_keys

from . import logs

log = logging.getLogger(__name__)

IMAGES = "images"
"""CPU-bound image pipeline jobs."""
IMAGES_HD = "images_hd"
"""basic_clean with ``params.hd`` (the 176 MB u2net model, ~2 s a job): served only by worker
processes started for it (WORKER_QUEUES=images_hd), so a standard task never waits behind one
and only those processes load the HD model. Not in ALL_QUEUES for the same reason."""
RUNNINGHUB = "runninghub"
"""Short RunningHub submit / poll / collect jobs; never blocked behind images."""
MAINTENANCE = "maintenance"
"""Periodic sweeper and reconciler."""
WEBHOOKS = "webhooks"
"""Deliveries of task ends to clients' webhook URLs: a slow receiver never holds up task work."""

BULK_SUFFIX = "_bulk"


def bulk(queue: str) -> str:
    """The queue a batch's tasks go to instead of `queue`: served by the same workers, after it.

    rq takes a worker's next job from the first non-empty queue in its order, so a single task
    never waits behind a batch's backlog (one user's catalogue cannot starve another's photo);
    batches themselves run in the order they were created.
    """
    return queue + BULK_SUFFIX


TASK_QUEUES = (RUNNINGHUB, IMAGES, IMAGES_HD)
"""Queues a task's first job can go to; each has a bulk twin for batches."""

ALL_QUEUES = (MAINTENANCE, RUNNINGHUB, IMAGES, bulk(RUNNINGHUB), bulk(IMAGES), WEBHOOKS)
"""Default order a worker listens in: cheap, latency-sensitive queues first, then batches' work;
deliveries last."""


def with_bulk_twins(names: list[str]) -> list[str]:
    """`names` with the bulk twin of each task queue in it added (after everything listed), so a
    worker started for a queue (`WORKER_QUEUES=images_hd`) also serves that queue's batches."""
    twins = [bulk(name) for name in names if name in TASK_QUEUES and bulk(name) not in names]
    return [*names, *twins]


LANE_QUEUES = (WEBHOOKS,)
"""Queues served by a worker process of their own (`WORKER_WEBHOOK_LANE`), not by the task workers:
a delivery waits up to its timeouts on a client's server, and could otherwise hold the workers."""

FAILURE_CALLBACK = "worker.jobs.lifecycle.on_job_failure"
"""Runs when a task job raises; fails and refunds the task once its retries are exhausted."""


@dataclass(frozen=True)
class JobSpec:
    """A job by dotted path, its queue, timeout and retry backoff (each task type names one)."""

    func: str
    queue: str
    timeout: int
    retry_intervals: tuple[int, ...] = ()

    def retry(self, delay_factor: float = 1.0) -> Retry | None:
        if not self.retry_intervals:
            return None
        return Retry(
            max=len(self.retry_intervals), interval=[int(i * delay_factor) for i in self.retry_intervals]
        )


@dataclass(frozen=True)
class Schedule:
    func: str
    queue: str
    interval_setting: str
    timeout: int = 120


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("worker.jobs.maintenance.sweep_timeouts", MAINTENANCE, "SWEEP_INTERVAL_SECONDS"),
    Schedule("worker.jobs.maintenance.reconcile_tasks", MAINTENANCE, "RECONCILE_INTERVAL_SECONDS"),
    Schedule("worker.jobs.maintenance.prune_idempotency_keys", MAINTENANCE, "RECONCILE_INTERVAL_SECONDS"),
    Schedule("worker.jobs.maintenance.delete_unused_uploads", MAINTENANCE, "UPLOAD_CLEANUP_INTERVAL_SECONDS"),
    Schedule("worker.jobs.maintenance.prune_refresh_tokens", MAINTENANCE, "RECONCILE_INTERVAL_SECONDS"),
)
"""Periodic jobs, run by the cron scheduler that `worker.py` starts."""


WEBHOOK_JOB = "worker.jobs.webhooks.deliver_task_webhook"
WEBHOOK_RETRY_INTERVALS = (10, 30, 120, 600, 1800, 3600)
"""Backoff between delivery attempts: about 1.7 hours of trying in all, then given up."""


BATCH_WEBHOOK_JOB = "worker.jobs.webhooks.deliver_batch_webhook"


def enqueue_webhook(redis: Redis, task_id: str, retry_delay_factor: float = 1.0) -> Job:
    return _enqueue_delivery(redis, WEBHOOK_JOB, task_id, retry_delay_factor)


def enqueue_batch_webhook(redis: Redis, batch_id: str, retry_delay_factor: float = 1.0) -> Job:
    return _enqueue_delivery(redis, BATCH_WEBHOOK_JOB, batch_id, retry_delay_factor)


def _enqueue_delivery(redis: Redis, func: str, owner_id: str, retry_delay_factor: float) -> Job:
    intervals = [int(i * retry_delay_factor) for i in WEBHOOK_RETRY_INTERVALS]
    return Queue(WEBHOOKS, connection=redis).enqueue(
        func,
        owner_id,
        job_id=f"{owner_id}-webhook",
        job_timeout=30,
        retry=Retry(max=len(intervals), interval=intervals),
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )


def resolve(dotted: str):
    """The function at a dotted path (how jobs, callbacks and checks are named in data)."""
    module_name, _, attr = dotted.rpartition(".")
    return getattr(__import__(module_name, fromlist=[attr]), attr)


def enqueue_task(
    redis: Redis,
    task_id: str,
    task_type: str,
    spec: JobSpec,
    retry_delay_factor: float = 1.0,
    also: Callable[[Pipeline], None] | None = None,
) -> Job:
    """Enqueue the first job of a committed task (its type's `spec`); the task id is the job id.

    `also`: more commands for the same Redis round trip (the create path announces the task).
    """
    return enqueue_tasks(redis, [(task_id, task_type, spec)], retry_delay_factor, also)[0]


def enqueue_tasks(
    redis: Redis,
    jobs: list[tuple[str, str, JobSpec]],
    retry_delay_factor: float = 1.0,
    also: Callable[[Pipeline], None] | None = None,
) -> list[Job]:
    """Enqueue the first jobs of committed tasks, (task id, type, spec) each, in one round trip."""
    request_id = logs.request_id.get()
    with redis.pipeline() as pipe:
        enqueued = [
            Queue(spec.queue, connection=redis).enqueue(
                spec.func,
                task_id,
                job_id=task_id,
                job_timeout=spec.timeout,
                retry=spec.retry(retry_delay_factor),
                on_failure=Callback(FAILURE_CALLBACK),
                result_ttl=3600,
                failure_ttl=7 * 86400,
                description=f"{task_type} {task_id}",
                meta={"request_id": request_id},
                pipeline=pipe,
            )
            for task_id, task_type, spec in jobs
        ]
        if also is not None:
            also(pipe)
        pipe.execute()
    return enqueued


def current_job_key(task_id: str) -> str:
    return f"shopimage:task-job:{task_id}"


FOLLOW_UP_TIMEOUT = 120
"""Timeout of a follow-up job (submit retry, poll, collect, cancel)."""


def enqueue_follow_up(
    redis: Redis,
    func: str,
    task_id: str,
    *,
    delay: float = 0,
    queue: str = RUNNINGHUB,
    timeout: int = FOLLOW_UP_TIMEOUT,
) -> Job:
    """Enqueue (or schedule) a further job for a task, recording it as the task's current job.

    Follow-up jobs get ids of their own (reusing the task id while the first job still runs would
    let that job overwrite the new one's state); the pointer lets the reconciler see them.
    """
    job_id = f"{task_id}-{secrets.token_hex(4)}"
    rq_queue = Queue(queue, connection=redis)
    options = {
        "job_id": job_id,
        "job_timeout": timeout,
        "retry": Retry(max=2, interval=[5, 15]),
        "on_failure": Callback(FAILURE_CALLBACK),
        "result_ttl": 600,
        "failure_ttl": 7 * 86400,
    }
    if delay > 0:
        job = rq_queue.enqueue_in(timedelta(seconds=delay), func, task_id, **options)
    else:
        job = rq_queue.enqueue(func, task_id, **options)
    redis.set(current_job_key(task_id), job_id, ex=2 * 86400)
    return job


def queue_position(redis: Redis, task_id: str, queue: str) -> int | None:
    """1-based position of a pending task's job in its queue, or None when not queued."""
    position = Queue(queue, connection=redis).get_job_position(task_id)
    return None if position is None else position + 1


def workers_starting(redis: Redis, queue: str) -> bool:
    """Whether no worker serving `queue` is ready yet: none registered, or all still
    starting (rq's state stays ``started`` until a worker first waits for a job, which ours does
    only once its model is loaded). A pending task then waits for start-up, not behind others."""
    keys = get_keys(queue=Queue(queue, connection=redis))
    with redis.pipeline(transaction=False) as pipe:  # one round trip for every worker's state
        for key in keys:
            pipe.hget(key, "state")
        states = [state for state in pipe.execute() if state is not None]  # None: a key gone stale
    return all(state == b"started" for state in states)


def job_is_alive(redis: Redis, task_id: str) -> bool:
    """Whether Redis still holds a job for the task that will run (queued, scheduled, started)."""
    pointer = redis.get(current_job_key(task_id))
    return job_running(redis, pointer.decode() if pointer else task_id)


def job_running(redis: Redis, job_id: str) -> bool:
    """Whether the job exists and is queued, scheduled or running (not failed, finished or gone)."""
    try:
        status = Job.fetch(job_id, connection=redis).get_status(refresh=False)
    except NoSuchJobError:
        return False
    return status in ("queued", "scheduled", "started", "deferred")


def cancel_job(redis: Redis, task_id: str) -> None:
    """Drop the task's jobs that have not started and stop the one running, after its task ended.

    A stopped job frees its worker at once (`worker.stop`); rq marks it stopped, never retried.
    A job between dequeue and start finds its task ended and skips the work.
    """
    pointer = redis.get(current_job_key(task_id))
    for job_id in dict.fromkeys([task_id, pointer.decode() if pointer else task_id]):
        try:
            job = Job.fetch(job_id, connection=redis)
            status = job.get_status(refresh=False)
            if status in ("queued", "scheduled", "deferred"):
                job.cancel()
            elif status == "started":
                send_stop_job_command(redis, job_id)
        except (NoSuchJobError, InvalidJobOperation):
            continue
        except Exception:
            log.warning("could not cancel job %s", job_id, exc_info=True)
