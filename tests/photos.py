"""Synthetic product photos for the tests that send photos through the service (generated in code, seeded).

The image pipeline's own quality tests draw a richer product (label, shadow, brightness) in
`tests/worker/conftest.py`; the browser tests draw theirs with Pillow alone.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def product_photo(
    width: int = 400,
    height: int = 400,
    *,
    seed: int = 7,
    fmt: str = "JPEG",
    exif_orientation: int | None = None,
) -> bytes:
    """A shaded, textured bottle-like shape (the "product") on a light, noisy backdrop."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = 200 + 30 * (yy / height)[..., None] + rng.normal(0, 4, (height, width, 1))
    image = np.repeat(background, 3, axis=2)
    cx, cy, rx, ry = width / 2, height / 2, width * 0.18, height * 0.38
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    shade = 0.6 + 0.4 * (1 - np.abs(xx - cx) / rx).clip(0, 1)
    image[inside] = (np.array([180, 40, 50]) * shade[inside][:, None]) + rng.normal(0, 6, (inside.sum(), 3))
    extra = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        extra["exif"] = exif
    out = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(out, fmt, quality=90, **extra)
    return out.getvalue()


def png_bomb(side: int = 12000) -> bytes:
    """A tiny file that decodes to side² pixels (above IMAGE_MAX_PIXELS)."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG", optimize=True)
    return out.getvalue()
