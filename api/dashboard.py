"""rq-dashboard mounted at /rq for administrators only.

Browsers reach it with HTTP basic auth (`RQ_DASHBOARD_USERNAME` / `RQ_DASHBOARD_PASSWORD`);
tools may send an admin's Bearer access token instead. Anonymous access is 401.
"""

from __future__ import annotations

import hmac

import rq_dashboard
from flask import Flask, Response, current_app, request

from shared.db import db
from shared.errors import NOT_ALLOWED
from shared.models import User

from .auth import access_identity
from .errors import envelope
from .extensions import rate_limiter


def init_app(app: Flask) -> None:
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    blueprint = rq_dashboard.blueprint
    if _admin_only not in blueprint.before_request_funcs.get(None, []):
        blueprint.before_request(_admin_only)
    app.register_blueprint(blueprint, url_prefix="/rq")
    rate_limiter.exempt(blueprint)


def _admin_only() -> Response | None:
    if _basic_auth_ok() or _admin_token_ok():
        return None
    response = envelope(NOT_ALLOWED, "admin login required (basic auth or an admin's Bearer token)", 401)
    response.headers["WWW-Authenticate"] = 'Basic realm="rq-dashboard"'
    return response


def _basic_auth_ok() -> bool:
    username = current_app.config["RQ_DASHBOARD_USERNAME"]
    password = current_app.config["RQ_DASHBOARD_PASSWORD"]
    auth = request.authorization
    if not (username and password and auth and auth.type == "basic"):
        return False
    return hmac.compare_digest(f"{auth.username}:{auth.password}".encode(), f"{username}:{password}".encode())


def _admin_token_ok() -> bool:
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return False
    try:
        user = db.session.get(User, int(access_identity() or 0))
    except Exception:
        return False
    return bool(user and user.is_active and user.is_admin)
