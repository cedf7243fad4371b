"""Per-request logging with a request id, and HTTP metrics for Prometheus."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from shared.logs import redacted, request_id

log = logging.getLogger("api.request")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

REQUESTS = Counter(
    "shopimage_http_requests_total", "HTTP requests by endpoint and status.", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "shopimage_http_request_duration_seconds",
    "HTTP request latency by endpoint.",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def init_app(app: Flask) -> None:
    @app.before_request
    def start() -> None:
        offered = request.headers.get("X-Request-ID", "")
        g.request_id = offered if REQUEST_ID.match(offered) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        request_id.set(g.request_id)

    @app.after_request
    def finish(response):
        rid = getattr(g, "request_id", None) or uuid.uuid4().hex
        response.headers["X-Request-ID"] = rid
        started = getattr(g, "request_started", None)
        duration = time.perf_counter() - started if started is not None else 0.0
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        path = logged_path()
        if not endpoint.startswith("/metrics"):
            REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
            LATENCY.labels(request.method, endpoint).observe(duration)
        log.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "fields": {
                    "method": request.method,
                    "path": path,
                    "endpoint": endpoint,
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 2),
                    "user_id": getattr(g, "user_id", None),
                    "ip": request.remote_addr,
                }
            },
        )
        return response

    @app.teardown_request
    def forget(_exc) -> None:
        request_id.set(None)


def logged_path() -> str:
    """The request path, with path parameters named like secrets (the RunningHub webhook's) masked.

    The RunningHub callback carries its shared secret in the path because RunningHub cannot sign
    its calls; a log reader must not learn it.
    """
    path = request.path
    for name, value in (request.view_args or {}).items():
        if redacted(name) and isinstance(value, str) and value:
            path = path.replace(value, "[redacted]")
    return path


def http_metrics() -> bytes:
    """The web process's HTTP metrics; across the server's workers when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
