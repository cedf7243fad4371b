"""The frame every task job runs in: start → work → succeed or fail, with short transactions.

A job body receives a detached snapshot of its task (the session is closed before slow work)
and a progress callback; it returns the storage keys or URLs of its results, or raises
`TaskRejected` for a failure that retrying cannot fix (bad input, refused content). Any other
exception propagates to rq, which retries per the job spec and finally calls
`worker.jobs.lifecycle.on_job_failure`. Whatever the body stored is deleted again unless the
task succeeds (`shared.results`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared import lifecycle, results
from shared.app import storage
from shared.db import db
from shared.result_files import ResultFile

from .app import app_context

log = logging.getLogger(__name__)


class TaskRejected(Exception):
    """The task cannot succeed; its message is shown to the user as `errorMessage`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientInputError(Exception):
    """A failure that may pass (a timeout, a 5xx): rq retries the job; the last failure's
    `user_message` becomes the task's errorMessage."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


@dataclass(frozen=True)
class TaskSnapshot:
    id: str
    user_id: int
    type: str
    input_image_url: str
    params: dict[str, Any]


Progress = Callable[[int], None]
JobBody = Callable[[TaskSnapshot, Progress], Sequence[str | ResultFile]]
"""Returns the task's results: storage keys or URLs, or ResultFiles when it knows what they hold."""


def report_progress(task_id: str, progress: int) -> None:
    lifecycle.set_progress(task_id, progress)
    db.session.commit()


def run_task(task_id: str, body: JobBody) -> str:
    """Run `body` for the task unless it already ended; record the outcome. Returns the outcome."""
    with app_context():
        task = lifecycle.start(task_id)
        db.session.commit()
        if task is None:
            log.info("task %s already ended; job skipped", task_id)
            return "skipped"
        snapshot = TaskSnapshot(
            task.id, task.user_id, task.type, task.input_image_url, dict(task.params or {})
        )
        db.session.close()
        results.discard(storage(), task_id)  # left by an attempt killed before it could clean up
        succeeded = False
        try:
            stored = body(snapshot, lambda pct: report_progress(task_id, pct))
            keys = [r.key if isinstance(r, ResultFile) else r for r in stored]
            files = [r.record() for r in stored if isinstance(r, ResultFile)]
            if lifecycle.succeed(task_id, keys, files):
                succeeded = True  # the results are the task's now, even if the commit's answer is lost
                db.session.commit()
                return "success"
            db.session.rollback()
            log.info("task %s ended elsewhere (cancel or timeout); its results are discarded", task_id)
            return "discarded"
        except TaskRejected as exc:
            db.session.rollback()
            lifecycle.fail(task_id, exc.message)
            db.session.commit()
            log.info("task %s rejected: %s", task_id, exc.message)
            return "failed"
        except BaseException:
            # Crash, timeout or stop: what this attempt stored goes (a retry stores afresh).
            db.session.rollback()
            raise
        finally:
            if not succeeded:  # nothing stays behind a task that did not succeed
                results.discard(storage(), task_id)
