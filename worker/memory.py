"""glibc malloc settings of the worker dyno, and handing a finished job's memory back.

An image job allocates a dozen full-size buffers (4-16 MB at 2000×2000) plus ~250 MB of
onnxruntime activations, from several threads. With glibc's defaults that freed space stays in
the process (per-thread arenas, up to 8 per core; a heap that is trimmed only at its top), so a
worker that ran a few large photos keeps ~0.4-0.9 GB. The worker therefore:

- runs with at most two malloc arenas (``MALLOC_ARENA_MAX``) and transparent huge pages for
  malloc's memory (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``): both are read by glibc when the
  process starts, so `exec_with_allocator_settings` re-executes ``worker.py`` once with them when
  they are missing (the pool's workers and schedulers are forked from it and inherit them);
- gives the free memory back after each image job (`release_free_memory`).

Huge pages are what make the returned memory cheap to take again: faulting the next job's
buffers in 2 MB pages instead of 4 kB ones more than pays for the trim (docs/PIPELINE.md). On a
kernel with transparent huge pages off (``never``) the tunable does nothing and a 2000 px job is
~20 % slower; memory stays as low. A value already in the environment is kept.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping, Sequence

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


def exec_with_allocator_settings(argv: Sequence[str]) -> None:
    """Replace this process by the same command with the malloc settings, if they are missing.

    Returns (without exec) when they are present, so the second start goes on.
    """
    env = allocator_env(os.environ)
    if env is not None:
        os.execve(sys.executable, [sys.executable, *argv], env)


def release_free_memory() -> None:
    """Return the pages malloc holds free (all arenas) to the OS; a no-op without glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return
