"""The web edge under the real server (`python -m api.serve`, the Procfile's web line): metrics
across its worker processes, rate-limit headers, the request log, body limits, slow bodies and
event-stream caps; and /rq and /metrics protection through the app."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import PASSWORD, LiveServer, app_with, wait_for
from tests.conftest import test_env as environment

HOOK_SECRET = "rh-hook-secret-0123456789"
METRICS_TOKEN = "metrics-token-0123456789"
IMAGE = "https://images.example.com/p.jpg"


@pytest.fixture(scope="module")
def edge_server(database, tmp_path_factory) -> Iterator[LiveServer]:
    """Two worker processes, as deployed; one server for the module's read-only checks."""
    env = environment(WEB_CONCURRENCY="2", METRICS_TOKEN=METRICS_TOKEN, RUNNINGHUB_WEBHOOK_SECRET=HOOK_SECRET)
    server = LiveServer(env, tmp_path_factory.mktemp("edge") / "web.log")
    yield server
    server.stop()


def login(base: str, email: str) -> dict[str, str]:
    answer = requests.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    return {"Authorization": "Bearer " + answer.json()["data"]["accessToken"]}


def create(base: str, headers: dict[str, str]) -> str:
    body = {"type": "basic_clean", "inputImageUrl": IMAGE}
    answer = requests.post(f"{base}/api/task/create", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["taskId"]


def log_lines(server: LiveServer) -> list[dict]:
    lines = []
    for raw in server.log_path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def many_tiny_objects(size: int) -> bytes:
    """A JSON document of `size` bytes that is cheap to send and expensive to parse."""
    return b'{"params": [' + b"{}," * (size // 3) + b"{}]}"


# ------------------------------------------------------------------ metrics, headers, request log


def list_401s_counted(base: str) -> float:
    text = requests.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    ).text
    counted = re.search(
        r'^shopimage_http_requests_total\{endpoint="/api/task/list",method="GET",status="401"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    return float(counted.group(1)) if counted else 0.0


def list_lines(server: LiveServer) -> list[dict]:
    return [line for line in log_lines(server) if line.get("path") == "/api/task/list"]


def test_http_metrics_rate_limit_headers_and_log_under_the_real_server(edge_server, app):
    base = edge_server.url
    counted, logged = list_401s_counted(base), len(list_lines(edge_server))
    remaining = []
    for _ in range(8):  # a new connection each time: both worker processes answer some
        answer = requests.get(f"{base}/api/task/list", headers={"Connection": "close"}, timeout=10)
        assert answer.status_code == 401
        assert answer.headers["RateLimit-Limit"] == "300"
        remaining.append(int(answer.headers["RateLimit-Remaining"]))
    assert remaining == sorted(remaining, reverse=True) and remaining[0] - remaining[-1] == 7
    assert list_401s_counted(base) == counted + 8  # summed over both processes
    lines = list_lines(edge_server)[logged:]
    assert len(lines) == 8
    assert all(line["status"] == 401 and line["request_id"] and line["method"] == "GET" for line in lines)


def test_runninghub_webhook_secret_stays_out_of_the_request_log(edge_server, app):
    answer = requests.post(
        f"{edge_server.url}/api/webhooks/runninghub/{HOOK_SECRET}", json={"taskId": "rh-1"}, timeout=10
    )
    assert answer.status_code == 200
    wrong = requests.post(f"{edge_server.url}/api/webhooks/runninghub/guess-123456", json={}, timeout=10)
    assert wrong.status_code == 404
    wait_for(
        lambda: (
            sum("/api/webhooks/runninghub/" in line.get("path", "") for line in log_lines(edge_server)) >= 2
        ),
        message="both webhook calls logged",
    )
    text = edge_server.log_path.read_text(errors="replace")
    assert HOOK_SECRET not in text and "guess-123456" not in text
    paths = [line["path"] for line in log_lines(edge_server) if "/api/webhooks/" in line.get("path", "")]
    assert paths == ["/api/webhooks/runninghub/[redacted]"] * 2


# ------------------------------------------------------------------------------------- bodies


def test_a_large_anonymous_json_body_is_refused_unread(edge_server, app):
    """5 MB of tiny objects took seconds and hundreds of megabytes to parse; its declared length
    now refuses it before a byte is read (bench/body_limit.py measures time and memory)."""
    answer = requests.post(
        f"{edge_server.url}/api/task/create",
        data=many_tiny_objects(5 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 413, answer.text
    assert answer.json() == {"success": False, "code": 4001, "message": "request body too large"}
    assert answer.headers["Connection"] == "close"  # the unread body is not taken for a next request
    assert requests.get(f"{edge_server.url}/healthz", timeout=10).status_code == 200


def test_the_internal_status_update_checks_the_caller_before_the_body(edge_server, app):
    answer = requests.put(
        f"{edge_server.url}/api/task/some-task/status",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 401, answer.text


def test_json_bodies_above_max_json_bytes_are_413_even_with_a_token(edge_server, app, make_user):
    headers = {**login(edge_server.url, make_user().email), "Content-Type": "application/json"}
    declared = requests.post(
        f"{edge_server.url}/api/task/create",
        data=many_tiny_objects(5 * 1024 * 1024),
        headers=headers,
        timeout=30,
    )
    assert declared.status_code == 413, declared.text
    assert declared.json() == {"success": False, "code": 4001, "message": "request body too large"}


def test_a_streamed_json_body_stops_being_read_at_max_json_bytes(app, auth, make_user):
    """A body without a declared length is cut off once it passes the limit (in-process: the
    real server hands the app no body without a length at all)."""
    body = io.BytesIO(many_tiny_objects(5 * 1024 * 1024))
    answer = app.test_client().post(
        "/api/task/create",
        input_stream=body,
        headers={**auth.headers(make_user()), "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert answer.status_code == 413, answer.get_json()
    assert body.tell() <= 64 * 1024


def test_a_chunked_body_the_server_does_not_hand_over_is_a_clear_400(app):
    """Without `wsgi.input_terminated` (Granian) the app sees no body without a length."""
    answer = app.test_client().post(
        "/api/auth/login",
        input_stream=io.BytesIO(b'{"email": "a@example.com", "password": "secret-pass-1"}'),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"CONTENT_LENGTH": ""},
    )
    assert answer.status_code == 400 and answer.get_json()["message"] == "malformed JSON body"
    assert answer.headers["Connection"] == "close"


def test_a_slow_body_is_cut_off_and_frees_the_thread(start_live_server, make_user):
    server = start_live_server(WEB_THREADS="1", REQUEST_BODY_SECONDS="1")
    headers = login(server.url, make_user().email)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as conn:
        conn.sendall(
            b"POST /api/task/create HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Authorization: %s\r\nContent-Length: 1000\r\n\r\n{"type": ' % headers["Authorization"].encode()
        )
        answer = conn.recv(65536)  # the rest of the body never comes
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"code":4001' in answer.replace(b" ", b"")
    # The server's only thread is free again.
    assert requests.get(f"{server.url}/api/task/list", headers=headers, timeout=5).status_code == 200


# ------------------------------------------------------------------------------ stream caps


def open_stream(base: str, task_id: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{base}/api/task/{task_id}/events", headers=headers, stream=True, timeout=10)


def test_event_streams_are_capped_per_user_and_per_process(start_live_server, make_user):
    server = start_live_server(
        WEB_CONCURRENCY="1", WEB_THREADS="4", SSE_MAX_STREAMS_PER_USER="2", SSE_HEARTBEAT_SECONDS="1"
    )
    member, other = make_user(quota=3), make_user(quota=1)
    mine, theirs = login(server.url, member.email), login(server.url, other.email)
    ids = [create(server.url, mine) for _ in range(3)]
    their_id = create(server.url, theirs)
    streams = [open_stream(server.url, task_id, mine) for task_id in ids[:2]]
    try:
        assert [s.status_code for s in streams] == [200, 200]
        third = open_stream(server.url, ids[2], mine)
        assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
        assert third.json()["code"] == 4029 and "poll" in third.json()["message"]
        # Half of the process's four threads serve streams; another member gets 503, not a hang.
        busy = open_stream(server.url, their_id, theirs)
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
        assert busy.json()["success"] is False
        for _ in range(5):
            assert requests.get(f"{server.url}/api/task/list", headers=mine, timeout=5).status_code == 200
        streams.pop(0).close()  # a stream that ends gives its place back

        def reopened() -> bool:
            attempt = open_stream(server.url, their_id, theirs)
            if attempt.status_code == 200:
                streams.append(attempt)
                return True
            attempt.close()
            return False

        wait_for(reopened, timeout=20, interval=0.5, message="a closed stream's place is given back")
    finally:
        for stream in streams:
            stream.close()


# ------------------------------------------------------------------------- /rq and /metrics


@pytest.fixture
def admin_app(database, redis):
    yield from app_with(
        RATELIMIT_ADMIN="4/minute",
        METRICS_TOKEN=METRICS_TOKEN,
        RQ_DASHBOARD_USERNAME="ops",
        RQ_DASHBOARD_PASSWORD="ops-pass-123",
    )


BASIC = {"Authorization": "Basic " + base64.b64encode(b"ops:ops-pass-123").decode()}


def test_rq_and_metrics_share_a_per_address_limit(admin_app):
    client = admin_app.test_client()
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}
    statuses = [client.get("/rq/", headers=wrong).status_code for _ in range(2)]
    statuses += [
        client.get("/metrics", headers={"Authorization": "Bearer guess"}).status_code for _ in range(2)
    ]
    assert statuses == [401, 401, 401, 401]
    limited = client.get("/rq/", headers=BASIC)  # even the right password waits for the window
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.get_json()["code"] == 4029
    assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 429


def test_rq_dashboard_actions_need_a_same_origin_post_or_a_token(admin_app, auth, make_user):
    admin_app.config["RATELIMIT_ADMIN"] = "1000/minute"
    client = admin_app.test_client()
    compact = "/rq/queue/images/compact"
    assert client.post(compact, headers=BASIC).status_code == 403  # a form on another site
    assert client.post(compact, headers={**BASIC, "Origin": "https://evil.example"}).status_code == 403
    assert client.post(compact, headers={**BASIC, "Referer": "https://evil.example/rq"}).status_code == 403
    assert client.get("/rq/requeue/images", headers=BASIC).status_code == 405  # GET is never an action
    requeue = "/rq/requeue/images"
    assert client.post(requeue, headers={**BASIC, "Origin": "http://localhost"}).status_code == 200
    assert client.post(requeue, headers={**BASIC, "Referer": "http://localhost/rq/0/view"}).status_code == 200
    assert client.post(requeue, headers=auth.headers(make_user(admin=True))).status_code == 200
    assert client.get("/rq/0/data/queues.json", headers=BASIC).status_code == 200  # reads stay plain GETs
