"""The chaos suite's own PostgreSQL cluster and Redis server, and the service stack on top of them.

Nothing here touches the shared PostgreSQL (5432) or Redis (6379): the suite runs a private
cluster (`initdb` into a temporary directory, a free port, trust auth) and a private
`redis-server` (a free port, no persistence), so scenarios can restart and flush them freely.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from redis import Redis

from tests.conftest import ROOT, LiveServer, WorkerProcess, test_env, wait_for

PASSWORD = "chaos-pass-123"
WORKFLOWS = str(ROOT / "config" / "runninghub-workflows.example.json")
WEBHOOK_SECRET = "chaos-hook-secret-123"
SECRET_KEY = "chaos-secret-key-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pg_bin() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    return Path(candidates[-1]).parent


class Postgres:
    """A private PostgreSQL cluster in a temporary directory (run as `postgres` when we are root)."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        os.chmod(self.root, 0o755)
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 300,
            "shared_buffers": "'64MB'",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# chaos suite\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
        self.start()

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "30", "restart"
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A private `redis-server` without persistence: a restart loses everything, like a flush."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="chaos-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        log = open(self.root / f"redis-{self.starts}.log", "wb")  # noqa: SIM115 - child owns it
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--maxclients",
                "2000",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._pings, timeout=15, message="redis-server start")

    def _pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, down_seconds: float = 0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> Redis:
        return Redis.from_url(self.url(), socket_connect_timeout=2, socket_timeout=5)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Cluster:
    pg: Postgres
    redis: RedisServer
    databases: int = 0


# ------------------------------------------------------------------------------------------- HTTP


@dataclass
class Answer:
    method: str
    path: str
    status: int
    body: Any
    phase: str
    elapsed: float


class Recorder:
    """Every HTTP answer the scenario's clients got (checked by the invariants)."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.errors: list[tuple[str, str, str]] = []  # transport errors: (method, path, error)
        self.lock = threading.Lock()
        self.phase = "normal"

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for answer in self.answers:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        return dict(sorted(counts.items()))


class Api:
    """A small HTTP client on the live web server that records every answer."""

    def __init__(self, base_url: str, recorder: Recorder, token: str | None = None) -> None:
        self.base_url = base_url
        self.recorder = recorder
        self.token = token
        self.session = requests.Session()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def request(self, method: str, path: str, *, auth: bool = True, timeout: float = 30, **kwargs: Any):
        headers = kwargs.pop("headers", None)
        headers = self.headers(headers) if auth else (headers or {})
        started = time.monotonic()
        try:
            response = self.session.request(
                method, self.base_url + path, headers=headers, timeout=timeout, **kwargs
            )
        except requests.RequestException as exc:
            with self.recorder.lock:
                self.recorder.errors.append((method, path, repr(exc)))
            raise
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        self.recorder.add(
            Answer(
                method,
                path[:200],
                response.status_code,
                body,
                self.recorder.phase,
                time.monotonic() - started,
            )
        )
        return response

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def upload(self, data: bytes, name: str = "photo.jpg") -> str:
        response = self.post("/api/uploads", files={"file": (name, data)})
        assert response.status_code == 201, response.text
        return response.json()["data"]["url"]

    def create(self, task_type: str, url: str, params: dict | None = None, **kwargs: Any):
        body = {"type": task_type, "inputImageUrl": url, "params": params or {}}
        return self.post("/api/task/create", json=body, **kwargs)

    def create_id(self, task_type: str, url: str, params: dict | None = None) -> str:
        response = self.create(task_type, url, params)
        assert response.status_code == 201, response.text
        return response.json()["data"]["taskId"]


# ------------------------------------------------------------------------------------------ stack


@dataclass
class Stack:
    """One scenario's service: a fresh database on the private cluster, the flushed private Redis,
    the web server, worker pools and (optionally) the RunningHub stand-in, all as real processes."""

    cluster: Cluster
    db_name: str
    tmp: Path
    env: dict[str, str]
    recorder: Recorder = field(default_factory=Recorder)
    web: LiveServer | None = None
    workers: list[WorkerProcess] = field(default_factory=list)
    standin: Any = None
    users: dict[str, int] = field(default_factory=dict)

    @property
    def storage_root(self) -> Path:
        return Path(self.env["STORAGE_LOCAL_ROOT"])

    @property
    def redis(self) -> Redis:
        return Redis.from_url(self.env["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5)

    def db(self) -> psycopg.Connection:
        return self.cluster.pg.connect(self.db_name)

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        with self.db() as conn:
            return conn.execute(sql, params).fetchall()

    def flask(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"flask {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start_web(self, **overrides: str) -> LiveServer:
        self.web = LiveServer({**self.env, **overrides}, self.tmp / "web.log")
        # Workers build links and recognise our own upload links with the same base URL.
        self.env["PUBLIC_BASE_URL"] = self.web.url
        self.env.setdefault("RUNNINGHUB_WEBHOOK_BASE_URL", self.web.url)
        return self.web

    def start_workers(self, **overrides: str) -> WorkerProcess:
        worker = WorkerProcess({**self.env, **overrides}, self.tmp / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def wait_workers_ready(self, count: int, timeout: float = 90) -> None:
        """Until `count` rq workers are registered and idle (model preloaded)."""
        from rq import Worker

        def ready() -> bool:
            try:
                workers = Worker.all(connection=self.redis)
            except Exception:
                return False
            return len(workers) >= count

        wait_for(ready, timeout=timeout, interval=0.25, message=f"{count} rq workers registered")

    def api(self, token: str | None = None) -> Api:
        assert self.web is not None, "start_web() first"
        return Api(self.web.url, self.recorder, token)

    def create_users(self, quotas: dict[str, int]) -> dict[str, str]:
        """Create member accounts through the operator CLI (in parallel); return email → token."""
        procs = {
            email: subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "wsgi",
                    "users",
                    "create",
                    email,
                    "--password",
                    PASSWORD,
                    "--member",
                    "--quota",
                    str(quota),
                ],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for email, quota in quotas.items()
        }
        for proc in procs.values():
            out = proc.communicate(timeout=120)[0]
            assert proc.returncode == 0, out
        tokens = {}
        for email in quotas:
            response = self.api().post(
                "/api/auth/login", json={"email": email, "password": PASSWORD}, auth=False
            )
            assert response.status_code == 200, response.text
            tokens[email] = response.json()["data"]["accessToken"]
            self.users[email] = self.query("SELECT id FROM users WHERE email = %s", (email,))[0][0]
        return tokens

    def worker_output(self, tail: int = 4000) -> str:
        return "\n".join(w.output()[-tail:] for w in self.workers)

    def stop(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop()
        if self.web is not None:
            self.web.stop()
        if self.standin is not None:
            self.standin.stop()


def stack_env(cluster: Cluster, db_name: str, tmp: Path, **overrides: str) -> dict[str, str]:
    """The settings of every process of a scenario (names as in `tests.conftest.test_env`)."""
    settings = {
        "DATABASE_URL": cluster.pg.url(db_name),
        "REDIS_URL": cluster.redis.url(0),
        "SECRET_KEY": SECRET_KEY,
        "JOB_OVERRIDES": "",
        "WORKER_PRELOAD": "1",
        "WORKER_PROCESSES": "2",
        "INFERENCE_THREADS": "1",
        "RETRY_DELAY_FACTOR": "0.2",
        "TASK_TIMEOUT_SECONDS": "120",
        "SWEEP_INTERVAL_SECONDS": "2",
        "RECONCILE_INTERVAL_SECONDS": "2",
        "RECONCILE_GRACE_SECONDS": "3",
        "ALLOW_PRIVATE_URLS": "1",
        "STORAGE_LOCAL_ROOT": str(tmp / "storage"),
        "JWT_ACCESS_TOKEN_SECONDS": "7200",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "INFO",
        # The rate limiter stays on (production code path) with limits no scenario reaches:
        # a 429 would hide the answer under test.
        "RATELIMIT_LOGIN": "100000/minute",
        "RATELIMIT_CREATE": "100000/minute",
        "RATELIMIT_AUTHENTICATED": "100000/minute",
        "RATELIMIT_ANONYMOUS": "100000/minute",
        "MAX_ACTIVE_TASKS_PER_USER": "100000",
    }
    settings.update(overrides)
    return test_env(**settings)


def rh_env(standin) -> dict[str, str]:
    return {
        "RUNNINGHUB_BASE_URL": standin.base_url,
        "RUNNINGHUB_API_KEY": standin.api_key,
        "RUNNINGHUB_WORKFLOWS_FILE": WORKFLOWS,
        "RUNNINGHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RUNNINGHUB_POLL_SECONDS": "1",
        "RUNNINGHUB_RETRY_SECONDS": "1",
    }
