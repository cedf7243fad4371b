"""A worker on a fresh machine: ready in seconds without numba's cache, with the worker's malloc
settings, and the API says it is starting meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

from shared.db import db
from shared.models import Task
from tests.conftest import wait_for
from tests.photos import product_photo
from worker.memory import allocator_env

from .test_basic_clean_e2e import REAL_PIPELINE, app, create, finished, upload  # noqa: F401 - app

ACCEPT_BOUND_SECONDS = 30
"""Worker process start to first job accepted. The lean worker needs ~1-3 s (more on a loaded CI
machine); a worker that imports rembg compiles numba's kernels first when their cache is empty,
46-180 s on 2 cores."""


def started(task_id: str) -> bool:
    db.session.expire_all()
    return db.session.get(Task, task_id).status != "pending"


def test_worker_with_an_empty_numba_cache_accepts_a_job_within_seconds(
    client, auth, make_user, start_worker, tmp_path
):
    headers = auth.headers(make_user(quota=1))
    task_id = create(client, headers, upload(client, headers, product_photo(1000, 1000))).get_json()["data"][
        "taskId"
    ]
    detail = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]
    assert detail["status"] == "pending" and detail["workersStarting"] is True

    numba_cache = tmp_path / "numba-cache"
    numba_cache.mkdir()
    begin = time.monotonic()
    worker = start_worker(**REAL_PIPELINE, WORKER_PROCESSES="1", NUMBA_CACHE_DIR=str(numba_cache))
    wait_for(
        lambda: started(task_id), timeout=ACCEPT_BOUND_SECONDS + 60, interval=0.2, message="job accepted"
    )
    accepted = time.monotonic() - begin
    assert accepted < ACCEPT_BOUND_SECONDS, worker.output()[-3000:]
    task = wait_for(lambda: finished(task_id), timeout=120, message="task done")
    assert task.status == "success", (task.error_message, worker.output()[-3000:])
    assert list(numba_cache.iterdir()) == []  # nothing was compiled
    for pid in worker.pids():  # the pool parent, its worker, the worker's scheduler, cron
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ
        assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in environ


def test_allocator_env_adds_the_setting_and_keeps_a_given_value():
    assert allocator_env({"PATH": "/bin"}) == {
        "PATH": "/bin",
        "MALLOC_ARENA_MAX": "2",
        "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
    }
    assert allocator_env({"MALLOC_ARENA_MAX": "4", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None
    assert allocator_env({"MALLOC_ARENA_MAX": "4"}) == {
        "MALLOC_ARENA_MAX": "4",
        "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
    }
