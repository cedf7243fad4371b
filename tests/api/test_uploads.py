"""Uploads: members only, really an image, a per-user cap, and cleanup of uploads no task used."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import update

from shared.app import storage
from shared.db import db, utcnow
from shared.models import Upload
from tests.conftest import app_with, wait_for
from tests.photos import png_bomb, product_photo

PHOTO = product_photo(200, 200, fmt="PNG")
CAP = 2 * len(PHOTO) + 100


@pytest.fixture
def app(database, redis):
    yield from app_with(UPLOAD_STORAGE_CAP_BYTES=str(CAP))


def upload(client, headers, data: bytes = PHOTO, name: str = "photo.png"):
    return client.post("/api/uploads", data={"file": (io.BytesIO(data), name)}, headers=headers)


def create(client, headers, url: str):
    return client.post(
        "/api/task/create", json={"type": "basic_clean", "inputImageUrl": url}, headers=headers
    )


def test_a_non_member_cannot_upload(client, auth, make_user):
    answer = upload(client, auth.headers(make_user(member=False, quota=0)))

    body = answer.get_json()
    assert answer.status_code == 403 and body["code"] == 1002
    assert "membership" in body["message"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"not really a png" * 100, "truncated or corrupt"),
        (PHOTO[: len(PHOTO) // 2], "truncated or corrupt"),
        (b"\xff\xd8\xff" + b"\x00" * 500, "not a supported image"),
        (b"just some text, named photo.png", "not a supported image"),
        (png_bomb(8000), "above the 40 MP limit"),
    ],
)
def test_only_real_images_are_stored(app, client, auth, make_user, data, message):
    answer = upload(client, auth.headers(make_user()), data)

    body = answer.get_json()
    assert answer.status_code == 400 and body["code"] == 4001, body
    assert message in body["message"] and body["details"]["fields"]["file"]
    assert db.session.query(Upload).count() == 0


def test_unused_uploads_are_capped_and_a_task_frees_its_upload(client, auth, make_user):
    user = make_user()
    headers = auth.headers(user)
    first = upload(client, headers)
    assert first.status_code == 201 and upload(client, headers).status_code == 201

    full = upload(client, headers)
    body = full.get_json()
    assert full.status_code == 409 and body["code"] == 4009
    assert body["details"] == {"storageUsed": 2 * len(PHOTO), "storageCap": CAP}
    assert upload(client, auth.headers(make_user())).status_code == 201  # a cap per user

    assert create(client, headers, first.get_json()["data"]["url"]).status_code == 201
    assert upload(client, headers).status_code == 201


def test_a_refused_create_leaves_the_upload_unused(client, auth, make_user):
    user = make_user(quota=0)
    headers = auth.headers(user)
    url = upload(client, headers).get_json()["data"]["url"]

    assert create(client, headers, url).status_code == 402
    assert db.session.query(Upload).one().used_at is None


def test_the_scheduled_job_deletes_uploads_no_task_used(app, client, auth, make_user, start_worker):
    user = make_user()
    headers = auth.headers(user)
    used, unused, fresh = (upload(client, headers if i < 2 else auth.headers(make_user())) for i in range(3))
    used_key, unused_key, fresh_key = (a.get_json()["data"]["key"] for a in (used, unused, fresh))
    assert create(client, headers, used.get_json()["data"]["url"]).status_code == 201
    day_ago = utcnow() - timedelta(hours=25)
    db.session.execute(update(Upload).where(Upload.key != fresh_key).values(created_at=day_ago))
    db.session.commit()

    start_worker(UPLOAD_CLEANUP_INTERVAL_SECONDS="1")

    store = storage()
    wait_for(lambda: not store.exists(unused_key), timeout=60, message="the unused upload to be deleted")
    db.session.rollback()
    assert {u.key for u in db.session.query(Upload)} == {used_key, fresh_key}
    assert store.exists(used_key) and store.exists(fresh_key)
