"""Filled holes: backdrop seen through a ring is cut out, the product's own backdrop-coloured parts are not."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from worker.holes import MAX_WALL, open_holes

SIDE = 800


def sweep(top=(236, 226, 232), bottom=(196, 186, 196), side: int = SIDE) -> np.ndarray:
    """A studio backdrop: a smooth vertical colour gradient."""
    t = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    column = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.repeat(column, side, axis=1)


def paint(backdrop: np.ndarray, shape: np.ndarray, colour) -> np.ndarray:
    """``colour`` composited over ``backdrop`` with ``shape`` (uint8) as its alpha."""
    a = shape.astype(np.float32)[..., None] / 255
    return (a * np.array(colour, np.float32) + (1 - a) * backdrop + 0.5).astype(np.uint8)


def ring(thickness: int = 14, radius: int = 250) -> np.ndarray:
    shape = np.zeros((SIDE, SIDE), np.uint8)
    cv2.circle(shape, (SIDE // 2, SIDE // 2), radius, 255, thickness, lineType=cv2.LINE_AA)
    return shape


def filled(shape: np.ndarray, level: int = 250) -> np.ndarray:
    """What the model gives for a closed outline: its inside painted as product, edges blurred."""
    contours, _ = cv2.findContours((shape >= 128).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    solid = np.zeros_like(shape)
    cv2.drawContours(solid, contours, -1, level, -1)
    return cv2.GaussianBlur(solid, (0, 0), 3)


def hole_of(shape: np.ndarray) -> np.ndarray:
    """The inside of a ring, 10 px clear of its band."""
    solid = filled(shape, 255) >= 128
    return cv2.erode((solid & (shape == 0)).astype(np.uint8), np.ones((21, 21), np.uint8)) > 0


def test_a_ring_filled_by_the_model_gets_its_hole_back():
    shape = ring()
    photo = paint(sweep(), shape, (120, 40, 20))
    mask = filled(shape)
    hole = hole_of(shape)
    assert (mask[hole] >= 240).all()  # the model's mistake
    opened = open_holes(photo, mask)
    assert (opened[hole] == 0).all()
    band = cv2.erode(shape, np.ones((5, 5), np.uint8)) == 255
    assert (opened[band] == mask[band]).all()  # the ring itself is untouched
    outside = filled(shape, 255) == 0
    assert (opened[outside] == mask[outside]).all()


def test_a_hole_on_a_dark_sweep_opens_too():
    shape = ring(thickness=10, radius=200)
    photo = paint(sweep((40, 44, 46), (20, 24, 26)), shape, (200, 170, 120))
    opened = open_holes(photo, filled(shape))
    assert (opened[hole_of(shape)] == 0).all()


def test_a_backdrop_coloured_label_deep_inside_the_product_is_kept():
    """A dark box with a label of exactly the backdrop's colour in its middle: enclosed, but its
    wall (the box around it) is wider than a ring's band or a handle, so it is not a hole."""
    backdrop = sweep()
    box = np.zeros((SIDE, SIDE), np.uint8)
    box[200:600, 150:650] = 255
    photo = paint(backdrop, box, (40, 50, 70))
    label = np.zeros((SIDE, SIDE), bool)
    label[330:470, 300:500] = True
    photo[label] = backdrop[label].astype(np.uint8)
    wall = (330 - 200) / SIDE
    assert wall > MAX_WALL
    mask = filled(box)
    assert np.array_equal(open_holes(photo, mask), mask)


def test_a_backdrop_coloured_part_touching_the_outline_is_kept():
    """A light product on a light sweep (a white shirt on white): the parts of it the colour of
    the backdrop reach its outline, so they are not enclosed holes."""
    backdrop = sweep()
    box = np.zeros((SIDE, SIDE), np.uint8)
    box[200:600, 150:650] = 255
    photo = paint(backdrop, box, (90, 60, 60))
    pale = np.zeros((SIDE, SIDE), bool)
    pale[260:540, 150:400] = True  # backdrop-coloured, from the box's left edge inwards
    photo[pale] = backdrop[pale].astype(np.uint8)
    mask = filled(box)
    assert np.array_equal(open_holes(photo, mask), mask)


def test_on_a_textured_backdrop_nothing_is_cut():
    """Brick, grass, a room: the colour cannot tell a hole from product, so the mask stands."""
    rng = np.random.default_rng(0)
    texture = sweep() + rng.normal(0, 18, (SIDE, SIDE, 1)).astype(np.float32)
    shape = ring()
    photo = paint(np.clip(texture, 0, 255), shape, (120, 40, 20))
    mask = filled(shape)
    assert np.array_equal(open_holes(photo, mask), mask)


def test_a_product_filling_the_frame_is_left_alone():
    photo = paint(sweep(), np.full((SIDE, SIDE), 255, np.uint8), (90, 60, 60))
    mask = np.full((SIDE, SIDE), 252, np.uint8)
    assert np.array_equal(open_holes(photo, mask), mask)


def test_the_pipeline_opens_a_hole_the_model_fills(matting_session):
    """End to end with the real u2netp: a bangle on a studio sweep. Without the step the cut-out
    keeps the backdrop inside the bangle; with it that is transparent, and the bangle is kept."""
    from worker.pipeline import run_basic_clean

    shape = ring(thickness=12, radius=230)
    photo = Image.fromarray(paint(sweep(), shape, (150, 60, 30)))

    def cut_out_alpha(holes: bool) -> np.ndarray:
        png = run_basic_clean(photo, "matting", matting_session, holes=holes)[0][1]
        return np.asarray(Image.open(io.BytesIO(png)))[..., 3]

    hole = hole_of(shape)
    assert (cut_out_alpha(holes=False)[hole] > 0).mean() > 0.5
    alpha = cut_out_alpha(holes=True)
    assert (alpha[hole] == 0).all()
    band = cv2.erode(shape, np.ones((5, 5), np.uint8)) == 255
    assert (alpha[band] == 255).mean() > 0.95
