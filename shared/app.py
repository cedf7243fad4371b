"""The Flask application core both processes build: settings, database and Redis bound.

The web process adds routes on top (`api.create_app`); the worker uses it only for an
application context around jobs. Nothing here touches request globals.
"""

from __future__ import annotations

import sqlite3

from flask import Flask, current_app
from redis import Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import Config
from .db import db
from .storage import Storage, storage_from_settings


def create_base_app(config: Config | None = None, import_name: str = "shopimage") -> Flask:
    config = config or Config()
    config.validate()
    app = Flask(import_name)
    app.config.from_mapping(config.as_dict())
    app.extensions["settings"] = config
    app.extensions["redis"] = Redis.from_url(
        config.REDIS_URL, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
    )
    db.init_app(app)
    return app


def settings() -> Config:
    """The current application's settings object."""
    return current_app.extensions["settings"]


def storage() -> Storage:
    """The current application's object storage, built on first use."""
    if "storage" not in current_app.extensions:
        current_app.extensions["storage"] = storage_from_settings(current_app.config)
    return current_app.extensions["storage"]


def redis_client() -> Redis:
    """The current application's Redis connection (pooled)."""
    return current_app.extensions["redis"]


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite (the embedded default) needs foreign keys switched on and WAL for concurrent readers."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
