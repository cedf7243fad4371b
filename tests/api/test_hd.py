"""basic_clean's `hd` param at create: its own queue, and a clear refusal where the model is absent."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.config import ROOT
from shared.db import db
from shared.hd import HD_UNAVAILABLE
from shared.models import Task
from tests.api.test_tasks import balance, create
from tests.conftest import app_with


def basic_clean(client) -> dict:
    types = client.get("/api/task/types").get_json()["data"]["types"]
    return next(t for t in types if t["name"] == "basic_clean")


def test_hd_is_refused_before_any_charge_without_the_model(database, redis, auth, make_user, tmp_path):
    (tmp_path / "u2netp.onnx").symlink_to(ROOT / "models" / "u2netp.onnx")  # the standard model only
    for app in app_with(MODEL_DIR=str(tmp_path)):
        client = app.test_client()
        user = make_user(quota=3)
        response = create(client, auth.headers(user), params={"template": "all", "hd": True})
        body = response.get_json()
        assert response.status_code == 400, body
        assert body["code"] == 4001 and body["message"] == HD_UNAVAILABLE
        assert balance(user.id) == 3
        assert db.session.scalar(select(func.count()).select_from(Task)) == 0
        assert redis.llen("rq:queue:images_hd") == 0 and redis.llen("rq:queue:images") == 0
        # hd: false (and no hd at all) still work on that server
        assert create(client, auth.headers(user), params={"hd": False}).status_code == 201
        assert create(client, auth.headers(user), params={}).status_code == 201
        assert basic_clean(client)["options"] == [
            {"param": "hd", "available": False, "unavailableReason": HD_UNAVAILABLE}
        ]


def test_hd_task_goes_to_its_own_queue(client, auth, make_user, redis):
    user = make_user(quota=2)
    hd = create(client, auth.headers(user), params={"hd": True}).get_json()["data"]["taskId"]
    standard = create(client, auth.headers(user), params={"hd": False}).get_json()["data"]["taskId"]
    assert [j.decode() for j in redis.lrange("rq:queue:images_hd", 0, -1)] == [hd]
    assert [j.decode() for j in redis.lrange("rq:queue:images", 0, -1)] == [standard]
    data = client.get(f"/api/task/{hd}", headers=auth.headers(user)).get_json()["data"]
    assert data["params"] == {"template": "all", "hd": True} and data["queuePosition"] == 1
    described = basic_clean(client)
    assert described["options"] == [{"param": "hd", "available": True, "unavailableReason": None}]
    hd_param = next(p for p in described["params"] if p["name"] == "hd")
    assert hd_param["type"] == "boolean" and hd_param["default"] is None


def test_hd_must_be_a_boolean(client, auth, make_user):
    user = make_user(quota=1)
    response = create(client, auth.headers(user), params={"hd": "very"})
    assert response.status_code == 400 and response.get_json()["code"] == 4001
    assert balance(user.id) == 1
