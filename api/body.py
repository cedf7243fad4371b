"""Reading request bodies and query strings through schemas, failing in the envelope."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from shared.errors import BadRequest


def json_body() -> Any:
    """The parsed JSON body; a wrong content type or malformed JSON is a 4001."""
    if not request.is_json:
        raise BadRequest("expected a JSON body (Content-Type: application/json)", status=415)
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest("malformed JSON body")
    return data


def load_body(schema: Schema) -> dict[str, Any]:
    data = json_body()
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object")
    return _load(schema, data)


def load_query(schema: Schema) -> dict[str, Any]:
    return _load(schema, request.args.to_dict())


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _load(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    if _has_nul(data):
        raise BadRequest("text must not contain NUL characters")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise BadRequest("invalid parameters", details={"fields": exc.normalized_messages()}) from exc
