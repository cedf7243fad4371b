"""Liveness and readiness."""

from __future__ import annotations

from api import create_app
from tests.conftest import ConfigForTests


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"success": True, "data": {"status": "ok"}}


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["data"] == {"status": "ready", "database": "ok", "redis": "ok"}


def test_readyz_503_when_redis_and_database_are_down(database, redis):
    app = create_app(
        ConfigForTests(
            REDIS_URL="redis://127.0.0.1:1/0", DATABASE_URL="postgresql://postgres@127.0.0.1:1/none"
        )
    )
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["code"] == 5003
    assert set(body["details"]) == {"database", "redis"}
