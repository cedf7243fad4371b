"""The basic_clean pipeline: one model pass, then cut-out, white background and enhancement.

Speed matters more than anything here except the mask, so the model runs once on rembg's exact
input, all compositing is done with OpenCV on RGB uint8 arrays (OpenCV releases the GIL), and
the PNG encodes overlap with the next output's compositing on a second thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from shared.output_params import OutputSpec
from shared.task_types import ENHANCED, MATTING, TEMPLATES, WHITE_BG
from worker import outputs
from worker.holes import open_holes
from worker.imaging import encode_png
from worker.matting import MattingSession, ModelSpec
from worker.refine import refine_alpha

STAGES = {"decoded": 10, "matted": 50, "white_bg": 70, "enhanced": 90}
"""Progress percentage reported when each stage completes."""

PNG_LEVEL = 1
"""zlib level for outputs: level 1 is several times faster than 6 for a few % more bytes."""

ALPHA_FLOOR = 3
"""Mask values below this are model noise on the background and become fully transparent."""

HARD_ALPHA = (16, 240)
"""On white, alpha is stretched from this range to 0..255: no grey haze, no background fringe."""

SHARP_FACTOR = 2.5
"""A sharp thumbnail is Lanczos-resampled from at most this many times the model's input side
(larger photos are area-averaged down to it first): the factor the benchmark measured, so a
4000 px photo's fine texture does not alias into the model's input."""

MAX_GAIN = 1.6
"""Cap on the contrast stretch of the enhanced output."""

TARGET_MEAN = 0.5
"""Brightness (0..1) a dull product's mean luminance is lifted towards."""

MIN_GAMMA = 0.6
"""Strongest midtone lift allowed (gamma < 1 brightens)."""

StageCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class Placement:
    """Where the product's bounding box lands on the square output canvas."""

    box: tuple[int, int, int, int]  # x, y, w, h in the input
    side: int
    size: tuple[int, int]  # w, h on the canvas
    offset: tuple[int, int]  # x, y on the canvas


def run_basic_clean(
    image: Image.Image,
    template: str,
    session: MattingSession,
    *,
    fill_ratio: float = 0.85,
    on_stage: StageCallback | None = None,
    compress_level: int = PNG_LEVEL,
    refine: bool = True,
    holes: bool = True,
    output: OutputSpec | None = None,
) -> list[tuple[str, bytes]]:
    """Run basic_clean on a decoded RGB/RGBA image; return ``[(filename, png_bytes)]`` in order.

    ``session``: a `worker.matting.MattingSession` (u2netp from `load_session`, or the HD model
    from `load_session(..., U2NET)`). ``refine``: fit the mask to the photo's edges (worker/refine.py), after
    cutting out the holes the model filled (worker/holes.py, unless ``holes`` is false); both
    are off only to measure what they add. ``output`` asks for marketplace-ready images (size, fill, format,
    background, shadow: worker.outputs) instead of the PNGs at the input's size; the file names
    then follow its format.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")
    if not 0 < fill_ratio <= 1:
        raise ValueError(f"fill_ratio must be in (0, 1], got {fill_ratio}")
    names = TEMPLATES[template]
    report = on_stage or (lambda stage, percent: None)
    report("decoded", STAGES["decoded"])

    rgb, input_alpha = _split(image)
    alpha = predict_alpha(session, rgb)
    if refine:
        alpha = refine_alpha(rgb, open_holes(rgb, alpha) if holes else alpha)
    if input_alpha is not None:
        # An already transparent upload keeps its transparency.
        np.minimum(alpha, input_alpha, out=alpha)
    report("matted", STAGES["matted"])
    hard = cv2.LUT(alpha, HARD_ALPHA_LUT) if WHITE_BG in names or ENHANCED in names else None
    if output is not None:
        return outputs.finish(
            rgb,
            alpha,
            [name.rsplit(".", 1)[0] for name in names],
            output,
            hard_alpha=hard,
            cutout=cutout,
            enhance=enhance,
            report=lambda stem: report(stem.replace("-", "_"), STAGES[stem.replace("-", "_")]),
        )

    results: dict[str, Future[bytes]] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="basic-clean") as pool:
        if MATTING in names:
            results[MATTING] = pool.submit(lambda: encode_png(cutout(rgb, alpha), compress_level))
        if hard is not None:
            place = placement(hard, fill_ratio)
            product, product_alpha = _scaled_product(rgb, hard, place)
            if WHITE_BG in names:
                white = on_white(product, product_alpha, place)
                results[WHITE_BG] = pool.submit(encode_png, white, compress_level)
                report("white_bg", STAGES["white_bg"])
            if ENHANCED in names:
                enhanced = on_white(enhance(product, product_alpha, place.side), product_alpha, place)
                results[ENHANCED] = pool.submit(encode_png, enhanced, compress_level)
                report("enhanced", STAGES["enhanced"])
        return [(name, results[name].result()) for name in names]


def predict_alpha(session: MattingSession, rgb: np.ndarray) -> np.ndarray:
    """The model's mask at full resolution (uint8), with rembg's normalisation and scaling.

    Same steps as rembg's U2netpSession.predict, with OpenCV resizes instead of Pillow's
    Lanczos (several times faster at full size), and by default a sharper thumbnail
    (`model_input`). Only the model-sized input is ever float: nothing full-size is. A session
    with a partner model (HD) gives the geometric mean of both models' masks.
    """
    pred = _model_mask(session, rgb)
    if session.partner is not None:  # both models see 320×320: their masks line up
        pred = np.sqrt(pred * _model_mask(session.partner, rgb))
    mask = (pred * 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_CUBIC)
    alpha[alpha < ALPHA_FLOOR] = 0
    return alpha


def _model_mask(session: MattingSession, rgb: np.ndarray) -> np.ndarray:
    """One model's mask (0..1) at its input size: of the thumbnail, or the mean of the
    thumbnail's and its mirror image's (``spec.mirror_average``)."""
    spec = session.spec
    x = model_input(rgb, spec).astype(np.float32)
    x /= max(float(x.max()), 1e-6)
    x -= np.array(spec.mean, np.float32)
    x /= np.array(spec.std, np.float32)
    pred = _normalised_prediction(session, x)
    if spec.mirror_average:
        pred = (pred + _normalised_prediction(session, x[:, ::-1])[:, ::-1]) / 2
    return pred


def _normalised_prediction(session: MattingSession, x: np.ndarray) -> np.ndarray:
    """The model's mask of a normalised thumbnail (HWC float), stretched to 0..1 as rembg does."""
    feed = {session.input_name: np.ascontiguousarray(x.transpose(2, 0, 1)[None])}
    pred = session.inner_session.run(None, feed)[0][0, 0]
    lo, hi = float(pred.min()), float(pred.max())
    return (pred - lo) / max(hi - lo, 1e-12)


def model_input(rgb: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The photo at the model's input size.

    Sharp (``spec.sharp_input``): Lanczos from at most SHARP_FACTOR × the input side. An
    area-averaged (or rembg's antialiased) thumbnail greys a 4 px strap or ring into its
    background, and the model then fills the ring's hole or smears the chain; the sharp one keeps
    them, which is where its gain on the benchmark is (docs/QUALITY.md).
    """
    if not spec.sharp_input:
        return cv2.resize(rgb, spec.input_size, interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    cap_w, cap_h = (round(SHARP_FACTOR * side) for side in spec.input_size)
    if w > cap_w or h > cap_h:
        rgb = cv2.resize(rgb, (min(w, cap_w), min(h, cap_h)), interpolation=cv2.INTER_AREA)
    return cv2.resize(rgb, spec.input_size, interpolation=cv2.INTER_LANCZOS4)


def cutout(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA cut-out; fully transparent pixels are zeroed so they cost nothing to compress."""
    visible = cv2.threshold(alpha, 0, 255, cv2.THRESH_BINARY)[1]
    rgba = cv2.cvtColor(cv2.bitwise_and(rgb, rgb, mask=visible), cv2.COLOR_RGB2RGBA)
    rgba[:, :, 3] = alpha
    return rgba


def placement(alpha: np.ndarray, fill_ratio: float) -> Placement:
    """Scale and position so the product's box fills ``fill_ratio`` of a square canvas.

    The canvas side is the input's longer side, so the output never loses resolution.
    """
    h, w = alpha.shape
    x, y, bw, bh = cv2.boundingRect(alpha)
    if bw == 0 or bh == 0:  # nothing found: treat the whole frame as the product
        x, y, bw, bh = 0, 0, w, h
    side = max(w, h)
    scale = fill_ratio * side / max(bw, bh)
    tw, th = max(1, round(bw * scale)), max(1, round(bh * scale))
    return Placement((x, y, bw, bh), side, (tw, th), ((side - tw) // 2, (side - th) // 2))


def on_white(product: np.ndarray, alpha: np.ndarray, place: Placement) -> np.ndarray:
    """The product composited over pure white and centred on the square canvas."""
    alpha3 = cv2.merge((alpha, alpha, alpha))
    # white - (white - c) * a: exactly 255 wherever alpha is 0.
    fg = cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(product), alpha3, scale=1 / 255))
    canvas = np.full((place.side, place.side, 3), 255, np.uint8)
    (ox, oy), (tw, th) = place.offset, place.size
    canvas[oy : oy + th, ox : ox + tw] = fg
    return canvas


def enhance(product: np.ndarray, alpha: np.ndarray, side: int) -> np.ndarray:
    """Levels from the product's own luminance (capped gain, lift-only gamma), then unsharp mask."""
    lut = tone_curve(_product_luma(product, alpha))
    toned = cv2.LUT(product, lut)
    sigma = max(1.0, side / 1000)
    blurred = cv2.GaussianBlur(toned, (0, 0), sigma)
    return cv2.addWeighted(toned, 1.6, blurred, -0.6, 0)


def tone_curve(luma: np.ndarray) -> np.ndarray:
    """A 256-entry LUT that stretches contrast about the mean and lifts dark midtones.

    The gain is capped and limited so the product's brightest 0.5 % stays below the top
    (or where it already was), which is what keeps a bright photo from blowing out.
    """
    identity = np.arange(256, dtype=np.float32)
    if luma.size < 64:
        return identity.astype(np.uint8)
    lo, mean, hi = (float(v) for v in (np.percentile(luma, 0.5), luma.mean(), np.percentile(luma, 99.5)))
    top, bottom = max(hi, 250.0), min(lo, 5.0)
    gain = min(MAX_GAIN, 230.0 / max(hi - lo, 1.0))
    if hi > mean:
        gain = min(gain, (top - mean) / (hi - mean))
    if mean > lo:
        gain = min(gain, (mean - bottom) / (mean - lo))
    gain = max(gain, 1.0)
    levels = np.clip(mean + (identity - mean) * gain, 0, 255) / 255
    m = min(max(mean / 255, 1e-3), 0.999)
    gamma = 1.0 if m >= TARGET_MEAN else max(MIN_GAMMA, math.log(TARGET_MEAN) / math.log(m))
    return np.clip(np.round(255 * levels**gamma), 0, 255).astype(np.uint8)


def _product_luma(product: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Luminance of the product's opaque pixels, subsampled (percentiles need no more)."""
    step = max(1, int(math.sqrt(product.shape[0] * product.shape[1] / 250_000)))
    gray = cv2.cvtColor(np.ascontiguousarray(product[::step, ::step]), cv2.COLOR_RGB2GRAY)
    return gray[alpha[::step, ::step] >= 128]


def _scaled_product(rgb: np.ndarray, alpha: np.ndarray, place: Placement) -> tuple[np.ndarray, np.ndarray]:
    return outputs.scale_product(rgb, alpha, place, upscale=cv2.INTER_LINEAR)


def _split(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB pixels and the input's own alpha (None when opaque); transparency is flattened on white."""
    if image.mode == "RGB":
        return np.asarray(image), None
    if image.mode != "RGBA":
        return np.asarray(image.convert("RGB")), None
    rgba = np.asarray(image)
    rgb, alpha = np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
    if alpha.min() == 255:
        return rgb, None
    alpha3 = cv2.merge((alpha, alpha, alpha))
    return cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(rgb), alpha3, scale=1 / 255)), alpha


def _hard_alpha_lut() -> np.ndarray:
    lo, hi = HARD_ALPHA
    return np.clip((np.arange(256) - lo) * 255 / (hi - lo), 0, 255).round().astype(np.uint8)


HARD_ALPHA_LUT = _hard_alpha_lut()
"""HARD_ALPHA as a lookup table, built once."""
