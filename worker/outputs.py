"""Marketplace-ready outputs: canvas geometry, background, soft shadow and encoding of basic_clean images.

Runs after the mask is known, only for a task whose params ask for it (`shared.output_params`);
a task without them keeps the pipeline's own PNG path. Everything is OpenCV on uint8 arrays so
the GIL is released, and the encodes overlap with the next image's compositing on a second thread.

The background colour is a promise: after encoding, every 8×8 block of the canvas that holds no
product or shadow decodes to exactly that colour. JPEG's colour conversion and DC quantisation
can move a flat colour by a level (white at low quality, most colours at any), so the JPEG
settings are chosen per colour and quality by a decoded probe (`jpeg_options`); WebP is lossless.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from PIL import Image

from shared.output_params import OutputSpec, file_name

from .imaging import encode_png

MATTING_STEM, WHITE_BG_STEM, ENHANCED_STEM = "matting", "white-bg", "enhanced"

SHADOW_OPACITY = 0.35
"""Darkening at the shadow's core (0..1 of the background's brightness)."""

SHADOW_HEIGHT = 0.10
"""The contact shadow is the product's silhouette flattened to this share of its height."""

SHADOW_BLUR = 0.015
"""Gaussian sigma of the shadow, as a share of the canvas's shorter side."""

BORDER_MARGIN = 0.01
"""Band along the canvas border (share of the shorter side, at least 8 px) the shadow never enters."""

LOWER_QUALITIES = (85, 75, 65, 55, 45, 35, 25, 15, 8, 1)
"""Qualities tried in turn when an image is above `maxBytes`."""

BLOCK = 8
"""JPEG's block size; with 4:4:4 sampling a block holding only background decodes flat."""


class OutputTooLarge(ValueError):
    """No allowed encoding of an output fits `maxBytes`; the message is meant for the seller."""


@dataclass(frozen=True)
class Layout:
    """Where the product's bounding box lands on the output canvas."""

    box: tuple[int, int, int, int]  # x, y, w, h in the input
    canvas: tuple[int, int]  # w, h
    size: tuple[int, int]  # w, h of the product on the canvas
    offset: tuple[int, int]  # x, y on the canvas

    @property
    def side(self) -> int:
        return max(self.canvas)


def layout(alpha: np.ndarray, spec: OutputSpec) -> Layout:
    """Scale the product's box to `spec.fill` of the canvas along its limiting side, centred."""
    h, w = alpha.shape
    x, y, bw, bh = cv2.boundingRect(alpha)
    if bw == 0 or bh == 0:  # nothing found: treat the whole frame as the product
        x, y, bw, bh = 0, 0, w, h
    cw, ch = spec.size or (max(w, h), max(w, h))
    scale = spec.fill * min(cw / bw, ch / bh)
    tw, th = max(1, min(cw, round(bw * scale))), max(1, min(ch, round(bh * scale)))
    return Layout((x, y, bw, bh), (cw, ch), (tw, th), ((cw - tw) // 2, (ch - th) // 2))


def scale_product(
    rgb: np.ndarray, alpha: np.ndarray, place: Layout, upscale: int = cv2.INTER_CUBIC
) -> tuple[np.ndarray, np.ndarray]:
    """The product's box (`place.box`) at its canvas size (`place.size`): area averaging down,
    `upscale` up.

    Bicubic rather than Lanczos: as sharp to the eye here and some 40× faster in OpenCV. (The
    default outputs keep the bilinear upscale they always had, so they stay byte-identical.)
    """
    x, y, bw, bh = place.box
    crop, crop_alpha = rgb[y : y + bh, x : x + bw], alpha[y : y + bh, x : x + bw]
    if place.size == (bw, bh):
        return np.ascontiguousarray(crop), np.ascontiguousarray(crop_alpha)
    interp = cv2.INTER_AREA if place.size[0] < bw else upscale
    return cv2.resize(crop, place.size, interpolation=interp), cv2.resize(
        crop_alpha, place.size, interpolation=interp
    )


def compose(product: np.ndarray, alpha: np.ndarray, place: Layout, spec: OutputSpec) -> np.ndarray:
    """The product over the background colour (and its shadow), centred on the canvas."""
    cw, ch = place.canvas
    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas[:] = np.tile(np.array(spec.background, np.uint8), (cw, 1))  # row-wise: 300× a tuple fill
    if spec.shadow == "soft":
        cast_shadow(canvas, alpha, place)
    (ox, oy), (tw, th) = place.offset, place.size
    region = canvas[oy : oy + th, ox : ox + tw]
    alpha3 = cv2.merge((alpha, alpha, alpha))
    # c·a + bg·(1 - a) in uint8: where alpha is 0 the first term is 0 and the second bg exactly.
    front = cv2.multiply(product, alpha3, scale=1 / 255)
    back = cv2.multiply(region, cv2.bitwise_not(alpha3), scale=1 / 255)
    canvas[oy : oy + th, ox : ox + tw] = cv2.add(front, back)
    return canvas


def cast_shadow(canvas: np.ndarray, alpha: np.ndarray, place: Layout) -> None:
    """Darken the canvas under the product with a soft contact shadow, in place.

    The shadow is the product's silhouette flattened towards its foot and blurred; it is faded
    out before a band along the border, so the canvas edge stays exactly the background colour.
    """
    ch, cw = canvas.shape[:2]
    (ox, oy), (tw, th) = place.offset, place.size
    flat_h = max(2, round(th * SHADOW_HEIGHT))
    sigma = max(1.0, SHADOW_BLUR * min(cw, ch))
    reach = math.ceil(3 * sigma)
    margin = max(BLOCK, round(BORDER_MARGIN * min(cw, ch)))
    foot = oy + th + round(flat_h * 0.2)
    top, bottom = max(margin, foot - flat_h - reach), min(ch - margin, foot + reach)
    left, right = max(margin, ox - reach), min(cw - margin, ox + tw + reach)
    if bottom <= top or right <= left:
        return
    field = np.zeros((bottom - top, right - left), np.float32)
    silhouette = cv2.resize(alpha, (tw, flat_h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    _paste(field, silhouette, ox - left, foot - flat_h - top)
    field = _soft_blur(field, sigma)
    field *= _fade(field.shape, (top, left), (ch, cw), margin, reach)
    shade = 1 - SHADOW_OPACITY * np.minimum(field, 1)
    roi = canvas[top:bottom, left:right]
    canvas[top:bottom, left:right] = np.clip(roi * shade[..., None] + 0.5, 0, 255).astype(np.uint8)


def encode_image(image: np.ndarray, spec: OutputSpec, name: str) -> bytes:
    """An opaque canvas in the spec's format, background exact, within `maxBytes`.

    WebP is lossless: lossy WebP (4:2:0, with prediction and filtering) decoded even pure white
    off by a level in every try, so it cannot keep the background promise.
    """
    if spec.format == "png":
        return _fit_lossless(name, spec, lambda strong: encode_png(image, 3 if strong else 1))
    if spec.format == "webp":
        return _fit_lossless(name, spec, lambda strong: _webp_lossless(image, strong))
    qualities = [spec.quality, *(q for q in LOWER_QUALITIES if q < spec.quality)]
    if spec.max_bytes is None:
        qualities = qualities[:1]
    data = b""
    for quality in qualities:
        data = _jpeg(image, **jpeg_options(spec.background, quality))
        if spec.max_bytes is None or len(data) <= spec.max_bytes:
            return data
    raise OutputTooLarge(_too_large(name, len(data), spec.max_bytes))


@cache
def jpeg_options(color: tuple[int, int, int], quality: int) -> dict[str, object]:
    """Encoder settings under which a block of `color` decodes to exactly `color`.

    Tried in order: libjpeg's tables; the DC step forced to 1 (a flat block keeps its exact level
    at any quality); that stored as RGB instead of YCbCr (no conversion rounding: exact for every
    colour, a little larger). Always 4:4:4, so an 8×8 block holding only background is flat. A
    flat block's coefficients depend on its colour alone and blocks decode independently, so a
    probe of one decided here holds for every background block of every image: checking it once
    replaces decoding each output again (as long as the encode itself).
    """
    for options in (
        {"quality": quality},
        {"qtables": _dc_exact_tables(quality)},
        {"qtables": _dc_exact_tables(quality), "keep_rgb": True},
    ):
        probe = np.empty((2 * BLOCK, 2 * BLOCK, 3), np.uint8)
        probe[:] = color
        decoded = np.asarray(Image.open(io.BytesIO(_jpeg(probe, **options))).convert("RGB"))
        if np.all(decoded == probe):
            return options
    raise RuntimeError(f"no JPEG setting keeps {color} exact")  # RGB with DC step 1 always does


def encode_cutout(rgba: np.ndarray, spec: OutputSpec) -> bytes:
    """The transparent cut-out: lossless WebP when WebP is asked, else PNG (never JPEG)."""
    if spec.format == "webp":
        return _webp_lossless(rgba, strong=False)
    return encode_png(rgba, 1)


def finish(
    rgb: np.ndarray,
    alpha: np.ndarray,
    stems: Sequence[str],
    spec: OutputSpec,
    *,
    hard_alpha: np.ndarray | None,
    cutout: Callable[[np.ndarray, np.ndarray], np.ndarray],
    enhance: Callable[[np.ndarray, np.ndarray, int], np.ndarray],
    report: Callable[[str], None],
) -> list[tuple[str, bytes]]:
    """The task's outputs (`stems` in order) as `(file name, bytes)`, encodes on a second thread.

    `hard_alpha` is the mask for the opaque outputs (None when only the cut-out is asked);
    `cutout` and `enhance` are the pipeline's own steps.
    """
    results: dict[str, Future[bytes]] = {}
    names: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="outputs") as pool:
        if MATTING_STEM in stems:
            names[MATTING_STEM] = file_name(MATTING_STEM, spec, transparent=True)
            results[MATTING_STEM] = pool.submit(lambda: encode_cutout(cutout(rgb, alpha), spec))
        if hard_alpha is not None:
            place = layout(hard_alpha, spec)
            product, product_alpha = scale_product(rgb, hard_alpha, place)
            for stem in (WHITE_BG_STEM, ENHANCED_STEM):
                if stem not in stems:
                    continue
                names[stem] = file_name(stem, spec)
                pixels = enhance(product, product_alpha, place.side) if stem == ENHANCED_STEM else product
                canvas = compose(pixels, product_alpha, place, spec)
                results[stem] = pool.submit(encode_image, canvas, spec, names[stem])
                report(stem)
        return [(names[stem], results[stem].result()) for stem in stems]


def describe(data: bytes) -> dict[str, object]:
    """Format, size and byte count of an encoded output, read from its header."""
    with Image.open(io.BytesIO(data)) as image:
        fmt = (image.format or "").lower()
        return {"format": fmt, "width": image.width, "height": image.height, "bytes": len(data)}


def _fit_lossless(name: str, spec: OutputSpec, encode: Callable[[bool], bytes]) -> bytes:
    """A lossless encode, fast; compressed harder once when it is above `maxBytes`."""
    data = encode(False)
    if spec.max_bytes is not None and len(data) > spec.max_bytes:
        data = encode(True)
        if len(data) > spec.max_bytes:
            raise OutputTooLarge(_too_large(name, len(data), spec.max_bytes))
    return data


def _too_large(name: str, size: int, limit: int | None) -> str:
    return (
        f"{name} is {size} bytes at the lowest quality allowed, above maxBytes {limit}; "
        "allow more bytes, a smaller outputSize, or a lossy format"
    )


def _jpeg(image: np.ndarray, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", subsampling=0, **options)
    return out.getvalue()


def _webp_lossless(image: np.ndarray, strong: bool) -> bytes:
    """Lossless WebP; `quality` is the effort here: 25/method 0 is ~10× faster than 50/method 1."""
    out = io.BytesIO()
    effort = {"quality": 50, "method": 1} if strong else {"quality": 25, "method": 0}
    Image.fromarray(image).save(out, "WEBP", lossless=True, **effort)
    return out.getvalue()


@cache
def _dc_exact_tables(quality: int) -> list[list[int]]:
    """libjpeg's tables for `quality` with the DC step set to 1 (costs 2-12 % in bytes)."""
    out = io.BytesIO()
    Image.new("RGB", (BLOCK, BLOCK)).save(out, "JPEG", quality=quality, subsampling=0)
    with Image.open(out) as probe:
        tables = [list(probe.quantization[key]) for key in sorted(probe.quantization)]
    for table in tables:
        table[0] = 1
    return tables


def _soft_blur(field: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur done at a quarter of the blur's scale: the same soft field, ~10× less work."""
    step = max(1, int(sigma // 4))
    h, w = field.shape
    if step == 1 or min(h, w) < 4 * step:
        return cv2.GaussianBlur(field, (0, 0), sigma)
    small = cv2.resize(field, (w // step, h // step), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / step)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _paste(field: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Copy `patch` into `field` at (x, y), clipped to the field."""
    fh, fw = field.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(fw, x + patch.shape[1]), min(fh, y + patch.shape[0])
    if x1 > x0 and y1 > y0:
        field[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


def _fade(shape: tuple[int, int], origin: tuple[int, int], canvas: tuple[int, int], margin: int, ramp: int):
    """1 inside the canvas, ramping to 0 at `margin` px from its border (a field's window of it)."""
    (h, w), (top, left), (ch, cw) = shape, origin, canvas
    ys = np.arange(top, top + h, dtype=np.float32)
    xs = np.arange(left, left + w, dtype=np.float32)
    ramp = max(ramp, 1)
    fy = np.clip((np.minimum(ys, ch - 1 - ys) - margin) / ramp, 0, 1)
    fx = np.clip((np.minimum(xs, cw - 1 - xs) - margin) / ramp, 0, 1)
    return fy[:, None] * fx[None, :]
