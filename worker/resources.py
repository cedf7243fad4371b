"""Heavy per-process resources (the matting model), created once after the process starts.

Never created in a process that later forks: the pool parent does not call `preload`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterable

from shared import queues, task_types
from shared.app import settings
from shared.config import Config

from .matting import U2NET, U2NETP, MattingSession, ModelSpec, load_session

log = logging.getLogger(__name__)


def default_process_count(config: Config) -> int:
    """Worker processes a pool runs (each serves jobs one at a time and loads its own model)."""
    if config.WORKER_PROCESSES > 0:
        return config.WORKER_PROCESSES
    # Two single-threaded processes measured best on a 2-core dyno (docs/PIPELINE.md); more would
    # follow the host's CPU count, which containers may over-report, at up to ~0.55 GB each.
    return max(1, min(2, os.cpu_count() or 1))


def inference_threads() -> int:
    """Threads for ONNX inference: the configured number, else the cores shared among processes."""
    config = settings()
    if config.INFERENCE_THREADS > 0:
        return config.INFERENCE_THREADS
    processes = default_process_count(config)
    return max(1, (os.cpu_count() or 1) // processes)


@functools.cache
def _session(spec: ModelSpec) -> MattingSession:
    """The process's session for `spec`, loaded once, on first use if it was not preloaded."""
    partner = _session(spec.partner) if spec.partner is not None else None  # shared, not loaded twice
    started, threads = time.monotonic(), inference_threads()
    session = load_session(
        settings().MODEL_DIR, threads, spec, arena=settings().INFERENCE_ARENA, partner=partner
    )
    log.info("%s loaded in %.2f s (%d threads)", spec.label, time.monotonic() - started, threads)
    return session


def matting_session() -> MattingSession:
    """The u2netp session (basic_clean)."""
    return _session(U2NETP)


def hd_session() -> MattingSession:
    """The HD (u2net) session, with u2netp as its partner; only processes serving the HD queue
    load u2net."""
    return _session(U2NET)


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
