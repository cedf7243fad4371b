"""Browser fixtures: the real app under its web server (`python -m api.serve`), a real worker, and Debian's headless Chromium.

One web server and one browser serve the whole session; each test gets a fresh browser
context (its own storage), and tables are emptied after each test by the `app` fixture.
`scripts/install_browser.sh` installs /usr/bin/chromium and the playwright package
(a browser download does not work here, so Playwright drives the system Chromium).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from PIL import Image, ImageDraw, ImageFilter

from tests.conftest import PASSWORD, ROOT, app_with, test_env, wait_for

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REAL_PIPELINE = {"JOB_OVERRIDES": "", "WORKER_PRELOAD": "1"}
INSTALL_HINT = "run `bash scripts/install_browser.sh` (Debian chromium + the playwright package)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """`python -m api.serve` (the Procfile's web line) as a subprocess on 127.0.0.1:<port>."""

    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.serve"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"web server exited early:\n{self.output()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=30, interval=0.2, message="web server to answer /healthz")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> str:
        """`flask --app wsgi ...` against the same database, as an operator would run it."""
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


@pytest.fixture(scope="session")
def server_env() -> dict[str, str]:
    port = _free_port()
    return test_env(
        **REAL_PIPELINE,
        HOST="127.0.0.1",
        PORT=str(port),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        WEB_THREADS="8",
        # model_pose12 can be created (its job never runs here: no worker takes it in these tests).
        RUNNINGHUB_BASE_URL="http://127.0.0.1:9",
        RUNNINGHUB_API_KEY="0123456789abcdef0123456789abcdef",
        RUNNINGHUB_WORKFLOWS_FILE=str(ROOT / "config" / "runninghub-workflows.example.json"),
        RUNNINGHUB_WEBHOOK_SECRET="browser-test-webhook-secret",
    )


@pytest.fixture(scope="session")
def live_server(database: str, server_env: dict[str, str], tmp_path_factory) -> Iterator[LiveServer]:
    server = LiveServer(int(server_env["PORT"]), server_env, tmp_path_factory.mktemp("live") / "web.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app(database: str, redis, server_env: dict[str, str]) -> Iterator[Flask]:
    """The in-process app on the live server's settings (for factories and direct checks)."""
    yield from app_with(JOB_OVERRIDES="", PUBLIC_BASE_URL=server_env["PUBLIC_BASE_URL"], WORKER_PRELOAD="1")


@pytest.fixture
def real_worker(start_worker, server_env: dict[str, str]):
    """A real worker running the shipped jobs (the real basic_clean pipeline)."""
    return start_worker(**REAL_PIPELINE, PUBLIC_BASE_URL=server_env["PUBLIC_BASE_URL"])


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session; Playwright gives it a new, empty profile directory."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed: {INSTALL_HINT}")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}")
    downloads = tempfile.mkdtemp(prefix="console-downloads-")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, downloads_path=downloads
        )
        yield browser
        browser.close()


class PageProblems:
    """Uncaught page errors and CSP violations, collected while a test runs."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_console(self, message) -> None:
        text = message.text
        if message.type == "error" and "Content Security Policy" in text:
            self.errors.append(f"CSP: {text}")

    def on_page_error(self, error) -> None:
        self.errors.append(f"page error: {error}")


def _new_page(browser, live_server: LiveServer, width: int, height: int):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": height},
        locale="zh-CN",
        accept_downloads=True,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = PageProblems()
    page.on("console", problems.on_console)
    page.on("pageerror", problems.on_page_error)
    page.problems = problems
    return context, page


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_call_failed = report.failed
    return report


def _finish(request, context, page, live_server: LiveServer, tmp_path: Path) -> None:
    """On failure keep a screenshot and the server log next to the test's tmp files."""
    if getattr(request.node, "browser_call_failed", False):
        shot = tmp_path / "failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failing page: {shot}")
        except Exception as exc:  # the page may be gone
            print(f"no screenshot: {exc}")
        print("web server log (tail):\n" + live_server.output()[-4000:])
    context.close()
    assert not page.problems.errors, page.problems.errors


@pytest.fixture
def page(request, browser, live_server: LiveServer, app, tmp_path: Path) -> Iterator[Any]:
    """A desktop-sized page in a fresh context; fails the test on CSP violations or JS errors."""
    context, page = _new_page(browser, live_server, 1280, 900)
    yield page
    _finish(request, context, page, live_server, tmp_path)


@pytest.fixture
def phone_page(request, browser, live_server: LiveServer, app, tmp_path: Path) -> Iterator[Any]:
    """A 375 px wide page (an iPhone-sized viewport)."""
    context, page = _new_page(browser, live_server, 375, 740)
    yield page
    _finish(request, context, page, live_server, tmp_path)


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/")
    page.fill("#auth-email", email)
    page.fill("#auth-password", password)
    page.click("#auth-submit")
    page.wait_for_selector("#account")


def product_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A synthetic product photo: a shaded red bottle with a label on a light gradient backdrop."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        shade = 232 - int(40 * y / height)
        draw.line([(0, y), (width, y)], fill=(shade, shade - 2, shade - 8))
    cx, top, bottom, half = width // 2, int(height * 0.15), int(height * 0.88), int(width * 0.11)
    draw.ellipse([cx - half - 30, bottom - 14, cx + half + 30, bottom + 12], fill=(150, 146, 140))
    for dx in range(-half, half + 1):
        light = 0.55 + 0.45 * (1 - abs(dx) / half)
        draw.line(
            [(cx + dx, top + 40), (cx + dx, bottom)],
            fill=(int(190 * light), int(35 * light), int(45 * light)),
        )
    draw.rectangle([cx - half // 3, top, cx + half // 3, top + 42], fill=(60, 60, 70))
    draw.rectangle([cx - half + 6, top + 150, cx + half - 6, top + 220], fill=(245, 240, 225))
    image = image.filter(ImageFilter.GaussianBlur(0.8))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def task_requests(log: list[tuple[float, str]], task_id: str) -> list[float]:
    """Times of GET /api/task/<task_id> requests seen by the page."""
    suffix = f"/api/task/{task_id}"
    return [at for at, path in log if path == suffix]


def record_requests(page) -> list[tuple[float, str]]:
    """Record (time, path) of every GET the page sends to the API."""
    from urllib.parse import urlparse

    log: list[tuple[float, str]] = []

    def on_request(request) -> None:
        if request.method == "GET" and "/api/" in request.url:
            log.append((time.monotonic(), urlparse(request.url).path))

    page.on("request", on_request)
    return log


def spoil_access_token_and_reload(page) -> None:
    """Make the stored access token invalid, so the console's next call refreshes the pair."""
    page.evaluate(
        """() => {
            const saved = JSON.parse(localStorage.getItem('shopimage.auth'));
            saved.accessToken = 'not-a-token';
            localStorage.setItem('shopimage.auth', JSON.stringify(saved));
        }"""
    )
    page.reload()
