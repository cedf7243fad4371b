"""Sessions: rotating refresh tokens with reuse detection, logout, password change."""

from __future__ import annotations

from flask_jwt_extended import create_refresh_token
from sqlalchemy import func, select

from shared.db import db
from shared.models import RefreshToken
from tests.conftest import PASSWORD

from .test_auth import assert_error


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, email: str, password: str = PASSWORD) -> dict:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def refresh(client, token: str):
    return client.post("/api/auth/refresh", headers=bearer(token))


def test_refresh_rotates_and_a_reused_token_ends_the_whole_session(client, make_user):
    make_user("rot@example.com")
    first = login(client, "rot@example.com")
    second = refresh(client, first["refreshToken"]).get_json()["data"]
    assert second["refreshToken"] != first["refreshToken"]
    third = refresh(client, second["refreshToken"]).get_json()["data"]
    assert client.get("/api/auth/me", headers=bearer(third["accessToken"])).status_code == 200

    # The first token was stolen and is replayed: refused, and every token of the family with it,
    # including the legitimate holder's newest pair.
    body = assert_error(refresh(client, first["refreshToken"]), 401, 4003)
    assert "log in again" in body["message"]
    assert_error(refresh(client, third["refreshToken"]), 401, 4003)
    assert_error(client.get("/api/auth/me", headers=bearer(third["accessToken"])), 401, 4003)

    # Another login of the same account is another family and is untouched.
    other = login(client, "rot@example.com")
    assert client.get("/api/auth/me", headers=bearer(other["accessToken"])).status_code == 200
    assert refresh(client, other["refreshToken"]).status_code == 200


def test_logout_revokes_the_refresh_token_and_the_access_token_at_once(client, make_user):
    make_user("out@example.com")
    session = login(client, "out@example.com")
    kept = login(client, "out@example.com")
    assert client.get("/api/auth/me", headers=bearer(session["accessToken"])).status_code == 200

    response = client.post("/api/auth/logout", headers=bearer(session["refreshToken"]))
    assert response.status_code == 200, response.get_json()
    assert_error(client.get("/api/auth/me", headers=bearer(session["accessToken"])), 401, 4003)
    assert_error(refresh(client, session["refreshToken"]), 401, 4003)
    # Only that session ended.
    assert client.get("/api/auth/me", headers=bearer(kept["accessToken"])).status_code == 200

    # Logging out with the access token works the same way.
    assert client.post("/api/auth/logout", headers=bearer(kept["accessToken"])).status_code == 200
    assert_error(refresh(client, kept["refreshToken"]), 401, 4003)
    assert_error(client.post("/api/auth/logout"), 401, 4003)


def test_password_change_ends_every_session_and_keeps_the_caller_signed_in(client, make_user):
    make_user("pw@example.com")
    one, two = login(client, "pw@example.com"), login(client, "pw@example.com")

    wrong = client.post(
        "/api/auth/password",
        json={"currentPassword": "not-it-123", "newPassword": "brand-new-456"},
        headers=bearer(one["accessToken"]),
    )
    assert "currentPassword" in assert_error(wrong, 400, 4001)["details"]["fields"]
    weak = client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "short"},
        headers=bearer(one["accessToken"]),
    )
    assert "newPassword" in assert_error(weak, 400, 4001)["details"]["fields"]

    changed = client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "brand-new-456"},
        headers=bearer(one["accessToken"]),
    )
    assert changed.status_code == 200, changed.get_json()
    fresh = changed.get_json()["data"]
    for old in (one, two):
        assert_error(client.get("/api/auth/me", headers=bearer(old["accessToken"])), 401, 4003)
        assert_error(refresh(client, old["refreshToken"]), 401, 4003)
    assert client.get("/api/auth/me", headers=bearer(fresh["accessToken"])).status_code == 200
    assert refresh(client, fresh["refreshToken"]).status_code == 200
    assert_error(
        client.post("/api/auth/login", json={"email": "pw@example.com", "password": PASSWORD}), 401, 4003
    )
    login(client, "pw@example.com", "brand-new-456")


def test_a_refresh_token_from_before_rotation_is_spent_once(client, make_user):
    user = make_user("old@example.com")
    legacy = create_refresh_token(identity=str(user.id))  # no family claim, no row
    successor = refresh(client, legacy)
    assert successor.status_code == 200
    assert_error(refresh(client, legacy), 401, 4003)
    assert refresh(client, successor.get_json()["data"]["refreshToken"]).status_code == 200


def test_concurrent_refreshes_of_one_token_let_at_most_one_through(app, make_user):
    """The spend is one conditional UPDATE: two racing requests cannot both rotate."""
    from concurrent.futures import ThreadPoolExecutor

    make_user("race@example.com")
    token = login(app.test_client(), "race@example.com")["refreshToken"]

    def attempt(_: int) -> int:
        with app.app_context():
            return app.test_client().post("/api/auth/refresh", headers=bearer(token)).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(attempt, range(4)))
    assert codes.count(200) <= 1 and codes.count(401) >= 3, codes
    live = db.session.scalar(
        select(func.count()).select_from(RefreshToken).where(RefreshToken.revoked_at.is_(None))
    )
    assert live == 0  # the replays revoked the family, the winner's successor included
