"""Heavy per-process resources (the matting model), created once after the process starts.

Never created in a process that later forks: the pool parent does not call `preload`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from shared import queues
from shared.app import settings

log = logging.getLogger(__name__)

_session = None


def inference_threads() -> int:
    """Threads for ONNX inference: the configured number, else the cores shared among processes."""
    config = settings()
    if config.INFERENCE_THREADS > 0:
        return config.INFERENCE_THREADS
    from .process import default_process_count

    processes = default_process_count(config)
    return max(1, (os.cpu_count() or 1) // processes)


def matting_session():
    """The process's u2netp session, loaded on first use if it was not preloaded."""
    global _session
    if _session is None:
        from .matting import load_session

        started = time.monotonic()
        _session = load_session(settings().MODEL_DIR, inference_threads(), arena=settings().INFERENCE_ARENA)
        log.info(
            "matting model loaded in %.2f s (%d threads)", time.monotonic() - started, inference_threads()
        )
    return _session


def preload(queue_names: Iterable[str]) -> None:
    """Load what the served queues' jobs need before the first job arrives."""
    queue_names = list(queue_names)
    if queues.IMAGES in queue_names:
        matting_session()
    if queues.RUNNINGHUB in queue_names and settings().runninghub_configured:
        from .jobs.models import workflows

        workflows()  # validate the mapping at start-up: a clear error names a missing entry
