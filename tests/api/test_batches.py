"""Batch endpoints: the all-or-nothing charge (under concurrency too), validation before any charge,
idempotent replay, the limits, detail and list, ownership, cancel with refunds, completion, the zip."""

from __future__ import annotations

import io
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from shared import lifecycle, quota, users
from shared.app import storage
from shared.db import db
from shared.models import Batch, QuotaLedger, Task, User
from tests.api.test_tasks import balance, error
from tests.conftest import app_with

IMAGE = "https://images.example.com/product-{}.jpg"


@pytest.fixture
def app(database, redis):
    yield from app_with(MAX_ACTIVE_BATCHES_PER_USER="3", MAX_BATCH_ITEMS="10")


def items(count: int, refs: bool = True) -> list[dict]:
    return [{"inputImageUrl": IMAGE.format(i), **({"ref": f"sku-{i}"} if refs else {})} for i in range(count)]


def submit(client, headers, count: int = 3, **body):
    payload = {"type": "basic_clean", "params": {"template": "white_bg"}, "items": items(count), **body}
    return client.post("/api/batches", json=payload, headers=headers)


def test_create_charges_n_units_and_queues_n_jobs_on_the_bulk_queue(client, auth, make_user, redis):
    user = make_user(quota=5)
    response = submit(client, auth.headers(user), count=3)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["status"] == "pending" and data["total"] == 3
    assert data["counts"] == {"pending": 3, "processing": 0, "success": 0, "failed": 0}
    assert data["params"]["template"] == "white_bg"
    assert balance(user.id) == 2
    members = db.session.scalars(
        select(Task).where(Task.batch_id == data["id"]).order_by(Task.batch_index)
    ).all()
    assert [(t.batch_index, t.batch_ref, t.input_image_url) for t in members] == [
        (i, f"sku-{i}", IMAGE.format(i)) for i in range(3)
    ]
    ledger = db.session.scalars(
        select(QuotaLedger).where(QuotaLedger.user_id == user.id).order_by(QuotaLedger.id)
    )
    deducts = [(e.amount, e.balance_after, e.task_id) for e in ledger if e.reason == "deduct"]
    assert deducts == [(-1, 4, members[0].id), (-1, 3, members[1].id), (-1, 2, members[2].id)]
    assert [j.decode() for j in redis.lrange("rq:queue:images_bulk", 0, -1)] == [t.id for t in members]
    assert redis.llen("rq:queue:images") == 0
    assert quota.audit() == []


def test_short_balance_charges_nothing_and_says_what_is_needed(client, auth, make_user, redis):
    user = make_user(quota=2)
    body = error(submit(client, auth.headers(user), count=3), 402, 1003)
    assert body["details"] == {"needed": 3, "balance": 2}
    assert balance(user.id) == 2
    assert db.session.scalar(select(func.count()).select_from(Task)) == 0
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 0
    assert redis.llen("rq:queue:images_bulk") == 0


def test_two_batches_racing_for_the_last_units_one_wins_whole(app, auth, make_user):
    """Balance 5, two batches of 3 at once, many times over: exactly one is charged, in full."""
    for round_ in range(6):
        user = make_user(quota=5)
        headers = auth.headers(user)
        start = threading.Barrier(2)

        def race(_, headers=headers, start=start):
            with app.app_context():
                client = app.test_client()
                start.wait()
                return submit(client, headers, count=3)

        with ThreadPoolExecutor(max_workers=2) as pool:
            responses = list(pool.map(race, range(2)))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201, 402], (round_, [r.get_json() for r in responses])
        assert balance(user.id) == 2
        assert db.session.scalar(select(func.count()).where(Task.user_id == user.id)) == 3
    assert quota.audit() == []


def test_a_bad_item_is_named_and_nothing_is_charged(client, auth, make_user):
    user = make_user(quota=5)
    payload = items(3)
    payload[1]["inputImageUrl"] = "ftp://example.com/x.jpg"
    body = error(
        client.post(
            "/api/batches", json={"type": "basic_clean", "items": payload}, headers=auth.headers(user)
        ),
        400,
        4001,
    )
    assert "1" in body["details"]["fields"]["items"]
    assert balance(user.id) == 5


@pytest.mark.parametrize(
    ("batch_items", "where"),
    [
        ([], "items"),
        ([{"inputImageUrl": IMAGE.format(i)} for i in range(11)], "items"),
        ([{"inputImageUrl": IMAGE.format(1), "ref": "../etc"}], "items"),
        ([{"inputImageUrl": IMAGE.format(1), "ref": "a\\b"}], "items"),
        ([{"inputImageUrl": IMAGE.format(1), "ref": ".."}], "items"),
        ([{"inputImageUrl": IMAGE.format(1), "ref": "x" * 101}], "items"),
        ("not a list", "items"),
    ],
    ids=["empty", "over the maximum", "slash", "backslash", "dot-dot", "long ref", "not a list"],
)
def test_malformed_batches_are_refused_before_any_charge(client, auth, make_user, batch_items, where):
    user = make_user(quota=20)
    response = client.post(
        "/api/batches", json={"type": "basic_clean", "items": batch_items}, headers=auth.headers(user)
    )
    body = error(response, 400, 4001)
    assert where in body["details"]["fields"]
    assert balance(user.id) == 20


def test_bad_params_are_refused_like_a_task_create(client, auth, make_user):
    user = make_user(quota=5)
    response = submit(client, auth.headers(user), params={"template": "nope"})
    assert "params" in error(response, 400, 4001)["details"]["fields"]
    assert balance(user.id) == 5


def test_someone_elses_upload_is_refused(client, auth, make_user):
    owner, other = make_user(quota=5), make_user(quota=5)
    stored = storage().put(f"uploads/{owner.id}/x.png", b"\x89PNG", "image/png")
    url = storage().url(stored if isinstance(stored, str) else f"uploads/{owner.id}/x.png", expires_in=600)
    response = client.post(
        "/api/batches",
        json={"type": "basic_clean", "items": [{"inputImageUrl": url}]},
        headers=auth.headers(other),
    )
    body = error(response, 400, 4001)
    assert body["details"]["fields"]["items"]["0"]["inputImageUrl"] == ["refers to a file you did not upload"]
    assert balance(other.id) == 5


def test_idempotent_replay_answers_the_first_batch_and_charges_once(client, auth, make_user, redis):
    user = make_user(quota=10)
    headers = {**auth.headers(user), "Idempotency-Key": "catalogue-monday"}
    first = submit(client, headers, count=3)
    again = submit(client, headers, count=3)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert balance(user.id) == 7
    assert redis.llen("rq:queue:images_bulk") == 3
    error(submit(client, headers, count=2), 409, 4009)  # the same key with another body
    assert balance(user.id) == 7


def test_concurrent_replays_create_one_batch(app, auth, make_user):
    user = make_user(quota=10)
    headers = {**auth.headers(user), "Idempotency-Key": "same"}

    def run(_):
        with app.app_context():
            return submit(app.test_client(), headers, count=2)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(run, range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.get_json()["data"]["id"] for r in responses}) == 1
    assert balance(user.id) == 8


def test_batches_in_progress_are_limited_and_single_tasks_still_go(client, auth, make_user):
    user = make_user(quota=50)
    headers = auth.headers(user)
    for _ in range(3):
        assert submit(client, headers, count=5).status_code == 201
    refused = submit(client, headers, count=1)
    body = error(refused, 429, 1005)
    assert body["details"] == {"limit": 3, "active": 3}
    assert "Retry-After" not in refused.headers  # no window ends it: a batch completing does
    assert balance(user.id) == 35
    # A batch's tasks do not count against the single-task limit.
    single = client.post(
        "/api/task/create", json={"type": "basic_clean", "inputImageUrl": IMAGE.format(0)}, headers=headers
    )
    assert single.status_code == 201


def test_detail_list_and_someone_elses_batch(client, auth, make_user):
    owner, other = make_user(quota=10), make_user(quota=10)
    headers = auth.headers(owner)
    batch_id = submit(client, headers, count=2).get_json()["data"]["id"]
    submit(client, headers, count=1)
    detail = client.get(f"/api/batches/{batch_id}", headers=headers).get_json()["data"]
    assert [t["ref"] for t in detail["tasks"]] == ["sku-0", "sku-1"]
    assert [t["index"] for t in detail["tasks"]] == [0, 1]
    assert {t["batchId"] for t in detail["tasks"]} == {batch_id}
    task = client.get(f"/api/task/{detail['tasks'][0]['id']}", headers=headers).get_json()["data"]
    assert task["batchId"] == batch_id and task["ref"] == "sku-0"
    page = client.get("/api/batches?limit=1", headers=headers).get_json()["data"]
    assert page["total"] == 2 and len(page["batches"]) == 1 and "tasks" not in page["batches"][0]
    others = auth.headers(other)
    for path in (f"/api/batches/{batch_id}", f"/api/batches/{batch_id}/download"):
        error(client.get(path, headers=others), 404, 4004)
    error(client.post(f"/api/batches/{batch_id}/cancel", headers=others), 404, 4004)
    error(client.get("/api/batches/not-a-batch", headers=headers), 404, 4004)
    assert client.get("/api/batches", headers=others).get_json()["data"]["total"] == 0


def test_cancel_refunds_each_unended_task_once_and_completes_the_batch(client, auth, make_user, redis):
    user = make_user(quota=5)
    headers = auth.headers(user)
    batch_id = submit(client, headers, count=3).get_json()["data"]["id"]
    first, *_ = db.session.scalars(
        select(Task.id).where(Task.batch_id == batch_id).order_by(Task.batch_index)
    )
    lifecycle.start(first)
    lifecycle.succeed(first, [f"tasks/{first}/white-bg.png"])
    db.session.commit()
    response = client.post(f"/api/batches/{batch_id}/cancel", headers=headers)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["status"] == "completed"
    assert data["counts"] == {"pending": 0, "processing": 0, "success": 1, "failed": 2}
    assert all(t["errorMessage"] == lifecycle.CANCELLED_MESSAGE for t in data["tasks"][1:])
    assert balance(user.id) == 4
    # The cancelled tasks' jobs were dropped (the first's stays: no worker took it in this test).
    assert [j.decode() for j in redis.lrange("rq:queue:images_bulk", 0, -1)] == [first]
    error(client.post(f"/api/batches/{batch_id}/cancel", headers=headers), 409, 4009)
    assert balance(user.id) == 4
    assert quota.audit() == []


def test_the_last_task_to_end_completes_the_batch(client, auth, make_user):
    user = make_user(quota=5)
    headers = auth.headers(user)
    batch_id = submit(client, headers, count=2).get_json()["data"]["id"]
    a, b = db.session.scalars(select(Task.id).where(Task.batch_id == batch_id).order_by(Task.batch_index))
    lifecycle.start(a)
    db.session.commit()
    data = client.get(f"/api/batches/{batch_id}", headers=headers).get_json()["data"]
    assert data["status"] == "processing" and "completedAt" not in data
    lifecycle.succeed(a, [f"tasks/{a}/white-bg.png"])
    lifecycle.fail(b, "图片无法解码")
    db.session.commit()
    data = client.get(f"/api/batches/{batch_id}", headers=headers).get_json()["data"]
    assert data["status"] == "completed" and data["progress"] == 100 and data["completedAt"]
    assert db.session.get(Batch, batch_id).ended == 2


def test_download_streams_each_success_under_its_ref(client, auth, make_user):
    user = make_user(quota=5)
    headers = auth.headers(user)
    payload = items(3)
    del payload[2]["ref"]
    batch_id = client.post(
        "/api/batches", json={"type": "basic_clean", "items": payload}, headers=headers
    ).get_json()["data"]["id"]
    error(client.get(f"/api/batches/{batch_id}/download", headers=headers), 409, 4009)
    members = db.session.scalars(
        select(Task.id).where(Task.batch_id == batch_id).order_by(Task.batch_index)
    ).all()
    contents = {}
    for index in (0, 2):
        task_id = members[index]
        keys = [f"tasks/{task_id}/white-bg.png", f"tasks/{task_id}/matting.png"]
        for key in keys:
            contents[key] = f"{index} {key}".encode()
            storage().put(key, contents[key], "image/png")
        lifecycle.start(task_id)
        lifecycle.succeed(task_id, keys)
    lifecycle.fail(members[1], "图片无法解码")
    db.session.commit()
    response = client.get(f"/api/batches/{batch_id}/download", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="batch-{batch_id}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.namelist() == [
        "sku-0/white-bg.png",
        "sku-0/matting.png",
        "003/white-bg.png",
        "003/matting.png",
    ]
    assert archive.read("003/matting.png") == contents[f"tasks/{members[2]}/matting.png"]


def test_items_sharing_a_ref_share_its_folder_numbered(client, auth, make_user):
    """Several photos of one SKU; an item without a ref named like another's ref joins it too."""
    user = make_user(quota=5)
    headers = auth.headers(user)
    payload = [
        {"inputImageUrl": IMAGE.format(0), "ref": "sku-9"},
        {"inputImageUrl": IMAGE.format(1), "ref": "002"},
        {"inputImageUrl": IMAGE.format(2), "ref": "sku-9"},
        {"inputImageUrl": IMAGE.format(3)},
    ]
    batch_id = client.post(
        "/api/batches", json={"type": "basic_clean", "items": payload}, headers=headers
    ).get_json()["data"]["id"]
    members = db.session.scalars(
        select(Task.id).where(Task.batch_id == batch_id).order_by(Task.batch_index)
    ).all()
    for task_id in members:
        storage().put(f"tasks/{task_id}/white-bg.png", task_id.encode(), "image/png")
        lifecycle.start(task_id)
        lifecycle.succeed(task_id, [f"tasks/{task_id}/white-bg.png"])
    db.session.commit()
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/batches/{batch_id}/download", headers=headers).data)
    )
    assert archive.namelist() == [
        "sku-9/1-white-bg.png",
        "002/white-bg.png",
        "sku-9/2-white-bg.png",
        "004/white-bg.png",
    ]
    assert archive.read("sku-9/2-white-bg.png") == members[2].encode()


def test_an_api_key_submits_batches(client, auth, make_user):
    user = make_user(quota=5)
    created = client.post("/api/keys", json={"name": "shop"}, headers=auth.headers(user)).get_json()["data"]
    response = submit(client, {"X-API-Key": created["key"]}, count=2)
    assert response.status_code == 201
    assert balance(user.id) == 3


def test_a_disabled_account_gets_no_batch_and_reads_none(client, auth, make_user):
    user = make_user(quota=5)
    headers = auth.headers(user)
    batch_id = submit(client, headers, count=1).get_json()["data"]["id"]
    db.session.get(User, user.id).is_active = False
    db.session.commit()
    error(submit(client, headers), 403, 1004)
    assert balance(user.id) == 4
    error(client.get("/api/batches", headers=headers), 403, 1004)
    error(client.get(f"/api/batches/{batch_id}", headers=headers), 403, 1004)


def test_batches_on_sqlite(sqlite_member):
    """`make run` uses SQLite: the charge, replay, refusal, completion and reads work there too."""
    client, user, headers = sqlite_member
    users.grant(user, quota_delta=3)
    db.session.commit()
    keyed = {**headers, "Idempotency-Key": "sqlite-batch"}
    first = submit(client, keyed, count=2)
    assert first.status_code == 201, first.get_json()
    again = submit(client, keyed, count=2)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert error(submit(client, headers, count=2), 402, 1003)["details"] == {"needed": 2, "balance": 1}
    batch_id = first.get_json()["data"]["id"]
    for task_id in db.session.scalars(select(Task.id).where(Task.batch_id == batch_id)):
        lifecycle.fail(task_id, "图片无法解码")
    db.session.commit()
    detail = client.get(f"/api/batches/{batch_id}", headers=headers).get_json()["data"]
    assert detail["status"] == "completed" and detail["counts"]["failed"] == 2
    assert client.get("/api/batches", headers=headers).get_json()["data"]["total"] == 1
    assert balance(user.id) == 3
    assert quota.audit() == []
