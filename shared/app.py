"""The Flask application core both processes build: settings, database and Redis bound.

The web process adds routes on top (`api.create_app`); the worker uses it only for an
application context around jobs. Nothing here touches request globals.
"""

from __future__ import annotations

import sqlite3
import time

from flask import Flask, current_app
from redis import Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from . import task_types
from .config import Config
from .db import db
from .storage import Storage, storage_from_settings


def create_base_app(
    config: Config | None = None, import_name: str = "shopimage", ping_idle_seconds: float | None = None
) -> Flask:
    """`ping_idle_seconds`: ping a pooled connection at checkout only when it sat idle that long
    (`ping_when_idle`), instead of on every checkout; the web process passes DB_PING_IDLE_SECONDS."""
    config = config or Config()
    config.validate()
    app = Flask(import_name)
    app.config.from_mapping(config.as_dict())
    if ping_idle_seconds is not None:
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
            "pool_pre_ping": False,
        }
    app.extensions["settings"] = config
    app.extensions["task_types"] = task_types.Registry.load(config.TASK_TYPE_MODULES)
    app.extensions["redis"] = Redis.from_url(
        config.REDIS_URL, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
    )
    db.init_app(app)
    if ping_idle_seconds is not None:
        with app.app_context():
            ping_when_idle(db.engine, ping_idle_seconds)
    return app


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection at checkout only if it was idle for `idle_seconds` or more.

    `pool_pre_ping` pings on every checkout: a round trip (and ~0.1-0.2 ms of CPU) on every
    request. Under load a connection is back in use within milliseconds, and a connection that
    died in between (the database restarted) fails its next statement instead: that request gets
    503 in the envelope, SQLAlchemy invalidates the whole pool on the disconnect, and the next
    checkouts connect afresh. A dead connection found by the ping is replaced before use.
    """

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool then retries with a fresh connection
            raise DisconnectionError("connection failed its idle check") from exc


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
