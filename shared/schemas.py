"""Schemas and fields both processes dump with: the task document (API answers, webhooks, streams)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import Row

from .models import Task
from .result_files import result_entries
from .storage import Storage


class Timestamp(fields.DateTime):
    """ISO 8601 in UTC with a `Z` suffix (SQLite returns naive datetimes; they are UTC)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso_timestamp(value)


class StringId(fields.Field):
    """Database ids go out as strings (SPEC: ids are strings)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class ResultSchema(Schema):
    """One result file: its name (as in the zip), link, format, pixel size and bytes."""

    name = fields.String()
    url = fields.String()
    format = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    bytes = fields.Integer(allow_none=True)
    upscaled = fields.Boolean()


class TaskSchema(Schema):
    """A task as clients see it; `resultUrls` are resolved to links by the route."""

    id = fields.String()
    type = fields.String()
    status = fields.String()
    inputImageUrl = fields.String(attribute="input_image_url")
    params = fields.Dict()
    resultUrls = fields.List(fields.String(), attribute="result_urls")
    results = fields.List(fields.Nested(ResultSchema), dump_default=list)
    errorMessage = fields.String(attribute="error_message")
    progress = fields.Integer()
    createdAt = Timestamp(attribute="created_at")
    updatedAt = Timestamp(attribute="updated_at")
    startedAt = Timestamp(attribute="started_at")
    completedAt = Timestamp(attribute="completed_at")
    batchId = fields.String(attribute="batch_id", metadata={"description": "The batch it belongs to."})
    ref = fields.String(
        attribute="batch_ref", metadata={"description": "The client's reference for this item of its batch."}
    )
    index = fields.Integer(
        attribute="batch_index", metadata={"description": "Its place in its batch, from 0."}
    )


OPTIONAL_KEYS = ("errorMessage", "startedAt", "completedAt", "batchId", "ref", "index")
"""Left out of the task JSON while empty (SPEC marks them optional; a single task has no batch keys)."""


def result_links(keys: list[str], storage: Storage, lifetime: int) -> list[str]:
    """Stored result keys as links (signed or public per storage); absolute URLs pass through."""
    return [k if k.startswith(("http://", "https://")) else storage.url(k, expires_in=lifetime) for k in keys]


def task_document(task: Task | Row, storage: Storage, lifetime: int) -> dict[str, Any]:
    """The task as clients see it (`TaskSchema`'s shape), result links resolved, empty optional
    keys left out.

    `task`: an ORM object or a row with the tasks table's columns (the read paths select rows).
    Built by hand rather than through `TaskSchema.dump`: it is on every read and marshmallow's
    field machinery was the largest single cost of a task list (docs/PERFORMANCE.md).
    `TaskSchema` stays the documented shape (OpenAPI), and a test holds the two equal.
    """
    links = result_links(task.result_urls or [], storage, lifetime)
    data: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "inputImageUrl": task.input_image_url,
        "params": dict(task.params) if task.params is not None else None,
        "resultUrls": links,
        "results": result_entries(task.result_urls or [], task.result_files, links),
        "progress": task.progress,
        "createdAt": iso_timestamp(task.created_at),
        "updatedAt": iso_timestamp(task.updated_at),
    }
    if task.error_message is not None:
        data["errorMessage"] = task.error_message
    if task.started_at is not None:
        data["startedAt"] = iso_timestamp(task.started_at)
    if task.completed_at is not None:
        data["completedAt"] = iso_timestamp(task.completed_at)
    if task.batch_id is not None:
        data["batchId"] = task.batch_id
        data["ref"] = task.batch_ref
        data["index"] = task.batch_index
    return data


def iso_timestamp(value: datetime | None) -> str | None:
    """`Timestamp`'s format: ISO 8601 in UTC, milliseconds, `Z` (naive values are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
