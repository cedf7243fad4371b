"""Tasks: the types on offer, create, list, detail, internal status update, cancel, retry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import Row

from shared import events, inputs, lifecycle, queues, results, task_types, tasks, uploads, webhooks
from shared.app import redis_client, settings, storage
from shared.archive import result_entries, stream_zip
from shared.cancel import stop_work
from shared.db import db
from shared.errors import BadRequest, Conflict, Unavailable
from shared.models import Task
from shared.schemas import task_document

from ..auth import current_user, current_user_id, require_internal_caller
from ..body import json_body, load_body, load_query
from ..extensions import rate_limiter
from ..schemas.tasks import CreateTaskSchema, ListQuerySchema, StatusUpdateSchema

log = logging.getLogger(__name__)

bp = Blueprint("tasks", __name__, url_prefix="/api/task")

create_schema = CreateTaskSchema()
list_schema = ListQuerySchema()
status_schema = StatusUpdateSchema()


def dump_task(task: Task | Row, *, with_position: bool = False) -> dict[str, Any]:
    data = task_document(task, storage(), current_app.config["STORAGE_URL_SECONDS"])
    if with_position and task.status == "pending":
        data["queuePosition"] = _queue_position(task)
        data["workersStarting"] = _workers_starting(task)
    if with_position and task.webhook_url:
        data["webhook"] = webhooks.delivery_status(task)
    return data


def create_limit() -> str:
    return current_app.config["RATELIMIT_CREATE"]


@bp.get("/types")
def list_types():
    """The task types this server knows, with their params and outputs; those it cannot run say why."""
    config = settings()
    return jsonify(
        success=True, data={"types": [task_types.describe(t, config) for t in task_types.registry()]}
    )


@bp.post("/create")
@rate_limiter.limit(create_limit, scope="create")
def create():
    data = load_body(create_schema)
    require_offered(data["type"], data["params"])
    key = tasks.check_idempotency_key(request.headers.get("Idempotency-Key"))
    allow_private = current_app.config["ALLOW_PRIVATE_URLS"]
    upload_key = inputs.upload_key_or_checked_url(
        data["inputImageUrl"], storage(), allow_private=allow_private
    )
    if data["webhookUrl"]:
        inputs.check_remote_url(data["webhookUrl"], allow_private=allow_private, field="webhookUrl")
    user_id = current_user_id()
    if upload_key is not None:
        uploads.take(upload_key, user_id)
    return _create(
        user_id,
        data["type"],
        data["inputImageUrl"],
        data["params"],
        key,
        raw=json_body(),
        webhook_url=data["webhookUrl"],
    )


@bp.get("/list")
def list_tasks():
    query = load_query(list_schema)
    files, lifetime = storage(), current_app.config["STORAGE_URL_SECONDS"]
    page, total = tasks.list_for_user(
        current_user_id(),
        limit=query["limit"],
        offset=query["offset"],
        status=query.get("status"),
        task_type=query.get("type"),
    )
    return jsonify(
        success=True,
        data={
            "tasks": [task_document(t, files, lifetime) for t in page],
            "total": total,
            "limit": query["limit"],
            "offset": query["offset"],
        },
    )


@bp.get("/<task_id>")
def detail(task_id: str):
    task = tasks.read_owned(task_id, current_user_id())
    return jsonify(success=True, data=dump_task(task, with_position=True))


@bp.put("/<task_id>/status")
def update_status(task_id: str):
    require_internal_caller()
    data = load_body(status_schema)
    tasks.get_any(task_id)
    if not lifecycle.transition(task_id, data["status"], data["resultUrls"], data["errorMessage"]):
        db.session.rollback()
        raise Conflict(f"illegal status transition to {data['status']!r}")
    db.session.commit()
    if data["status"] == "failed":
        results.discard(storage(), task_id)
    return jsonify(success=True, message="status updated")


@bp.post("/<task_id>/cancel")
def cancel(task_id: str):
    task = tasks.get_owned(task_id, current_user().id)
    if not lifecycle.fail(task.id, lifecycle.CANCELLED_MESSAGE):
        db.session.rollback()
        raise Conflict(
            f"task already ended ({task.status}); only pending or processing tasks can be cancelled"
        )
    db.session.commit()
    stop_work(redis_client(), storage(), task.id, task.type)
    db.session.refresh(task)
    return jsonify(success=True, data=dump_task(task))


@bp.post("/<task_id>/retry")
@rate_limiter.limit(create_limit, scope="create")
def retry(task_id: str):
    user = current_user()
    task = tasks.get_owned(task_id, user.id)
    if task.status != "failed":
        raise Conflict("only failed tasks can be retried")
    require_offered(task.type, dict(task.params or {}))
    return _create(
        user.id, task.type, task.input_image_url, dict(task.params or {}), None, webhook_url=task.webhook_url
    )


@bp.get("/<task_id>/download")
def download(task_id: str):
    """All results of the caller's task as one zip, streamed while it is built."""
    task = tasks.get_owned(task_id, current_user().id)
    keys = [k for k in task.result_urls or [] if not k.startswith(("http://", "https://"))]
    if task.status != "success" or not keys:
        raise Conflict("task has no downloadable results yet")
    return Response(
        stream_zip(storage(), result_entries(keys)),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="task-{task.id}.zip"'},
    )


def require_offered(name: str, params: dict) -> None:
    """Refuse a type this server cannot run now (its requirements unmet, or no longer registered),
    and an option it does not have (a client mistake: 4001, with what to send instead)."""
    task_type = task_types.registry().find(name)
    config = settings()
    reason = task_type.unavailable_reason(config) if task_type else "unknown type"
    if reason:
        raise Unavailable(f"{name} is not available: {reason}")
    option = task_type.unavailable_option(params, config)
    if option:
        raise BadRequest(option, details={"params": [option]})


def _create(
    user_id: int,
    task_type: str,
    url: str,
    params: dict,
    key: str | None,
    raw: Any = None,
    webhook_url: str | None = None,
):
    # A repeated key conflicts on the idempotency record's primary key; create_task then replays.
    idempotency = (key, tasks.request_fingerprint(raw)) if key else None
    created = tasks.create_task(
        user_id,
        task_type,
        url,
        params,
        webhook_url=webhook_url,
        idempotency=idempotency,
        active_limit=current_app.config["MAX_ACTIVE_TASKS_PER_USER"],
    )
    if not created.replayed:
        enqueue_created((created.task_id,), created.task_type, params)
    return created_response(created.body, created.status_code, created.replayed)


def created_response(body: dict, status_code: int, replayed: bool) -> Response:
    """A create's answer; a replay of an `Idempotency-Key` says so in a header."""
    response = jsonify(body)
    response.status_code = status_code
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def enqueue_created(task_ids: Sequence[str], task_type: str, params: dict, *, in_batch: bool = False) -> None:
    """Enqueue the new tasks' jobs and announce them after commit, in one Redis round trip.

    If Redis is down the tasks stay pending and the reconciler enqueues them.
    """
    spec = task_types.get(task_type).job_spec(current_app.config["JOB_OVERRIDES"], params, in_batch=in_batch)
    created = [events.TaskEvent(task_id, task_type, "pending", progress=0) for task_id in task_ids]
    try:
        queues.enqueue_tasks(
            redis_client(),
            [(task_id, task_type, spec) for task_id in task_ids],
            current_app.config["RETRY_DELAY_FACTOR"],
            also=lambda pipe: events.announce(pipe, created),
        )
    except Exception:
        log.exception("enqueue failed for task(s) %s; the reconciler will retry", ", ".join(task_ids))


def _workers_starting(task: Task | Row) -> bool | None:
    try:
        return queues.workers_starting(redis_client(), task_types.get(task.type).queue_for(task.params))
    except Exception:
        log.warning("worker registry unavailable for task %s", task.id, exc_info=True)
        return None


def _queue_position(task: Task | Row) -> int | None:
    try:
        queue = task_types.get(task.type).queue_for(task.params)
        return queues.queue_position(redis_client(), task.id, queue)
    except Exception:
        log.warning("queue position unavailable for task %s", task.id, exc_info=True)
        return None
