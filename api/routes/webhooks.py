"""Incoming callbacks. RunningHub's TASK_END is a hint only: the collect job confirms it."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import select, update

from shared import queues, task_types, webhooks
from shared.app import redis_client
from shared.db import db
from shared.models import Task

from ..auth import current_user
from ..body import limit_to_json

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks")


@bp.get("/secret")
def show_secret():
    """The caller's signing secret for client webhooks (`whsec_...`), created on first use."""
    user = current_user()
    secret = webhooks.ensure_secret(user)
    db.session.commit()
    return jsonify(success=True, data={"secret": secret, "scheme": "standard-webhooks v1 (HMAC-SHA256)"})


@bp.post("/secret/rotate")
def rotate_secret():
    user = current_user()
    user.webhook_secret = webhooks.new_secret()
    db.session.commit()
    return jsonify(
        success=True, data={"secret": user.webhook_secret, "scheme": "standard-webhooks v1 (HMAC-SHA256)"}
    )


@bp.post("/runninghub/<secret>")
def runninghub(secret: str):
    """Answer fast; enqueue one collect per RunningHub task id however often the callback repeats."""
    expected = current_app.config["RUNNINGHUB_WEBHOOK_SECRET"]
    if not expected or not hmac.compare_digest(expected.encode(), secret.encode()):
        abort(404)
    limit_to_json()
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if not isinstance(body, dict):
        body = {}
    external_id = str(body.get("taskId") or "")[:64]
    if not external_id:
        return jsonify(success=True, data={"accepted": False})
    task_id = db.session.scalar(
        select(Task.id).where(Task.external_id == external_id, Task.status == "processing")
    ) or _adopt(external_id, request.args.get("task", ""))
    db.session.close()
    redis = redis_client()
    if task_id and redis.set(f"shopimage:webhook:{external_id}", "1", nx=True, ex=3600):
        queues.enqueue_follow_up(redis, task_types.MODEL_PHOTOS_COLLECT, task_id)
    return jsonify(success=True, data={"accepted": bool(task_id)})


def _adopt(external_id: str, task_id: str) -> str | None:
    """A callback for a RunningHub task we never learnt the id of (its create timed out) names our
    task in the URL: record the id on that task if it has none yet, so we collect this render
    instead of paying for a second one. The collect job still confirms it with RunningHub."""
    if not task_id:
        return None
    adopted = db.session.scalar(
        update(Task)
        .where(Task.id == task_id[:64], Task.status == "processing", Task.external_id.is_(None))
        .values(external_id=external_id)
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if adopted:
        log.warning("adopted RunningHub task %s for task %s after a timed-out create", external_id, adopted)
    return adopted
