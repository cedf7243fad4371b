"""The RunningHub stand-in as a real subprocess, for any test that talks to "RunningHub".

Use it from a test module (assign, so the linter sees a use):

    from tests import standin_fixtures
    runninghub_standin = standin_fixtures.runninghub_standin

`runninghub_standin` is one shared stand-in (render time 0.5 s), reset before each test;
`start_standin(tmp_path, max_running=2, ...)` starts a private one with other options.
"""

from __future__ import annotations

import atexit
import itertools
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS_EXAMPLE = REPO / "config" / "runninghub-workflows.example.json"
STANDIN_API_KEY = "0123456789abcdef0123456789abcdef"
"""A 32-character key, like RunningHub's."""

STARTUP_SECONDS = 20
_names = itertools.count(1)


@dataclass
class Standin:
    """A running stand-in process and its admin API."""

    process: subprocess.Popen
    base_url: str
    api_key: str
    log_path: Path

    def set_faults(self, faults: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
        """Merge fault rules, e.g. `{"queue_full": {"count": 1}}`; a null rule clears one."""
        body: dict[str, Any] = {"faults": faults}
        if seed is not None:
            body["seed"] = seed
        return self._admin("post", "faults", json=body)

    def state(self) -> dict[str, Any]:
        return self._admin("get", "state")

    def reset(self) -> dict[str, Any]:
        return self._admin("post", "reset")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def _admin(self, method: str, name: str, **kwargs: Any) -> dict[str, Any]:
        response = requests.request(method, f"{self.base_url}/__admin/{name}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()


def start_standin(
    tmp_path: Path, *, api_key: str = STANDIN_API_KEY, render_seconds: float = 0.5, **options: Any
) -> Standin:
    """Start `python -m standin.runninghub` on a free port and wait until it answers.

    Options become CLI flags: `max_running=2` → `--max-running 2`, `numeric_ids=True` → `--numeric-ids`.
    The caller stops it (`Standin.stop`).
    """
    args = [sys.executable, "-m", "standin.runninghub", "--port", "0", "--api-key", api_key]
    args += ["--render-seconds", str(render_seconds)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value not in (None, False):
            args += [flag, str(value)]
    number = next(_names)
    out_path, log_path = tmp_path / f"standin-{number}.out", tmp_path / f"standin-{number}.log"
    with out_path.open("w") as out, log_path.open("w") as log:
        process = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"runninghub stand-in exited:\n{log_path.read_text()}")
        _, found, url = out_path.read_text().partition("listening on ")
        if found and url.endswith("\n"):
            standin = Standin(process, url.strip(), api_key, log_path)
            try:
                standin.state()
                return standin
            except requests.RequestException:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"runninghub stand-in did not start in {STARTUP_SECONDS}s:\n{log_path.read_text()}")


_shared: Standin | None = None


def shared_standin() -> Standin:
    """One default stand-in per test process, stopped at exit."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        _shared = start_standin(Path(tempfile.mkdtemp(prefix="standin-")))
        atexit.register(_shared.stop)
    return _shared


@pytest.fixture
def runninghub_standin() -> Standin:
    """The shared stand-in, with no faults, tasks or counters left by an earlier test."""
    standin = shared_standin()
    standin.reset()
    return standin


@pytest.fixture
def runninghub_standin_factory(tmp_path: Path):
    """Start private stand-ins with options; all are stopped after the test."""
    started: list[Standin] = []

    def start(**options: Any) -> Standin:
        standin = start_standin(tmp_path, **options)
        started.append(standin)
        return standin

    yield start
    for standin in started:
        standin.stop()
