"""Webhook deliveries never run ahead of image jobs: a real `python worker.py` with one task worker."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.db import db
from shared.models import Task
from tests.conftest import wait_for

HOLD_SECONDS = 2.0
"""How long the receiver sits on each delivery before answering 500 (so rq retries it too)."""


class SlowReceiver:
    """A webhook receiver that answers every delivery late, and counts the answers."""

    def __init__(self) -> None:
        self.answered = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(HOLD_SECONDS)
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.answered += 1

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    server = SlowReceiver()
    yield server
    server.close()


def create(client, headers, url: str, webhook_url: str | None = None) -> str:
    body = {"type": "basic_clean", "inputImageUrl": url}
    if webhook_url:
        body["webhookUrl"] = webhook_url
    response = client.post("/api/task/create", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]["taskId"]


def status(task_id: str) -> str:
    db.session.expire_all()
    return db.session.get(Task, task_id).status


def test_failed_tasks_webhooks_do_not_delay_an_image_job(client, auth, make_user, start_worker, receiver):
    """Three failing tasks queue three slow deliveries ahead of a normal task; it still runs at once."""
    user = make_user(quota=4)
    headers = auth.headers(user)
    failing = [
        create(client, headers, "https://images.example.com/p.jpg?reject=bad+photo", receiver.url)
        for _ in range(3)
    ]
    normal = create(client, headers, "https://images.example.com/p.jpg")
    worker = start_worker(WORKER_PROCESSES="1")

    wait_for(lambda: status(normal) == "success", timeout=60, message="the normal task")
    answered_when_done = receiver.answered
    assert all(status(t) == "failed" for t in failing)
    # One task worker and three deliveries of HOLD_SECONDS each queued before the normal task's
    # turn: had they shared the worker, all three would have been answered first.
    assert answered_when_done < 3, worker.output()[-2000:]
    wait_for(lambda: receiver.answered >= 3, timeout=60, message="the deliveries, in their own lane")
