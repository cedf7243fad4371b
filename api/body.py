"""Reading request bodies and query strings through schemas, failing in the envelope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, current_app, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge, RequestTimeout

from shared.errors import BadRequest


def json_body(max_bytes: int | None = None) -> Any:
    """The parsed JSON body; a wrong content type or malformed JSON is a 4001, a large one a 413.

    Parsing costs far more memory and time than the bytes it reads (a few megabytes of tiny
    objects take hundreds of megabytes), so no JSON body larger than MAX_JSON_BYTES is read:
    a declared length above it is refused before reading, a chunked one once it passes it.
    `max_bytes`: a larger limit for a route whose body is a list (a batch's items).
    """
    if not request.is_json:
        raise BadRequest("expected a JSON body (Content-Type: application/json)", status=415)
    limit_to_json(max_bytes)
    try:
        data = request.get_json(silent=True)
    except RecursionError as exc:
        raise BadRequest("JSON body is nested too deeply") from exc
    if data is None:
        if len(request.get_data()) >= (request.max_content_length or 0):
            raise RequestEntityTooLarge()  # a body without a declared length, cut off at the limit
        raise BadRequest("malformed JSON body")
    return data


def limit_to_json(max_bytes: int | None = None) -> None:
    """Read no more of this request's body than a JSON body may have (MAX_JSON_BYTES)."""
    config = current_app.config
    request.max_content_length = min(max_bytes or config["MAX_JSON_BYTES"], config["MAX_CONTENT_LENGTH"])


class SlowBody(RequestTimeout):
    description = "the request body did not arrive in time"


class DeadlineStream:
    """`wsgi.input` read on a helper thread, the request's thread waiting no later than `deadline`.

    A thread per read, daemonic: a read stuck on a silent client ends when the client goes away
    and must not hold up the process's exit, which a pool's threads would.
    """

    def __init__(self, raw: Any, deadline: float) -> None:
        self.raw = raw
        self.deadline = deadline

    def read(self, size: int = -1) -> bytes:
        return self._wait(self.raw.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._wait(self.raw.readline, size)

    def _wait(self, read: Callable[[int], bytes], size: int) -> bytes:
        outcome: list[bytes | BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(read(size))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name="body-reader", daemon=True).start()
        if not done.wait(max(0.0, self.deadline - time.monotonic())):
            raise SlowBody()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]


class BodyDeadline:
    """WSGI middleware: a request body must arrive within REQUEST_BODY_SECONDS of the request.

    The server hands the app the body as it arrives, and a read blocks its thread until the
    bytes asked for are there, with no time limit: a client that sends its headers and then
    trickles its body, or never sends it, holds one of the process's few threads for as long as
    it likes. Here the request's thread waits for a read until the deadline, then answers 408
    and goes back to work. Bodies are read only when a view asks (the token is checked first),
    so a refused request costs nothing here.
    """

    def __init__(self, app: Callable, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("CONTENT_LENGTH", "0") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ:
            deadline = time.monotonic() + self.seconds
            environ["wsgi.input"] = DeadlineStream(environ["wsgi.input"], deadline)
        return self.app(environ, start_response)


def finish_reading_body(response: Response) -> Response:
    """Read and drop what the view left unread of a small request body (after-request hook).

    A request refused before its body was read (415, 401, 404, ...) leaves the body on the
    socket. If that body arrived after the headers, the HTTP server closes the keep-alive
    connection once the answer is sent, without saying so, and a client that sends its next
    request on that connection gets a transport error instead of an answer (found by the chaos
    corpus: RELIABILITY.md, B7). Bodies up to MAX_JSON_BYTES are drained here (cheaper than a
    new connection); a larger or late one is left unread and the answer says `Connection: close`,
    so the client opens a new connection instead of losing its next request.
    """
    length = request.content_length
    if not length and "Transfer-Encoding" not in request.headers:
        return response
    try:
        stream = request.stream  # a plain empty stream when the server gave no body without a length
        if getattr(stream, "is_exhausted", False):
            return response
        if length is None or length > current_app.config["MAX_JSON_BYTES"]:
            raise RequestEntityTooLarge()
        while not stream.is_exhausted and stream.read(64 * 1024):
            pass
    except (ClientDisconnected, OSError):
        pass  # the client went away: nothing left to keep alive
    except (SlowBody, RequestEntityTooLarge):
        response.headers["Connection"] = "close"
    return response


def load_body(schema: Schema, max_bytes: int | None = None) -> dict[str, Any]:
    data = json_body(max_bytes)
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
