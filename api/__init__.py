"""The web process: the JSON API and the seller's console on top of the shared core."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.sessions import SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from shared import logs
from shared.app import create_base_app
from shared.config import Config
from shared.db import db
from shared.workflows import load_workflows

from . import body, dashboard, streams
from .auth import VerifiedTokens
from .errors import register_error_handlers, register_jwt_error_handlers
from .extensions import jwt, migrate, rate_limiter

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


class NoSessions(SessionInterface):
    """No cookie session: callers authenticate with Bearer tokens, the console keeps its tokens
    in the browser. Saves building a signing serializer on every request."""

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None


def create_app(config: Config | None = None) -> Flask:
    config = config or Config()
    app = create_base_app(config, import_name=__name__, ping_idle_seconds=config.DB_PING_IDLE_SECONDS)
    app.session_interface = NoSessions()
    settings = app.extensions["settings"]
    logs.configure(settings.LOG_LEVEL, settings.LOG_FORMAT)
    if settings.runninghub_configured:
        load_workflows(settings.RUNNINGHUB_WORKFLOWS_FILE)  # fail fast on a bad mapping
    if settings.TRUST_PROXY_HOPS:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.TRUST_PROXY_HOPS, x_proto=settings.TRUST_PROXY_HOPS
        )
    app.wsgi_app = body.BodyDeadline(app.wsgi_app, settings.REQUEST_BODY_SECONDS)
    jwt.init_app(app)
    app.extensions["verified_tokens"] = VerifiedTokens()
    rate_limiter.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    # Imported here, not at the top: `python -m api.serve` imports this package before it sets
    # PROMETHEUS_MULTIPROC_DIR, and prometheus_client picks in-memory or shared-file counters
    # once, when it is first imported (see api.serve).
    from . import observability

    observability.init_app(app)
    streams.init_app(app)
    app.after_request(body.finish_reading_body)
    register_error_handlers(app)
    register_jwt_error_handlers(app)

    from . import console, openapi
    from .cli import register_cli
    from .routes import auth, batches, events, files, health, keys, metrics, quota, tasks, webhooks

    for module in (
        health,
        auth,
        keys,
        tasks,
        batches,
        events,
        quota,
        files,
        webhooks,
        metrics,
        console,
        openapi,
    ):
        app.register_blueprint(module.bp)
    for exempt in (health.bp, console.bp, openapi.bp):
        rate_limiter.exempt(exempt)
    rate_limiter.exempt(files.serve)
    dashboard.init_app(app)
    register_cli(app)
    return app
