"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from shared.app import redis_client
from shared.db import db
from shared.errors import Unavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up; touches nothing else."""
    return jsonify(success=True, data={"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Database and Redis answer; 503 in the envelope when either does not."""
    failing = {}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready
        db.session.rollback()
        failing["database"] = exc.__class__.__name__
    try:
        redis_client().ping()
    except Exception as exc:
        failing["redis"] = exc.__class__.__name__
    if failing:
        raise Unavailable("not ready: " + ", ".join(sorted(failing)), details=failing)
    return jsonify(success=True, data={"status": "ready", "database": "ok", "redis": "ok"})
