"""Image fixtures for the worker tests: synthetic product photos generated in code.

The real u2netp model is loaded once per test session. A missing model fails every test that
needs it (ModelMissing names the fix), it never skips.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from worker.matting import load_session

MODEL_DIR = os.environ.get("MODEL_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "models"))


def product_photo(
    size: tuple[int, int] = (1000, 1000),
    *,
    color: tuple[int, int, int] = (200, 40, 40),
    brightness: float = 1.0,
    seed: int = 0,
) -> Image.Image:
    """A bottle-like product with cylindrical shading, a label and a shadow on a noisy gradient.

    ``brightness`` scales the whole photo, to make dull (< 1) or bright (> 1) shots.
    """
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    # Studio-like background: vertical grey-beige gradient with sensor noise.
    t = yy / h
    for c, (top, bottom) in enumerate(((225, 185), (222, 180), (215, 170))):
        img[..., c] = top + (bottom - top) * t
    img += rng.normal(0, 4, (h, w, 1)).astype(np.float32)

    s = min(w, h)
    cx, body_w = w / 2, 0.30 * s
    body_top, body_bottom = h / 2 - 0.22 * s, h / 2 + 0.33 * s
    neck_w, neck_top = 0.11 * s, h / 2 - 0.36 * s
    # Soft elliptical shadow under the product.
    shadow = np.exp(-(((xx - cx) / (0.24 * s)) ** 2 + ((yy - body_bottom) / (0.025 * s)) ** 2))
    img *= 1 - 0.45 * shadow[..., None]

    dx = np.abs(xx - cx)
    body = (dx <= body_w / 2) & (yy >= body_top) & (yy <= body_bottom)
    shoulder_r = (yy - body_top) / (0.08 * s)
    shoulder = (yy < body_top) & (yy >= body_top - 0.08 * s)
    shoulder &= dx <= neck_w / 2 + (body_w - neck_w) / 2 * np.sqrt(np.clip(1 - shoulder_r**2, 0, 1))
    neck = (dx <= neck_w / 2) & (yy >= neck_top) & (yy < body_top - 0.07 * s)
    cap = (dx <= neck_w / 2 + 0.01 * s) & (yy >= neck_top - 0.05 * s) & (yy < neck_top + 0.02 * s)
    bottle = body | shoulder | neck

    # Cylindrical shading: bright highlight left of centre, darker towards the edges.
    u = np.clip((xx - cx) / (body_w / 2), -1, 1)
    shade = 0.55 + 0.45 * np.sqrt(np.clip(1 - u**2, 0, 1)) + 0.35 * np.exp(-(((u + 0.35) / 0.12) ** 2))
    texture = 1 + rng.normal(0, 0.03, (h, w)).astype(np.float32)
    for c in range(3):
        img[..., c] = np.where(bottle, color[c] * shade * texture, img[..., c])
    label = body & (yy > h / 2 - 0.05 * s) & (yy < h / 2 + 0.15 * s)
    img[label] = (np.array([240, 235, 210], np.float32) * shade[label][:, None]) * 0.9
    stripe = label & (np.abs(yy - (h / 2 + 0.05 * s)) < 0.02 * s)
    img[stripe] = np.array([30, 60, 140], np.float32) * shade[stripe][:, None]
    img[cap] = np.array([40, 40, 45], np.float32) * shade[cap][:, None] * 1.5

    img *= brightness
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(image: Image.Image, quality: int = 90, **save_kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, **save_kwargs)
    return buf.getvalue()


def png_bytes(image: Image.Image, **save_kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **save_kwargs)
    return buf.getvalue()


@pytest.fixture(scope="session")
def matting_session():
    """The real u2netp session as the worker loads it, once per test session."""
    return load_session(MODEL_DIR, threads=2)


@pytest.fixture(scope="session")
def product_image() -> Image.Image:
    """A 640×480 product photo that went through JPEG, as a seller would upload it."""
    return Image.open(io.BytesIO(jpeg_bytes(product_photo((640, 480))))).convert("RGB")
