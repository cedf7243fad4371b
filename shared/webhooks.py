"""Client webhooks signed per Standard Webhooks (https://www.standardwebhooks.com).

`webhook-signature` is `v1,<base64 HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>">`,
keyed with the base64-decoded part of the user's `whsec_...` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from sqlalchemy import select

from .db import db
from .models import Task, User, WebhookDelivery

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def ensure_secret(user: User) -> str:
    """The user's signing secret, created on first use (the caller commits)."""
    if not user.webhook_secret:
        user.webhook_secret = new_secret()
    return user.webhook_secret


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign_headers(secret: str, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """What a receiver does: recompute, compare in constant time, reject stale timestamps."""
    try:
        timestamp = int(headers["webhook-timestamp"])
        expected = signature(secret, headers["webhook-id"], timestamp, body).split(",", 1)[1]
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > TOLERANCE_SECONDS:
        return False
    offered = [
        s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def delivery_status(task: Task) -> dict[str, Any]:
    """The task's webhook URL and its latest delivery attempt, for the task detail."""
    last = db.session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.task_id == task.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(1)
    )
    status: dict[str, Any] = {"url": task.webhook_url, "lastDelivery": None}
    if last is not None:
        status["lastDelivery"] = {
            "attempt": last.attempt,
            "ok": last.ok,
            "statusCode": last.status_code,
            "error": last.error,
            "at": last.created_at.isoformat(),
        }
    return status
