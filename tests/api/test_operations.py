"""Rate limits, metrics, the admin dashboard and structured logs, through HTTP."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest

from api import create_app
from shared import logs
from tests.conftest import PASSWORD, ConfigForTests, app_with


@pytest.fixture
def app(database, redis):
    yield from app_with(
        RATELIMIT_CREATE="3/minute",
        RATELIMIT_LOGIN="2/minute",
        METRICS_TOKEN="metrics-secret",
        RQ_DASHBOARD_USERNAME="ops",
        RQ_DASHBOARD_PASSWORD="ops-pass-123",
    )


def create(client, headers):
    return client.post(
        "/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": "https://x.example.com/a.jpg"},
        headers=headers,
    )


def test_create_rate_limit_is_per_user_with_headers(client, auth, make_user):
    user, other = make_user(quota=10), make_user(quota=10)
    headers = auth.headers(user)
    answers = [create(client, headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    first, limited = answers[0], answers[3]
    assert first.headers["RateLimit-Limit"] == "3" and first.headers["RateLimit-Remaining"] == "2"
    assert int(first.headers["RateLimit-Reset"]) > 0
    body = limited.get_json()
    assert body["success"] is False and body["code"] == 4029
    assert int(limited.headers["Retry-After"]) > 0 and limited.headers["RateLimit-Remaining"] == "0"
    # Another user has a budget of their own; the limited user's quota was not touched by the 429.
    assert create(client, auth.headers(other)).status_code == 201
    assert client.get("/api/quota", headers=headers).get_json()["data"]["quota"] == 7


def test_default_limits_per_user_across_endpoints_and_per_address_for_anonymous(
    database, redis, auth, make_user
):
    for app in app_with(RATELIMIT_AUTHENTICATED="3/minute", RATELIMIT_ANONYMOUS="2/minute"):
        client = app.test_client()
        headers = auth.headers(make_user())
        # One budget per user for the API's default limit, whichever endpoint is called.
        codes = [
            client.get(path, headers=headers).status_code
            for path in ("/api/quota", "/api/task/list", "/api/auth/me", "/api/quota")
        ]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/api/quota", headers=headers)
        assert limited.get_json()["code"] == 4029 and "3/minute" in limited.get_json()["message"]
        # Anonymous callers are counted by address: their 401s are limited too; health is exempt.
        anonymous = [client.get("/api/quota").status_code for _ in range(3)]
        assert anonymous == [401, 401, 429]
        assert all(client.get("/healthz").status_code == 200 for _ in range(5))


def test_rate_limiter_lets_requests_through_when_redis_is_down(database, redis, auth, make_user):
    for app in app_with(RATELIMIT_AUTHENTICATED="1/minute"):
        headers = auth.headers(make_user())
        app.extensions["redis"].connection_pool.connection_kwargs["port"] = 1  # nothing listens there
        app.extensions["redis"].connection_pool.disconnect()
        app.extensions.pop("rate_limit_script", None)
        client = app.test_client()
        answers = [client.get("/api/auth/me", headers=headers) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert "RateLimit-Limit" not in answers[0].headers


def test_login_is_limited_per_ip(client, make_user):
    user = make_user()
    codes = [
        client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD}).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_metrics_need_the_token_and_count_a_created_task(client, auth, make_user):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    headers = auth.headers(make_user())
    assert create(client, headers).status_code == 201
    text = client.get("/metrics", headers={"Authorization": "Bearer metrics-secret"}).get_data(as_text=True)
    assert 'shopimage_tasks_total{event="created",type="basic_clean"} 1' in text
    assert 'shopimage_queue_depth{queue="images"} 1' in text
    assert "shopimage_queue_oldest_job_age_seconds" in text
    assert 'shopimage_http_requests_total{endpoint="/api/task/create",method="POST",status="201"}' in text
    assert "shopimage_http_request_duration_seconds_bucket" in text


def test_metrics_off_without_a_token(database, redis):
    assert create_app(ConfigForTests()).test_client().get("/metrics").status_code == 404


def test_rq_dashboard_is_admin_only(client, auth, make_user):
    assert client.get("/rq/").status_code == 401
    assert "Basic" in client.get("/rq/").headers["WWW-Authenticate"]
    assert client.get("/rq/", headers=auth.headers(make_user())).status_code == 401
    assert client.get("/rq/", headers=auth.headers(make_user(admin=True))).status_code == 200
    basic = base64.b64encode(b"ops:ops-pass-123").decode()
    assert (
        client.get("/rq/0/data/queues.json", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    )
    wrong = base64.b64encode(b"ops:nope").decode()
    assert client.get("/rq/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


def test_request_log_lines_are_json_with_the_request_id(client, auth, make_user):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger("api.request").addHandler(handler)
    try:
        headers = {**auth.headers(make_user()), "X-Request-ID": "req-abc-123"}
        response = client.get("/api/auth/me", headers=headers)
        generated = client.get("/healthz")
    finally:
        logging.getLogger("api.request").removeHandler(handler)
    assert response.headers["X-Request-ID"] == "req-abc-123"
    assert len(generated.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    me = next(line for line in lines if line.get("path") == "/api/auth/me")
    assert me["request_id"] == "req-abc-123" and me["status"] == 200 and me["method"] == "GET"
    assert me["user_id"] and me["duration_ms"] >= 0
    text = stream.getvalue()
    assert PASSWORD not in text and "Bearer" not in text and "accessToken" not in text
    # An unusable offered id is replaced, not echoed.
    assert (
        client.get("/healthz", headers={"X-Request-ID": "bad id <x>"}).headers["X-Request-ID"] != "bad id <x>"
    )


def test_fields_naming_a_secret_stay_out_of_log_lines():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "msg", None, None)
    record.fields = {
        "password": "p1",
        "api_Token": "t1",
        "clientSecret": "s1",
        "Authorization": "a1",
        "path": "/x",
    }
    for _ in range(2):  # the second time from the per-name cache
        entry = json.loads(logs.JsonFormatter().format(record))
        assert entry["path"] == "/x"
        assert not {"password", "api_Token", "clientSecret", "Authorization"} & set(entry)
        assert not {"p1", "t1", "s1", "a1"} & set(entry.values())
