"""The OpenAPI 3 document, generated from the marshmallow schemas, and the docs page that renders it.

What each operation takes and answers is data (`OPERATIONS`); the shapes come from the schema
classes the routes load and dump with, converted by apispec. The document lists only operations
whose route the app really has, and `undocumented_routes` tells which routes lack an operation
(the tests fail on either gap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify
from marshmallow import Schema, fields

from shared.task_types import Registry
from shared.tasks import IDEMPOTENCY_KEY_MAX

from .pages import entry_page, secure_blueprint
from .routes.files import SERVED_TYPES
from .schemas.auth import (
    PASSWORD_RULE,
    ApiKeyCreateSchema,
    ApiKeySchema,
    LedgerEntrySchema,
    LoginSchema,
    PasswordChangeSchema,
    RegisterSchema,
    UserSchema,
)
from .schemas.batches import (
    BatchDetailSchema,
    BatchListQuerySchema,
    BatchPageSchema,
    BatchSchema,
    CreateBatchSchema,
)
from .schemas.common import StringId
from .schemas.responses import (
    ERROR_CODES,
    STATUS_CODES,
    ApiKeyCreatedSchema,
    ApiKeyListSchema,
    CreatedTaskSchema,
    ErrorSchema,
    HealthSchema,
    LoggedOutSchema,
    MeSchema,
    QuotaSchema,
    ReadySchema,
    StatusUpdatedSchema,
    TaskDetailSchema,
    TaskPageSchema,
    TaskTypesSchema,
    TokensSchema,
    UploadFormSchema,
    UploadSchema,
    WebhookAcceptedSchema,
    WebhookSecretSchema,
    envelope,
)
from .schemas.tasks import (
    URL_MAX,
    CreateTaskSchema,
    HttpUrl,
    ListQuerySchema,
    StatusUpdateSchema,
    TaskSchema,
    known_type,
)

STATIC_DIR = Path(__file__).resolve().parent / "static" / "apidocs"

BEARER, API_KEY, REFRESH, SERVICE, METRICS, BASIC = (
    "bearerAuth",
    "apiKey",
    "refreshToken",
    "serviceToken",
    "metricsToken",
    "basicAuth",
)

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "access token from `POST /api/auth/login` (or register / refresh)",
    },
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "an API key (`sk_...`) from `POST /api/keys`, for shop backends; also accepted as "
        "`Authorization: Bearer sk_...`. Works wherever an access token does, with the account's "
        "membership, quota and rate limits, except key management, logout and password change",
    },
    REFRESH: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "refresh token from `POST /api/auth/login`; accepted only by `POST /api/auth/refresh` "
        "(each is good once: refreshing answers the next one) and `POST /api/auth/logout`",
    },
    SERVICE: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Service-Token",
        "description": "internal callers (`SERVICE_TOKEN`); an admin's access token works too",
    },
    METRICS: {
        "type": "http",
        "scheme": "bearer",
        "description": "the metrics token from configuration (`METRICS_TOKEN`)",
    },
    BASIC: {"type": "http", "scheme": "basic", "description": "dashboard credentials from configuration"},
}

JSON = "application/json"
BINARY = {"type": "string", "format": "binary"}
RAW_CONTENT: dict[str, dict[str, Any]] = {
    "zip": {"application/zip": {"schema": BINARY}},
    "image": {media: {"schema": BINARY} for media in sorted(set(SERVED_TYPES.values()))},
    "sse": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "description": "one event per change; comment lines (`: heartbeat`) keep the stream open",
                "properties": {
                    "event": {"type": "string", "enum": ["task"]},
                    "data": {"type": "string", "description": "the task as JSON, shaped like `Task`"},
                },
                "required": ["event", "data"],
            }
        }
    },
    "metrics": {"text/plain": {"schema": {"type": "string", "description": "Prometheus text format 0.0.4"}}},
    "html": {"text/html": {"schema": {"type": "string"}}},
    "challenge": {"text/plain": {"schema": {"type": "string"}}},
}
"""Non-JSON answers, by the name an operation uses in `response`."""

# Error statuses shared by whole groups of operations.
AUTH_ERRORS = (401, 403, 404)
"""A Bearer token: missing or bad (401/4003), account disabled (403/1004) or gone (404/1004)."""
JSON_ERRORS = (400, 413, 415)
"""A JSON body: invalid (400), too large (413), not JSON (415)."""
COMMON_ERRORS = (429, 500, 503)
"""Any operation: rate limited, unexpected error, database or Redis down."""

BATCH_ID = {
    "name": "batchId",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    "description": "batch id as returned by create",
}
TASK_ID = {
    "name": "taskId",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    "description": "task id as returned by create",
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": "^[ -~]+$"},
    "description": "a repeat with the same key and body replays the first answer (48 h, per user) "
    "and charges nothing; the same key with another body is 409/4009",
}
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
URL_PATTERN = rf"^https?://{_LABEL}(\.{_LABEL})*(:[1-9][0-9]{{0,3}})?(/[!-~]*)?$"
"""What `HttpUrl` accepts (a host name or address; the server also refuses private addresses)."""
PASSWORD_PATTERN = "[A-Za-z].*[0-9]|[0-9].*[A-Za-z]"
"""At least one letter and one digit (`RegisterSchema.check_password`)."""
ACCESS_TOKEN_QUERY = {
    "name": "access_token",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "the access token, for EventSource clients that cannot send headers",
}
RUNNINGHUB_CALLBACK = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "example": "TASK_END"},
        "taskId": {"type": "string", "description": "RunningHub's task id"},
        "eventData": {"type": "string", "description": "JSON text of the outputs envelope"},
    },
}
"""RunningHub's callback body (see docs/RUNNINGHUB.md); RunningHub's shape, so no schema class of ours."""
FILE_QUERY = [
    {"name": "expires", "in": "query", "required": True, "schema": {"type": "string"}},
    {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"}},
]


@dataclass(frozen=True)
class Operation:
    """One documented operation; `path` uses OpenAPI `{name}` placeholders."""

    method: str
    path: str
    summary: str
    tag: str
    response: type[Schema] | str | None
    """A `data` schema (wrapped in the success envelope), a key of RAW_CONTENT, or a whole-body schema."""
    errors: tuple[int, ...]
    security: tuple[str, ...] = (BEARER, API_KEY)
    status: int = 200
    body: type[Schema] | dict[str, Any] | None = None
    form: type[Schema] | None = None
    query: type[Schema] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    description: str = ""
    enveloped: bool = True
    raw_errors: dict[int, str] = field(default_factory=dict)
    """Error statuses answered outside the envelope, with a key of RAW_CONTENT."""


OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "Liveness: the process is up", "probes", HealthSchema, (500,), security=()),
    Operation(
        "get",
        "/readyz",
        "Readiness: database and Redis answer",
        "probes",
        ReadySchema,
        (500, 503),
        security=(),
    ),
    Operation(
        "post",
        "/api/auth/register",
        "Create an account (not a member, quota 0) and log in",
        "auth",
        TokensSchema,
        (*JSON_ERRORS, 409),
        security=(),
        status=201,
        body=RegisterSchema,
    ),
    Operation(
        "post",
        "/api/auth/login",
        "Log in: access and refresh tokens",
        "auth",
        TokensSchema,
        (*JSON_ERRORS, 401),
        security=(),
        body=LoginSchema,
    ),
    Operation(
        "post",
        "/api/auth/refresh",
        "Spend a refresh token for a new access and refresh token",
        "auth",
        TokensSchema,
        AUTH_ERRORS,
        security=(REFRESH,),
        description="Refresh tokens rotate: each is good once. Presenting a spent one again ends "
        "every token of that login (401), the newest pair included: someone else holds a copy.",
    ),
    Operation(
        "post",
        "/api/auth/logout",
        "End this login: its refresh token and its access tokens stop at once",
        "auth",
        LoggedOutSchema,
        (*AUTH_ERRORS,),
        security=(REFRESH, BEARER),
    ),
    Operation(
        "post",
        "/api/auth/password",
        "Change the password; every session ends and the caller gets a new token pair",
        "auth",
        TokensSchema,
        (*JSON_ERRORS, *AUTH_ERRORS),
        security=(BEARER,),
        body=PasswordChangeSchema,
    ),
    Operation(
        "post",
        "/api/keys",
        "Create an API key (the whole key is in this answer only)",
        "keys",
        ApiKeyCreatedSchema,
        (*JSON_ERRORS, *AUTH_ERRORS, 409),
        security=(BEARER,),
        status=201,
        body=ApiKeyCreateSchema,
        description="Needs a login token: an API key cannot create, list or revoke keys (403/4003). "
        "At most 20 live keys per account (409/4009).",
    ),
    Operation(
        "get",
        "/api/keys",
        "The caller's live API keys",
        "keys",
        ApiKeyListSchema,
        AUTH_ERRORS,
        security=(BEARER,),
    ),
    Operation(
        "delete",
        "/api/keys/{keyId}",
        "Revoke an API key at once",
        "keys",
        ApiKeySchema,
        AUTH_ERRORS,
        security=(BEARER,),
        parameters=(
            {
                "name": "keyId",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
        ),
    ),
    Operation("get", "/api/auth/me", "The caller's account", "auth", MeSchema, AUTH_ERRORS),
    Operation(
        "get",
        "/api/task/types",
        "The task types this server knows: params, outputs, availability",
        "tasks",
        TaskTypesSchema,
        (),
        security=(),
        description="Each type with its params (type, allowed values, default, range) and its output "
        "names; a type this server cannot run is listed with `available: false` and the reason.",
    ),
    Operation(
        "post",
        "/api/task/create",
        "Create a task (one unit of quota)",
        "tasks",
        CreatedTaskSchema,
        (*JSON_ERRORS, *AUTH_ERRORS, 402, 409),
        status=201,
        body=CreateTaskSchema,
        parameters=(IDEMPOTENCY_KEY,),
        description="Checks run in this order: parameters (400/4001), token (401/4003), membership "
        "(403/1002), tasks pending or processing under the per-user limit (429/1005), quota "
        "(402/1003). `inputImageUrl` is a public http(s) URL or a link from "
        "`POST /api/uploads`. 503/5003 also when the type is not available on this server "
        "(`GET /api/task/types` says why).",
    ),
    Operation(
        "get",
        "/api/task/list",
        "The caller's tasks, newest first",
        "tasks",
        TaskPageSchema,
        (400, *AUTH_ERRORS),
        query=ListQuerySchema,
    ),
    Operation(
        "get",
        "/api/task/{taskId}",
        "One of the caller's tasks",
        "tasks",
        TaskDetailSchema,
        AUTH_ERRORS,
        parameters=(TASK_ID,),
        description="Poll every few seconds while `pending` or `processing`, or use the event stream.",
    ),
    Operation(
        "put",
        "/api/task/{taskId}/status",
        "Internal: move a task to a new status",
        "internal",
        StatusUpdatedSchema,
        (*JSON_ERRORS, *AUTH_ERRORS, 409),
        security=(SERVICE, BEARER),
        body=StatusUpdateSchema,
        parameters=(TASK_ID,),
        enveloped=False,
        description="Service token or an admin's access token (others: 403/4003). Only legal moves "
        "(`pending → processing → success | failed`, `pending → failed`); others are 409/4009. "
        "Moving to `failed` refunds the unit once.",
    ),
    Operation(
        "post",
        "/api/task/{taskId}/cancel",
        "Cancel a pending or processing task (refunded)",
        "tasks",
        TaskSchema,
        (*AUTH_ERRORS, 409),
        parameters=(TASK_ID,),
    ),
    Operation(
        "post",
        "/api/task/{taskId}/retry",
        "A failed task's input and params as a new task",
        "tasks",
        CreatedTaskSchema,
        (400, *AUTH_ERRORS, 402, 409),
        status=201,
        parameters=(TASK_ID,),
        description="Runs every create check again and costs one unit.",
    ),
    Operation(
        "get",
        "/api/task/{taskId}/download",
        "All results of a succeeded task as one zip",
        "tasks",
        "zip",
        (*AUTH_ERRORS, 409),
        parameters=(TASK_ID,),
    ),
    Operation(
        "get",
        "/api/task/{taskId}/events",
        "Server-Sent Events: the task on every change, until it ends",
        "tasks",
        "sse",
        AUTH_ERRORS,
        parameters=(TASK_ID, ACCESS_TOKEN_QUERY),
        description="`retry:` first, then the task now and on every change; closes when the task "
        "ends (or after `SSE_MAX_SECONDS`). Authenticate with the header or `access_token`.",
    ),
    Operation(
        "get", "/api/quota", "Quota balance and recent ledger entries", "account", QuotaSchema, AUTH_ERRORS
    ),
    Operation(
        "post",
        "/api/batches",
        "Create a batch: one task per item, all charged at once (N units) or none",
        "batches",
        BatchSchema,
        (*JSON_ERRORS, *AUTH_ERRORS, 402, 409),
        status=201,
        body=CreateBatchSchema,
        parameters=(IDEMPOTENCY_KEY,),
        description="Every item is checked as a task create checks its input (an error names the item: "
        "`details.fields.items.<index>`), then membership (403/1002), batches in progress under "
        "the per-user limit (429/1005), and the charge: one statement takes N units or nothing, "
        "a short balance is 402/1003 with `details: {needed, balance}`. The tasks run after single "
        "tasks in every worker's order (bulk queues), so a batch never delays anyone's single task.",
    ),
    Operation(
        "get",
        "/api/batches",
        "The caller's batches, newest first",
        "batches",
        BatchPageSchema,
        (400, *AUTH_ERRORS),
        query=BatchListQuerySchema,
    ),
    Operation(
        "get",
        "/api/batches/{batchId}",
        "One of the caller's batches, with its tasks in item order",
        "batches",
        BatchDetailSchema,
        AUTH_ERRORS,
        parameters=(BATCH_ID,),
    ),
    Operation(
        "post",
        "/api/batches/{batchId}/cancel",
        "Cancel every task of the batch not yet ended (each refunded once)",
        "batches",
        BatchDetailSchema,
        (*AUTH_ERRORS, 409),
        parameters=(BATCH_ID,),
    ),
    Operation(
        "get",
        "/api/batches/{batchId}/download",
        "Every successful result of the batch as one zip, `<ref or 001>/<result name>`, streamed",
        "batches",
        "zip",
        (*AUTH_ERRORS, 409),
        parameters=(BATCH_ID,),
    ),
    Operation(
        "post",
        "/api/uploads",
        "Upload an input photo (JPEG, PNG or WebP); members only (403/1002); 409 when the "
        "caller's uploads no task has used yet would exceed `UPLOAD_STORAGE_CAP_BYTES`",
        "files",
        UploadSchema,
        (400, 409, 413, *AUTH_ERRORS),
        status=201,
        form=UploadFormSchema,
    ),
    Operation(
        "get",
        "/files/{key}",
        "A stored file behind a signed link (local-disk storage)",
        "files",
        "image",
        (403, 404),
        security=(),
        parameters=(
            {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
            *FILE_QUERY,
        ),
    ),
    Operation(
        "get",
        "/api/webhooks/secret",
        "The caller's webhook signing secret",
        "webhooks",
        WebhookSecretSchema,
        AUTH_ERRORS,
    ),
    Operation(
        "post",
        "/api/webhooks/secret/rotate",
        "Replace the caller's webhook signing secret",
        "webhooks",
        WebhookSecretSchema,
        AUTH_ERRORS,
    ),
    Operation(
        "post",
        "/api/webhooks/runninghub/{secret}",
        "Internal: RunningHub's task-end callback",
        "internal",
        WebhookAcceptedSchema,
        (404,),
        security=(),
        parameters=(
            {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "task", "in": "query", "required": False, "schema": {"type": "string"}},
        ),
        body=RUNNINGHUB_CALLBACK,
        description="The path secret is `RUNNINGHUB_WEBHOOK_SECRET` (404 otherwise). A hint only: "
        "the result is collected from RunningHub itself. `task` names our task, so a RunningHub "
        "task whose create timed out is recognised by its callback.",
    ),
    Operation(
        "get",
        "/metrics",
        "Prometheus metrics",
        "operations",
        "metrics",
        (401, 404),
        security=(METRICS,),
        description="`Authorization: Bearer <METRICS_TOKEN>`; 401 with a wrong token, 404 when no "
        "token is configured.",
    ),
    Operation(
        "get",
        "/rq",
        "rq-dashboard (admins only)",
        "operations",
        "html",
        (401,),
        security=(BEARER, BASIC),
        description="An admin's access token or the dashboard's basic-auth credentials; anyone else "
        "gets 401 in the envelope with a basic-auth challenge (`WWW-Authenticate`).",
    ),
)
"""Every operation of the API: the document is built from this and the schema classes."""

IGNORED_ENDPOINTS = {"static", "console.index", "apidocs.openapi_json", "apidocs.docs_page"}
"""Routes that are pages or assets, not API operations (blueprint `*.static` routes too)."""
IGNORED_UNDER = ("/rq/",)
"""rq-dashboard's own pages and JSON under its mount point (only `/rq` itself is documented)."""

FIELD_OVERRIDES: dict[tuple[type[Schema], str], dict[str, Any]] = {
    (UserSchema, "membershipActive"): {"type": "boolean", "description": "member now (not expired)"},
    (CreateTaskSchema, "params"): {"description": "per `type`, as `GET /api/task/types` lists them"},
    (StatusUpdateSchema, "resultUrls"): {"uniqueItems": True},
    **{
        (schema, name): {
            "minLength": 8,
            "maxLength": 128,
            "pattern": PASSWORD_PATTERN,
            "description": PASSWORD_RULE,
        }
        for schema, name in ((RegisterSchema, "password"), (PasswordChangeSchema, "newPassword"))
    },
}
"""Fields whose OpenAPI type apispec cannot tell from the field class."""


def _field_attributes(converter: Any, field: fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
    """apispec attribute function: constants, URLs and the per-field overrides."""
    extra: dict[str, Any] = {}
    if isinstance(field, fields.Constant) and isinstance(field.constant, bool):
        extra = {"type": "boolean", "enum": [field.constant]}
    elif isinstance(field, HttpUrl):
        extra = {"format": "uri", "pattern": URL_PATTERN, "maxLength": URL_MAX}
    schema = type(field.parent) if field.parent is not None else None
    for klass in schema.__mro__ if schema is not None else ():
        if (klass, field.name) in FIELD_OVERRIDES:
            extra.update(FIELD_OVERRIDES[(klass, field.name)])
            break
    return extra


def _type_names(types: Registry):
    """apispec attribute function: a `type` field validated against the registry lists its names."""

    def attributes(converter: Any, field: fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {"enum": list(types.names())} if known_type in field.validators else {}

    return attributes


def _create_body(plugin: MarshmallowPlugin, types: Registry) -> dict[str, Any]:
    """CreateTask, with `params` tied to `type` the way `CreateTaskSchema.check_params` ties them."""
    variants = [
        {
            "properties": {
                "type": {"type": "string", "enum": [task_type.name]},
                "params": plugin.converter.resolve_nested_schema(type(task_type.params)),
            }
        }
        for task_type in types
    ]
    return {"allOf": [plugin.converter.resolve_nested_schema(CreateTaskSchema)], "oneOf": variants}


def _create_batch_body(plugin: MarshmallowPlugin, types: Registry, max_items: int) -> dict[str, Any]:
    """CreateBatch, `params` tied to `type` as for a task, and this server's item limit."""
    body = _create_body(plugin, types)
    body["allOf"] = [
        plugin.converter.resolve_nested_schema(CreateBatchSchema),
        {"properties": {"items": {"type": "array", "maxItems": max_items}}},
    ]
    return body


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document for the routes `app` has."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="shopimage API",
        version=_version(),
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "Asynchronous product-photo processing. Every answer is JSON in one "
            "envelope: `{success: true, data}` or `{success: false, code, message, details?}`.\n\n"
            + "\n".join(f"- `{code}`: {meaning}" for code, meaning in ERROR_CODES.items())
        },
    )
    plugin.map_to_openapi_type(StringId, "string", None)
    types: Registry = app.extensions["task_types"]
    plugin.converter.add_attribute_function(_field_attributes)
    plugin.converter.add_attribute_function(_type_names(types))
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=ErrorSchema)
    for status, codes in STATUS_CODES.items():
        spec.components.response(str(status), _error_response(status, codes))
    for resource in (TaskSchema, UserSchema, LedgerEntrySchema):
        spec.components.schema(resource.__name__.removesuffix("Schema"), schema=resource)
    spec.components.schema("CreateTaskRequest", _create_body(plugin, types))
    spec.components.schema(
        "CreateBatchRequest", _create_batch_body(plugin, types, app.config["MAX_BATCH_ITEMS"])
    )

    routes = app_routes(app)
    for op in OPERATIONS:
        rule = routes.get((op.method.upper(), _shape(op.path)))
        if rule is None:
            continue
        path = op.path.rstrip("/") + "/" if rule.endswith("/") and rule != "/" else op.path
        spec.path(path=path, operations={op.method: _operation(spec, op)})
    return spec.to_dict()


def app_routes(app: Flask) -> dict[tuple[str, str], str]:
    """(METHOD, path shape) → Flask rule, for every route that should be documented."""
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in IGNORED_ENDPOINTS or rule.endpoint.endswith(".static"):
            continue
        if rule.rule.startswith(IGNORED_UNDER) and rule.rule not in IGNORED_UNDER:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes[(method, _shape(rule.rule))] = rule.rule
    return routes


def undocumented_routes(app: Flask) -> list[str]:
    """Routes of `app` with no entry in OPERATIONS."""
    documented = {(op.method.upper(), _shape(op.path)) for op in OPERATIONS}
    return sorted(
        f"{method} {rule}"
        for (method, shape), rule in app_routes(app).items()
        if (method, shape) not in documented
    )


def missing_routes(app: Flask) -> list[str]:
    """Operations in OPERATIONS whose route `app` does not have (left out of the document)."""
    routes = app_routes(app)
    return [
        f"{op.method.upper()} {op.path}"
        for op in OPERATIONS
        if (op.method.upper(), _shape(op.path)) not in routes
    ]


def _shape(path: str) -> str:
    """`/api/task/<task_id>` and `/api/task/{taskId}/` both become `/api/task/{}`."""
    shape = re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)
    return shape.rstrip("/") or "/"


def _operation(spec: APISpec, op: Operation) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{name: []} for name in op.security],
        "responses": {str(op.status): _success_response(spec, op)},
    }
    if op.description:
        operation["description"] = op.description
    parameters: list[Any] = list(op.parameters)
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    if parameters:
        operation["parameters"] = parameters
    if op.body in (CreateTaskSchema, CreateBatchSchema):
        body: Any = "CreateTaskRequest" if op.body is CreateTaskSchema else "CreateBatchRequest"
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    elif op.body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": op.body}}}
    elif op.form is not None:
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": op.form}}}
    for status in sorted({*op.errors, *COMMON_ERRORS} - set(op.raw_errors)):
        operation["responses"][str(status)] = {"$ref": f"#/components/responses/{status}"}
    for status, kind in op.raw_errors.items():
        operation["responses"][str(status)] = {
            "description": "see the description",
            "content": RAW_CONTENT[kind],
        }
    return operation


def _success_response(spec: APISpec, op: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {"description": op.summary}
    if isinstance(op.response, str):
        response["content"] = RAW_CONTENT[op.response]
    elif op.response is not None:
        schema = op.response
        if op.enveloped:
            name = schema.__name__.removesuffix("Schema") + "Envelope"
            if name not in spec.components.schemas:
                spec.components.schema(name, schema=envelope(schema, name))
            schema = name
        response["content"] = {JSON: {"schema": schema}}
    if op.parameters and any(p is IDEMPOTENCY_KEY for p in op.parameters):
        response["headers"] = {
            "Idempotent-Replayed": {
                "description": "`true` when this is a replay of an earlier answer",
                "schema": {"type": "string", "enum": ["true"]},
            }
        }
    return response


def _error_response(status: int, codes: tuple[int, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "allOf": [
            {"$ref": "#/components/schemas/Error"},
            {"type": "object", "properties": {"code": {"type": "integer", "enum": list(codes)}}},
        ]
    }
    response: dict[str, Any] = {
        "description": "; ".join(f"{code}: {ERROR_CODES[code]}" for code in codes),
        "content": {JSON: {"schema": schema}},
    }
    if status in (429, 503):
        when = "with 4029 and the event-stream caps, not with 1005" if status == 429 else "when known"
        response["headers"] = {
            "Retry-After": {"description": f"seconds ({when})", "schema": {"type": "integer"}}
        }
    return response


def _operation_id(op: Operation) -> str:
    words = re.findall(r"[A-Za-z]+", op.path.replace("/api/", "/"))
    return op.method + "".join(word[:1].upper() + word[1:] for word in words)


def _version() -> str:
    try:
        return metadata.version("shopimage")
    except metadata.PackageNotFoundError:
        return "0.0.0"


CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Swagger UI sets style attributes
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

bp = Blueprint("apidocs", __name__, static_folder=str(STATIC_DIR), static_url_path="/api/docs/static")
secure_blueprint(bp, CONTENT_SECURITY_POLICY)


@bp.get("/api/openapi.json")
def openapi_json() -> Response:
    """The document, built once per app."""
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(current_app.extensions["openapi"])


@bp.get("/api/docs")
def docs_page() -> Response:
    return entry_page(STATIC_DIR)
