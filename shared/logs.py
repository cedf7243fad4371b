"""Structured logs: one JSON object per line, in the web and the worker alike.

A request id (from `X-Request-ID` or generated) is kept in a context variable; the web sets it
per request, the worker per job (carried in the job's meta), and every log line carries it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from functools import lru_cache

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REDACTED_KEYS = ("password", "token", "authorization", "secret")


@lru_cache(maxsize=1024)
def redacted(key: str) -> bool:
    """Whether a field is left out of log lines (its name mentions a secret); decided once per name."""
    return any(word in key.lower() for word in REDACTED_KEYS)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in getattr(record, "fields", {}).items():
            if not redacted(key):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (ours, rq's, the web server's own lines) through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_shopimage", False):
            root.removeHandler(existing)
    handler._shopimage = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
