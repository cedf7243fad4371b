"""Reading request bodies and query strings through schemas, failing in the envelope."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import ClientDisconnected

from shared.errors import BadRequest


def json_body() -> Any:
    """The parsed JSON body; a wrong content type or malformed JSON is a 4001."""
    if not request.is_json:
        raise BadRequest("expected a JSON body (Content-Type: application/json)", status=415)
    try:
        data = request.get_json(silent=True)
    except RecursionError as exc:
        raise BadRequest("JSON body is nested too deeply") from exc
    if data is None:
        raise BadRequest("malformed JSON body")
    return data


def finish_reading_body(response: Response) -> Response:
    """Read and drop what the view left unread of the request body (after-request hook).

    A request refused before its body was read (415, 401, 404, ...) leaves the body on the
    socket. If that body arrived after the headers, the HTTP server closes the keep-alive
    connection once the answer is sent, without saying so, and a client that sends its next
    request on that connection gets a transport error instead of an answer (found by the chaos
    corpus: RELIABILITY.md, B7). Bodies up to MAX_CONTENT_LENGTH are drained here; a larger one
    was refused with 413 and is left to the server.
    """
    length = request.content_length
    if not length or length > current_app.config["MAX_CONTENT_LENGTH"]:
        return response
    stream = request.stream
    try:
        while not stream.is_exhausted and stream.read(64 * 1024):
            pass
    except (ClientDisconnected, OSError):
        pass  # the client went away: nothing left to keep alive
    return response


def load_body(schema: Schema) -> dict[str, Any]:
    data = json_body()
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object")
    return _load(schema, data)


def load_query(schema: Schema) -> dict[str, Any]:
    return _load(schema, request.args.to_dict())


MAX_DEPTH = 32
"""Deepest nesting a request may carry; our schemas need 3."""


def unusable_text(value: Any) -> str | None:
    """Why `value` cannot be stored (too deep, NUL, not encodable as UTF-8), or None.

    Iterative, so a hostile document cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "text must not contain NUL characters"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text must be valid Unicode (no lone surrogates)"
    return None


def _load(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    problem = unusable_text(data)
    if problem:
        raise BadRequest(problem)
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise BadRequest("invalid parameters", details={"fields": exc.normalized_messages()}) from exc
