"""Holes the model filled: backdrop seen through a ring, a handle or a strap, cut back out.

A salient-object model at 320×320 tends to fill the inside of a thin closed shape (a ring, a
bangle, a bag's handle, a mug's handle) with "product": it sees an outline and paints its
inside. No edge refinement can undo that, because the hole is not near an edge of the mask.
On a studio backdrop the photo itself tells the hole apart: what shows through a hole is the
backdrop, so its colour is the colour the backdrop would have at that spot.

`open_holes` works on a copy of the photo of at most SIDE px and the model's mask:

1. **Backdrop model.** A studio backdrop is a smooth sweep, so a quadratic surface in x and y
   per channel, fitted by least squares to the pixels the model calls background, predicts its
   colour everywhere. If the fit's residual next to the product is above NOISE_MAX (a textured
   or cluttered backdrop: brick, grass, a room), the step does nothing: there the colour cannot
   tell a hole from product, and the model's mask is kept as it is.
2. **Candidates.** Pixels inside the mask whose colour is within max(FLOOR, K × that residual)
   of the backdrop model, grouped into connected regions.
3. **Only enclosed holes with a thin wall are cut.** A region is cut only if it is enclosed
   by the product (it does not touch the background that reaches the frame's border, nor the
   backdrop-coloured halo attached to it), is at least MIN_AREA of the frame, and its wall,
   the product between it and the nearest background (outside, or the part of a hole the
   model did leave open), is at most MAX_WALL of the photo's longer side (a ring's band, a
   handle). This is what keeps a product's own backdrop-coloured parts: a
   white shirt on a white sweep touches the outside, and a white label on a dark box lies
   deeper inside the product than a handle's width. What it cannot tell apart is a
   backdrop-coloured patch within MAX_WALL of the product's outline (docs/QUALITY.md).

The cut regions are set to 0 in the model's mask before the edge refinement
(worker/refine.py), which then fits the new inner edges to the photo like the outer ones.
Measured on the benchmark and pictured in docs/QUALITY.md; about 5 ms of a 2000 px job.
"""

from __future__ import annotations

import cv2
import numpy as np

from worker.refine import shrink

SIDE = 200
"""Longest side of the copy the step works on: the photo shrunk by a whole factor (OpenCV's fast
area path) to at most this, so 100-200 px (holes smaller than a pixel here are not looked for)."""

BACKGROUND = 8
"""Mask values at or below this are the model's background."""

FLOOR = 6.0
"""Smallest colour distance (RGB, 0..255) that still counts as 'the backdrop's colour'."""

K = 3.0
"""A pixel matches the backdrop within K × the backdrop's own residual (its noise)."""

NOISE_MAX = 4.0
"""Median residual of the backdrop fit next to the product above which the backdrop is not a
studio sweep and nothing is cut (studio renders and photos: about 1; brick, grass, rooms: 6-100)."""

MAX_WALL = 0.04
"""Widest wall (fraction of the longer side) between a hole and the outside: rings, straps and
handles are well inside it; a label deeper inside the product is not a hole."""

MIN_AREA = 0.0005
"""Smallest hole, as a fraction of the frame (a speck of highlight is not a hole)."""

FIT_POINTS = 4096
"""Backdrop pixels the surface is fitted to (an even spread of them: six coefficients need few)."""

NEAR = 7
"""Radius (px at SIDE) of the strip around the product the backdrop's residual is read in."""


def open_holes(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha`` (the model's uint8 mask, photo-sized) with filled holes set to 0; unchanged
    when the backdrop is not a smooth sweep or no hole is found."""
    h, w = alpha.shape
    small = shrink(rgb, SIDE).astype(np.float32)
    mask = shrink(alpha, SIDE)
    background = (mask <= BACKGROUND).astype(np.uint8)
    square = np.ones((3, 3), np.uint8)
    sample = cv2.erode(background, square) > 0  # off the mask's blurred rim
    if sample.sum() < 50 or background.all():
        return alpha
    distance = np.linalg.norm(small - _backdrop(small, sample), axis=2)
    near = (cv2.dilate(1 - background, np.ones((2 * NEAR + 1,) * 2, np.uint8)) > 0) & sample
    if not near.any():
        return alpha
    noise = float(np.median(distance[near]))
    if noise > NOISE_MAX:
        return alpha
    candidates = ((distance < max(FLOOR, K * noise)) & (background == 0)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    if count <= 1:
        return alpha
    # The outside: background connected to the frame's border (the whole background if the
    # product fills the frame), plus the backdrop-coloured candidates touching it (the halo).
    outside = _reaching_border(background)
    touching = np.unique(labels[(cv2.dilate(outside, square) > 0) & (candidates > 0)])
    outside |= np.isin(labels, touching[touching > 0]).astype(np.uint8)
    wall = cv2.distanceTransform(1 - (outside | background), cv2.DIST_L2, 3)
    cut = np.zeros_like(candidates)
    for label in range(1, count):
        region = labels == label
        if stats[label, cv2.CC_STAT_AREA] < MIN_AREA * candidates.size or outside[region].any():
            continue
        rim = (cv2.dilate(region.astype(np.uint8), square) > 0) & ~region
        if float(np.median(wall[rim])) <= MAX_WALL * max(mask.shape):
            cut[region] = 255
    if not cut.any():
        return alpha
    cut = cv2.resize(cut, (w, h), interpolation=cv2.INTER_LINEAR)
    opened = alpha.copy()
    opened[cut > 127] = 0
    return opened


def _backdrop(small: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """The backdrop's colour everywhere: a quadratic surface per channel, least-squares fitted
    to (at most FIT_POINTS of) the ``sample`` pixels.

    Solved by its 6×6 normal equations with einsum, not ``np.linalg.lstsq`` or ``@``: those
    wake the BLAS thread pool, whose threads then spin against onnxruntime's and OpenCV's for
    the rest of the job (+38 ms per 2000 px job, measured; this path takes ~3 ms).
    """
    h, w = sample.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x /= w
    y /= h
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    picked = np.flatnonzero(sample)
    picked = picked[:: max(1, picked.size // FIT_POINTS)]
    fit, colours = terms[picked].astype(np.float64), small.reshape(-1, 3)[picked].astype(np.float64)
    normal = np.einsum("nk,nl->kl", fit, fit) + 1e-9 * np.eye(6)
    coefficients = np.linalg.solve(normal, np.einsum("nk,nc->kc", fit, colours)).astype(np.float32)
    return np.einsum("nk,kc->nc", terms, coefficients).reshape(h, w, 3)


def _reaching_border(background: np.ndarray) -> np.ndarray:
    """The background's parts connected to the frame's border (all of it if none is)."""
    _, labels = cv2.connectedComponents(background, connectivity=8)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    reaching = np.unique(border[border > 0])
    if not reaching.size:
        return background.copy()
    return np.isin(labels, reaching).astype(np.uint8)
