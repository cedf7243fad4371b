"""Deployable as a Heroku-style app: build it the way the Python buildpack does, then run the Procfile.

The build: copy the repository's files (tracked plus untracked-but-not-ignored, i.e. what a push
would carry plus work in progress) into a temporary directory, create a clean virtualenv,
`pip install -r requirements.txt` there, run `bin/post_compile` (model fetch and rembg warm-up).
The run: the Procfile's `release`, `web` and `worker` lines, each exactly as written, through
`bash -c` with `$PORT` in the environment (as the platform does), with a Heroku-style environment:
`postgres://` DATABASE_URL, REDIS_URL, APP_ENV=production, a random SECRET_KEY, HOME = the app dir.

Cost on a 2-core machine with pip's cache warm: 2.5 min idle, ~5 min under heavy load (venv 3 s,
pip install 30-110 s, numba warm-up in post_compile 45-120 s, release/web/worker ~15 s), and
~0.9 GB of temporary disk, removed afterwards.
`MODEL_SOURCE_DIR` points post_compile at the model already in ./models (else it fetches from PyPI).
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from redis import Redis

from tests.conftest import PG_URL, REDIS_URL, RUN_ID, _worker_index

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = (
    "shopimage_deploy_test"
    + (f"_{RUN_ID}" if RUN_ID else "")
    + (f"_{_worker_index()}" if os.environ.get("PYTEST_XDIST_WORKER") else "")
)
EXPECTED_TABLES = {"alembic_version", "users", "tasks", "quota_ledger", "idempotency_keys"}


# --- static checks: cheap, and they name the broken file directly -----------------------------


def procfile(root: Path = ROOT) -> dict[str, str]:
    """Process types of a Procfile: `name: command` per line (the platform's own format)."""
    processes = {}
    for line in (root / "Procfile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            processes[match.group(1)] = match.group(2)
    return processes


def test_procfile_declares_release_web_worker():
    assert set(procfile()) >= {"release", "web", "worker"}


def test_requirements_install_the_package_itself():
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines == ["-e ."], "requirements.txt must install this repository (its setup.cfg) and nothing else"


def test_python_version_file_satisfies_python_requires():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version), (
        f".python-version should be a major.minor version, got {version!r}"
    )
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    minimum = cfg["options"]["python_requires"].strip().removeprefix(">=")
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split(".")))


def test_post_compile_is_an_executable_bash_script():
    hook = ROOT / "bin" / "post_compile"
    assert os.access(hook, os.X_OK), "bin/post_compile must be executable (git update-index --chmod=+x)"
    assert hook.read_text().startswith("#!/usr/bin/env bash")
    subprocess.run(["bash", "-n", str(hook)], check=True)


def test_app_json_declares_addons_env_and_formation():
    manifest = json.loads((ROOT / "app.json").read_text())
    addons = {a["plan"] if isinstance(a, dict) else a for a in manifest["addons"]}
    assert {plan.split(":")[0] for plan in addons} >= {"heroku-postgresql", "heroku-redis"}
    env = manifest["env"]
    assert env["SECRET_KEY"]["generator"] == "secret"
    assert env["SERVICE_TOKEN"]["generator"] == "secret"
    assert env["APP_ENV"]["value"] == "production"
    # Heroku's router is one hop: without this every client shares the router's address.
    assert env["TRUST_PROXY_HOPS"]["value"] == "1"
    assert "TRUST_PROXY_HOPS=1" in (ROOT / "docs" / "DEPLOY.md").read_text()
    for name in (
        "STORAGE_BACKEND",
        "S3_BUCKET",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "RUNNINGHUB_API_KEY",
    ):
        assert env[name].get("description"), f"app.json env {name} needs a description"
    formation = manifest["formation"]
    assert set(formation) == set(procfile()) - {"release"}
    for process in formation.values():
        assert process["quantity"] >= 1 and process["size"]
    assert manifest["buildpacks"] == [{"url": "heroku/python"}]


# --- the build and the run ----------------------------------------------------------------------


def repository_files() -> list[str]:
    """What a push would carry: tracked files plus untracked files that are not ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return sorted({name for name in out.split("\0") if name and (ROOT / name).is_file()})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run to completion; on failure the assertion shows the command's whole output."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-6000:]}"
    return proc.stdout


class Dyno:
    """One Procfile line running as the platform runs it: `bash -c <command>`, own process group."""

    def __init__(self, command: str, *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM to every process of the dyno (what the platform does); None if still running after."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._out.close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(predicate, timeout: float, dyno: Dyno) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if dyno.proc.poll() is not None:
            pytest.fail(f"process exited {dyno.proc.returncode} early:\n{dyno.output()[-6000:]}")
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout} s:\n{dyno.output()[-6000:]}")


@pytest.fixture
def scratch_database() -> Iterator[str]:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    yield DB_NAME
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


@pytest.fixture
def build_dir() -> Iterator[Path]:
    # Not tmp_path: pytest keeps the last runs' tmp dirs, and this one holds a ~0.9 GB virtualenv.
    path = Path(tempfile.mkdtemp(prefix="shopimage_deploy_"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_buildpack_style_install_runs_release_web_and_worker(build_dir, scratch_database):
    started = time.monotonic()
    app_dir, venv = build_dir / "app", build_dir / "venv"
    for name in repository_files():
        (app_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, app_dir / name)
    assert not (app_dir / "models" / "u2netp.onnx").exists(), (
        "the model is ignored by git; the build fetches it"
    )

    # Build: a clean virtualenv, then what the buildpack runs. Only pip's settings pass through
    # (index, cache); HOME stays real so pip's cache is used.
    system_path = os.environ.get("PATH", "/usr/bin:/bin")
    build_env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")} | {
        "PATH": f"{venv / 'bin'}:{system_path}",
        "HOME": os.environ.get("HOME", str(build_dir)),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "MODEL_SOURCE_DIR": os.environ.get("MODEL_DIR", str(ROOT / "models")),
    }
    run([sys.executable, "-m", "venv", str(venv)], cwd=app_dir, env=build_env, timeout=120)
    run(
        ["python", "-m", "pip", "install", "--no-input", "--progress-bar", "off", "-r", "requirements.txt"],
        cwd=app_dir,
        env=build_env,
        timeout=900,
    )
    built = time.monotonic()
    out = run(["bin/post_compile"], cwd=app_dir, env=build_env, timeout=600)
    assert (app_dir / "models" / "u2netp.onnx").is_file(), out
    numba_caches = list(venv.glob("lib/python*/site-packages/pymatting/**/__pycache__/*.nbi"))
    assert numba_caches, f"post_compile did not leave numba's kernel cache in site-packages:\n{out}"
    compiled = time.monotonic()

    # The code runs from the app dir, not from a copy in site-packages (paths derive from it).
    root_seen = run(
        ["python", "-c", "import shared.config as c; print(c.ROOT)"], cwd=build_dir, env=build_env, timeout=60
    )
    assert root_seen.strip() == str(app_dir)

    # Run: the Procfile lines as written, in a dyno-like environment.
    port = free_port()
    runtime_env = {
        "PATH": f"{venv / 'bin'}:{system_path}",
        "HOME": str(app_dir),  # like /app on a dyno
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PORT": str(port),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{scratch_database}",
        "REDIS_URL": REDIS_URL,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(30)[:40],
        "WORKER_PROCESSES": "1",  # a config var, so the test does not load one model per core
    }
    lines = procfile(app_dir)

    release = subprocess.run(
        ["bash", "-c", lines["release"]],
        cwd=app_dir,
        env=runtime_env,
        timeout=180,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert release.returncode == 0, release.stdout
    with psycopg.connect(f"{PG_URL}/{scratch_database}") as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
            )
        }
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert tables >= EXPECTED_TABLES, (
        f"release did not create the tables; has {sorted(tables)}\n{release.stdout}"
    )
    assert len(versions) == 1

    Redis.from_url(REDIS_URL).flushdb()
    web = Dyno(lines["web"], cwd=app_dir, env=runtime_env, log=build_dir / "web.log")
    worker = Dyno(lines["worker"], cwd=app_dir, env=runtime_env, log=build_dir / "worker.log")
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return get(f"{base}/healthz")[0] == 200
            except OSError:
                return False

        wait_until(up, 60, web)
        status, body = get(f"{base}/readyz")
        assert status == 200, body
        assert json.loads(body)["data"] == {"status": "ready", "database": "ok", "redis": "ok"}

        wait_until(lambda: "Listening on" in worker.output(), 90, worker)
        assert "matting model loaded" in worker.output()

        worker_rc = worker.terminate(timeout=30)
        assert worker_rc == 0, (
            f"worker exit {worker_rc} after SIGTERM (None = still running after 30 s):\n"
            + (worker.output()[-6000:])
        )
        web_rc = web.terminate(timeout=30)
        assert web_rc == 0, f"web exit {web_rc} after SIGTERM:\n{web.output()[-6000:]}"
    finally:
        worker.kill()
        web.kill()
        Redis.from_url(REDIS_URL).flushdb()
    print(
        f"\nbuildpack-style deploy: install {built - started:.0f} s, post_compile {compiled - built:.0f} s, "
        f"release+web+worker {time.monotonic() - compiled:.0f} s"
    )
