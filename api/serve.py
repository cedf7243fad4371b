"""The web dyno's server: `python -m api.serve` (Procfile `web`), Granian serving `wsgi:app`.

Granian (a Rust HTTP server) parses requests and writes responses outside the GIL; the WSGI app
runs in each worker process's pool of blocking threads. Against gunicorn's gthread workers with
the same processes and threads it served 1.6x the /healthz requests per CPU second and 1.2-1.3x
the task reads (1.1-1.4x the creates) (bench/api_load.py, docs/PERFORMANCE.md; decision in docs/DECISIONS.md).

Settings come from the environment, as on a dyno:
  HOST (0.0.0.0), PORT (5000)
  WEB_CONCURRENCY   worker processes (2)
  WEB_THREADS       threads per process running the app (4); a request, or an open event
                    stream, holds one; DB_POOL_SIZE defaults to it
  WEB_GRACEFUL_SECONDS  after SIGTERM, how long in-flight requests may finish (20)
  WEB_MAX_RSS_MB    restart a worker whose memory stays above this (0 = never)
  LOG_LEVEL, LOG_FORMAT  the server's own lines go through the same JSON formatter as the app's

`python -m api.serve module:app` serves another WSGI app with the same settings (the benchmark's
reference app).
"""

from __future__ import annotations

import os
import sys
import tempfile

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def log_config(fmt: str) -> dict:
    """Granian's own loggers on stderr, as JSON lines like every other log line of the service."""
    formatter = (
        {"()": "shared.logs.JsonFormatter"}
        if fmt == "json"
        else {"()": "logging.Formatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "formatters": {"generic": formatter, "access": formatter},
        "handlers": {
            "console": {
                "formatter": "generic",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def share_metrics() -> None:
    """Sum HTTP metrics across the worker processes (prometheus_client's multiprocess mode).

    prometheus_client chooses in-memory or shared-file counters once, when it is first imported,
    and the workers are forked from this process: the directory must be set before anything here
    imports it, or every worker counts in memory while /metrics reads the empty directory.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shopimage-prom-")


def server(target: str = "wsgi:app") -> Granian:
    share_metrics()
    level = os.environ.get("LOG_LEVEL", "INFO").lower()
    max_rss = _int("WEB_MAX_RSS_MB", 0)
    return Granian(
        target,
        address=os.environ.get("HOST", "0.0.0.0"),
        port=_int("PORT", 5000),
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,  # the router in front speaks HTTP/1.1 to the dyno
        websockets=False,
        workers=_int("WEB_CONCURRENCY", 2),
        blocking_threads=_int("WEB_THREADS", 4),
        respawn_failed_workers=True,
        workers_kill_timeout=_int("WEB_GRACEFUL_SECONDS", 20),
        workers_max_rss=max_rss or None,
        log_level=LogLevels(level) if level in LogLevels.__members__ else LogLevels.info,
        log_dictconfig=log_config(os.environ.get("LOG_FORMAT", "json")),
    )


def main(argv: list[str]) -> None:
    server(argv[1] if len(argv) > 1 else "wsgi:app").serve()


if __name__ == "__main__":
    main(sys.argv)
