"""Synthetic product photos for the chaos scenarios (generated in code, seeded)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def product_photo(width: int = 400, height: int = 400, seed: int = 7, fmt: str = "JPEG") -> bytes:
    """A shaded ellipse (the "product") on a light, noisy backdrop."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = 200 + 30 * (yy / height)[..., None] + rng.normal(0, 4, (height, width, 1))
    image = np.repeat(background, 3, axis=2)
    cx, cy, rx, ry = width / 2, height / 2, width * 0.2, height * 0.38
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    shade = 0.6 + 0.4 * (1 - np.abs(xx - cx) / rx).clip(0, 1)
    image[inside] = (np.array([40, 60, 170]) * shade[inside][:, None]) + rng.normal(0, 6, (inside.sum(), 3))
    out = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(out, fmt, quality=90)
    return out.getvalue()


def png_bomb(side: int = 12000) -> bytes:
    """A tiny file that decodes to side² pixels (above IMAGE_MAX_PIXELS)."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG", optimize=True)
    return out.getvalue()
