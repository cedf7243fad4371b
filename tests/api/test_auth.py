"""Register, login, refresh, me, and every JWT failure in the envelope."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from flask_jwt_extended import create_access_token

from shared.db import db


def assert_error(response, status: int, code: int) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert body["success"] is False
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_register_returns_user_and_tokens(client):
    response = client.post("/api/auth/register", json={"email": "Alice@Example.com", "password": "abc12345"})
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["user"]["email"] == "alice@example.com"
    assert data["user"]["isMember"] is False
    assert data["user"]["quota"] == 0
    assert isinstance(data["user"]["id"], str)
    assert data["accessToken"] and data["refreshToken"]


def test_register_rejects_duplicate_email_case_insensitively(client):
    client.post("/api/auth/register", json={"email": "bob@example.com", "password": "abc12345"})
    response = client.post("/api/auth/register", json={"email": "BOB@example.com", "password": "abc12345"})
    assert_error(response, 409, 4009)


def test_register_password_rules(client):
    for password in ("short1", "onlyletters", "12345678", "x" * 129 + "1"):
        body = assert_error(
            client.post("/api/auth/register", json={"email": "c@example.com", "password": password}),
            400,
            4001,
        )
        assert "password" in body["details"]["fields"]


def test_register_rejects_bad_email_and_unknown_fields(client):
    body = assert_error(
        client.post("/api/auth/register", json={"email": "nope", "password": "abc12345"}), 400, 4001
    )
    assert "email" in body["details"]["fields"]
    body = assert_error(
        client.post("/api/auth/register", json={"email": "a@b.co", "password": "abc12345", "isAdmin": True}),
        400,
        4001,
    )
    assert "isAdmin" in body["details"]["fields"]


def test_login_and_me(client, make_user, auth):
    user = make_user("dora@example.com", quota=3)
    data = auth.login("DORA@example.com")
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {data['accessToken']}"})
    assert me.status_code == 200
    assert me.get_json()["data"]["user"] == {**data["user"], "quota": 3}
    assert me.get_json()["data"]["user"]["id"] == str(user.id)
    assert me.get_json()["data"]["user"]["membershipActive"] is True


def test_login_wrong_password_and_unknown_email(client, make_user):
    make_user("eve@example.com")
    assert_error(
        client.post("/api/auth/login", json={"email": "eve@example.com", "password": "wrong"}), 401, 4003
    )
    assert_error(
        client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "x"}), 401, 4003
    )


def test_refresh_gives_new_access_token_and_refresh_is_not_an_access_token(client, make_user, auth):
    make_user("fay@example.com")
    tokens = auth.login("fay@example.com")
    refreshed = client.post(
        "/api/auth/refresh", headers={"Authorization": f"Bearer {tokens['refreshToken']}"}
    )
    assert refreshed.status_code == 200
    new_access = refreshed.get_json()["data"]["accessToken"]
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {new_access}"}).status_code == 200
    # A refresh token is refused where an access token is required, and vice versa.
    assert_error(
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['refreshToken']}"}), 401, 4003
    )
    assert_error(
        client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {new_access}"}), 401, 4003
    )


def test_disabled_user_tokens_stop_working(client, make_user, auth):
    user = make_user("gus@example.com")
    tokens = auth.login("gus@example.com")
    user.is_active = False
    db.session.commit()
    assert_error(
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}), 403, 1004
    )
    assert_error(
        client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {tokens['refreshToken']}"}),
        403,
        1004,
    )
    assert_error(
        client.post("/api/auth/login", json={"email": "gus@example.com", "password": "secret-pass-123"}),
        401,
        4003,
    )


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_every_jwt_failure_is_401_4003(app, client, make_user):
    user = make_user("hal@example.com")
    good = create_access_token(identity=str(user.id))
    expired = create_access_token(identity=str(user.id), expires_delta=timedelta(seconds=-10))
    header, payload, _sig = good.split(".")
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    bad_signature = f"{header}.{payload}.{'A' * 43}"
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Token {good}"},
        "malformed": {"Authorization": "Bearer not.a.jwt"},
        "garbage": {"Authorization": "Bearer ###"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "bad signature": {"Authorization": f"Bearer {bad_signature}"},
        "alg none": {"Authorization": f"Bearer {alg_none}"},
    }
    for name, headers in cases.items():
        response = client.get("/api/auth/me", headers=headers)
        body = response.get_json()
        assert response.status_code == 401, (name, body)
        assert body == {"success": False, "code": 4003, "message": body["message"]}, name
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_a_verified_token_is_remembered_only_until_it_expires(app, client, make_user, monkeypatch):
    """Repeated tokens skip re-verification (api.auth.VerifiedTokens), never the expiry or type checks."""
    import api.auth

    user = make_user("ivy@example.com")
    access = create_access_token(identity=str(user.id), expires_delta=timedelta(seconds=60))
    headers = {"Authorization": f"Bearer {access}"}
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    assert app.extensions["verified_tokens"].get(access) is not None
    # The same bytes with another signature are a different token: verified, and refused.
    header, payload, signature = access.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}{'AB' if signature[-2:] != 'AB' else 'CD'}"
    assert_error(client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"}), 401, 4003)
    # Past its expiry the remembered token is refused like any expired one.
    real_time = api.auth.time.time
    monkeypatch.setattr(api.auth.time, "time", lambda: real_time() + 61)
    body = assert_error(client.get("/api/auth/me", headers=headers), 401, 4003)
    assert body["message"] == "token expired"
    monkeypatch.undo()
    # A remembered refresh token is still not an access token.
    tokens = client.post("/api/auth/login", json={"email": "ivy@example.com", "password": "secret-pass-123"})
    refresh = {"Authorization": f"Bearer {tokens.get_json()['data']['refreshToken']}"}
    assert_error(client.get("/api/auth/me", headers=refresh), 401, 4003)
    assert client.post("/api/auth/refresh", headers=refresh).status_code == 200
    # Refresh tokens rotate: the remembered one, once spent, is refused (tests/api/test_sessions.py).
    assert_error(client.post("/api/auth/refresh", headers=refresh), 401, 4003)


def test_login_upgrades_a_hash_made_with_fewer_rounds(app, client, make_user):
    from werkzeug.security import generate_password_hash

    from tests.conftest import PASSWORD

    user = make_user()
    user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:500")
    db.session.commit()
    assert app.config["PASSWORD_HASH_ROUNDS"] == 1000

    assert (
        client.post("/api/auth/login", json={"email": user.email, "password": "wrong-pass-1"}).status_code
        == 401
    )
    db.session.refresh(user)
    assert user.password_hash.startswith("pbkdf2:sha256:500$")

    assert client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    db.session.refresh(user)
    assert user.password_hash.startswith("pbkdf2:sha256:1000$")
    assert client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
