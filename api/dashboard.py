"""rq-dashboard mounted at /rq for administrators only.

Browsers reach it with HTTP basic auth (`RQ_DASHBOARD_USERNAME` / `RQ_DASHBOARD_PASSWORD`);
tools may send an admin's Bearer access token instead. Anonymous access is 401. Every request
counts against `RATELIMIT_ADMIN` per client address, so guessing the password is slow.

A browser sends cached basic-auth credentials with any request to the site, including one a
hostile page makes it send, so the routes that change state (delete, requeue, empty, compact)
take only a POST from the dashboard's own pages (same Origin) or one with an admin's Bearer token
(which a browser never adds by itself). rq-dashboard's "requeue all" also answers GET; that is refused.
"""

from __future__ import annotations

import hmac

import rq_dashboard
from flask import Flask, Response, current_app, request

from shared.db import db
from shared.errors import BAD_REQUEST, NOT_ALLOWED
from shared.models import User

from .auth import access_identity
from .errors import envelope
from .extensions import rate_limiter
from .ratelimit import admin_limit, by_address

CHANGES_STATE = frozenset(
    {"delete_job_view", "requeue_job_view", "requeue_all", "empty_queue", "compact_queue"}
)
"""rq-dashboard's views that change jobs or queues."""


def init_app(app: Flask) -> None:
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    blueprint = rq_dashboard.blueprint
    if _admin_only not in blueprint.before_request_funcs.get(None, []):
        blueprint.before_request(_admin_only)
    app.register_blueprint(blueprint, url_prefix="/rq")
    rate_limiter.limit_blueprint(blueprint, admin_limit, key=by_address, scope="admin")


def _admin_only() -> Response | None:
    token_ok = _admin_token_ok()
    if not (token_ok or _basic_auth_ok()):
        response = envelope(NOT_ALLOWED, "admin login required (basic auth or an admin's Bearer token)", 401)
        response.headers["WWW-Authenticate"] = 'Basic realm="rq-dashboard"'
        return response
    if (request.endpoint or "").rpartition(".")[2] not in CHANGES_STATE:
        return None
    if request.method != "POST":
        return envelope(BAD_REQUEST, "this dashboard action needs a POST", 405)
    if token_ok or _same_origin():
        return None
    return envelope(NOT_ALLOWED, "dashboard actions are taken from the dashboard's own pages", 403)


def _same_origin() -> bool:
    """Whether the browser says the request comes from a page of this site (Origin, else Referer)."""
    site = request.host_url.rstrip("/")
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == site
    referer = request.headers.get("Referer", "")
    return referer == site or referer.startswith(site + "/")


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
