"""One error envelope for every failure: `{"success": false, "code", "message", "details"?}`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import ExpiredSignatureError, PyJWTError
from marshmallow import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from shared import errors
from shared.db import db

log = logging.getLogger(__name__)

HTTP_MESSAGES = {
    400: "bad request",
    404: "no such endpoint",
    405: "method not allowed on this endpoint",
    408: "the request body did not arrive in time",
    413: "request body too large",
    415: "unsupported content type",
    429: "too many requests",
}


def envelope(code: int, message: str, status: int, details: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"success": False, "code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.ServiceError)
    def service_error(exc: errors.ServiceError) -> Response:
        response = envelope(exc.code, exc.message, exc.status, exc.details)
        if exc.details and "retryAfter" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retryAfter"])
        return response

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError) -> Response:
        return envelope(errors.BAD_REQUEST, "invalid parameters", 400, {"fields": exc.normalized_messages()})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 404:
            code = errors.NOT_FOUND
        elif status == 429:
            code = errors.RATE_LIMITED
        elif status in (401, 403):
            code = errors.NOT_ALLOWED
        elif status < 500:
            code = errors.BAD_REQUEST
        else:
            code = errors.INTERNAL
        response = envelope(code, HTTP_MESSAGES.get(status, exc.name.lower()), status)
        if status == 408:
            response.headers["Connection"] = "close"  # the rest of the body is left unread
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    def unavailable(exc: Exception) -> Response:
        log.warning("dependency unavailable: %s", exc.__class__.__name__, exc_info=exc)
        db.session.rollback()
        response = envelope(errors.UNAVAILABLE, errors.Unavailable.message, 503)
        response.headers["Retry-After"] = "5"
        return response

    for exc_class in (OperationalError, PoolTimeoutError, RedisConnectionError, RedisTimeoutError):
        app.register_error_handler(exc_class, unavailable)

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return unavailable(exc)
        return unexpected(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        db.session.rollback()
        return envelope(errors.INTERNAL, "internal server error", 500)


def register_jwt_error_handlers(app: Flask) -> None:
    """Route every JWT failure (missing, malformed, expired, bad signature, wrong type) to 401/4003.

    flask-jwt-extended registers a handler per exception class; replace each of them.
    """

    def jwt_error(exc: Exception) -> Response:
        if isinstance(exc, ExpiredSignatureError):
            message = "token expired"
        elif exc.__class__.__name__ == "NoAuthorizationError":
            message = "login required: missing Authorization: Bearer token"
        elif exc.__class__.__name__ == "WrongTokenError":
            message = "wrong token type: " + str(exc)
        else:
            message = "invalid token"
        return envelope(errors.NOT_ALLOWED, message, 401)

    handlers = app.error_handler_spec[None][None]
    for exc_class in list(handlers):
        if issubclass(exc_class, (JWTExtendedException, PyJWTError)):
            app.register_error_handler(exc_class, jwt_error)
    app.register_error_handler(JWTExtendedException, jwt_error)
    app.register_error_handler(PyJWTError, jwt_error)
