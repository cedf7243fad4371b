"""Prometheus metrics at /metrics, behind `METRICS_TOKEN` (Bearer) when one is configured.

Limited to `RATELIMIT_ADMIN` per client address (shared with /rq), so guessing the token is slow.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST
from rq import Queue

from shared import metrics, queues, task_types
from shared.app import redis_client

from ..extensions import rate_limiter
from ..observability import http_metrics
from ..ratelimit import admin_limit, by_address

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@rate_limiter.limit(admin_limit, key=by_address, scope="admin")
def show():
    token = current_app.config["METRICS_TOKEN"]
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not token or not hmac.compare_digest(token.encode(), offered.encode()):
        abort(401 if token else 404)
    redis = redis_client()
    lines = list(metrics.render(redis, task_types.registry().names()))
    lines += [
        "# HELP shopimage_queue_depth Jobs waiting in each queue.",
        "# TYPE shopimage_queue_depth gauge",
        "# HELP shopimage_queue_oldest_job_age_seconds Age of the oldest waiting job in each queue.",
        "# TYPE shopimage_queue_oldest_job_age_seconds gauge",
    ]
    now = time.time()
    for name in queues.ALL_QUEUES:
        queue = Queue(name, connection=redis)
        lines.append(f'shopimage_queue_depth{{queue="{name}"}} {queue.count}')
        oldest = queue.get_job_ids(0, 1)
        age = 0.0
        if oldest:
            job = queue.fetch_job(oldest[0])
            if job is not None and job.enqueued_at is not None:
                age = max(0.0, now - job.enqueued_at.timestamp())
        lines.append(f'shopimage_queue_oldest_job_age_seconds{{queue="{name}"}} {age:.3f}')
    body = http_metrics() + ("\n".join(lines) + "\n").encode()
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0])
