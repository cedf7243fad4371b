"""Who is calling: the logged-in user from the Bearer token, or an internal service."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from threading import Lock
from typing import Any

from flask import current_app, g, request
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from jwt.exceptions import ExpiredSignatureError

from shared import api_keys, sessions
from shared.app import redis_client
from shared.db import db
from shared.errors import AccountDisabled, AccountUnavailable, Forbidden, Unauthorized
from shared.models import User

TOKEN_IDENTITY = "shopimage.token_identity"
"""WSGI environ key: this request's verified access-token identity (per request, never in `g`,
which outlives a request when an app context is already pushed, as in tests and CLI code)."""

API_KEY_HEADER = "X-API-Key"


class VerifiedTokens:
    """Claims of recently verified tokens, so a client's repeated token is verified once.

    A token's bytes fix its signature and claims, so a token verified once stays valid until it
    expires (checked on every use); the secret cannot change without a restart. Bounded (LRU).
    """

    def __init__(self, size: int = 4096) -> None:
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            claims = self._claims.get(token)
            if claims is not None:
                self._claims.move_to_end(token)
            return claims

    def add(self, token: str, claims: dict[str, Any]) -> None:
        with self._lock:
            self._claims[token] = claims
            if len(self._claims) > self._size:
                self._claims.popitem(last=False)


def token_claims(refresh: bool = False) -> dict[str, Any]:
    """The verified claims of this request's Bearer token (an access token, or a refresh token).

    A well-formed token seen before is checked against the cache (expiry and type); anything else
    goes through flask-jwt-extended, whose exceptions become the 401 envelope (api.errors).
    """
    token = bearer_token()
    tokens: VerifiedTokens = current_app.extensions["verified_tokens"]
    claims = tokens.get(token) if token else None
    if claims is None:
        verify_jwt_in_request(refresh=refresh)
        claims = get_jwt()
        if token:
            tokens.add(token, claims)
    elif claims.get("exp", 0) <= time.time():
        raise ExpiredSignatureError("Signature has expired")
    elif claims.get("type") != ("refresh" if refresh else "access"):
        verify_jwt_in_request(refresh=refresh)  # raises flask-jwt-extended's WrongTokenError
    session = claims.get(sessions.SESSION_CLAIM)
    if session and sessions.access_denied(redis_client(), session):
        raise sessions.SessionEnded()
    return claims


def access_identity(optional: bool = False) -> str | None:
    """The verified access token's identity; with `optional`, None for a missing or bad token."""
    cached = request.environ.get(TOKEN_IDENTITY)
    if cached is not None:
        return cached
    key = presented_api_key()
    if key is not None:
        return _key_identity(key, optional)
    if optional and "Authorization" not in request.headers:
        return None
    try:
        identity = str(token_claims()["sub"])
    except Exception:
        if optional:
            return None
        raise
    request.environ[TOKEN_IDENTITY] = identity
    return identity


def presented_api_key() -> str | None:
    """An API key from `X-API-Key`, or from `Authorization: Bearer sk_...`; else None."""
    offered = request.headers.get(API_KEY_HEADER)
    if offered is not None:
        return offered.strip()
    token = bearer_token()
    return token if token and api_keys.looks_like_key(token) else None


def _key_identity(text: str, optional: bool) -> str | None:
    key = api_keys.authenticate(text)
    if key is None:
        if optional:
            return None
        raise Unauthorized("invalid or revoked API key")
    if api_keys.record_use(key):
        db.session.commit()  # before the request's own transaction starts
    identity = str(key.user_id)
    request.environ[TOKEN_IDENTITY] = identity
    return identity


def require_login_token() -> None:
    """Refuse a request made with an API key: keys cannot mint keys or manage sessions."""
    if presented_api_key() is not None:
        raise Forbidden("not allowed with an API key: log in with your password for this")


def current_user() -> User:
    """Verify the access token (or API key) and load its user.

    A disabled or deleted account's tokens stop working.
    """
    return account_of(access_identity())


def account_of(identity: str | None) -> User:
    """The active account a verified token's identity names: 1004 (404) if gone, 1004 (403) if disabled."""
    user = db.session.get(User, int(identity)) if identity and identity.isdigit() else None
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
    identity = access_identity()
    if not identity or not identity.isdigit():
        raise AccountUnavailable()
    g.user_id = int(identity)
    return g.user_id


def require_internal_caller() -> None:
    """Allow the service token (`X-Service-Token`) or an admin user's access token."""
    expected = current_app.config["SERVICE_TOKEN"]
    offered = request.headers.get("X-Service-Token", "")
    if expected and offered and hmac.compare_digest(expected.encode(), offered.encode()):
        return
    if not current_user().is_admin or presented_api_key() is not None:
        raise Forbidden("internal endpoint: service token or admin required")


def bearer_token() -> str | None:
    """The token of a plain `Authorization: Bearer <token>` header, else None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    token = header[7:]
    if not token or " " in token or "," in token:
        return None
    return token
