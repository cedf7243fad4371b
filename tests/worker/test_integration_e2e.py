"""Integration surfaces through the live web server and a real worker: event stream, client webhooks, job logs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared import webhooks
from shared.db import db
from shared.models import Task
from tests.conftest import PASSWORD, wait_for

IMAGE = "https://images.example.com/p.jpg"


def login(base: str, email: str) -> dict[str, str]:
    token = requests.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    return {"Authorization": "Bearer " + token.json()["data"]["accessToken"]}


def create(base: str, headers: dict[str, str], url: str = IMAGE, **extra) -> str:
    response = requests.post(
        f"{base}/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": url, **extra},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["taskId"]


def read_events(response) -> list[dict]:
    """Parse an SSE response until the server closes it."""
    events, data = [], []
    for raw in response.iter_lines(decode_unicode=True):
        if raw.startswith("data: "):
            data.append(raw[6:])
        elif raw == "" and data:
            events.append(json.loads("\n".join(data)))
            data = []
    return events


def test_event_stream_sends_each_state_and_closes(make_user, start_worker, start_live_server):
    server = start_live_server()
    user = make_user(quota=2)
    headers = login(server.url, user.email)
    task_id = create(server.url, headers, IMAGE + "?sleep=1.5")
    with requests.get(
        f"{server.url}/api/task/{task_id}/events", headers=headers, stream=True, timeout=60
    ) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        start_worker()
        states = read_events(stream)
    statuses = [s["status"] for s in states]
    assert statuses[0] == "pending" and statuses[-1] == "success"
    assert "processing" in statuses
    assert states[-1]["resultUrls"] and states[-1]["progress"] == 100
    # Browsers' EventSource cannot send headers: the token may come in the query string here.
    token = headers["Authorization"].removeprefix("Bearer ")
    with requests.get(
        f"{server.url}/api/task/{task_id}/events?access_token={token}", stream=True, timeout=30
    ) as again:
        assert [s["status"] for s in read_events(again)] == ["success"]
    assert requests.get(f"{server.url}/api/task/{task_id}/events", timeout=10).status_code == 401


def test_open_streams_do_not_block_other_requests(make_user, start_live_server):
    """gthread: a stream holds a thread, not the worker process."""
    server = start_live_server(WEB_CONCURRENCY="1", WEB_THREADS="4", SSE_HEARTBEAT_SECONDS="1")
    user = make_user(quota=2)
    headers = login(server.url, user.email)
    ids = [create(server.url, headers) for _ in range(2)]
    streams = [
        requests.get(f"{server.url}/api/task/{task_id}/events", headers=headers, stream=True, timeout=30)
        for task_id in ids
    ]
    try:
        lines = streams[0].iter_lines(decode_unicode=True)
        seen = [next(lines) for _ in range(6)]
        assert ": heartbeat" in seen  # the stream is alive and idle
        for _ in range(5):
            assert requests.get(f"{server.url}/healthz", timeout=2).status_code == 200
    finally:
        for stream in streams:
            stream.close()


class Receiver:
    """A client's webhook endpoint: fails the first delivery with a 500, accepts later ones."""

    def __init__(self, fail_first: int = 1) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if len(receiver.calls) <= fail_first else 204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    hook = Receiver()
    yield hook
    hook.server.shutdown()


def test_client_webhook_is_signed_retried_and_recorded(make_user, start_worker, start_live_server, receiver):
    server = start_live_server()
    user = make_user(quota=1)
    headers = login(server.url, user.email)
    secret = requests.get(f"{server.url}/api/webhooks/secret", headers=headers, timeout=10).json()["data"][
        "secret"
    ]
    assert secret.startswith("whsec_")
    task_id = create(server.url, headers, webhookUrl=receiver.url)
    worker = start_worker()
    wait_for(lambda: len(receiver.calls) >= 2, timeout=60, message="webhook retried after a 500")
    # The task ended on its own schedule; the failing receiver did not affect it.
    db.session.expire_all()
    assert db.session.get(Task, task_id).status == "success", worker.output()[-2000:]
    for sent_headers, body in receiver.calls:
        assert webhooks.verify(secret, sent_headers, body)
        assert not webhooks.verify(secret, sent_headers, body + b" ")
    first_headers, body = receiver.calls[0]
    payload = json.loads(body)
    assert payload["type"] == "task.success" and payload["data"]["id"] == task_id
    assert first_headers["webhook-id"] == receiver.calls[1][0]["webhook-id"]  # same message, retried

    def delivered():
        detail = requests.get(f"{server.url}/api/task/{task_id}", headers=headers, timeout=10).json()["data"]
        last = detail["webhook"]["lastDelivery"]
        return last if last and last["ok"] else None

    last = wait_for(delivered, timeout=20, message="delivery recorded")
    assert last["attempt"] == 2 and last["statusCode"] == 204


def test_webhook_url_is_ssrf_checked_at_create(database, redis, make_user, start_live_server):
    server = start_live_server(ALLOW_PRIVATE_URLS="0")
    headers = login(server.url, make_user(quota=1).email)
    response = requests.post(
        f"{server.url}/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": IMAGE, "webhookUrl": "http://169.254.169.254/hook"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 400 and "webhookUrl" in response.json()["details"]["fields"]


def test_request_id_reaches_the_job_log_lines(make_user, start_worker, start_live_server):
    server = start_live_server()
    headers = {**login(server.url, make_user(quota=1).email), "X-Request-ID": "trace-42-create"}
    task_id = create(server.url, headers)
    worker = start_worker()
    wait_for(lambda: "trace-42-create" in worker.output(), timeout=30, message="request id in worker logs")
    job_lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    tagged = [line for line in job_lines if line.get("request_id") == "trace-42-create"]
    assert tagged and any(task_id in line["message"] for line in tagged)
    web_lines = [
        json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")
    ]
    assert any(
        line.get("request_id") == "trace-42-create" and line.get("status") == 201 for line in web_lines
    )
