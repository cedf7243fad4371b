"""Task events, announced only after the transaction that caused them commits.

The state machine (`shared.lifecycle`) records an event in the session; once the session
commits, each event is published on Redis (the event stream listens there), counted in the
metrics, and, for a task that ended with a `webhookUrl`, a signed delivery job is enqueued.
A rolled-back transaction announces nothing. The create path announces its `pending` event
itself, in the same Redis round trip as the job's enqueue (`shared.queues.enqueue_task`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from flask import current_app, has_app_context
from redis.client import Pipeline
from sqlalchemy import event
from sqlalchemy.orm import Session

from . import metrics, queues

log = logging.getLogger(__name__)

KEY = "task_events"
BATCH_KEY = "batch_events"


def channel(task_id: str) -> str:
    """The Redis pub/sub channel carrying a task's changes."""
    return f"shopimage:task:{task_id}"


@dataclass(frozen=True)
class TaskEvent:
    task_id: str
    task_type: str
    status: str
    progress: int | None = None
    seconds: float | None = None
    """Processing time (started → ended) for terminal events, when known."""
    has_webhook: bool = False


@dataclass(frozen=True)
class BatchEvent:
    """A batch completed: its last task ended (`batches.task_ended`)."""

    batch_id: str
    has_webhook: bool = False


def batch_channel(batch_id: str) -> str:
    """The Redis pub/sub channel announcing a batch's completion."""
    return f"shopimage:batch:{batch_id}"


def record(session: Session, evt: TaskEvent) -> None:
    session.info.setdefault(KEY, []).append(evt)


def record_batch(session: Session, evt: BatchEvent) -> None:
    session.info.setdefault(BATCH_KEY, []).append(evt)


def announce(pipe: Pipeline, events: Iterable[TaskEvent]) -> None:
    """Queue the publication and the metrics of committed events on a Redis pipeline."""
    for evt in events:
        pipe.publish(channel(evt.task_id), json.dumps(asdict(evt)))
        metrics.count_task_event(pipe, evt.status, evt.task_type, evt.seconds)


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    events: list[TaskEvent] = session.info.pop(KEY, [])
    batch_events: list[BatchEvent] = session.info.pop(BATCH_KEY, [])
    if not (events or batch_events) or not has_app_context():
        return
    redis = current_app.extensions["redis"]
    delay_factor = current_app.config["RETRY_DELAY_FACTOR"]
    try:
        with redis.pipeline(transaction=False) as pipe:
            announce(pipe, events)
            for evt in batch_events:
                pipe.publish(batch_channel(evt.batch_id), json.dumps(asdict(evt)))
            pipe.execute()
        for evt in events:
            if evt.has_webhook and evt.status in ("success", "failed"):
                queues.enqueue_webhook(redis, evt.task_id, delay_factor)
        for evt in batch_events:
            if evt.has_webhook:
                queues.enqueue_batch_webhook(redis, evt.batch_id, delay_factor)
    except Exception:
        # The commit stands; a lost announcement only delays a stream client (it re-reads) or a
        # webhook (the reconciler does not resend it: recorded as a known limit in docs/DECISIONS.md).
        log.warning("could not announce %d task event(s)", len(events), exc_info=True)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(KEY, None)
    session.info.pop(BATCH_KEY, None)
