"""glibc malloc settings of the worker dyno.

An image job allocates a dozen full-size buffers (4-16 MB at 2000×2000) plus ~250 MB of
onnxruntime activations (its arena is off, see worker.matting), from several threads. With
glibc's defaults each thread may get its own malloc arena (up to 8 per core), each keeping its
own freed space. The worker runs with at most two arenas (``MALLOC_ARENA_MAX``) and transparent
huge pages for malloc's memory (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``, where the kernel
allows them: fewer page faults when a job's buffers are taken again). glibc reads both only when
a process starts, so `exec_with_allocator_settings` re-executes ``worker.py`` once with them when
they are missing; the pool's workers and schedulers are forked from it and inherit them. A value
already in the environment is kept. Measurements: docs/PIPELINE.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

ARENA_MAX = "2"
"""malloc arenas per process: one for the job thread, one shared by the helper threads."""

HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"
"""Ask the kernel for transparent huge pages for malloc's heap and mapped chunks."""


def allocator_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with the worker's malloc settings added, or None when it already has them."""
    env = dict(environ)
    if "MALLOC_ARENA_MAX" not in env:
        env["MALLOC_ARENA_MAX"] = ARENA_MAX
    tunables = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" not in tunables:
        env["GLIBC_TUNABLES"] = f"{tunables}:{HUGE_PAGES_TUNABLE}" if tunables else HUGE_PAGES_TUNABLE
    return None if env == dict(environ) else env


def exec_with_allocator_settings() -> None:
    """Replace this process by the same command line (interpreter options included) with the
    malloc settings, if they are missing; return when they are present, so the second start goes on.
    """
    env = allocator_env(os.environ)
    if env is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
