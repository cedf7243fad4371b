"""Task endpoints: shapes, checks in order, ownership, status rules, cancel, retry, idempotency, races."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api import create_app
from shared import quota, users
from shared.db import db, utcnow
from shared.models import IdempotencyRecord, QuotaLedger, Task, User
from tests.conftest import ConfigForTests

IMAGE = "https://images.example.com/product.jpg"
SERVICE = {"X-Service-Token": "test-service-token"}


def create(client, headers, **body):
    payload = {"type": "basic_clean", "inputImageUrl": IMAGE, **body}
    return client.post("/api/task/create", json=payload, headers=headers)


def balance(user_id: int) -> int:
    db.session.expire_all()
    return db.session.get(User, user_id).quota


def error(response, status: int, code: int) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert body["success"] is False and body["code"] == code
    return body


def test_create_returns_pending_task_and_charges_one_unit(client, auth, make_user, redis):
    user = make_user(quota=2)
    response = create(client, auth.headers(user), params={"template": "matting"})
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert set(data) == {"taskId", "type", "status", "createdAt"}
    assert data["type"] == "basic_clean" and data["status"] == "pending"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["createdAt"])
    assert balance(user.id) == 1
    ledger = db.session.scalars(select(QuotaLedger).where(QuotaLedger.task_id == data["taskId"])).all()
    assert [(e.amount, e.balance_after, e.reason) for e in ledger] == [(-1, 1, "deduct")]
    job_ids = [j.decode() for j in redis.lrange("rq:queue:images", 0, -1)]
    assert job_ids == [data["taskId"]]


def test_detail_has_the_contract_fields(client, auth, make_user):
    user = make_user()
    headers = auth.headers(user)
    task_id = create(client, headers, params={"template": "white_bg"}).get_json()["data"]["taskId"]
    data = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]
    assert data["id"] == task_id
    assert data["params"] == {"template": "white_bg"}
    assert data["resultUrls"] == [] and data["progress"] == 0
    assert data["queuePosition"] == 1
    assert {"createdAt", "updatedAt", "inputImageUrl", "status", "type"} <= set(data)
    assert "completedAt" not in data and "errorMessage" not in data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "resize"}, "type"),
        ({"inputImageUrl": "ftp://x.example.com/a.png"}, "inputImageUrl"),
        ({"inputImageUrl": "/relative.png"}, "inputImageUrl"),
        ({"inputImageUrl": "https://x.example.com/" + "a" * 2100}, "inputImageUrl"),
        ({"inputImageUrl": 42}, "inputImageUrl"),
        ({"params": {"template": "sepia"}}, "params"),
        ({"params": {"template": "all", "extra": 1}}, "params"),
        ({"type": "model_pose12", "params": {"scene": "moon"}}, "params"),
        ({"type": "model_pose12", "params": {"category": "hat"}}, "params"),
        ({"type": "model_pose12", "params": {"productDescription": "x" * 501}}, "params"),
        ({"params": "all"}, "params"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_bad_parameters_are_4001_before_anything_else(client, auth, make_user, body, field):
    user = make_user(quota=1)
    # Parameters are checked before the token: no token at all still gets 4001 here.
    no_token = error(create(client, {}, **body), 400, 4001)
    assert field in no_token["details"]["fields"]
    error(create(client, auth.headers(user), **body), 400, 4001)
    assert balance(user.id) == 1


def test_check_order_token_member_quota(client, auth, make_user):
    error(create(client, {}), 401, 4003)
    non_member = make_user(member=False, quota=5)
    error(create(client, auth.headers(non_member)), 403, 1002)
    expired = make_user(quota=5, days=1)
    expired.member_until = utcnow() - timedelta(minutes=1)
    db.session.commit()
    body = error(create(client, auth.headers(expired)), 403, 1002)
    assert "expired" in body["message"]
    broke = make_user(quota=0)
    error(create(client, auth.headers(broke)), 402, 1003)
    assert balance(non_member.id) == 5 and balance(expired.id) == 5


def test_list_newest_first_with_filters_and_bounds(client, auth, make_user):
    user = make_user(quota=5)
    headers = auth.headers(user)
    ids = [create(client, headers).get_json()["data"]["taskId"] for _ in range(3)]
    create(client, headers, type="model_pose12", params={"scene": "street"})
    listed = client.get("/api/task/list?limit=2&offset=1&type=basic_clean", headers=headers).get_json()[
        "data"
    ]
    assert listed["total"] == 3 and listed["limit"] == 2 and listed["offset"] == 1
    assert [t["id"] for t in listed["tasks"]] == [ids[1], ids[0]]
    assert client.get("/api/task/list?status=success", headers=headers).get_json()["data"]["total"] == 0
    assert client.get("/api/task/list", headers=headers).get_json()["data"]["limit"] == 10
    for query in ("limit=0", "limit=101", "offset=-1", "limit=abc", "status=done", "type=x", "offset=1e9"):
        error(client.get(f"/api/task/list?{query}", headers=headers), 400, 4001)


def test_disabled_or_deleted_account_is_refused_on_create_detail_and_list(client, auth, make_user):
    user = make_user(quota=5)
    headers = auth.headers(user)
    task_id = create(client, headers).get_json()["data"]["taskId"]
    user.is_active = False
    db.session.commit()
    keyed = {**headers, "Idempotency-Key": "after-disable"}
    for response in (
        create(client, keyed),
        client.get(f"/api/task/{task_id}", headers=headers),
        client.get("/api/task/list", headers=headers),
    ):
        error(response, 403, 1004)
    assert balance(user.id) == 4
    assert db.session.get(IdempotencyRecord, (user.id, "after-disable")) is None
    db.session.delete(user)
    db.session.commit()
    for response in (create(client, headers), client.get("/api/task/list", headers=headers)):
        error(response, 404, 1004)


def test_list_past_the_end_is_empty_with_the_total(client, auth, make_user):
    user = make_user(quota=2)
    headers = auth.headers(user)
    assert client.get("/api/task/list", headers=headers).get_json()["data"]["total"] == 0
    create(client, headers)
    beyond = client.get("/api/task/list?offset=3", headers=headers).get_json()["data"]
    assert beyond["tasks"] == [] and beyond["total"] == 1


def test_someone_elses_task_is_404(client, auth, make_user):
    owner, other = make_user(), make_user()
    task_id = create(client, auth.headers(owner)).get_json()["data"]["taskId"]
    other_headers = auth.headers(other)
    error(client.get(f"/api/task/{task_id}", headers=other_headers), 404, 4004)
    error(client.post(f"/api/task/{task_id}/cancel", headers=other_headers), 404, 4004)
    error(client.post(f"/api/task/{task_id}/retry", headers=other_headers), 404, 4004)
    error(client.get("/api/task/does-not-exist", headers=other_headers), 404, 4004)
    assert client.get("/api/task/list", headers=other_headers).get_json()["data"]["total"] == 0


def test_status_endpoint_is_internal_only_and_follows_transitions(client, auth, make_user):
    user = make_user(quota=3)
    admin = make_user(admin=True)
    headers = auth.headers(user)
    task_id = create(client, headers).get_json()["data"]["taskId"]
    url = f"/api/task/{task_id}/status"
    error(client.put(url, json={"status": "failed"}, headers=headers), 403, 4003)
    error(client.put(url, json={"status": "failed"}), 401, 4003)
    error(client.put(url, json={"status": "failed"}, headers={"X-Service-Token": "wrong"}), 401, 4003)
    error(client.put(url, json={"status": "done"}, headers=SERVICE), 400, 4001)
    error(client.put(url, json={"status": "success"}, headers=SERVICE), 409, 4009)  # pending → success
    ok = client.put(url, json={"status": "processing"}, headers=auth.headers(admin))
    assert ok.get_json() == {"success": True, "message": "status updated"}
    done = client.put(
        url, json={"status": "success", "resultUrls": ["https://cdn.example.com/a.png"]}, headers=SERVICE
    )
    assert done.status_code == 200
    for status in ("failed", "processing", "pending", "success"):
        error(client.put(url, json={"status": status}, headers=SERVICE), 409, 4009)
    data = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]
    assert data["status"] == "success" and data["resultUrls"] == ["https://cdn.example.com/a.png"]
    assert data["completedAt"] and data["progress"] == 100
    assert balance(user.id) == 2
    error(client.put("/api/task/nope/status", json={"status": "failed"}, headers=SERVICE), 404, 4004)


def test_status_failed_refunds_once_even_when_reported_twice(client, auth, make_user):
    user = make_user(quota=1)
    task_id = create(client, auth.headers(user)).get_json()["data"]["taskId"]
    url = f"/api/task/{task_id}/status"
    first = client.put(url, json={"status": "failed", "errorMessage": "boom"}, headers=SERVICE)
    assert first.status_code == 200
    error(client.put(url, json={"status": "failed", "errorMessage": "boom"}, headers=SERVICE), 409, 4009)
    assert balance(user.id) == 1
    refunds = db.session.scalar(
        select(func.count()).where(QuotaLedger.task_id == task_id, QuotaLedger.reason == "refund")
    )
    assert refunds == 1


def test_cancel_refunds_and_finished_task_cannot_be_cancelled(client, auth, make_user, redis):
    user = make_user(quota=1)
    headers = auth.headers(user)
    task_id = create(client, headers).get_json()["data"]["taskId"]
    response = client.post(f"/api/task/{task_id}/cancel", headers=headers)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["status"] == "failed" and "cancel" in data["errorMessage"]
    assert balance(user.id) == 1
    assert redis.lrange("rq:queue:images", 0, -1) == []
    error(client.post(f"/api/task/{task_id}/cancel", headers=headers), 409, 4009)
    assert balance(user.id) == 1


def test_retry_creates_a_new_task_with_same_input(client, auth, make_user):
    user = make_user(quota=2)
    headers = auth.headers(user)
    first = create(client, headers, params={"template": "enhanced"}).get_json()["data"]["taskId"]
    error(client.post(f"/api/task/{first}/retry", headers=headers), 409, 4009)
    client.post(f"/api/task/{first}/cancel", headers=headers)
    response = client.post(f"/api/task/{first}/retry", headers=headers)
    assert response.status_code == 201
    retried = response.get_json()["data"]
    assert retried["taskId"] != first and retried["status"] == "pending"
    detail = client.get(f"/api/task/{retried['taskId']}", headers=headers).get_json()["data"]
    assert detail["params"] == {"template": "enhanced"} and detail["inputImageUrl"] == IMAGE
    assert balance(user.id) == 1
    # All checks run again: a user who lost membership cannot retry.
    db.session.get(User, user.id).is_member = False
    db.session.commit()
    client.post(f"/api/task/{retried['taskId']}/cancel", headers=headers)
    error(client.post(f"/api/task/{retried['taskId']}/retry", headers=headers), 403, 1002)


def test_a_type_the_server_cannot_run_is_refused_at_create_and_retry(client, auth, make_user, tmp_path):
    """basic_clean needs the matting model: a server without it refuses the type, charging nothing."""
    user = make_user(quota=2)
    headers = auth.headers(user)
    first = create(client, headers).get_json()["data"]["taskId"]
    client.post(f"/api/task/{first}/cancel", headers=headers)
    without_model = create_app(ConfigForTests(MODEL_DIR=str(tmp_path))).test_client()
    body = error(create(without_model, headers), 503, 5003)
    assert "matting model" in body["message"]
    body = error(without_model.post(f"/api/task/{first}/retry", headers=headers), 503, 5003)
    assert "matting model" in body["message"]
    assert balance(user.id) == 2
    types = {t["name"]: t for t in without_model.get("/api/task/types").get_json()["data"]["types"]}
    assert types["basic_clean"]["available"] is False


def test_quota_endpoint_shows_balance_and_ledger(client, auth, make_user):
    user = make_user(quota=3)
    headers = auth.headers(user)
    task_id = create(client, headers).get_json()["data"]["taskId"]
    data = client.get("/api/quota", headers=headers).get_json()["data"]
    assert data["quota"] == 2
    assert [(e["amount"], e["reason"], e["taskId"]) for e in data["entries"]] == [
        (-1, "deduct", task_id),
        (3, "grant", None),
    ]


def test_idempotency_replay_mismatch_and_scope(client, auth, make_user, redis):
    user, other = make_user(quota=5), make_user(quota=5)
    headers = {**auth.headers(user), "Idempotency-Key": "order-42"}
    first = create(client, headers)
    again = create(client, headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance(user.id) == 4
    assert redis.llen("rq:queue:images") == 1
    body = error(create(client, headers, params={"template": "matting"}), 409, 4009)
    assert "different request" in body["message"]
    # Keys are scoped per user: the same key for someone else is a new request.
    theirs = create(client, {**auth.headers(other), "Idempotency-Key": "order-42"})
    assert theirs.get_json()["data"]["taskId"] != first.get_json()["data"]["taskId"]
    error(create(client, {**auth.headers(user), "Idempotency-Key": "x" * 300}), 400, 4001)


def _concurrently(app, count: int, fn):
    def run(i):
        with app.app_context():
            return fn(i)

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_requests_with_one_key_create_one_task(app, auth, make_user):
    user = make_user(quota=10)
    headers = {**auth.headers(user), "Idempotency-Key": "same-key"}
    responses = _concurrently(app, 12, lambda _: create(app.test_client(), headers))
    assert {r.status_code for r in responses} == {201}
    assert len({r.get_json()["data"]["taskId"] for r in responses}) == 1
    assert balance(user.id) == 9
    assert db.session.scalar(select(func.count()).select_from(Task)) == 1


def test_race_quota_n_with_5n_concurrent_creates(app, auth, make_user):
    n = 8
    user = make_user(quota=n)
    headers = auth.headers(user)
    responses = _concurrently(app, 5 * n, lambda _: create(app.test_client(), headers))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == n
    assert codes.count(402) == 4 * n
    assert balance(user.id) == 0
    assert db.session.scalar(select(func.count()).select_from(Task)) == n
    assert quota.audit() == []


def test_create_replay_refusal_list_and_detail_on_sqlite(sqlite_member):
    """`make run` uses SQLite: the create path's step-by-step form and the joined reads work there too."""
    client, user, headers = sqlite_member
    users.grant(user, quota_delta=1)
    db.session.commit()
    keyed = {**headers, "Idempotency-Key": "sqlite-key-1"}

    first = create(client, keyed, params={"template": "matting"})
    assert first.status_code == 201
    again = create(client, keyed, params={"template": "matting"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    error(create(client, keyed, params={"template": "white_bg"}), 409, 4009)
    # Out of quota: refused, and the refused request's key is not kept.
    refused_key = {**headers, "Idempotency-Key": "sqlite-key-2"}
    error(create(client, refused_key), 402, 1003)
    users.grant(db.session.get(User, user.id), quota_delta=1)
    db.session.commit()
    second = create(client, refused_key)
    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers

    listed = client.get("/api/task/list?limit=1&offset=0", headers=headers).get_json()["data"]
    assert listed["total"] == 2 and [t["id"] for t in listed["tasks"]] == [
        second.get_json()["data"]["taskId"]
    ]
    beyond = client.get("/api/task/list?offset=5", headers=headers).get_json()["data"]
    assert beyond["total"] == 2 and beyond["tasks"] == []
    task_id = first.get_json()["data"]["taskId"]
    detail = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]
    assert detail["params"] == {"template": "matting"} and detail["status"] == "pending"
    assert balance(user.id) == 0
    assert quota.audit() == []


def test_active_limit_refuses_before_any_charge(app, client, auth, make_user):
    """Cancel refunds, so a create → cancel loop is free: what one user may have queued is capped."""
    app.config["MAX_ACTIVE_TASKS_PER_USER"] = 2
    user = make_user(quota=5)
    headers = auth.headers(user)
    keyed = {**headers, "Idempotency-Key": "first"}
    first = create(client, keyed).get_json()["data"]["taskId"]
    create(client, headers)

    body = error(create(client, headers), 429, 1005)
    assert "limit is 2" in body["message"] and body["details"] == {"limit": 2, "active": 2}
    assert balance(user.id) == 3
    assert db.session.scalar(select(func.count()).select_from(Task)) == 2
    replay = create(client, keyed)  # a replay is not a new task: it is answered as before
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"

    assert client.post(f"/api/task/{first}/cancel", headers=headers).status_code == 200
    assert create(client, headers).status_code == 201
    assert balance(user.id) == 3
    assert quota.audit() == []


def test_active_limit_holds_under_concurrent_creates(app, auth, make_user):
    app.config["MAX_ACTIVE_TASKS_PER_USER"] = 3
    user = make_user(quota=20)
    headers = auth.headers(user)
    responses = _concurrently(app, 16, lambda _: create(app.test_client(), headers))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 3 and codes.count(429) == 13
    assert balance(user.id) == 17
    assert quota.audit() == []


def test_detail_says_workers_are_starting_until_one_serving_the_queue_is_ready(
    client, auth, make_user, redis
):
    from rq import Worker

    from shared import queues

    headers = auth.headers(make_user())
    task_id = create(client, headers).get_json()["data"]["taskId"]

    def starting() -> bool:
        return client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]["workersStarting"]

    assert starting() is True  # no worker registered at all
    other = Worker(["not-" + queues.IMAGES], connection=redis, name="other-queue")
    loading = Worker([queues.IMAGES], connection=redis, name="loading")
    for worker in (other, loading):
        worker.register_birth()
        worker.set_state("started")
    other.set_state("idle")
    assert starting() is True  # the only worker on the task's queue is still loading its model
    loading.set_state("idle")
    assert starting() is False
