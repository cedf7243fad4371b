"""The matting loader: a plain onnxruntime session from a model spec, the same mask as rembg's."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from worker.matting import U2NETP, MattingSession, ModelSpec, load_rembg_session, load_session, model_path
from worker.pipeline import ALPHA_FLOOR, model_input, predict_alpha

from .conftest import MODEL_DIR, product_photo

HEAVY_MODULES = ("rembg", "numba", "scipy", "skimage", "pymatting")
"""What rembg imports and a u2net-family mask does not need."""


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a >= 128, b >= 128
    return float((x & y).sum() / max((x | y).sum(), 1))


@pytest.fixture(scope="module")
def rembg_session():
    return load_rembg_session(MODEL_DIR, threads=2)


@pytest.mark.parametrize("side, seed", [(1000, 0), (2000, 1), (1500, 2)])
def test_mask_is_the_rembg_sessions_mask(matting_session, rembg_session, side, seed):
    rgb = np.asarray(product_photo((side, side), seed=seed, color=(40 * seed, 90, 160)))
    today = MattingSession(
        U2NETP, rembg_session.inner_session, rembg_session.inner_session.get_inputs()[0].name
    )
    ours = predict_alpha(matting_session, rgb)
    reference = predict_alpha(today, rgb)
    assert iou(ours, reference) >= 0.999
    assert np.abs(ours.astype(int) - reference).max() <= 1


def test_mask_agrees_with_rembg_remove(matting_session, rembg_session):
    import rembg

    image = product_photo((800, 600))
    reference = np.asarray(rembg.remove(image, session=rembg_session, only_mask=True))
    smoothed = dataclasses.replace(matting_session, spec=dataclasses.replace(U2NETP, sharp_input=False))
    # With rembg's smooth thumbnail the mask is rembg's; the sharp one moves only the edges.
    assert iou(predict_alpha(smoothed, np.asarray(image)), reference) >= 0.998
    assert iou(predict_alpha(matting_session, np.asarray(image)), reference) >= 0.99


def test_mirror_average_is_the_mean_of_both_passes_and_mirror_symmetric(matting_session):
    """HD's option (`ModelSpec.mirror_average`), tried here on the small model: the mask of a
    photo is the mean of its own pass and its mirror image's, so mirroring the photo mirrors it."""
    rgb = np.asarray(product_photo((900, 700), seed=3, color=(30, 120, 200)))
    rgb = np.ascontiguousarray(np.concatenate([rgb[:, :450], rgb[:, 450:] // 2], axis=1))  # not symmetric
    averaged = dataclasses.replace(matting_session, spec=dataclasses.replace(U2NETP, mirror_average=True))
    mirror = np.ascontiguousarray(rgb[:, ::-1])
    single, single_of_mirror = predict_alpha(matting_session, rgb), predict_alpha(matting_session, mirror)
    both = predict_alpha(averaged, rgb)
    assert np.abs(single.astype(int) - single_of_mirror[:, ::-1]).max() > 10  # the passes differ
    expected = (single.astype(int) + single_of_mirror[:, ::-1]) / 2
    # The floor applies before or after the mean, and each side is rounded to uint8 once more.
    assert np.abs(both - expected).max() <= ALPHA_FLOOR + 1
    assert np.abs(both.astype(int) - predict_alpha(averaged, mirror)[:, ::-1]).max() <= 2


def test_sharp_thumbnail_keeps_a_thin_strap_dark():
    """A 2 px dark strap across a light 800 px photo: area-averaged to 320 px it turns grey
    (what made the model fill ring holes and smear chains); the sharp thumbnail keeps it dark."""
    rgb = np.full((800, 800, 3), 230, np.uint8)
    cv2.line(rgb, (0, 0), (799, 266), (20, 20, 20), 2)

    def strap_level(spec: ModelSpec) -> float:
        return float(np.median(model_input(rgb, spec)[..., 0].min(axis=0)))

    assert strap_level(U2NETP) <= 30
    assert strap_level(dataclasses.replace(U2NETP, sharp_input=False)) >= 45


def test_sharp_thumbnail_of_a_large_photo_does_not_alias():
    """A 1 px checkerboard at 4000 px: straight Lanczos to 320 px would sample it into moiré;
    the area step to SHARP_FACTOR × 320 first averages it to flat grey."""
    yy, xx = np.mgrid[0:4000, 0:4000]
    rgb = np.repeat((((yy + xx) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    thumb = model_input(rgb, U2NETP).astype(int)
    assert thumb.max() - thumb.min() <= 16  # straight Lanczos: 64..191


def test_worker_modules_and_session_do_not_import_rembg():
    code = (
        "import json, sys\n"
        "import worker.process, worker.jobs.images, worker.pipeline\n"
        "from worker.matting import load_session\n"
        f"load_session({MODEL_DIR!r}, 1)\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_another_spec_loads_through_the_same_loader(tmp_path):
    shutil.copy(model_path(MODEL_DIR), tmp_path / "other.onnx")
    spec = ModelSpec(filename="other.onnx", md5=U2NETP.md5, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    session = load_session(str(tmp_path), threads=1, spec=spec)
    alpha = predict_alpha(session, np.asarray(product_photo((400, 300))))
    assert session.spec is spec and alpha.shape == (300, 400) and alpha.max() == 255


def test_onnxruntime_arena_is_off_unless_asked_for():
    assert load_session(MODEL_DIR, 1).inner_session.get_session_options().enable_cpu_mem_arena is False
    assert (
        load_session(MODEL_DIR, 1, arena=True).inner_session.get_session_options().enable_cpu_mem_arena
        is True
    )


def test_hd_mask_is_the_geometric_mean_of_u2net_and_u2netp():
    """HD's partner model: a pixel is product only where both u2net and u2netp say so."""
    from worker.matting import U2NET

    hd = load_session(MODEL_DIR, 2, U2NET)
    assert hd.partner is not None and hd.partner.spec == U2NETP
    rgb = np.asarray(product_photo((900, 700), seed=5, color=(200, 60, 40)))
    combined = predict_alpha(hd, rgb).astype(np.float32)
    u2net = predict_alpha(dataclasses.replace(hd, partner=None), rgb).astype(np.float32)
    u2netp = predict_alpha(hd.partner, rgb).astype(np.float32)
    # the mean is taken at the models' 320 px, before scaling up: equal up to the resampling
    assert np.abs(combined - np.sqrt(u2net * u2netp)).mean() < 1.5
    assert iou(combined, np.sqrt(u2net * u2netp)) >= 0.99
    # product (≥ 0.5) needs both models: sqrt(a·b) ≥ 128 means each of a, b ≥ 64, less resampling slack
    product = combined >= 128
    assert product.sum() > 10000 and ((u2net[product] >= 48) & (u2netp[product] >= 48)).all()
