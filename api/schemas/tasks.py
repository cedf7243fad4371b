"""Schemas for tasks: create, list query, status update, and the task as returned."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from shared.models import TASK_STATUSES, TASK_TYPES

from .common import Timestamp

URL_MAX = 2048
DESCRIPTION_MAX = 500

TEMPLATES = ("all", "matting", "white_bg", "enhanced")
SCENES = ("street", "studio", "indoor")
CATEGORIES = ("shoes", "dress", "hoodie")


class BasicCleanParams(Schema):
    template = fields.String(load_default="all", validate=validate.OneOf(TEMPLATES))


class ModelPoseParams(Schema):
    scene = fields.String(load_default="studio", validate=validate.OneOf(SCENES))
    category = fields.String(load_default="dress", validate=validate.OneOf(CATEGORIES))
    productDescription = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))


PARAMS_SCHEMAS: dict[str, Schema] = {"basic_clean": BasicCleanParams(), "model_pose12": ModelPoseParams()}


class HttpUrl(fields.String):
    """An absolute http(s) URL of bounded length."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        validate.Length(min=1, max=URL_MAX)(text)
        validate.URL(schemes={"http", "https"}, require_tld=False, error="must be an absolute http(s) URL")(
            text
        )
        return text


class CreateTaskSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(TASK_TYPES))
    inputImageUrl = HttpUrl(required=True)
    params = fields.Dict(load_default=dict)

    @validates_schema(skip_on_field_errors=True)
    def check_params(self, data: dict[str, Any], **_: Any) -> None:
        try:
            data["params"] = PARAMS_SCHEMAS[data["type"]].load(data.get("params") or {})
        except ValidationError as exc:
            raise ValidationError({"params": exc.normalized_messages()}) from exc


class ListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    type = fields.String(validate=validate.OneOf(TASK_TYPES))


class StatusUpdateSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(TASK_STATUSES))
    resultUrls = fields.List(HttpUrl(), load_default=list, validate=validate.Length(max=50))
    errorMessage = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @validates("resultUrls")
    def check_urls(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("resultUrls must not repeat")


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
