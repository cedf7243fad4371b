"""Schemas and fields both processes dump with: the task document (API answers, webhooks, streams)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import Row

from .models import Task
from .storage import Storage


class Timestamp(fields.DateTime):
    """ISO 8601 in UTC with a `Z` suffix (SQLite returns naive datetimes; they are UTC)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StringId(fields.Field):
    """Database ids go out as strings (SPEC: ids are strings)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class TaskSchema(Schema):
    """A task as clients see it; `resultUrls` are resolved to links by the route."""

    id = fields.String()
    type = fields.String()
    status = fields.String()
    inputImageUrl = fields.String(attribute="input_image_url")
    params = fields.Dict()
    resultUrls = fields.List(fields.String(), attribute="result_urls")
    errorMessage = fields.String(attribute="error_message")
    progress = fields.Integer()
    createdAt = Timestamp(attribute="created_at")
    updatedAt = Timestamp(attribute="updated_at")
    startedAt = Timestamp(attribute="started_at")
    completedAt = Timestamp(attribute="completed_at")


OPTIONAL_KEYS = ("errorMessage", "startedAt", "completedAt")
"""Left out of the task JSON while empty (SPEC marks them optional)."""

_task_schema = TaskSchema()


def result_links(keys: list[str], storage: Storage, lifetime: int) -> list[str]:
    """Stored result keys as links (signed or public per storage); absolute URLs pass through."""
    return [k if k.startswith(("http://", "https://")) else storage.url(k, expires_in=lifetime) for k in keys]


def task_document(task: Task | Row, storage: Storage, lifetime: int) -> dict[str, Any]:
    """The task as clients see it, with result links resolved and empty optional keys left out.

    `task`: an ORM object or a row of the tasks table (the read paths select rows).
    """
    # A row is dumped through its mapping: marshmallow reads `obj[key]` first, and a Row answers
    # a string key with an exception (slow) before the attribute is tried.
    data = _task_schema.dump(task._mapping if isinstance(task, Row) else task)
    data["resultUrls"] = result_links(task.result_urls or [], storage, lifetime)
    for key in OPTIONAL_KEYS:
        if data.get(key) is None:
            data.pop(key, None)
    return data
