"""Server-Sent Events: a task's state on every change, fed by Redis pub/sub, until it ends.

Runs in the web server's worker threads (WEB_THREADS): a stream holds one thread (and no database connection
between events), not a whole worker process. Browsers' EventSource cannot send headers, so
the access token may also come as `?access_token=` on this endpoint only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request, stream_with_context
from flask_jwt_extended import decode_token

from shared import events, tasks
from shared.app import redis_client, storage
from shared.db import db
from shared.errors import Unauthorized
from shared.models import TERMINAL_STATUSES, Task, User
from shared.schemas import task_document

from ..auth import account_of, current_user
from ..streams import open_slot

bp = Blueprint("events", __name__, url_prefix="/api/task")


def _stream_user() -> User:
    token = request.args.get("access_token")
    if token and "Authorization" not in request.headers:
        try:
            claims = decode_token(token)
        except Exception as exc:
            raise Unauthorized("invalid token") from exc
        if claims.get("type") != "access":
            raise Unauthorized("wrong token type: an access token is required")
        return account_of(str(claims["sub"]))
    return current_user()


@bp.get("/<task_id>/events")
def stream(task_id: str):
    user = _stream_user()
    task = tasks.get_owned(task_id, user.id)
    release = open_slot(user.id)
    try:
        response = _stream_response(task)
    except BaseException:
        release()
        raise
    # The server closes the response when the stream ends or the client goes away.
    response.call_on_close(release)
    return response


def _stream_response(task: Task) -> Response:
    task_id = task.id
    config = current_app.config
    heartbeat = config["SSE_HEARTBEAT_SECONDS"]
    max_seconds = config["SSE_MAX_SECONDS"]
    lifetime = config["STORAGE_URL_SECONDS"]
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.channel(task.id))
    db.session.refresh(task)  # read after subscribing, so no change falls between the two
    first = task_document(task, storage(), lifetime)
    db.session.close()

    def generate() -> Iterator[str]:
        sent = json.dumps(first, ensure_ascii=False, sort_keys=True)
        try:
            yield "retry: 3000\n\n"
            yield _event(sent)
            if first["status"] in TERMINAL_STATUSES:
                return
            deadline = time.monotonic() + max_seconds
            last_beat = time.monotonic()
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    if time.monotonic() - last_beat >= heartbeat:
                        last_beat = time.monotonic()
                        yield ": heartbeat\n\n"
                    continue
                current = tasks.get_any(task_id)
                document = task_document(current, storage(), lifetime)
                db.session.close()
                encoded = json.dumps(document, ensure_ascii=False, sort_keys=True)
                if encoded != sent:
                    sent = encoded
                    yield _event(encoded)
                if document["status"] in TERMINAL_STATUSES:
                    return
        finally:
            pubsub.close()
            db.session.remove()

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _event(data: str) -> str:
    return f"event: task\ndata: {data}\n\n"
