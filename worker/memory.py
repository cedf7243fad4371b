"""glibc malloc settings of the worker dyno.

An image job allocates a dozen full-size buffers (4-16 MB at 2000×2000) plus ~250 MB of
onnxruntime activations (its arena is off by default, see worker.matting), from several threads.
With glibc's defaults each thread may get its own malloc arena (up to 8 per core), each keeping
its own freed space. The worker runs with at most two (``MALLOC_ARENA_MAX``), and asks malloc for
transparent huge pages (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``): the activations are allocated
and freed on every job, and 2 MB pages cut the page faults of faulting them in again 512-fold,
which is what made the arena-less session slower than rembg's (measured on a quiet machine:
0.77 / 0.69 of today's images/min at 2000 / 1000 px without, 1.09 / 0.98 with, at the same
~0.3 GB; where the kernel offers no huge pages the setting does nothing). glibc reads both only
when a process starts, so `exec_with_allocator_settings` re-executes ``worker.py`` once with them
when they are missing; the pool's workers and schedulers are forked from it and inherit them. A
value already in the environment is kept. Measurements: docs/PIPELINE.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

ARENA_MAX = "2"
"""malloc arenas per process: one for the job thread, one shared by the helper threads."""

TUNABLES = "glibc.malloc.hugetlb=1"
"""glibc tunables of the worker: malloc marks its memory for transparent huge pages (madvise)."""


def allocator_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with the worker's malloc settings added, or None when it already has them."""
    env = dict(environ)
    if "MALLOC_ARENA_MAX" not in env:
        env["MALLOC_ARENA_MAX"] = ARENA_MAX
    if "GLIBC_TUNABLES" not in env:
        env["GLIBC_TUNABLES"] = TUNABLES
    return None if env == dict(environ) else env


def exec_with_allocator_settings() -> None:
    """Replace this process by the same command line (interpreter options included) with the
    malloc settings, if they are missing; return when they are present, so the second start goes on.
    """
    env = allocator_env(os.environ)
    if env is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
