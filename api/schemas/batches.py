"""Schemas for batches: create (many items of one type and params), the list query, the batch."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from shared.batches import REF_MAX
from shared.schemas import TaskSchema

from .tasks import HttpUrl, TypedParams

REF_PATTERN = r"^(?!\.\.?$)[^/\\\x00-\x1f\x7f]+$"
"""A ref names the item's folder in the batch's zip: no path separators or control characters,
not `.` or `..`."""


class BatchItemSchema(Schema):
    inputImageUrl = HttpUrl(required=True)
    ref = fields.String(
        load_default=None,
        allow_none=True,
        validate=[
            validate.Length(min=1, max=REF_MAX),
            validate.Regexp(REF_PATTERN, error="must not hold / or \\ or control characters, nor be . or .."),
        ],
        metadata={
            "description": "your name for the item (a SKU, a file name): the folder of its results in "
            "the batch's zip. Items may share a ref (several photos of one SKU): their files in "
            "that folder are then numbered `1-`, `2-`, ... in item order.",
        },
    )


def max_items() -> int:
    return current_app.config["MAX_BATCH_ITEMS"]


class CreateBatchSchema(TypedParams):
    items = fields.List(
        fields.Nested(BatchItemSchema),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "1 to `MAX_BATCH_ITEMS` (100 by default) photos"},
    )
    webhookUrl = HttpUrl(
        load_default=None,
        allow_none=True,
        metadata={"description": "receives `batch.completed` when the last task ends (Standard Webhooks)"},
    )

    @validates("items")
    def check_items(self, items: list[dict[str, Any]], **_: Any) -> None:
        limit = max_items()
        if len(items) > limit:
            raise ValidationError(f"must hold 1 to {limit} items")


class BatchListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))


# Answers (documented shapes; `shared.batches.document` builds them) ------------------------


class BatchCountsSchema(Schema):
    pending = fields.Integer()
    processing = fields.Integer()
    success = fields.Integer()
    failed = fields.Integer()


class BatchSchema(Schema):
    id = fields.String()
    type = fields.String()
    params = fields.Dict()
    status = fields.String(
        validate=validate.OneOf(("pending", "processing", "completed")),
        metadata={"description": "`completed` once every task ended (success or failed)"},
    )
    total = fields.Integer()
    counts = fields.Nested(BatchCountsSchema)
    progress = fields.Integer(metadata={"description": "0-100 over all tasks (an ended task counts 100)"})
    webhookUrl = fields.String(allow_none=True)
    createdAt = fields.String()
    completedAt = fields.String()


class BatchDetailSchema(BatchSchema):
    tasks = fields.List(fields.Nested(TaskSchema), metadata={"description": "in item order"})


class BatchPageSchema(Schema):
    batches = fields.List(fields.Nested(BatchSchema))
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()
