"""Shared set-up for benchmarks: a scratch PostgreSQL database, Redis, users and real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
MODEL_DIR = os.environ.get("MODEL_DIR", str(ROOT / "models"))
"""Where the in-process benches load the matting models from."""


RESULTS = Path(__file__).resolve().parent.parent / "var" / "bench-results"
"""Where each bench leaves its headline figures for `bench/summary.py` (one JSON file per bench)."""


def record(bench: str, rows: list[tuple[str, str, str, str]]) -> None:
    """Keep a bench's headline figures: (figure, measured value, target or "", verdict or "")."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    entry = {"bench": bench, "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "rows": rows}
    (RESULTS / f"{bench}.json").write_text(json.dumps(entry, ensure_ascii=False, indent=1))


def scratch_env(name: str, **overrides: str) -> dict[str, str]:
    """A fresh database `name`, migrated; returns the environment for app and worker processes."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "APP_ENV": "bench",
        "DATABASE_URL": f"{PG}/{name}",
        "REDIS_URL": REDIS,
        "SECRET_KEY": "bench-secret-0123456789abcdef0123456789abcdef",
        "STORAGE_LOCAL_ROOT": str(ROOT / "var" / f"{name}-storage"),
        "ALLOW_PRIVATE_URLS": "1",
        "LOG_LEVEL": "WARNING",
        # Benches submit many tasks of one user at once; the per-user cap is an abuse guard, not
        # what they measure.
        "MAX_ACTIVE_TASKS_PER_USER": "0",
        **overrides,
    }
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    from redis import Redis

    Redis.from_url(REDIS).flushdb()
    return env


def start(cmd: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
    log = open(ROOT / "var" / log_name, "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    """Return once ``url`` answers 200; raise if it has not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or the app still loading
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def memory_mb(pid: int | str = "self") -> tuple[float, float]:
    """RSS and peak RSS (VmRSS, VmHWM from /proc) of one process, in MB; OSError once it is gone."""
    with open(f"/proc/{pid}/status") as fh:
        fields = dict(line.split(":", 1) for line in fh if ":" in line)
    rss, peak = (int(fields.get(name, "0 kB").split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))
    return rss, peak


def iou(a, b) -> float:
    """IoU of two uint8 masks (arrays of one shape) thresholded at 128."""
    x, y = a >= 128, b >= 128
    return float((x & y).sum() / max((x | y).sum(), 1))


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def in_process_api(env: dict[str, str], email: str, quota: int):
    """The real API in this process (Flask test client, its app context pushed) and a member's headers."""
    os.environ.update(env)
    from api import create_app
    from shared import users
    from shared.config import Config
    from shared.db import db

    app = create_app(Config(env))
    app.app_context().push()
    user = users.create_user(email, "bench-pass-1")
    users.grant(user, member=True, quota_delta=quota)
    db.session.commit()
    client = app.test_client()
    login = client.post("/api/auth/login", json={"email": email, "password": "bench-pass-1"})
    return client, {"Authorization": "Bearer " + login.get_json()["data"]["accessToken"]}
