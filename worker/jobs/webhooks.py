"""Deliveries of task ends to clients' webhook URLs, signed per Standard Webhooks."""

from __future__ import annotations

import json
import logging
import time

from sqlalchemy import func, select

from shared import webhooks
from shared.app import settings, storage
from shared.db import db, utcnow
from shared.models import Task, User, WebhookDelivery
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
        user = db.session.get(User, task.user_id)
        secret = webhooks.ensure_secret(user)
        config = settings()
        payload = {
            "type": f"task.{task.status}",
            "timestamp": utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": task_document(task, storage(), config.STORAGE_URL_SECONDS),
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        message_id = f"msg_{task.id}_{task.status}"
        url = task.webhook_url
        attempt = 1 + db.session.scalar(select(func.count()).where(WebhookDelivery.task_id == task_id))
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
                task_id=task_id,
                message_id=message_id,
                attempt=attempt,
                status_code=status_code,
                ok=ok,
                error=(error or (None if ok else f"receiver answered HTTP {status_code}"))[:500]
                if not ok
                else None,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        )
        db.session.commit()
        if not ok:
            raise DeliveryFailed(f"webhook for task {task_id} attempt {attempt}: {error or status_code}")
        return f"delivered on attempt {attempt}"
