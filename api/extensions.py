"""Flask extensions, created bare and bound in `create_app`."""

from __future__ import annotations

from flask import current_app, request
from flask_jwt_extended import JWTManager, get_jwt_identity, verify_jwt_in_request
from flask_limiter import HeaderNames, Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate


def user_or_ip() -> str:
    """Rate-limit key: the token's user when a valid one is offered, else the client address."""
    try:
        verified = verify_jwt_in_request(optional=True)
        identity = get_jwt_identity() if verified else None
    except Exception:
        identity = None
    if identity:
        request.environ["shopimage.verified_access_token"] = True
    return f"user:{identity}" if identity else f"ip:{get_remote_address()}"


def authenticated_limit() -> str:
    return current_app.config["RATELIMIT_AUTHENTICATED"]


jwt = JWTManager()
migrate = Migrate(directory="migrations", compare_type=True, render_as_batch=True)
limiter = Limiter(
    key_func=user_or_ip,
    default_limits=[authenticated_limit],
    headers_enabled=True,
    header_name_mapping={
        HeaderNames.LIMIT: "RateLimit-Limit",
        HeaderNames.REMAINING: "RateLimit-Remaining",
        HeaderNames.RESET: "RateLimit-Reset",
        HeaderNames.RETRY_AFTER: "Retry-After",
    },
    strategy="fixed-window",
    swallow_errors=True,
    key_prefix="shopimage",
)
