"""Where a task's results live in storage, and their removal when the task does not succeed.

Each result is stored under ``tasks/<task id>/<random>/<name>``: the random folder makes a key
unguessable until the task succeeds and hands its links out, so a result written by a job that
is then cancelled or times out cannot be fetched from a public bucket in the meantime. Whoever
ends a task without success (the job frame, the failure callback, cancel, the timeout sweeper)
deletes everything under ``tasks/<task id>/``, so nothing is left to fetch afterwards either.
"""

from __future__ import annotations

import logging
import secrets

from .storage import Storage, StorageError

log = logging.getLogger(__name__)


def folder(task_id: str) -> str:
    return f"tasks/{task_id}/"


def result_key(task_id: str, name: str) -> str:
    """A fresh, unguessable key for the task's result file `name`."""
    return f"{folder(task_id)}{secrets.token_hex(8)}/{name}"


def discard(store: Storage, task_id: str) -> int:
    """Delete every stored result of a task that did not succeed; the number deleted.

    Never raises: a storage failure is logged, and the ending of the task stands.
    """
    try:
        keys = store.list_keys(folder(task_id))
        for key in keys:
            store.delete(key)
    except StorageError:
        log.warning("could not delete the results of task %s", task_id, exc_info=True)
        return 0
    if keys:
        log.info("deleted %d result(s) of task %s, which did not succeed", len(keys), task_id)
    return len(keys)
