"""Domain errors with the business code and HTTP status the API answers with.

Services raise these; the API's error envelope turns them into
`{"success": false, "code": ..., "message": ..., "details": ...}`.
"""

from __future__ import annotations

from typing import Any

BAD_REQUEST = 4001
"""Bad or missing parameter (HTTP 400; 413 for a body too large)."""
NOT_ALLOWED = 4003
"""Not logged in (401) or logged in but not allowed (403)."""
NOT_FOUND = 4004
"""Task or user not found, including someone else's task (404)."""
CONFLICT = 4009
"""The request conflicts with the resource's state, e.g. an illegal status transition (409)."""
RATE_LIMITED = 4029
"""Too many requests (429)."""
NOT_MEMBER = 1002
"""Only members may spend quota (403)."""
QUOTA_EXHAUSTED = 1003
"""No quota left (402)."""
ACCOUNT_UNAVAILABLE = 1004
"""The account is missing (404) or disabled (403)."""
TOO_MANY_ACTIVE = 1005
"""The user already has as many tasks queued or running as allowed (429)."""
INTERNAL = 5000
"""Unexpected server error (500)."""
UNAVAILABLE = 5003
"""A dependency (database, Redis) is down (503)."""


class ServiceError(Exception):
    """An error the client should see, with its business code and HTTP status."""

    code = INTERNAL
    status = 500
    message = "internal server error"

    def __init__(
        self, message: str | None = None, *, details: dict[str, Any] | None = None, status: int | None = None
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        if status is not None:
            self.status = status


class BadRequest(ServiceError):
    code, status, message = BAD_REQUEST, 400, "bad request"


class Unauthorized(ServiceError):
    code, status, message = NOT_ALLOWED, 401, "login required"


class Forbidden(ServiceError):
    code, status, message = NOT_ALLOWED, 403, "not allowed"


class NotFound(ServiceError):
    code, status, message = NOT_FOUND, 404, "not found"


class Conflict(ServiceError):
    code, status, message = CONFLICT, 409, "conflict"


class RateLimited(ServiceError):
    code, status, message = RATE_LIMITED, 429, "too many requests"


class NotMember(ServiceError):
    code, status, message = NOT_MEMBER, 403, "membership required: only members can create tasks"


class QuotaExhausted(ServiceError):
    code, status, message = QUOTA_EXHAUSTED, 402, "quota exhausted: no task units left"


class AccountUnavailable(ServiceError):
    code, status, message = ACCOUNT_UNAVAILABLE, 404, "user account not found"


class AccountDisabled(AccountUnavailable):
    status, message = 403, "user account is disabled"


class TooManyActiveTasks(ServiceError):
    code, status, message = TOO_MANY_ACTIVE, 429, "too many tasks queued or running"


class Unavailable(ServiceError):
    code, status, message = UNAVAILABLE, 503, "service temporarily unavailable, please retry"
