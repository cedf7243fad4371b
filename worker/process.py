"""The worker process arrangement: a pool of non-forking workers plus the cron scheduler.

onnxruntime is not fork-safe, so each worker process is an rq `SimpleWorker` (jobs run in
the process itself, no fork per job) that loads the matting model once at start-up; several
such processes give parallelism. `WorkerPool` respawns a process that dies (SIGKILL, OOM).
The pool parent loads nothing heavy, so nothing heavy is ever carried across its forks.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.exceptions import NoSuchJobError, SchedulerNotFound
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.worker_pool import WorkerPool, run_worker

from shared import logs, queues
from shared.config import Config

from .app import app_context, get_app
from .resources import default_process_count, preload
from .stop import StoppableJobs

log = logging.getLogger(__name__)


class AppWorker(StoppableJobs, SimpleWorker):
    """A SimpleWorker that builds its app, preloads job resources before taking jobs, and stops
    a running job when asked (a cancelled task)."""

    def perform_job(self, job, queue, execution=None) -> bool:
        """Carry the request id that created the task into the job's log lines."""
        token = logs.request_id.set((job.meta or {}).get("request_id") or job.id)
        try:
            return super().perform_job(job, queue, execution)
        finally:
            logs.request_id.reset(token)

    def work(self, *args, **kwargs) -> bool:
        # A worker respawned by the pool is forked after the pool installed its own SIGTERM/SIGINT
        # handlers; until rq installs the worker's, a signal must stop this process, not run the
        # parent's handler in it.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self._preloaded = not get_app().config["WORKER_PRELOAD"]
        return super().work(*args, **kwargs)

    def dequeue_job_and_maintain_ttl(self, *args, **kwargs):
        """Load what jobs need before the first dequeue: after rq forked its scheduler process,
        which so does not carry the model's memory, and before the first job is accepted."""
        if not self._preloaded:
            with app_context():
                preload(self.queue_names())
            self._preloaded = True
        return super().dequeue_job_and_maintain_ttl(*args, **kwargs)

    def subscribe(self) -> None:
        """Start rq's command listener thread with SIGTERM/SIGINT blocked in it.

        A signal is delivered to any thread that does not block it. Had it landed on the listener
        thread, the main thread stayed in its blocking dequeue (BLPOP, minutes) and an idle worker
        sat out the whole shutdown grace period. Threads inherit the creating thread's mask, so
        the listener is started with the signals blocked; the main thread unblocks them again.
        """
        stop_signals = {signal.SIGTERM, signal.SIGINT}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            super().subscribe()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_cron(config: Config) -> None:
    """Enqueue the periodic jobs of `shared.queues.SCHEDULES` (runs in its own process)."""
    logs.configure(config.LOG_LEVEL, config.LOG_FORMAT)
    scheduler = CronScheduler(connection=Redis.from_url(config.REDIS_URL), logging_level=config.LOG_LEVEL)
    for schedule in queues.SCHEDULES:
        scheduler.register(
            queues.resolve(schedule.func),
            queue_name=schedule.queue,
            interval=getattr(config, schedule.interval_setting),
            job_timeout=schedule.timeout,
            result_ttl=600,
        )
    scheduler.start()


class Pool(WorkerPool):
    """rq's WorkerPool (respawns dead workers) that also keeps the cron scheduler alive."""

    def __init__(self, *args, config: Config, lane_queues: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config = config
        self.cron: multiprocessing.process.BaseProcess | None = None
        self.lane_queues = lane_queues or []
        self.lane: multiprocessing.process.BaseProcess | None = None
        self.stop_requested_at: float | None = None

    def request_stop(self, signum=None, frame=None) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        super().request_stop(signum, frame)

    def all_workers_have_stopped(self) -> bool:
        """Warm shutdown, bounded: a worker still running after the grace period is killed, so the
        dyno exits by itself before the platform's own SIGKILL (Heroku: 30 s after SIGTERM)."""
        stopped = super().all_workers_have_stopped()
        lane_stopped = self.lane is None or not self.lane.is_alive()
        waited = time.monotonic() - (self.stop_requested_at or time.monotonic())
        if not (stopped and lane_stopped) and waited > self.config.WORKER_SHUTDOWN_GRACE_SECONDS:
            for data in list(self.worker_dict.values()):
                log.warning(
                    "worker %s (pid %d) did not stop in %.0f s; killing it", data.name, data.pid, waited
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(data.pid, signal.SIGKILL)
            if not lane_stopped:
                self.lane.kill()
        return stopped and lane_stopped

    def check_workers(self, respawn: bool = True) -> None:
        super().check_workers(respawn)
        wanted = respawn and self.config.WORKER_RUN_CRON and self.status != self.Status.STOPPED
        if wanted and (self.cron is None or not self.cron.is_alive()):
            if self.cron is not None:
                log.warning("cron scheduler died (exit %s); restarting it", self.cron.exitcode)
            self.cron = multiprocessing.get_context("spawn").Process(
                target=run_cron, args=(self.config,), name="cron", daemon=True
            )
            self.cron.start()
        lane_wanted = respawn and self.lane_queues and self.status != self.Status.STOPPED
        if lane_wanted and (self.lane is None or not self.lane.is_alive()):
            self.start_lane()

    def start_lane(self) -> None:
        """The worker of `lane_queues` (webhook deliveries): one process of its own, beside the
        task workers, so a slow receiver holds this process and never a task worker."""
        if self.lane is not None:
            log.warning("delivery worker died (exit %s); restarting it", self.lane.exitcode)
        name = f"lane-{os.getpid()}-{time.monotonic_ns()}"
        self.lane = multiprocessing.get_context("fork").Process(
            target=run_worker,
            args=(name, self.lane_queues, self._connection_class, self._pool_class, self._pool_kwargs),
            kwargs={
                "burst": False,
                "logging_level": self.config.LOG_LEVEL,
                "worker_class": self.worker_class,
            },
            name=f"worker {name} ({','.join(self.lane_queues)})",
        )
        self.lane.start()

    def handle_dead_worker(self, worker_data) -> None:
        super().handle_dead_worker(worker_data)
        if self.status == self.Status.STOPPED:
            return
        try:
            release_job_of_dead_worker(self.connection, worker_data.name)
            stop_orphaned_scheduler(self.connection, self._queue_names)
        except RedisError:
            # Workers die when Redis goes away mid-job; the pool must outlive that and respawn
            # them. The job is left to the reconciler (or rq's abandoned-job handling).
            log.warning("could not release the job of dead worker %s: Redis unavailable", worker_data.name)

    def stop_workers(self) -> None:
        super().stop_workers()
        if self.lane is not None and self.lane.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.lane.pid, signal.SIGINT)  # warm: the delivery in progress finishes
        if self.cron is not None and self.cron.is_alive():
            self.cron.terminate()


def release_job_of_dead_worker(redis: Redis, worker_name: str) -> str | None:
    """Mark the job a killed worker was running as failed, so the reconciler resumes its task now.

    rq itself notices an abandoned job only when its execution TTL runs out (the job timeout plus
    a minute); the pool parent knows at once that the process died. Returns the job id, if any.
    """
    worker = SimpleWorker.find_by_key(
        SimpleWorker.redis_worker_namespace_prefix + worker_name, connection=redis
    )
    job_id = worker.get_current_job_id() if worker else None
    if not job_id:
        return None
    try:
        job = Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None
    if job.get_status(refresh=False) == JobStatus.STARTED:
        job.set_status(JobStatus.FAILED)
        log.warning("worker %s died running job %s; the reconciler will resume its task", worker_name, job_id)
    return job_id


def stop_orphaned_scheduler(redis: Redis, queue_names: list[str]) -> str | None:
    """Stop a scheduler process whose worker died, and free rq's scheduler locks it holds.

    Each worker forks rq's scheduler (it moves due `enqueue_in` jobs, e.g. RunningHub polls,
    onto their queues) after taking the scheduler locks. A SIGKILLed worker leaves that process
    behind, still holding the locks, and a respawned worker tries the locks again only in its
    maintenance pass, every 10 minutes: until then scheduled jobs depend on the orphan. So the
    pool stops it (SIGKILL: it may be stuck) and deletes the locks it owned before the respawn,
    and the new worker's scheduler takes over at once; the locks of a scheduler process that is
    already gone are freed the same way (they would outlive it by their 61 s TTL, and the respawned
    worker would not look again for 10 minutes). Only a scheduler on this host whose parent
    is no rq worker of this host (another pool's live worker keeps its own) is touched, and only a
    process running this pool's own program is killed (its pid may have been reused since). Returns
    the stopped scheduler's name, if any.
    """
    host = socket.gethostname()
    workers = {w.pid for w in SimpleWorker.all(connection=redis) if w.hostname == host}
    owners = {redis.get(RQScheduler.get_locking_key(name)) for name in queue_names} - {None}
    for owner in (o.decode() for o in owners):
        try:
            scheduler = RQScheduler.fetch(owner, redis)
        except SchedulerNotFound:
            continue
        if scheduler.hostname != host:
            continue
        pid = scheduler.pid
        parent = _parent_pid(pid)
        if parent in workers:
            continue  # a live worker's own scheduler
        if parent is not None and parent != os.getpid() and _same_program(pid):
            # Still running without its worker. A pid now used by another program (or by one of
            # this pool's own workers) means the scheduler is gone: its locks are freed, nothing killed.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name in queue_names:
            release_lock(redis, RQScheduler.get_locking_key(name), owner)
        scheduler.register_death()
        log.warning("stopped scheduler %s (pid %d) left by a dead worker; its locks are free", owner, pid)
        return owner
    return None


def _same_program(pid: int) -> bool:
    """Whether a process runs this pool's command line (rq forks its workers and their schedulers)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() == Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return False


def _parent_pid(pid: int) -> int | None:
    """The parent of a process on this host, from /proc; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # fields after "(comm)": state, ppid, ...


def main(config: Config | None = None) -> None:
    config = config or Config()
    config.validate()
    logs.configure(config.LOG_LEVEL, config.LOG_FORMAT)
    queue_names = queues.with_bulk_twins(config.WORKER_QUEUES or list(queues.ALL_QUEUES))
    lane = [q for q in queues.LANE_QUEUES if q in queue_names] if config.WORKER_WEBHOOK_LANE else []
    if lane and len(lane) < len(queue_names):
        queue_names = [q for q in queue_names if q not in lane]
    else:
        lane = []
    pool = Pool(
        queue_names,
        connection=Redis.from_url(config.REDIS_URL),
        num_workers=default_process_count(config),
        worker_class=AppWorker,
        config=config,
        lane_queues=lane,
    )
    log.info("starting %d worker process(es) on queues %s", pool.num_workers, ",".join(queue_names))
    if lane:
        log.info("starting 1 worker process on queues %s", ",".join(lane))
    pool.start(logging_level=config.LOG_LEVEL)
