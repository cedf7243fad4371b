"""glibc malloc settings of the worker dyno.

An image job allocates a dozen full-size buffers (4-16 MB at 2000×2000) plus ~250 MB of
onnxruntime activations (its arena is off by default, see worker.matting), from several threads.
With glibc's defaults each thread may get its own malloc arena (up to 8 per core), each keeping
its own freed space. The worker runs with at most two (``MALLOC_ARENA_MAX``). glibc reads it only
when a process starts, so `exec_with_allocator_settings` re-executes ``worker.py`` once with it
when it is missing; the pool's workers and schedulers are forked from it and inherit it. A value
already in the environment is kept. Measurements (and the options dropped, among them huge
pages for malloc, which slowed jobs by a third on a busy host): docs/PIPELINE.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

ARENA_MAX = "2"
"""malloc arenas per process: one for the job thread, one shared by the helper threads."""


def allocator_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with the worker's malloc settings added, or None when it already has them."""
    env = dict(environ)
    if "MALLOC_ARENA_MAX" not in env:
        env["MALLOC_ARENA_MAX"] = ARENA_MAX
    return None if env == dict(environ) else env


def exec_with_allocator_settings() -> None:
    """Replace this process by the same command line (interpreter options included) with the
    malloc settings, if they are missing; return when they are present, so the second start goes on.
    """
    env = allocator_env(os.environ)
    if env is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
