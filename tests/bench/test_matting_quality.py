"""The quality bench's own measures: the perfect-edge bound, the on-black error, the blur-fusion candidate."""

from __future__ import annotations

import cv2
import numpy as np

from bench.matting_quality import edge_band, estimate_foreground, oracle_edges, score
from bench.matting_set import Sample

PRODUCT = (200, 40, 40)
BACKDROP = (240, 240, 240)


def disc(side: int = 200, radius: int = 60, blur: float = 0) -> np.ndarray:
    """A disc's exact alpha (area-averaged from 4×), optionally with a soft (blurred) edge."""
    big = np.zeros((side * 4, side * 4), np.uint8)
    cv2.circle(big, (side * 2, side * 2), radius * 4, 255, -1)
    alpha = cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(alpha, (0, 0), blur) if blur else alpha


def sample(alpha: np.ndarray) -> Sample:
    a = alpha.astype(np.float32)[..., None] / 255
    image = (a * np.array(PRODUCT) + (1 - a) * np.array(BACKDROP) + 0.5).astype(np.uint8)
    foreground = np.broadcast_to(np.array(PRODUCT, np.uint8), image.shape).copy()
    return Sample("disc", image, alpha, foreground, "disc", "plain")


def test_oracle_takes_the_truth_in_the_predicted_edge_band_and_keeps_the_rest():
    s = sample(disc())
    pred = np.roll(s.alpha, 5, axis=1)  # an edge 5 px off
    pred[5:45, 5:45] = 255  # and a gross mistake: its own edge is in the band, its middle is not
    alpha, colour = oracle_edges(pred, s.image, s)
    band = edge_band(pred)
    assert (alpha[band] == s.alpha[band]).all()
    assert (alpha[~band] == pred[~band]).all() and (alpha[15:35, 15:35] == 255).all()
    assert (colour[band] == s.foreground[band]).all()
    assert score(alpha, colour, s).sad < score(pred, s.image, s).sad


def test_a_light_halo_shows_in_the_on_black_error():
    s = sample(disc())
    assert score(s.alpha, s.foreground, s).dark == 0
    halo = cv2.dilate(s.alpha, np.ones((5, 5), np.uint8))  # keeps a ring of the light backdrop
    assert score(halo, s.image, s).dark > 10


def test_foreground_estimate_keeps_the_interior_and_removes_the_backdrop_at_the_edge():
    s = sample(disc(blur=3))
    fg = estimate_foreground(s.image, s.alpha)
    solid = (s.alpha == 0) | (s.alpha == 255)
    assert (fg[solid] == s.image[solid]).all()
    edge = (s.alpha > 25) & (s.alpha < 230)
    before = np.abs(s.image[edge].astype(int) - PRODUCT).mean()
    after = np.abs(fg[edge].astype(int) - PRODUCT).mean()
    assert after < 0.5 * before
