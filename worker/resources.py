"""Heavy per-process resources (the matting model), created once after the process starts.

Never created in a process that later forks: the pool parent does not call `preload`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from shared import queues, task_types
from shared.app import settings
from shared.config import Config

log = logging.getLogger(__name__)

_session = None
_hd_session = None


def default_process_count(config: Config) -> int:
    """Worker processes a pool runs (each serves jobs one at a time and loads its own model)."""
    if config.WORKER_PROCESSES > 0:
        return config.WORKER_PROCESSES
    # Two single-threaded processes measured best on a 2-core dyno (docs/PIPELINE.md); more would
    # follow the host's CPU count, which containers may over-report, at ~0.8 GB each.
    return max(1, min(2, os.cpu_count() or 1))


def inference_threads() -> int:
    """Threads for ONNX inference: the configured number, else the cores shared among processes."""
    config = settings()
    if config.INFERENCE_THREADS > 0:
        return config.INFERENCE_THREADS
    processes = default_process_count(config)
    return max(1, (os.cpu_count() or 1) // processes)


def matting_session():
    """The process's u2netp session, loaded on first use if it was not preloaded."""
    global _session
    if _session is None:
        from .matting import load_session

        started = time.monotonic()
        _session = load_session(settings().MODEL_DIR, inference_threads())
        log.info(
            "matting model loaded in %.2f s (%d threads)", time.monotonic() - started, inference_threads()
        )
    return _session


def hd_session():
    """The process's HD (u2net) session; only processes serving the HD queue load it."""
    global _hd_session
    if _hd_session is None:
        from .matting import load_hd_session

        started = time.monotonic()
        _hd_session = load_hd_session(settings().MODEL_DIR, inference_threads())
        log.info("HD matting model loaded in %.2f s", time.monotonic() - started)
    return _hd_session


def preload(queue_names: Iterable[str]) -> None:
    """Load what the task types served on these queues need, before the first job arrives.

    A type this deployment cannot offer is skipped (the API refuses its tasks too), with a warning.
    """
    served = set(queue_names)
    for task_type in task_types.registry().on_queues(served):
        reason = task_type.unavailable_reason(settings())
        if reason:
            log.warning("%s not preloaded: %s", task_type.name, reason)
            continue
        wanted = list(task_type.preload) if task_type.job.queue in served else []
        for option in task_type.options:
            if option.queue not in served:
                continue
            if not option.requires.met(settings()):
                log.warning("%s %s not preloaded: %s", task_type.name, option.param, option.requires.reason)
                continue
            wanted.extend(option.preload)
        for dotted in wanted:
            queues.resolve(dotted)()
