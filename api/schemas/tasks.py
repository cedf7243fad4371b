"""Schemas for tasks: create, list query, status update, and the task as returned."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from shared import task_types
from shared.models import TASK_STATUSES
from shared.schemas import OPTIONAL_KEYS, TaskSchema  # noqa: F401 - re-exported for routes and docs

URL_MAX = 2048


def known_type(name: str) -> None:
    """A registered task type (the registry is the app's: it may hold more than the built-ins)."""
    if name not in task_types.registry():
        raise ValidationError(f"Must be one of: {', '.join(task_types.registry().names())}.")


class HttpUrl(fields.String):
    """An absolute http(s) URL of bounded length."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        validate.Length(min=1, max=URL_MAX)(text)
        validate.URL(schemes={"http", "https"}, require_tld=False, error="must be an absolute http(s) URL")(
            text
        )
        return text


class TypedParams(Schema):
    """A `type` and its `params`, loaded by the type's own params schema (defaults filled in)."""

    type = fields.String(required=True, validate=known_type)
    params = fields.Dict(load_default=dict)

    @validates_schema(skip_on_field_errors=True)
    def check_params(self, data: dict[str, Any], **_: Any) -> None:
        try:
            data["params"] = task_types.get(data["type"]).params.load(data.get("params") or {})
        except ValidationError as exc:
            raise ValidationError({"params": exc.normalized_messages()}) from exc


class CreateTaskSchema(TypedParams):
    inputImageUrl = HttpUrl(required=True)
    webhookUrl = HttpUrl(load_default=None, allow_none=True)


class ListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    type = fields.String(validate=known_type)


class StatusUpdateSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(TASK_STATUSES))
    resultUrls = fields.List(HttpUrl(), load_default=list, validate=validate.Length(max=50))
    errorMessage = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @validates("resultUrls")
    def check_urls(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("resultUrls must not repeat")
