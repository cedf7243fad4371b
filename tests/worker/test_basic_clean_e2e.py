"""basic_clean end to end: API → Redis → a real worker with the real model → storage → links."""

from __future__ import annotations

import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from api import create_app
from shared import quota
from shared.db import db
from shared.models import QuotaLedger, Task
from tests.conftest import ConfigForTests, app_with, wait_for
from tests.photos import png_bomb, product_photo

REAL_PIPELINE = {"JOB_OVERRIDES": "", "WORKER_PRELOAD": "1"}


@pytest.fixture
def app(database, redis):
    """The API enqueues the shipped basic_clean job (no stub override)."""
    yield from app_with(JOB_OVERRIDES="")


class ImageServer:
    """A real HTTP server on 127.0.0.1 serving canned answers: path → (status, body, delay)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, delay = routes.get(self.path, (404, b"not found", 0))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def images():
    server = ImageServer()
    yield server
    server.close()


def upload(client, headers, data: bytes, name: str = "photo.jpg") -> str:
    response = client.post("/api/uploads", data={"file": (io.BytesIO(data), name)}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]["url"]


def create(client, headers, url: str, template: str = "all"):
    return client.post(
        "/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": url, "params": {"template": template}},
        headers=headers,
    )


def finished(task_id: str) -> Task | None:
    db.session.expire_all()
    task = db.session.get(Task, task_id)
    return task if task.status in ("success", "failed") else None


def refunds(task_id: str) -> int:
    return db.session.scalar(
        select(func.count()).where(QuotaLedger.task_id == task_id, QuotaLedger.reason == "refund")
    )


def fetch_png(client, url: str) -> Image.Image:
    path = url.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path)
    assert response.status_code == 200 and response.mimetype == "image/png"
    return Image.open(io.BytesIO(response.data))


def test_every_template_through_a_real_worker(client, auth, make_user, start_worker):
    user = make_user(quota=10)
    headers = auth.headers(user)
    photo = product_photo(480, 360)
    url = upload(client, headers, photo)
    worker = start_worker(**REAL_PIPELINE)
    ids = {
        t: create(client, headers, url, t).get_json()["data"]["taskId"]
        for t in ("all", "matting", "white_bg", "enhanced")
    }
    for template, task_id in ids.items():
        task = wait_for(lambda t=task_id: finished(t), timeout=120, message=f"{template} task")
        assert task.status == "success", (task.error_message, worker.output()[-3000:])
    expected = {
        "all": ["matting.png", "white-bg.png", "enhanced.png"],
        "matting": ["matting.png"],
        "white_bg": ["white-bg.png"],
        "enhanced": ["enhanced.png"],
    }
    for template, task_id in ids.items():
        data = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]
        names = [u.split("?")[0].rsplit("/", 1)[-1] for u in data["resultUrls"]]
        assert names == expected[template]
        assert data["progress"] == 100

    links = client.get(f"/api/task/{ids['all']}", headers=headers).get_json()["data"]["resultUrls"]
    matting, white, enhanced = (fetch_png(client, link) for link in links)
    assert matting.mode == "RGBA" and matting.size == (480, 360)
    alpha = np.asarray(matting)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255
    for result in (white, enhanced):
        pixels = np.asarray(result.convert("RGB"))
        assert result.size[0] == result.size[1] >= 480
        for corner in (pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]):
            assert tuple(corner) == (255, 255, 255)
        ys, xs = np.nonzero((pixels < 250).any(axis=2))
        extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
        assert 0.75 <= extent / result.size[0] <= 0.9

    # Zip download of all results, owner only.
    archive = client.get(f"/api/task/{ids['all']}/download", headers=headers)
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    import zipfile

    assert sorted(zipfile.ZipFile(io.BytesIO(archive.data)).namelist()) == sorted(expected["all"])
    assert quota.audit() == []


def test_exif_orientation_is_applied(client, auth, make_user, start_worker):
    user = make_user(quota=1)
    headers = auth.headers(user)
    url = upload(client, headers, product_photo(300, 200, exif_orientation=6))
    start_worker(**REAL_PIPELINE)
    task_id = create(client, headers, url, "matting").get_json()["data"]["taskId"]
    assert wait_for(lambda: finished(task_id), timeout=120).status == "success"
    link = client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]["resultUrls"][0]
    assert fetch_png(client, link).size == (200, 300)


def test_bad_inputs_fail_with_clear_messages_and_one_refund(client, auth, make_user, start_worker, images):
    photo = product_photo()
    images.routes.update(
        {
            "/ok.jpg": (200, photo, 0),
            "/text.jpg": (200, b"<html>not an image</html>" * 10, 0),
            "/truncated.jpg": (200, photo[: len(photo) // 3], 0),
            "/bomb.png": (200, png_bomb(10000), 0),
            "/tiny.png": (200, _png(20, 20), 0),
            "/huge.jpg": (200, b"\xff\xd8\xff" + b"0" * 3_000_000, 0),
            "/slow.jpg": (200, photo, 5),
        }
    )
    cases = {
        "/text.jpg": "not a supported image",
        "/truncated.jpg": "truncated or corrupt",
        "/bomb.png": "above the",
        "/tiny.png": "smaller than",
        "/huge.jpg": "larger than",
        "/missing.jpg": "404",
        "/slow.jpg": "timed out",
    }
    user = make_user(quota=len(cases) + 1)
    headers = auth.headers(user)
    worker = start_worker(
        **REAL_PIPELINE, FETCH_MAX_BYTES="2000000", FETCH_READ_TIMEOUT="1", IMAGE_MAX_PIXELS="40000000"
    )
    ids = {path: create(client, headers, images.url(path)).get_json()["data"]["taskId"] for path in cases}
    for path, fragment in cases.items():
        task = wait_for(lambda t=ids[path]: finished(t), timeout=120, message=path)
        assert task.status == "failed", (path, worker.output()[-2000:])
        assert fragment in task.error_message, (path, task.error_message)
        assert refunds(task.id) == 1
    # The worker is still alive and serving after every refusal.
    good = create(client, headers, images.url("/ok.jpg"), "white_bg").get_json()["data"]["taskId"]
    assert wait_for(lambda: finished(good), timeout=120).status == "success"
    assert quota.audit() == []


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, "PNG")
    return out.getvalue()


def test_ssrf_refused_at_create_and_at_fetch(database, redis, make_user, start_worker, images):
    app = create_app(ConfigForTests(ALLOW_PRIVATE_URLS="0", JOB_OVERRIDES=""))
    client = app.test_client()
    user = make_user(quota=2)
    login = client.post("/api/auth/login", json={"email": user.email, "password": "secret-pass-123"})
    headers = {"Authorization": "Bearer " + login.get_json()["data"]["accessToken"]}
    for url in (
        "http://127.0.0.1/a.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://2130706433/a.jpg",
        "http://0x7f.1/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",
        "http://localhost/a.jpg",
        "http://10.0.0.5/a.jpg",
    ):
        response = create(client, headers, url)
        assert response.status_code == 400, url
        assert "inputImageUrl" in response.get_json()["details"]["fields"]
    assert client.get("/api/quota", headers=headers).get_json()["data"]["quota"] == 2
    # A name that only resolves to a private address passes the static check and is refused by the worker.
    images.routes["/ok.jpg"] = (200, product_photo(), 0)
    hostname = socket.gethostname()
    start_worker(**REAL_PIPELINE, ALLOW_PRIVATE_URLS="0")
    task_id = create(client, headers, images.url("/ok.jpg", host=hostname)).get_json()["data"]["taskId"]
    task = wait_for(lambda: finished(task_id), timeout=120)
    assert task.status == "failed" and "refused" in task.error_message
    assert refunds(task_id) == 1


def test_upload_validation_and_ownership(client, auth, make_user):
    owner, other = make_user(), make_user()
    owner_headers, other_headers = auth.headers(owner), auth.headers(other)
    bad = client.post(
        "/api/uploads", data={"file": (io.BytesIO(b"GIF? no, text"), "x.png")}, headers=owner_headers
    )
    assert bad.status_code == 400 and bad.get_json()["code"] == 4001
    missing = client.post("/api/uploads", data={}, headers=owner_headers)
    assert missing.status_code == 400
    anonymous = client.post("/api/uploads", data={"file": (io.BytesIO(_png(100, 100)), "x.png")})
    assert anonymous.status_code == 401
    url = upload(client, owner_headers, _png(100, 100), "x.png")
    stolen = create(client, other_headers, url)
    assert stolen.status_code == 400 and "did not upload" in str(stolen.get_json()["details"])
    assert create(client, owner_headers, url).status_code == 201
    # Signed links: tampering or expiry is refused.
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert client.get(path).status_code == 200
    assert client.get(path.replace("sig=", "sig=0")).status_code == 403
