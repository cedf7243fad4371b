"""Edge refinement: the model's mask follows the photo's edges; interior and background are exact."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from worker.refine import refine_alpha


def scene(
    side: int = 400,
    product: tuple[int, int, int] = (200, 30, 30),
    backdrop: tuple[int, int, int] = (40, 160, 60),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A disc on a plain background: photo, exact alpha, and a model-like blurred, offset mask."""
    big = np.zeros((side * 4, side * 4), np.uint8)
    cv2.circle(big, (side * 2, side * 2), side, 255, -1)
    truth = cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)
    a = truth.astype(np.float32)[..., None] / 255
    photo = (a * np.array(product) + (1 - a) * np.array(backdrop) + 0.5).astype(np.uint8)
    # what the low-resolution model gives back: a blurred outline, interior ~0.98
    small = cv2.resize(truth, (side // 8, side // 8), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC)
    mask = (mask.astype(np.float32) * 0.985).astype(np.uint8)
    return photo, truth, mask


def test_refined_mask_follows_the_photo_edge():
    photo, truth, mask = scene()
    refined = refine_alpha(photo, mask)
    before = np.abs(mask.astype(int) - truth).sum()
    after = np.abs(refined.astype(int) - truth).sum()
    assert after < 0.5 * before


def test_refined_mask_follows_an_edge_that_only_colour_shows():
    # red and green of the same grey level: a grey guide sees no edge here
    photo, truth, mask = scene(product=(180, 60, 60), backdrop=(60, 120, 60))
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(int)
    assert np.ptp(grey) <= 2
    refined = refine_alpha(photo, mask)
    before = np.abs(mask.astype(int) - truth).sum()
    after = np.abs(refined.astype(int) - truth).sum()
    assert after < 0.1 * before  # a grey guide only sharpens the blur (0.44 of the error left)


def test_where_the_model_is_sure_its_answer_stands():
    # a stripe of the backdrop's colour painted across the product, where the model is certain
    photo, truth, mask = scene()
    stripe = np.zeros_like(truth, bool)
    stripe[195:205, :] = True
    photo[stripe & (truth == 255)] = (40, 160, 60)
    mask[mask > 0] = np.maximum(mask[mask > 0], 3)
    mask[truth == 255] = np.maximum(mask[truth == 255], 252)
    refined = refine_alpha(photo, mask)
    assert (refined[mask >= 250] == 255).all()
    assert (refined[mask == 0] == 0).all()


def test_interior_is_opaque_and_background_transparent():
    photo, truth, mask = scene()
    assert mask.max() < 255  # the model never says "fully opaque"
    refined = refine_alpha(photo, mask)
    inside = cv2.erode(truth, np.ones((21, 21), np.uint8)) == 255
    outside = cv2.dilate(truth, np.ones((21, 21), np.uint8)) == 0
    assert (mask[inside] < 255).all()
    assert (refined[inside] == 255).all() and (refined[outside] == 0).all()


def test_pipeline_cut_out_has_an_exactly_opaque_interior(product_image, matting_session):
    from worker.pipeline import run_basic_clean

    rgba = np.asarray(_png(run_basic_clean(product_image, "matting", matting_session)[0][1]))
    alpha = rgba[..., 3]
    core = cv2.erode((alpha >= 128).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert core.sum() > 1000 and (alpha[core] == 255).all()


def _png(data: bytes) -> Image.Image:
    import io

    return Image.open(io.BytesIO(data))
