"""Batches: create (all-or-nothing charge), list, detail, cancel, download every result."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from shared import batches, inputs, lifecycle, tasks, uploads
from shared.app import redis_client, settings, storage
from shared.archive import stream_zip
from shared.cancel import stop_work
from shared.db import db
from shared.errors import BadRequest, Conflict
from shared.schemas import task_document

from ..auth import current_user, current_user_id
from ..body import load_body, load_query
from ..extensions import rate_limiter
from ..schemas.batches import BatchListQuerySchema, CreateBatchSchema
from .tasks import create_limit, created_response, enqueue_created, require_offered

bp = Blueprint("batches", __name__, url_prefix="/api/batches")

create_schema = CreateBatchSchema()
list_schema = BatchListQuerySchema()


@bp.post("")
@rate_limiter.limit(create_limit, scope="create")
def create():
    data = load_body(create_schema, max_bytes=current_app.config["MAX_BATCH_JSON_BYTES"])
    require_offered(data["type"], data["params"])
    key = tasks.check_idempotency_key(request.headers.get("Idempotency-Key"))
    config = current_app.config
    if data["webhookUrl"]:
        inputs.check_remote_url(
            data["webhookUrl"], allow_private=config["ALLOW_PRIVATE_URLS"], field="webhookUrl"
        )
    user_id = current_user_id()
    items = [_checked_item(index, item, user_id) for index, item in enumerate(data["items"])]
    created = batches.create_batch(
        user_id,
        data["type"],
        data["params"],
        items,
        webhook_url=data["webhookUrl"],
        idempotency=(key, tasks.request_fingerprint(request.get_json())) if key else None,
        active_limit=config["MAX_ACTIVE_BATCHES_PER_USER"],
    )
    if not created.replayed:
        enqueue_created(created.task_ids, data["type"], data["params"], in_batch=True)
    return created_response(created.body, created.status_code, created.replayed)


def _checked_item(index: int, item: dict, user_id: int) -> batches.Item:
    """One item's input checked as a task create checks it; an error names the item."""
    url = item["inputImageUrl"]
    try:
        allow_private = current_app.config["ALLOW_PRIVATE_URLS"]
        upload_key = inputs.upload_key_or_checked_url(url, storage(), allow_private=allow_private)
        if upload_key is not None:
            uploads.take(upload_key, user_id)  # in the create's transaction: a refusal undoes it
    except BadRequest as exc:
        fields = (exc.details or {}).get("fields", {})
        raise BadRequest("invalid parameters", details={"fields": {"items": {str(index): fields}}}) from exc
    return batches.Item(url, item.get("ref"))


@bp.get("")
def index():
    query = load_query(list_schema)
    page, total = batches.list_for_user(current_user().id, limit=query["limit"], offset=query["offset"])
    return jsonify(
        success=True,
        data={"batches": page, "total": total, "limit": query["limit"], "offset": query["offset"]},
    )


@bp.get("/<batch_id>")
def detail(batch_id: str):
    batch = batches.get_owned(batch_id, current_user().id)
    return jsonify(success=True, data=_detail(batch))


def _detail(batch) -> dict:
    lifetime = settings().STORAGE_URL_SECONDS
    files = storage()
    members = batches.batch_tasks(batch.id)
    document = batches.document(batch, *batches.tally(members))
    return {**document, "tasks": [task_document(task, files, lifetime) for task in members]}


@bp.post("/<batch_id>/cancel")
def cancel(batch_id: str):
    """Cancel every task of the batch that has not ended; each is refunded once (`lifecycle.fail`)."""
    batch = batches.get_owned(batch_id, current_user().id)
    cancelled = [
        (task_id, task_type)
        for task_id, task_type in batches.active_task_ids(batch.id)
        if lifecycle.fail(task_id, lifecycle.CANCELLED_MESSAGE)
    ]
    if not cancelled:
        db.session.rollback()
        raise Conflict(
            "batch already completed; only a batch with tasks pending or processing can be cancelled"
        )
    db.session.commit()
    for task_id, task_type in cancelled:
        stop_work(redis_client(), storage(), task_id, task_type)
    db.session.refresh(batch)
    return jsonify(success=True, data=_detail(batch))


@bp.get("/<batch_id>/download")
def download(batch_id: str):
    """Every successful result of the batch as one zip, `<ref or index>/<name>`, streamed as built."""
    batch = batches.get_owned(batch_id, current_user().id)
    entries = batches.archive_entries(batches.batch_tasks(batch.id))
    if not entries:
        raise Conflict("batch has no downloadable results yet")
    db.session.close()  # the stream may run long: give the connection back first
    return Response(
        stream_zip(storage(), entries),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.zip"'},
    )
