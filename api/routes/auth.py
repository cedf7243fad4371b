"""Accounts and sessions: register, login, refresh (rotating), logout, password change, me."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from werkzeug.security import check_password_hash

from shared import sessions, users
from shared.app import redis_client, settings
from shared.db import db
from shared.errors import BadRequest, Unauthorized
from shared.models import User

from ..auth import account_of, bearer_token, current_user, require_login_token, token_claims
from ..body import load_body
from ..extensions import rate_limiter
from ..login_throttle import bucket, check_not_locked, record_failure, record_success
from ..ratelimit import client_address
from ..schemas.auth import LoginSchema, PasswordChangeSchema, RegisterSchema, dump_user

bp = Blueprint("auth", __name__, url_prefix="/api/auth")

register_schema = RegisterSchema()
login_schema = LoginSchema()
password_schema = PasswordChangeSchema()


def _tokens(user: User, family: str, jti: str) -> dict[str, Any]:
    """The token pair of one session: the access token names the session, the refresh token its row."""
    identity = str(user.id)
    return {
        "user": dump_user(user),
        "accessToken": create_access_token(identity, additional_claims={sessions.SESSION_CLAIM: family}),
        "refreshToken": create_refresh_token(
            identity, additional_claims={"jti": jti, sessions.FAMILY_CLAIM: family}
        ),
    }


def _new_session(user: User) -> dict[str, Any]:
    return _tokens(user, *sessions.start(user.id, settings().JWT_REFRESH_TOKEN_EXPIRES))


def _end_access(families: list[str]) -> None:
    sessions.deny_access(redis_client(), families, settings().JWT_ACCESS_TOKEN_EXPIRES)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.post("/register")
@rate_limiter.limit(_login_limit, key=client_address)
def register():
    data = load_body(register_schema)
    user = users.create_user(data["email"], data["password"])
    tokens = _new_session(user)
    db.session.commit()
    return jsonify(success=True, data=tokens), 201


@bp.post("/login")
@rate_limiter.limit(_login_limit, key=client_address)
def login():
    data = load_body(login_schema)
    throttle = bucket(data["email"], client_address())
    check_not_locked(throttle)
    user = users.authenticate(data["email"], data["password"])
    if user is None:
        record_failure(throttle)
        raise Unauthorized("wrong email or password")
    tokens = _new_session(user)
    db.session.commit()
    record_success(throttle, data["email"], client_address())
    return jsonify(success=True, data=tokens)


@bp.post("/refresh")
def refresh():
    """Spend the refresh token for a new pair; a token presented twice ends its whole session."""
    claims = token_claims(refresh=True)
    user = account_of(str(claims["sub"]))
    try:
        family, jti = sessions.rotate(user.id, claims, settings().JWT_REFRESH_TOKEN_EXPIRES)
    except sessions.SessionEnded:
        db.session.commit()  # the family's revocation stands although the request fails
        if claims.get(sessions.FAMILY_CLAIM):
            _end_access([claims[sessions.FAMILY_CLAIM]])
        raise
    tokens = _tokens(user, family, jti)
    db.session.commit()
    return jsonify(success=True, data=tokens)


@bp.post("/logout")
def logout():
    """End the session of the presented token (refresh or access): both stop working at once."""
    require_login_token()
    token = bearer_token()
    if token is None:
        raise Unauthorized("login required: send the refresh or access token as Authorization: Bearer")
    claims = decode_token(token, allow_expired=True)
    family = sessions.end(claims)
    db.session.commit()
    if family:
        _end_access([family])
    return jsonify(success=True, data={"loggedOut": True})


@bp.post("/password")
@rate_limiter.limit(_login_limit, key=client_address)
def change_password():
    """Change the password and end every session of the account; the caller gets a new one."""
    require_login_token()
    user = current_user()
    data = load_body(password_schema)
    if not check_password_hash(user.password_hash, data["currentPassword"]):
        raise BadRequest("current password is wrong", details={"fields": {"currentPassword": ["is wrong"]}})
    users.set_password(user, data["newPassword"])
    ended = sessions.end_all(user.id)
    tokens = _new_session(user)
    db.session.commit()
    _end_access(ended)
    return jsonify(success=True, data=tokens)


@bp.get("/me")
def me():
    return jsonify(success=True, data={"user": dump_user(current_user())})
