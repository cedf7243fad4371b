"""The per-account failed-login throttle: a lock that ends, and an owner it cannot keep out."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import PASSWORD, app_with

FAILURES = 3
LOCK_SECONDS = 2


@pytest.fixture
def app(database, redis):
    yield from app_with(
        TRUST_PROXY_HOPS="1",
        LOGIN_LOCK_FAILURES=str(FAILURES),
        LOGIN_LOCK_SECONDS=str(LOCK_SECONDS),
        RATELIMIT_LOGIN="1000/minute",
    )


def login(client, email: str, password: str, address: str):
    return client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


def test_failures_lock_the_account_until_the_window_ends(client, make_user):
    user, other = make_user(), make_user()
    for _ in range(FAILURES):
        assert login(client, user.email, "wrong-pass-1", "203.0.113.1").status_code == 401

    locked = login(client, user.email, PASSWORD, "203.0.113.2")
    body = locked.get_json()
    assert locked.status_code == 429 and body["code"] == 4029
    assert 1 <= body["details"]["retryAfter"] <= LOCK_SECONDS
    assert locked.headers["Retry-After"] == str(body["details"]["retryAfter"])
    # Attempts while locked are not counted: they cannot stretch the lock.
    assert login(client, user.email, "wrong-pass-1", "203.0.113.3").status_code == 429
    assert login(client, other.email, PASSWORD, "203.0.113.1").status_code == 200

    time.sleep(LOCK_SECONDS + 0.5)
    assert login(client, user.email, PASSWORD, "203.0.113.2").status_code == 200


def test_guesses_from_elsewhere_do_not_lock_the_owner_out(client, make_user):
    owner, attacker = "198.51.100.7", "203.0.113.9"
    user = make_user()
    assert login(client, user.email, PASSWORD, owner).status_code == 200

    for _ in range(FAILURES):
        assert login(client, user.email, "wrong-pass-1", attacker).status_code == 401
    assert login(client, user.email, PASSWORD, attacker).status_code == 429
    assert login(client, user.email, PASSWORD, "192.0.2.44").status_code == 429

    assert login(client, user.email, PASSWORD, owner).status_code == 200
    # The owner's own address has its own budget, and its own lock.
    for _ in range(FAILURES):
        assert login(client, user.email, "wrong-pass-1", owner).status_code == 401
    assert login(client, user.email, PASSWORD, owner).status_code == 429


def test_unknown_emails_are_throttled_like_accounts(client):
    for _ in range(FAILURES):
        assert login(client, "nobody@example.com", "wrong-pass-1", "203.0.113.1").status_code == 401
    assert login(client, "nobody@example.com", "wrong-pass-1", "203.0.113.1").status_code == 429


def test_behind_one_proxy_the_real_server_tells_clients_apart(start_live_server, make_user):
    """As on Heroku: the router's address is the peer, the client's is in X-Forwarded-For."""
    user = make_user()
    server = start_live_server(TRUST_PROXY_HOPS="1", RATELIMIT_LOGIN="2/minute", LOGIN_LOCK_FAILURES="4")

    def attempt(address: str, password: str = "wrong-pass-1"):
        return requests.post(
            f"{server.url}/api/auth/login",
            json={"email": user.email, "password": password},
            headers={"X-Forwarded-For": address},
            timeout=10,
        )

    # The per-address limit: the third attempt from one client is refused before the password
    # is checked (so it counts no failure); another client still has its own budget.
    assert [attempt("203.0.113.1").status_code for _ in range(3)] == [401, 401, 429]
    assert attempt("203.0.113.2").status_code == 401
    assert attempt("203.0.113.3").status_code == 401
    # Four failures from three addresses lock the account, even for the right password.
    locked = attempt("203.0.113.4", PASSWORD)
    assert locked.status_code == 429 and locked.json()["details"]["retryAfter"] >= 1
    assert locked.headers["Retry-After"] == str(locked.json()["details"]["retryAfter"])
