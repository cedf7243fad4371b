"""Accounts and tokens: register, login, refresh, me."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token

from shared import users
from shared.db import db
from shared.errors import Unauthorized
from shared.models import User

from .. import login_throttle
from ..auth import current_user
from ..body import load_body
from ..extensions import rate_limiter
from ..ratelimit import client_address
from ..schemas.auth import LoginSchema, RegisterSchema, dump_user

bp = Blueprint("auth", __name__, url_prefix="/api/auth")

register_schema = RegisterSchema()
login_schema = LoginSchema()


def _tokens(user: User) -> dict:
    identity = str(user.id)
    return {
        "user": dump_user(user),
        "accessToken": create_access_token(identity=identity),
        "refreshToken": create_refresh_token(identity=identity),
    }


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.post("/register")
@rate_limiter.limit(_login_limit, key=client_address)
def register():
    data = load_body(register_schema)
    user = users.create_user(data["email"], data["password"])
    db.session.commit()
    return jsonify(success=True, data=_tokens(user)), 201


@bp.post("/login")
@rate_limiter.limit(_login_limit, key=client_address)
def login():
    data = load_body(login_schema)
    throttle = login_throttle.bucket(data["email"], client_address())
    login_throttle.check_not_locked(throttle)
    user = users.authenticate(data["email"], data["password"])
    if user is None:
        login_throttle.record_failure(throttle)
        raise Unauthorized("wrong email or password")
    db.session.commit()
    login_throttle.record_success(throttle, data["email"], client_address())
    return jsonify(success=True, data=_tokens(user))


@bp.post("/refresh")
def refresh():
    user = current_user(refresh=True)
    return jsonify(
        success=True, data={"user": dump_user(user), "accessToken": create_access_token(str(user.id))}
    )


@bp.get("/me")
def me():
    return jsonify(success=True, data={"user": dump_user(current_user())})
