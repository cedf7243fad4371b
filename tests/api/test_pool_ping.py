"""Pooled connections that died (the database restarted, a proxy dropped them).

The web process pings a connection at checkout only after it sat idle DB_PING_IDLE_SECONDS
(shared.app.ping_when_idle). A dead idle connection is replaced before use; a dead connection
used again at once fails that one request with 503 in the envelope, and the next one works.
Each request runs in its own app context here, as in the server (the connection goes back to
the pool after every request).
"""

from __future__ import annotations

import time

import psycopg
from sqlalchemy import text

from api import create_app
from shared.db import db
from tests.conftest import PG_URL, Auth, ConfigForTests

MISSING = "0" * 32


def web_app(idle_seconds: str):
    return create_app(ConfigForTests(DB_PING_IDLE_SECONDS=idle_seconds))


def pooled_pid(web) -> int:
    """The server process behind the web app's pooled connection (requests here run one at a time,
    so the pool holds one)."""
    with web.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()
    return pid


def terminate(pid: int) -> None:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        for _ in range(100):
            if not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} still there")


def detail(client, headers) -> tuple[int, dict]:
    response = client.get(f"/api/task/{MISSING}", headers=headers)
    return response.status_code, response.get_json()


def dispose(web) -> None:
    with web.app_context():
        db.engine.dispose()


def killed_after_one_request(idle_seconds: str, user) -> tuple:
    """A web app with that idle setting whose one pooled connection served a request and was then
    terminated on the server: (web app, its test client, the user's headers, the dead backend pid)."""
    web = web_app(idle_seconds)
    client = web.test_client()
    headers = Auth(client).headers(user)
    assert detail(client, headers)[0] == 404
    dead = pooled_pid(web)
    terminate(dead)
    return web, client, headers, dead


def test_an_idle_dead_connection_is_replaced_before_use(app, make_user):
    # "0": every checkout counts as idle, so every connection is checked before use.
    web, client, headers, dead = killed_after_one_request("0", make_user(quota=1))

    status, body = detail(client, headers)

    assert status == 404, body  # answered normally: the check found the dead one and reconnected
    assert pooled_pid(web) != dead
    dispose(web)


def test_a_busy_dead_connection_fails_one_request_then_the_pool_recovers(app, make_user):
    # "3600": never idle long enough, so never checked.
    web, client, headers, dead = killed_after_one_request("3600", make_user(quota=1))

    first_status, first = detail(client, headers)
    second_status, second = detail(client, headers)

    assert first_status == 503 and first["code"] == 5003, first  # unchecked: its statement failed
    assert second_status == 404, second  # the pool dropped the dead connection by itself
    assert pooled_pid(web) != dead
    dispose(web)
