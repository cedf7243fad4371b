"""Edge refinement: the model's low-resolution mask made to follow the full-resolution photo.

The matting model sees a 320×320 thumbnail; scaled back up, its mask is a blurred outline that
ignores the real edge (a halo on one side, a bite on the other, thin straps smeared). Two cheap
steps fix part of it without a second network:

1. **Fast colour guided filter** (He, Sun & Tang 2013, with the low-resolution fitting of He &
   Sun 2015): in every window a linear model ``alpha ≈ a·RGB + b`` is fitted on a small copy of
   the photo, so the mask takes the photo's colour edges; the coefficients are scaled up and
   applied to the photo at up to WORK_SIDE. The colour guide separates a product from a
   background of the same brightness, which a grey guide cannot, and tolerates a window four
   times wider before it smears thin straps. Written here with OpenCV box filters because
   OpenCV's own ``cv2.ximgproc.guidedFilter`` needs opencv-contrib, a second build of OpenCV
   that would clash with the headless one the worker installs, and has no low-resolution fitting.
2. **Interior exactly opaque (255), background exactly transparent (0)**: the filtered mask is
   stretched from CLAMP to 0..1, so the model's 0.98-ish interior no longer shows the page
   through the product and its faint background noise is gone; where the model itself is
   sure (SURE), its answer stands.

Measured and dropped (docs/QUALITY.md): the grey guide (what shipped first), wider windows
(they gain on the synthetic set by recolouring whole regions, and lose the product on real
photos), a narrow-band variant, colour-line sampling of the alpha, and foreground colour
estimation (blur-fusion): each gained 2 % or less on the benchmark.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

WORK_SIDE = 1024
"""Longest side at which the refined mask is computed; larger photos get it scaled up (uint8,
bilinear). Keeps a 2000 px photo's cost near a 1000 px one's."""

FIT_SIDE = 400
"""Longest side of the copy the filter's coefficients are fitted on (a whole fraction of the
working copy): the fit is the costly part, and a coarser fit lost nothing on the benchmark."""

RADIUS = 0.02
"""Filter window radius as a fraction of the fitted copy's longer side (8 px at 400)."""

EPS = 1e-4
"""Regulariser (colours in 0..1): smaller follows the photo's edges more closely."""

CLAMP = (0.2, 0.8)
"""Refined alpha below/above these becomes exactly 0/1: no haze, no see-through interior."""

SURE = (0, 250)
"""Where the model's own mask is at or below/above these, its answer stands (0 or 255): the
filter only decides where the model hesitates. Without it, a light label at the edge of a
product on a light backdrop got see-through notches where the model was certain."""


def refine_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The mask re-fitted to the photo's edges (uint8, same size); interior 255, background 0."""
    h, w = alpha.shape
    work = shrink(rgb, WORK_SIDE)
    guide = shrink(work, FIT_SIDE).astype(np.float32) / 255
    mask = shrink(shrink(alpha, WORK_SIDE), FIT_SIDE).astype(np.float32) / 255
    radius = max(1, round(RADIUS * max(guide.shape[:2])))
    coefficients = _colour_coefficients(guide, mask, radius, EPS)
    size = (work.shape[1], work.shape[0])
    lo, hi = CLAMP
    gain = 255.0 / (hi - lo)
    # q = a·RGB + b, stretched so that lo..hi maps to 0..255 (saturating at both ends).
    q = cv2.resize(coefficients[3], size, interpolation=cv2.INTER_LINEAR)
    q = (q - lo) * gain
    for channel, a in zip(cv2.split(work), coefficients[:3], strict=True):
        a = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR)
        q += cv2.multiply(a, channel, scale=gain / 255, dtype=cv2.CV_32F)
    refined = cv2.convertScaleAbs(cv2.max(q, 0.0))
    if size != (w, h):
        refined = cv2.resize(refined, (w, h), interpolation=cv2.INTER_LINEAR)
    background, product = SURE
    cv2.max(refined, cv2.threshold(alpha, product - 1, 255, cv2.THRESH_BINARY)[1], dst=refined)
    cv2.min(refined, cv2.threshold(alpha, background, 255, cv2.THRESH_BINARY)[1], dst=refined)
    return refined


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` shrunk by the smallest whole factor that brings its longer side to at most ``side``.

    A whole factor keeps OpenCV's INTER_AREA on its fast path (about 100× faster than a
    fractional one at 2000 px).
    """
    factor = math.ceil(max(image.shape[:2]) / side)
    if factor == 1:
        return image
    return cv2.resize(image, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)


def _colour_coefficients(
    guide: np.ndarray, mask: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Window-averaged ``a_r, a_g, a_b, b`` of the colour guided filter: ``q = a·RGB + b``.

    In each window ``a = (Σ + εI)⁻¹ cov(RGB, p)`` with Σ the colours' 3×3 covariance, solved
    by the symmetric matrix's adjugate (vectorised; a batched ``np.linalg.solve`` is slower).
    """
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    channels = cv2.split(guide)
    mean = [box(c) for c in channels]
    mean_p = box(mask)
    cov = [box(c * mask) - m * mean_p for c, m in zip(channels, mean, strict=True)]

    def var(i: int, j: int) -> np.ndarray:
        v = box(channels[i] * channels[j]) - mean[i] * mean[j]
        return v + eps if i == j else v

    rr, rg, rb, gg, gb, bb = var(0, 0), var(0, 1), var(0, 2), var(1, 1), var(1, 2), var(2, 2)
    # adjugate of [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] and its determinant
    i_rr, i_rg, i_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    i_gg, i_gb, i_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    inv_det = 1 / np.maximum(rr * i_rr + rg * i_rg + rb * i_rb, eps**3)
    a_r = (i_rr * cov[0] + i_rg * cov[1] + i_rb * cov[2]) * inv_det
    a_g = (i_rg * cov[0] + i_gg * cov[1] + i_gb * cov[2]) * inv_det
    a_b = (i_rb * cov[0] + i_gb * cov[1] + i_bb * cov[2]) * inv_det
    b = mean_p - a_r * mean[0] - a_g * mean[1] - a_b * mean[2]
    return box(a_r), box(a_g), box(a_b), box(b)
