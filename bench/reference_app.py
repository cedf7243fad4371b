"""The yardstick the load targets were set against: a minimal raw-SQL Flask app, no checks.

Issue #8 sets the create target (>= 600/s, p99 <= 100 ms) against "a minimal raw-SQL Flask endpoint
doing the same three statements (conditional quota update, task insert, ledger insert) plus an RQ
enqueue", which reached about 800 requests/s on the machine the issue was written on. This is that
endpoint, plus the same minimal form of the two reads, so `bench/api_load.py` (unless given
`--no-reference`) runs it under the same server, database, Redis and wrk scripts as the real service, side by side: its
figures say what this machine can do today, and the real service's figures are quoted as a share
of them.

What it leaves out on purpose (everything the real service does on top): token signature and
expiry checks (it reads the user id out of the token's payload), body validation, URL checks,
membership, idempotency keys, rate limiting, request logging, metrics, the SQL toolkit and the
response schemas. Served by `wsgi:app`'s server with the same WEB_CONCURRENCY x WEB_THREADS; one
psycopg connection per server thread.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from datetime import UTC, datetime

import psycopg
from flask import Flask, jsonify, request
from redis import Redis
from rq import Queue

app = Flask(__name__)
_local = threading.local()
_redis = Redis.from_url(os.environ["REDIS_URL"])
_queue = Queue("basic_clean", connection=_redis)


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        conn = _local.conn = psycopg.connect(url)
    return conn


def _user_id() -> int:
    """The token's `sub`, read without verifying anything (the reference skips auth)."""
    payload = request.headers["Authorization"].split()[1].split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/api/task/create")
def create():
    body = request.get_json()
    user_id, task_id, now = _user_id(), uuid.uuid4().hex, datetime.now(UTC)
    conn = _conn()
    with conn.transaction():
        row = conn.execute(
            "UPDATE users SET quota = quota - 1 WHERE id = %s AND quota > 0 RETURNING quota", (user_id,)
        ).fetchone()
        if row is None:
            return jsonify(success=False, code=1003), 402
        conn.execute(
            "INSERT INTO tasks (id, user_id, type, status, input_image_url, params, result_urls, progress,"
            " created_at, updated_at) VALUES (%s, %s, %s, 'pending', %s, %s, '[]', 0, %s, %s)",
            (
                task_id,
                user_id,
                body["type"],
                body["inputImageUrl"],
                json.dumps(body.get("params") or {}),
                now,
                now,
            ),
        )
        conn.execute(
            "INSERT INTO quota_ledger (user_id, amount, balance_after, reason, task_id, created_at)"
            " VALUES (%s, -1, %s, 'deduct', %s, %s)",
            (user_id, row[0], task_id, now),
        )
    _queue.enqueue("worker.jobs.basic_clean", task_id, job_id=task_id)
    return jsonify(success=True, data={"taskId": task_id, "status": "pending"}), 201


COLUMNS = ("id", "type", "status", "input_image_url", "result_urls", "progress", "created_at", "updated_at")


@app.get("/api/task/<task_id>")
def detail(task_id: str):
    conn = _conn()
    row = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM tasks WHERE id = %s AND user_id = %s", (task_id, _user_id())
    ).fetchone()
    conn.rollback()
    if row is None:
        return jsonify(success=False, code=1005), 404
    return jsonify(success=True, data=dict(zip(COLUMNS, row, strict=True)))


@app.get("/api/task/list")
def list_tasks():
    limit = int(request.args.get("limit", 10))
    conn, user_id = _conn(), _user_id()
    rows = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM tasks WHERE user_id = %s ORDER BY created_at DESC LIMIT %s",
        (user_id, limit),
    ).fetchall()
    total = conn.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (user_id,)).fetchone()[0]
    conn.rollback()
    tasks = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    return jsonify(success=True, data={"tasks": tasks, "total": total, "limit": limit, "offset": 0})
