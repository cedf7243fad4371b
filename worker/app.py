"""The worker's application context: settings, database and Redis, without any routes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, has_app_context

from shared.app import create_base_app
from shared.db import db

_app: Flask | None = None


def get_app() -> Flask:
    """One app per worker process, built on first use (after any fork)."""
    global _app
    if _app is None:
        _app = create_base_app(import_name="worker")
    return _app


@contextmanager
def app_context() -> Iterator[None]:
    """Run a job (or callback) with an app context and a session that is cleaned up afterwards."""
    if has_app_context():
        yield
        return
    with get_app().app_context():
        try:
            yield
        finally:
            db.session.remove()
