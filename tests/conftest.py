"""Fixtures: real PostgreSQL and Redis, the app, a client, users, tokens and a real worker.

Each pytest-xdist worker gets its own database (`shopimage_test_<n>`) and Redis database index.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import text

from api import create_app
from shared import users
from shared.config import Config
from shared.db import db
from shared.models import User

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "secret-pass-123"
STUB_JOBS = "basic_clean=tests.jobs.succeed_after_pause,model_pose12=tests.jobs.succeed_after_pause"


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw") or 0)


RUN_ID = os.environ.get("TEST_RUN_ID", "")
"""Set to run two suites side by side on one machine (separate databases and Redis indexes)."""
DB_NAME = f"shopimage_test_{RUN_ID}{_worker_index()}"
REDIS_URL = f"{REDIS_BASE}/{int(os.environ.get('TEST_REDIS_DB_BASE', '10')) + _worker_index()}"
DATABASE_URL = f"{PG_URL}/{DB_NAME}"


def test_env(**overrides: str) -> dict[str, str]:
    """Environment for the app and for worker subprocesses under test."""
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "SERVICE_TOKEN": "test-service-token",
        "PASSWORD_HASH_ROUNDS": "1000",
        "JOB_OVERRIDES": STUB_JOBS,
        "TASK_TIMEOUT_SECONDS": "600",
        "SWEEP_INTERVAL_SECONDS": "1",
        "RECONCILE_INTERVAL_SECONDS": "1",
        "RECONCILE_GRACE_SECONDS": "1",
        "WORKER_PRELOAD": "0",
        "RETRY_DELAY_FACTOR": "0",
        "WORKER_PROCESSES": "1",
        "ALLOW_PRIVATE_URLS": "1",
        "MAX_ACTIVE_TASKS_PER_USER": "100",  # tests of the limit set their own
        "STORAGE_LOCAL_ROOT": str(ROOT / "var" / f"test-storage-{_worker_index()}"),
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


class ConfigForTests(Config):
    TESTING = True

    def __init__(self, **overrides: str) -> None:
        super().__init__(test_env(**overrides))


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh database, migrated with the project's own Alembic migrations."""
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    app = create_app(ConfigForTests())
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    yield DATABASE_URL


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


def app_with(**overrides: str) -> Iterator[Flask]:
    """An app on the test database inside an app context; tables are emptied afterwards.

    Modules that need other settings override the `app` fixture with `yield from app_with(...)`.
    """
    app = create_app(ConfigForTests(**overrides))
    with app.app_context():
        yield app
        db.session.remove()
        db.session.execute(
            text("TRUNCATE users, tasks, quota_ledger, idempotency_keys RESTART IDENTITY CASCADE")
        )
        db.session.commit()
        # Close this app's pooled connections now, not when the app is garbage-collected: tests that
        # open several at once (concurrent requests) would otherwise leave them open for later tests,
        # and two test processes' leftovers with the live servers' pools could pass max_connections.
        db.engine.dispose()


@pytest.fixture
def app(database: str, redis: Redis) -> Iterator[Flask]:
    yield from app_with()


@pytest.fixture
def sqlite_member(tmp_path, redis) -> Iterator[tuple[FlaskClient, User, dict[str, str]]]:
    """`make run`'s database: a client of an app on a migrated SQLite file, inside its app context,
    with a member (quota 0: tests grant what they need) and that member's Authorization header."""
    from flask_migrate import upgrade

    app = create_app(ConfigForTests(DATABASE_URL=f"sqlite:///{tmp_path}/run.db"))
    with app.app_context():
        upgrade()
        user = users.create_user("sqlite@example.com", PASSWORD)
        users.grant(user, member=True, quota_delta=0)
        db.session.commit()
        client = app.test_client()
        yield client, user, Auth(client).headers(user)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app) -> Callable[..., User]:
    counter = iter(range(1, 1_000_000))

    def make(
        email: str | None = None,
        *,
        member: bool = True,
        quota: int = 5,
        admin: bool = False,
        days: int | None = None,
    ) -> User:
        user = users.create_user(email or f"user{next(counter)}@example.com", PASSWORD, is_admin=admin)
        users.grant(user, member=True if member else None, days=days, quota_delta=quota)
        db.session.commit()
        return user

    return make


class Auth:
    """Log users in through the API and build headers."""

    def __init__(self, client) -> None:
        self.client = client

    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]

    def headers(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(user.email)['accessToken']}"}


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM a process group started with start_new_session, then SIGKILL it after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


class WorkerProcess:
    """`python worker.py` as a real subprocess against the test database and Redis."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self) -> list[int]:
        """The pool parent and its worker processes."""
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        stop_group(self.proc)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path, app) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**overrides: str) -> WorkerProcess:
        worker = WorkerProcess(test_env(**overrides), tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


class LiveServer:
    """The real web process (`python -m api.serve`, as the Procfile runs it) on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(self.port), "PUBLIC_BASE_URL": self.url}
        env.setdefault("WEB_CONCURRENCY", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.serve"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._up, timeout=30, message=f"web server on {self.url}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("web server exited:\n" + self.log_path.read_text(errors="replace"))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        stop_group(self.proc)
        self._log.close()


@pytest.fixture
def start_live_server(tmp_path, app) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def start(**overrides: str) -> LiveServer:
        server = LiveServer(test_env(**overrides), tmp_path / f"web-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1, message: str = ""
) -> Any:
    """Poll until `predicate()` is truthy; fail the test with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
