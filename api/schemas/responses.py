"""Response shapes for the OpenAPI document: the two envelopes and the `data` the routes build by hand.

The resource schemas (`TaskSchema`, `UserSchema`, `LedgerEntrySchema`) stay the single description
of a resource; these only wrap them the way the routes do.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared import errors

from .auth import ApiKeySchema, LedgerEntrySchema, UserSchema
from .tasks import TaskSchema

ERROR_CODES: dict[int, str] = {
    errors.BAD_REQUEST: "bad or missing parameter (400; 413 body too large; 415 not JSON)",
    errors.NOT_ALLOWED: "not logged in (401) or logged in but not allowed (403)",
    errors.NOT_FOUND: "task, batch or user not found, including someone else's task or batch (404)",
    errors.CONFLICT: "conflicts with the task's or batch's state: illegal transition, already ended, "
    "nothing to download yet, key reused (409)",
    errors.RATE_LIMITED: "too many requests (429)",
    errors.NOT_MEMBER: "not a member, or membership expired (403)",
    errors.QUOTA_EXHAUSTED: "quota exhausted (402); for a batch, `details: {needed, balance}`",
    errors.TOO_MANY_ACTIVE: "too many tasks pending or processing, or batches in progress (429); "
    "`details: {limit, active}`; retry once one ends",
    errors.ACCOUNT_UNAVAILABLE: "account missing (404) or disabled (403)",
    errors.INTERNAL: "unexpected server error (500)",
    errors.UNAVAILABLE: "database or Redis unavailable (503)",
}
"""Every business code the API answers with, and what it means."""

STATUS_CODES: dict[int, tuple[int, ...]] = {
    400: (errors.BAD_REQUEST,),
    401: (errors.NOT_ALLOWED,),
    402: (errors.QUOTA_EXHAUSTED,),
    403: (errors.NOT_ALLOWED, errors.NOT_MEMBER, errors.ACCOUNT_UNAVAILABLE),
    404: (errors.NOT_FOUND, errors.ACCOUNT_UNAVAILABLE),
    405: (errors.BAD_REQUEST,),
    409: (errors.CONFLICT,),
    413: (errors.BAD_REQUEST,),
    415: (errors.BAD_REQUEST,),
    429: (errors.RATE_LIMITED, errors.TOO_MANY_ACTIVE),
    500: (errors.INTERNAL,),
    503: (errors.UNAVAILABLE,),
}
"""Which business codes come with which HTTP status (the envelope's `code` for that status)."""


class ErrorSchema(Schema):
    """The error envelope: `{success: false, code, message, details?}`."""

    success = fields.Constant(False, required=True)
    code = fields.Integer(required=True, validate=validate.OneOf(tuple(ERROR_CODES)))
    message = fields.String(required=True)
    details = fields.Dict(metadata={"description": "e.g. `fields`: messages per invalid field"})


class StatusUpdatedSchema(Schema):
    """`PUT /api/task/{taskId}/status` answers with a message instead of `data` (fixed by the seed)."""

    success = fields.Constant(True, required=True)
    message = fields.String(required=True)


class WebhookDeliverySchema(Schema):
    attempt = fields.Integer(required=True)
    ok = fields.Boolean(required=True)
    statusCode = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    at = fields.DateTime(required=True)


class WebhookStatusSchema(Schema):
    url = fields.String(required=True)
    lastDelivery = fields.Nested(WebhookDeliverySchema, required=True, allow_none=True)


class TaskDetailSchema(TaskSchema):
    """A task as `GET /api/task/{taskId}` shows it: its place in the queue, its webhook deliveries."""

    queuePosition = fields.Integer(
        allow_none=True, metadata={"description": "jobs ahead of this one while pending"}
    )
    workersStarting = fields.Boolean(
        allow_none=True,
        metadata={
            "description": "while pending: true when no worker serving this task's queue is ready yet "
            "(none registered, or all still loading), so the task waits for start-up"
        },
    )
    webhook = fields.Nested(
        WebhookStatusSchema, metadata={"description": "when the task has a `webhookUrl`: the last delivery"}
    )


class TaskParamSchema(Schema):
    """One param of a task type: what `params` accepts for it."""

    name = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(("string", "integer", "number", "boolean")))
    default = fields.Raw(required=True, allow_none=True, metadata={"description": "used when left out"})
    allowed = fields.List(
        fields.Raw(), required=True, allow_none=True, metadata={"description": "the only values accepted"}
    )
    min = fields.Float(
        required=True, allow_none=True, metadata={"description": "lowest value (a string: shortest length)"}
    )
    max = fields.Float(
        required=True, allow_none=True, metadata={"description": "highest value (a string: longest length)"}
    )


class TaskOutputsSchema(Schema):
    params = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "the param values these outputs are for (empty: any)"},
    )
    names = fields.List(fields.String(), required=True, metadata={"description": "output names, in order"})


class TaskOptionSchema(Schema):
    """A boolean param with needs of its own (basic_clean's `hd`): whether this server has it."""

    param = fields.String(required=True)
    available = fields.Boolean(required=True)
    unavailableReason = fields.String(required=True, allow_none=True)


class TaskTypeSchema(Schema):
    name = fields.String(required=True)
    available = fields.Boolean(required=True)
    unavailableReason = fields.String(required=True, allow_none=True)
    params = fields.List(
        fields.Nested(TaskParamSchema), required=True, metadata={"description": "in form order"}
    )
    outputs = fields.List(fields.Nested(TaskOutputsSchema), required=True)
    options = fields.List(fields.Nested(TaskOptionSchema), required=True)


class TaskTypesSchema(Schema):
    types = fields.List(fields.Nested(TaskTypeSchema), required=True)


class CreatedTaskSchema(Schema):
    taskId = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("pending",)))
    createdAt = fields.DateTime(required=True)


class TaskPageSchema(Schema):
    tasks = fields.List(fields.Nested(TaskSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class TokensSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    accessToken = fields.String(required=True)
    refreshToken = fields.String(required=True)


class LoggedOutSchema(Schema):
    loggedOut = fields.Boolean(required=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(required=True, metadata={"description": "the whole key: shown this once only"})


class ApiKeyListSchema(Schema):
    items = fields.List(fields.Nested(ApiKeySchema), required=True)


class MeSchema(Schema):
    user = fields.Nested(UserSchema, required=True)


class QuotaSchema(Schema):
    quota = fields.Integer(required=True)
    entries = fields.List(fields.Nested(LedgerEntrySchema), required=True)


class UploadSchema(Schema):
    url = fields.String(required=True, metadata={"description": "usable as `inputImageUrl`"})
    key = fields.String(required=True)
    size = fields.Integer(required=True)
    contentType = fields.String(required=True)


class UploadFormSchema(Schema):
    """The multipart form of `POST /api/uploads`."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ok",)))


class ReadySchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    database = fields.String(required=True)
    redis = fields.String(required=True)


class WebhookAcceptedSchema(Schema):
    accepted = fields.Boolean(required=True)


class WebhookSecretSchema(Schema):
    secret = fields.String(
        required=True, metadata={"description": "signs webhook deliveries (Standard Webhooks, HMAC-SHA256)"}
    )
    scheme = fields.String(required=True)


def envelope(data: type[Schema], name: str) -> type[Schema]:
    """The success envelope `{success: true, data}` around `data`."""
    return Schema.from_dict(
        {"success": fields.Constant(True, required=True), "data": fields.Nested(data, required=True)},
        name=name,
    )
