"""The worker process arrangement: a pool of non-forking workers plus the cron scheduler.

onnxruntime is not fork-safe, so each worker process is an rq `SimpleWorker` (jobs run in
the process itself, no fork per job) that loads the matting model once at start-up; several
such processes give parallelism. `WorkerPool` respawns a process that dies (SIGKILL, OOM).
The pool parent loads nothing heavy, so nothing heavy is ever carried across its forks.
"""

from __future__ import annotations

import logging
import multiprocessing
import os

from redis import Redis
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.worker_pool import WorkerPool

from shared import queues
from shared.config import Config

from .app import app_context, get_app

log = logging.getLogger(__name__)


class AppWorker(SimpleWorker):
    """A SimpleWorker that builds its app and preloads job resources before taking jobs."""

    def work(self, *args, **kwargs) -> bool:
        app = get_app()
        if app.config["WORKER_PRELOAD"]:
            from .resources import preload

            with app_context():
                preload(self.queue_names())
        return super().work(*args, **kwargs)


def run_cron(config: Config) -> None:
    """Enqueue the periodic jobs of `shared.queues.SCHEDULES` (runs in its own process)."""
    scheduler = CronScheduler(connection=Redis.from_url(config.REDIS_URL), logging_level=config.LOG_LEVEL)
    for schedule in queues.SCHEDULES:
        scheduler.register(
            _resolve(schedule.func),
            queue_name=schedule.queue,
            interval=getattr(config, schedule.interval_setting),
            job_timeout=schedule.timeout,
            result_ttl=600,
        )
    scheduler.start()


def default_process_count(config: Config) -> int:
    if config.WORKER_PROCESSES > 0:
        return config.WORKER_PROCESSES
    return max(1, (os.cpu_count() or 1) // 2)


def main(config: Config | None = None) -> None:
    config = config or Config()
    config.validate()
    logging.basicConfig(level=config.LOG_LEVEL, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    queue_names = config.WORKER_QUEUES or list(queues.ALL_QUEUES)
    cron = None
    if config.WORKER_RUN_CRON:
        cron = multiprocessing.get_context("spawn").Process(target=run_cron, args=(config,), name="cron", daemon=True)
        cron.start()
    pool = WorkerPool(
        queue_names,
        connection=Redis.from_url(config.REDIS_URL),
        num_workers=default_process_count(config),
        worker_class=AppWorker,
    )
    log.info("starting %d worker process(es) on queues %s", pool.num_workers, ",".join(queue_names))
    try:
        pool.start(logging_level=config.LOG_LEVEL)
    finally:
        if cron is not None and cron.is_alive():
            cron.terminate()
            cron.join(5)


def _resolve(dotted: str):
    module_name, _, attr = dotted.rpartition(".")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)
