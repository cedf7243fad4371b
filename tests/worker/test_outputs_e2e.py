"""Marketplace outputs end to end: API → a real worker with the real model → storage → task detail.

One worker serves every task of a test: presets (size, format, fill, exact border colour),
upscaling of a small photo, WebP with alpha, the soft shadow, maxBytes (fit, and fail + refund),
and the default (no output params) unchanged.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from shared import quota
from shared.app import settings, storage
from shared.output_params import PRESETS, parse_size
from tests.conftest import wait_for
from tests.photos import product_photo
from tests.worker.test_basic_clean_e2e import REAL_PIPELINE, app, finished, refunds, upload  # noqa: F401
from worker.imaging import decode_image
from worker.matting import load_session
from worker.pipeline import run_basic_clean

PHOTO = (480, 360)
"""Smaller than every preset's canvas: each preset's output is an upscale."""


def create(client, headers, url: str, params: dict) -> str:
    body = {"type": "basic_clean", "inputImageUrl": url, "params": params}
    response = client.post("/api/task/create", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]["taskId"]


def detail(client, headers, task_id: str) -> dict:
    return client.get(f"/api/task/{task_id}", headers=headers).get_json()["data"]


def fetch(client, url: str, mimetype: str) -> bytes:
    response = client.get("/" + url.split("://", 1)[1].split("/", 1)[1])
    assert response.status_code == 200 and response.mimetype == mimetype
    return response.data


def border(pixels: np.ndarray, width: int = 8) -> np.ndarray:
    return np.concatenate(
        [p.reshape(-1, 3) for p in (pixels[:width], pixels[-width:], pixels[:, :width], pixels[:, -width:])]
    )


def fill_along_limiting_side(pixels: np.ndarray, background) -> float:
    """The product's box (pixels clearly off the background) over the canvas, along its limiting side."""
    off = np.abs(pixels.astype(int) - np.array(background)).max(axis=2) > 8
    ys, xs = np.nonzero(off)
    height, width = pixels.shape[:2]
    return max((xs.max() - xs.min() + 1) / width, (ys.max() - ys.min() + 1) / height)


def run_all(client, headers, start_worker, tasks: dict[str, dict]) -> dict[str, dict]:
    url = upload(client, headers, product_photo(*PHOTO))
    worker = start_worker(**REAL_PIPELINE)
    ids = {label: create(client, headers, url, params) for label, params in tasks.items()}
    done = {}
    for label, task_id in ids.items():
        task = wait_for(lambda t=task_id: finished(t), timeout=180, message=label)
        done[label] = {"task": task, "data": detail(client, headers, task_id), "log": worker.output}
    return done


def test_every_preset_gives_its_size_format_fill_and_an_exact_white_border(
    client, auth, make_user, start_worker
):
    user = make_user(quota=len(PRESETS) + 1)
    headers = auth.headers(user)
    tasks = {preset: {"template": "white_bg", "preset": preset} for preset in PRESETS}
    tasks["amazon all"] = {"template": "all", "preset": "amazon"}
    done = run_all(client, headers, start_worker, tasks)

    for preset in PRESETS:
        task, data = done[preset]["task"], done[preset]["data"]
        assert task.status == "success", (preset, task.error_message, done[preset]["log"]()[-2000:])
        [result] = data["results"]
        side = parse_size(PRESETS[preset].params["outputSize"])[0]
        assert (result["name"], result["format"], result["width"], result["height"]) == (
            "white-bg.jpg",
            "jpeg",
            side,
            side,
        )
        assert result["upscaled"] is True and result["url"] == data["resultUrls"][0]
        image = Image.open(io.BytesIO(fetch(client, result["url"], "image/jpeg")))
        assert image.format == "JPEG" and image.size == (side, side) and result["bytes"] > 0
        pixels = np.asarray(image.convert("RGB"))
        assert np.all(border(pixels) == 255), preset
        fill = PRESETS[preset].params.get("fill", 0.85)
        assert abs(fill_along_limiting_side(pixels, (255, 255, 255)) - fill) <= 0.03, preset

    data = done["amazon all"]["data"]
    names = [r["name"] for r in data["results"]]
    assert names == ["matting.png", "white-bg.jpg", "enhanced.jpg"]
    assert [u.split("?")[0].rsplit("/", 1)[-1] for u in data["resultUrls"]] == names
    assert [r["width"] for r in data["results"]] == [PHOTO[0], 2000, 2000]
    archive = client.get(f"/api/task/{data['id']}/download", headers=headers)
    assert sorted(zipfile.ZipFile(io.BytesIO(archive.data)).namelist()) == sorted(names)
    assert quota.audit() == []


def test_webp_colour_shadow_max_bytes_and_the_unchanged_default(client, auth, make_user, start_worker):
    user = make_user(quota=5)
    headers = auth.headers(user)
    orange = (250, 128, 0)
    tasks = {
        "default": {"template": "all"},
        "webp": {
            "template": "all",
            "format": "webp",
            "outputSize": "1000x1250",
            "backgroundColor": "#FA8000",
            "shadow": "soft",
            "fill": 0.8,
        },
        "fits": {"template": "white_bg", "preset": "taobao", "outputQuality": 100, "maxBytes": 25_000},
        "too big": {"template": "white_bg", "outputSize": 4096, "format": "jpeg", "maxBytes": 10_000},
    }
    done = run_all(client, headers, start_worker, tasks)
    for label in ("default", "webp", "fits"):
        assert done[label]["task"].status == "success", (label, done[label]["task"].error_message)

    # Without output params: the same PNGs as the pipeline's own path gives, byte for byte.
    data = done["default"]["data"]
    assert [r["name"] for r in data["results"]] == ["matting.png", "white-bg.png", "enhanced.png"]
    assert [(r["format"], r["width"], r["upscaled"]) for r in data["results"]] == [
        ("png", 480, False),
        ("png", 480, False),
        ("png", 480, False),
    ]
    image = decode_image(product_photo(*PHOTO), max_pixels=40_000_000, min_side=64)
    session = load_session(settings().MODEL_DIR, 1)
    expected = run_basic_clean(image, "all", session, fill_ratio=settings().WHITE_BG_FILL_RATIO)
    for (name, png), result in zip(expected, data["results"], strict=True):
        assert fetch(client, result["url"], "image/png") == png, name
    white = np.asarray(Image.open(io.BytesIO(expected[1][1])).convert("RGB"))
    assert abs(fill_along_limiting_side(white, (255, 255, 255)) - 0.85) <= 0.03

    # WebP: the cut-out keeps its alpha (lossless), the canvas its exact colour, the shadow its distance.
    results = {r["name"]: r for r in done["webp"]["data"]["results"]}
    assert list(results) == ["matting.webp", "white-bg.webp", "enhanced.webp"]
    matting = Image.open(io.BytesIO(fetch(client, results["matting.webp"]["url"], "image/webp")))
    alpha = np.asarray(matting)[..., 3]
    assert matting.mode == "RGBA" and matting.size == PHOTO and alpha.min() == 0 and alpha.max() == 255
    for name in ("white-bg.webp", "enhanced.webp"):
        pixels = np.asarray(
            Image.open(io.BytesIO(fetch(client, results[name]["url"], "image/webp"))).convert("RGB")
        )
        assert pixels.shape == (1250, 1000, 3)
        assert np.all(border(pixels, 10) == orange), name
        below = pixels[1135:1180, 300:700].astype(int)  # under the product, whose box ends at 1125
        assert ((below - orange).min(axis=2) < -8).any()  # darker there: the shadow

    # maxBytes: lowered quality until it fits; or a clear failure, refunded, nothing stored.
    [fitted] = done["fits"]["data"]["results"]
    assert fitted["bytes"] <= 25_000 and (fitted["width"], fitted["format"]) == (800, "jpeg")
    task = done["too big"]["task"]
    assert task.status == "failed" and "above maxBytes 10000" in task.error_message
    assert refunds(task.id) == 1 and task.result_urls == []
    assert storage().list_keys(f"tasks/{task.id}/") == []
    assert quota.audit() == []
