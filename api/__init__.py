"""The web process: JSON API (and later the console) on top of the shared core."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from shared.app import create_base_app
from shared.config import Config
from shared.db import db
from shared.workflows import load_workflows

from .errors import register_error_handlers, register_jwt_error_handlers
from .extensions import jwt, migrate

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(config: Config | None = None) -> Flask:
    app = create_base_app(config, import_name=__name__)
    settings = app.extensions["settings"]
    if settings.runninghub_configured:
        load_workflows(settings.RUNNINGHUB_WORKFLOWS_FILE)  # fail fast on a bad mapping
    jwt.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    register_error_handlers(app)
    register_jwt_error_handlers(app)

    from .cli import register_cli
    from .routes import auth, files, health, quota, tasks, webhooks

    for module in (health, auth, tasks, quota, files, webhooks):
        app.register_blueprint(module.bp)
    from . import console

    app.register_blueprint(console.bp)
    register_cli(app)
    return app
