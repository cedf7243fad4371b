"""Deliveries of task ends and batch completions to clients' webhook URLs, signed per Standard Webhooks."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from shared import batches, webhooks
from shared.app import settings, storage
from shared.db import db, utcnow
from shared.models import Batch, Task, User, WebhookDelivery
from shared.schemas import task_document

from ..app import app_context
from ..fetch import FetchError, post_json

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The receiver did not accept the delivery; rq retries with backoff."""


def deliver_task_webhook(task_id: str) -> str:
    with app_context():
        task = db.session.get(Task, task_id)
        if task is None or not task.webhook_url or task.status not in ("success", "failed"):
            return "nothing to deliver"
        config = settings()
        return _deliver(
            Owner(task_id=task.id),
            task.user_id,
            task.webhook_url,
            f"task.{task.status}",
            f"msg_{task.id}_{task.status}",
            task_document(task, storage(), config.STORAGE_URL_SECONDS),
        )


def deliver_batch_webhook(batch_id: str) -> str:
    """`batch.completed`, with the batch document (counts, no tasks), once its last task ended."""
    with app_context():
        batch = db.session.get(Batch, batch_id)
        if batch is None or not batch.webhook_url or batch.completed_at is None:
            return "nothing to deliver"
        return _deliver(
            Owner(batch_id=batch.id),
            batch.user_id,
            batch.webhook_url,
            "batch.completed",
            f"msg_batch_{batch.id}_completed",
            batches.summary(batch),
        )


@dataclass(frozen=True)
class Owner:
    """What a delivery is about: a task or a batch (the columns of its `WebhookDelivery` rows)."""

    task_id: str | None = None
    batch_id: str | None = None

    def deliveries(self):
        if self.task_id is not None:
            return WebhookDelivery.task_id == self.task_id
        return WebhookDelivery.batch_id == self.batch_id


def _deliver(owner: Owner, user_id: int, url: str, event: str, message_id: str, data: dict) -> str:
    """POST one signed delivery, record the attempt; raise for a retry when it was not accepted."""
    user = db.session.get(User, user_id)
    secret = webhooks.ensure_secret(user)
    config = settings()
    payload = {
        "type": event,
        "timestamp": utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": data,
    }
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    attempt = 1 + db.session.scalar(select(func.count()).where(owner.deliveries()))
    db.session.commit()  # keeps a newly created secret
    db.session.close()

    started = time.monotonic()
    status_code, error = None, None
    try:
        status_code = post_json(
            url,
            body,
            webhooks.sign_headers(secret, message_id, body),
            allow_private=config.ALLOW_PRIVATE_URLS,
        )
    except FetchError as exc:
        error = exc.message
    ok = status_code is not None and 200 <= status_code < 300
    db.session.add(
        WebhookDelivery(
            task_id=owner.task_id,
            batch_id=owner.batch_id,
            message_id=message_id,
            attempt=attempt,
            status_code=status_code,
            ok=ok,
            error=None if ok else (error or f"receiver answered HTTP {status_code}")[:500],
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    )
    db.session.commit()
    if not ok:
        what = f"task {owner.task_id}" if owner.task_id else f"batch {owner.batch_id}"
        raise DeliveryFailed(f"webhook for {what} attempt {attempt}: {error or status_code}")
    return f"delivered on attempt {attempt}"
