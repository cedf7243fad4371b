"""API keys: created once with a login token, used like an access token, revoked at once."""

from __future__ import annotations

from sqlalchemy import select

from shared.db import db
from shared.models import ApiKey, User

from .test_auth import assert_error
from .test_sessions import bearer


def create_key(client, headers, name: str = "shop backend") -> dict:
    response = client.post("/api/keys", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def test_key_is_shown_once_stored_hashed_and_listed_without_its_secret(client, make_user, auth):
    user = make_user("keys@example.com")
    headers = auth.headers(user)
    created = create_key(client, headers)
    secret = created["key"]
    assert secret.startswith("sk_") and created["prefix"] and secret.startswith(created["prefix"] + "_")
    assert created["lastUsedAt"] is None

    row = db.session.scalar(select(ApiKey).where(ApiKey.user_id == user.id))
    assert secret not in (row.secret_hash, row.lookup) and secret.split("_")[-1] not in row.secret_hash

    listed = client.get("/api/keys", headers=headers).get_json()["data"]["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "key" not in listed[0] and secret not in str(listed)
    assert set(listed[0]) == {"id", "name", "prefix", "createdAt", "lastUsedAt"}


def test_key_authenticates_both_ways_with_the_accounts_rules(client, make_user, auth):
    user = make_user("shop@example.com", quota=1)
    secret = create_key(client, auth.headers(user))["key"]
    for headers in ({"X-API-Key": secret}, bearer(secret)):
        me = client.get("/api/auth/me", headers=headers)
        assert me.status_code == 200 and me.get_json()["data"]["user"]["email"] == "shop@example.com"

    task = {"type": "basic_clean", "inputImageUrl": "https://example.com/a.jpg"}
    assert client.post("/api/task/create", json=task, headers={"X-API-Key": secret}).status_code == 201
    # Same quota as the account: the one unit is spent.
    assert_error(client.post("/api/task/create", json=task, headers={"X-API-Key": secret}), 402, 1003)
    listed = client.get("/api/keys", headers=auth.headers(user)).get_json()["data"]["items"]
    assert listed[0]["lastUsedAt"] is not None

    # Membership too: a key of a non-member cannot create tasks.
    outsider = make_user("nomember@example.com", member=False)
    outsider_key = create_key(client, auth.headers(outsider))["key"]
    assert_error(client.post("/api/task/create", json=task, headers={"X-API-Key": outsider_key}), 403, 1002)


def test_a_key_cannot_mint_list_or_revoke_keys_or_touch_sessions(client, make_user, auth):
    user = make_user("nomint@example.com")
    created = create_key(client, auth.headers(user))
    for headers in ({"X-API-Key": created["key"]}, bearer(created["key"])):
        assert_error(client.post("/api/keys", json={"name": "x"}, headers=headers), 403, 4003)
        assert_error(client.get("/api/keys", headers=headers), 403, 4003)
        assert_error(client.delete(f"/api/keys/{created['id']}", headers=headers), 403, 4003)
        assert_error(client.post("/api/auth/logout", headers=headers), 403, 4003)
        body = {"currentPassword": "secret-pass-123", "newPassword": "other-pass-456"}
        assert_error(client.post("/api/auth/password", json=body, headers=headers), 403, 4003)


def test_revoke_stops_the_key_at_once_and_only_its_owner_can(client, make_user, auth):
    owner, other = make_user("owner@example.com"), make_user("other@example.com")
    created = create_key(client, auth.headers(owner))
    key_headers = {"X-API-Key": created["key"]}
    assert client.get("/api/auth/me", headers=key_headers).status_code == 200

    assert_error(client.delete(f"/api/keys/{created['id']}", headers=auth.headers(other)), 404, 4004)
    assert client.get("/api/auth/me", headers=key_headers).status_code == 200

    response = client.delete(f"/api/keys/{created['id']}", headers=auth.headers(owner))
    assert response.status_code == 200
    assert_error(client.get("/api/auth/me", headers=key_headers), 401, 4003)
    assert_error(client.delete(f"/api/keys/{created['id']}", headers=auth.headers(owner)), 404, 4004)
    assert client.get("/api/keys", headers=auth.headers(owner)).get_json()["data"]["items"] == []
    assert_error(client.delete("/api/keys/99999999999999999999", headers=auth.headers(owner)), 404, 4004)


def test_wrong_and_malformed_keys_are_refused(client, make_user, auth):
    user = make_user("bad@example.com")
    secret = create_key(client, auth.headers(user))["key"]
    tampered = secret[:-2] + ("AA" if not secret.endswith("AA") else "BB")
    for text in (tampered, "sk_", "sk_nolookup", "sk_abc_", "not-a-key", "sk_" + "x" * 500):
        body = assert_error(client.get("/api/auth/me", headers={"X-API-Key": text}), 401, 4003)
        assert "API key" in body["message"]


def test_disabling_the_account_stops_its_keys(client, make_user, auth):
    user = make_user("disabled@example.com")
    secret = create_key(client, auth.headers(user))["key"]
    db.session.get(User, user.id).is_active = False
    db.session.commit()
    assert_error(client.get("/api/auth/me", headers={"X-API-Key": secret}), 403, 1004)
    task = {"type": "basic_clean", "inputImageUrl": "https://example.com/a.jpg"}
    assert client.post("/api/task/create", json=task, headers={"X-API-Key": secret}).status_code in (403, 404)
