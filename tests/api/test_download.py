"""Zip downloads are streamed while they are built: one stored object at a time, never the whole
archive in memory, also through the real web server (`python -m api.serve`)."""

from __future__ import annotations

import io
import zipfile

import requests

from shared import lifecycle, results
from shared.app import storage
from shared.db import db

IMAGE = "https://images.example.com/product.jpg"
FILES = {"matting.png": b"\x89PNG one" * 40_000, "white-bg.png": b"\x89PNG two", "enhanced.png": b"three"}


def succeeded_task(client, headers) -> str:
    response = client.post(
        "/api/task/create", json={"type": "basic_clean", "inputImageUrl": IMAGE}, headers=headers
    )
    task_id = response.get_json()["data"]["taskId"]
    lifecycle.start(task_id)
    keys = []
    for name, data in FILES.items():
        keys.append(results.result_key(task_id, name))
        storage().put(keys[-1], data, "image/png")
    assert lifecycle.succeed(task_id, keys)
    db.session.commit()
    return task_id


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_zip_is_sent_while_it_is_built(app, client, auth, make_user, monkeypatch):
    headers = auth.headers(make_user())
    task_id = succeeded_task(client, headers)
    store, reads = storage(), []
    real_get = store.get
    monkeypatch.setattr(store, "get", lambda key: reads.append(key) or real_get(key))

    response = client.get(f"/api/task/{task_id}/download", headers=headers, buffered=False)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert f"task-{task_id}.zip" in response.headers["Content-Disposition"]
    chunks = iter(response.response)
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04")
    assert len(reads) == 1  # the first bytes leave before the second object is read

    assert unzip(first + b"".join(chunks)) == FILES
    assert len(reads) == 3


def test_download_streams_through_the_real_server(app, client, auth, make_user, start_live_server):
    headers = auth.headers(make_user())
    task_id = succeeded_task(client, headers)
    server = start_live_server()

    with requests.get(
        f"{server.url}/api/task/{task_id}/download", headers=headers, stream=True, timeout=30
    ) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
        assert r.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.headers
        body = b"".join(r.iter_content(64 * 1024))
    assert unzip(body) == FILES


def test_download_of_an_unfinished_task_is_a_conflict(client, auth, make_user):
    headers = auth.headers(make_user())
    response = client.post(
        "/api/task/create", json={"type": "basic_clean", "inputImageUrl": IMAGE}, headers=headers
    )
    task_id = response.get_json()["data"]["taskId"]
    answer = client.get(f"/api/task/{task_id}/download", headers=headers)
    assert answer.status_code == 409 and answer.get_json()["code"] == 4009
