"""Who is calling: the logged-in user from the Bearer token, or an internal service."""

from __future__ import annotations

import hmac

from flask import current_app, g, request
from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request

from shared.db import db
from shared.errors import AccountDisabled, AccountUnavailable, Forbidden
from shared.models import User

VERIFIED_ACCESS_TOKEN = "shopimage.verified_access_token"
"""WSGI environ key: set when this request's access token was verified (per request, never in `g`)."""


def current_user(refresh: bool = False) -> User:
    """Verify the token (access, or refresh when asked) and load its user.

    A disabled or deleted account's tokens stop working.
    """
    # The rate limiter's key function already verified this request's access token, if any.
    if refresh or request.environ.get(VERIFIED_ACCESS_TOKEN) is not True:
        verify_jwt_in_request(refresh=refresh)
    identity = get_jwt_identity()
    user = db.session.get(User, int(identity)) if str(identity).isdigit() else None
    if user is None:
        raise AccountUnavailable()
    if not user.is_active:
        raise AccountDisabled()
    g.user_id = user.id
    return user


def current_user_id() -> int:
    """The verified access token's user id, without loading the account.

    Only for paths whose own query checks the account in the same round trip (the charge's
    conditional UPDATE, the joined task reads), and so still refuse a disabled or deleted one.
    """
    if request.environ.get(VERIFIED_ACCESS_TOKEN) is not True:
        verify_jwt_in_request()
    identity = str(get_jwt_identity())
    if not identity.isdigit():
        raise AccountUnavailable()
    g.user_id = int(identity)
    return g.user_id


def require_internal_caller() -> None:
    """Allow the service token (`X-Service-Token`) or an admin user's access token."""
    expected = current_app.config["SERVICE_TOKEN"]
    offered = request.headers.get("X-Service-Token", "")
    if expected and offered and hmac.compare_digest(expected.encode(), offered.encode()):
        return
    if not current_user().is_admin:
        raise Forbidden("internal endpoint: service token or admin required")
