"""One error envelope for every class of failure."""

from __future__ import annotations

import logging

import pytest
from flask import Blueprint

from api import create_app
from tests.conftest import ConfigForTests


def check(response, status: int, code: int) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert body["success"] is False and body["code"] == code and body["message"]
    assert set(body) <= {"success", "code", "message", "details"}
    return body


def test_unknown_route_and_method(client):
    check(client.get("/api/nothing-here"), 404, 4004)
    response = client.delete("/api/auth/login")
    check(response, 405, 4001)
    assert "POST" in response.headers["Allow"]


def test_malformed_json_wrong_type_and_non_object(client):
    check(client.post("/api/auth/login", data="{not json", content_type="application/json"), 400, 4001)
    check(
        client.post("/api/auth/login", data="email=a", content_type="application/x-www-form-urlencoded"),
        415,
        4001,
    )
    check(client.post("/api/auth/login", json=[1, 2]), 400, 4001)


def test_validation_errors_have_per_field_details(client):
    body = check(client.post("/api/auth/login", json={"email": 5}), 400, 4001)
    assert set(body["details"]["fields"]) == {"email", "password"}


def test_body_too_large_is_413(database, redis):
    app = create_app(ConfigForTests(MAX_CONTENT_LENGTH="1024"))
    response = app.test_client().post("/api/auth/login", data="x" * 5000, content_type="application/json")
    check(response, 413, 4001)


def test_unexpected_exception_is_generic_500_with_logged_traceback(database, redis, caplog):
    app = create_app(ConfigForTests())
    boom = Blueprint("boom", __name__)

    @boom.get("/boom")
    def explode():
        raise RuntimeError("secret internals")

    app.register_blueprint(boom)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")
    body = check(response, 500, 5000)
    assert "secret" not in response.get_data(as_text=True)
    assert body["message"] == "internal server error"
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.parametrize("path", ["/api/auth/me", "/api/task/list", "/api/quota"])
def test_protected_endpoints_need_a_token(client, path):
    check(client.get(path), 401, 4003)


def test_nul_characters_are_client_errors_not_database_errors(client, auth, make_user):
    check(client.post("/api/auth/login", json={"email": "a\u0000b@example.com", "password": "x"}), 400, 4001)
    headers = auth.headers(make_user())
    check(client.get("/api/task/ab%00cd", headers=headers), 404, 4004)
    check(client.post("/api/task/ab%00cd/cancel", headers=headers), 404, 4004)
    body = {
        "type": "basic_clean",
        "inputImageUrl": "https://x.example.com/a.jpg",
        "params": {"template": "a\u0000"},
    }
    check(client.post("/api/task/create", json=body, headers=headers), 400, 4001)


def test_signed_file_link_refusal_is_4003(client):
    check(client.get("/files/uploads/1/x.png?expires=1&sig=x"), 403, 4003)


def test_deep_nesting_and_lone_surrogates_are_client_errors(client):
    deep_array = "[" * 30_000 + "]" * 30_000  # under MAX_JSON_BYTES, so it is parsed
    check(client.post("/api/auth/login", data=deep_array, content_type="application/json"), 400, 4001)
    deep_object = '{"a":' * 500 + "1" + "}" * 500
    check(client.post("/api/auth/login", data=deep_object, content_type="application/json"), 400, 4001)
    surrogate = '{"email": "\\ud800@example.com", "password": "x"}'
    check(client.post("/api/auth/login", data=surrogate, content_type="application/json"), 400, 4001)
