from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.worker.conftest import jpeg_bytes, product_photo
from worker.imaging import decode_image
from worker.matting import ModelMissing, load_session
from worker.pipeline import TEMPLATES, run_basic_clean


def open_png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image)


def product_luma(rgb: np.ndarray) -> np.ndarray:
    """Luminance of the non-white pixels of a white-background output."""
    luma = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return luma[(rgb[..., :3] < 250).any(axis=2)]


def outputs(image: Image.Image, matting_session, template: str = "all") -> dict[str, np.ndarray]:
    return {name: open_png(data) for name, data in run_basic_clean(image, template, matting_session)}


@pytest.fixture(scope="module")
def all_outputs(product_image, matting_session) -> dict[str, np.ndarray]:
    return outputs(product_image, matting_session)


def test_all_template_returns_three_files_in_order(product_image, matting_session):
    names = [name for name, _ in run_basic_clean(product_image, "all", matting_session)]
    assert names == ["matting.png", "white-bg.png", "enhanced.png"]


@pytest.mark.parametrize("template", ["matting", "white_bg", "enhanced"])
def test_single_templates_return_only_their_file(product_image, matting_session, template):
    results = run_basic_clean(product_image, template, matting_session)
    assert [name for name, _ in results] == list(TEMPLATES[template])
    assert len(results) == 1


def test_unknown_template_is_refused(product_image, matting_session):
    with pytest.raises(ValueError, match="unknown template 'sepia'"):
        run_basic_clean(product_image, "sepia", matting_session)


def test_matting_is_a_transparent_cutout(all_outputs, product_image):
    matting = all_outputs["matting.png"]
    assert matting.shape == (product_image.height, product_image.width, 4)
    alpha = matting[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255
    # The bottle stands in the middle of the frame; the corners are background.
    assert alpha[product_image.height // 2, product_image.width // 2] >= 250
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert 0.08 < (alpha >= 128).mean() < 0.4


@pytest.mark.parametrize("name", ["white-bg.png", "enhanced.png"])
def test_white_outputs_are_square_with_pure_white_background(all_outputs, product_image, name):
    rgb = all_outputs[name]
    side = max(product_image.size)
    assert rgb.shape == (side, side, 3)
    for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert tuple(rgb[y, x]) == (255, 255, 255)
    # A frame of 5 % around the canvas is exactly white: no haze, no fringe.
    border = side // 20
    frame = np.concatenate([rgb[:border].ravel(), rgb[-border:].ravel(), rgb[:, :border].ravel()])
    assert frame.min() == 255


def test_white_bg_product_fills_85_percent_of_the_side(all_outputs):
    rgb = all_outputs["white-bg.png"]
    ys, xs = np.nonzero((rgb < 255).any(axis=2))
    long_side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert long_side / rgb.shape[0] == pytest.approx(0.85, abs=0.02)
    # Centred.
    assert (xs.min() + xs.max()) / 2 == pytest.approx(rgb.shape[1] / 2, abs=3)
    assert (ys.min() + ys.max()) / 2 == pytest.approx(rgb.shape[0] / 2, abs=3)


def test_fill_ratio_is_honoured(product_image, matting_session):
    (_, data), *_ = run_basic_clean(product_image, "white_bg", matting_session, fill_ratio=0.6)
    rgb = open_png(data)
    ys, xs = np.nonzero((rgb < 255).any(axis=2))
    long_side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert long_side / rgb.shape[0] == pytest.approx(0.6, abs=0.02)


def test_enhancement_lifts_a_dull_photo(matting_session):
    dull = Image.open(io.BytesIO(jpeg_bytes(product_photo((480, 480), brightness=0.45, seed=3))))
    out = outputs(dull, matting_session)
    before, after = product_luma(out["white-bg.png"]), product_luma(out["enhanced.png"])
    assert after.mean() > before.mean() + 20


def test_enhancement_does_not_blow_out_a_bright_photo(matting_session):
    bright = Image.open(io.BytesIO(jpeg_bytes(product_photo((480, 480), color=(230, 200, 180), seed=4))))
    out = outputs(bright, matting_session)
    before, after = product_luma(out["white-bg.png"]), product_luma(out["enhanced.png"])
    assert (after >= 254).mean() - (before >= 254).mean() < 0.02
    assert abs(after.mean() - before.mean()) < 15


def test_stages_are_reported_in_order(product_image, matting_session):
    seen: list[tuple[str, int]] = []
    run_basic_clean(
        product_image, "all", matting_session, on_stage=lambda stage, pct: seen.append((stage, pct))
    )
    assert seen == [("decoded", 10), ("matted", 50), ("white_bg", 70), ("enhanced", 90)]


def test_transparent_upload_keeps_its_transparency(product_image, matting_session):
    rgba = product_image.convert("RGBA")
    rgba.putalpha(
        Image.new("L", product_image.size, 255).crop((0, 0, product_image.width, product_image.height))
    )
    alpha = np.full((product_image.height, product_image.width), 255, np.uint8)
    alpha[:, : product_image.width // 2] = 0  # left half already cut away
    rgba.putalpha(Image.fromarray(alpha))
    matting = outputs(rgba, matting_session, "matting")["matting.png"]
    assert matting[:, : product_image.width // 2, 3].max() == 0
    assert matting[..., 3].max() == 255


def test_decode_then_pipeline_from_jpeg_bytes(matting_session):
    image = decode_image(jpeg_bytes(product_photo((300, 500))), max_pixels=40_000_000, min_side=64)
    white = outputs(image, matting_session, "white_bg")["white-bg.png"]
    assert white.shape == (500, 500, 3)


def test_missing_model_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(ModelMissing) as err:
        load_session(str(tmp_path), threads=1)
    message = str(err.value)
    assert str(tmp_path / "u2netp.onnx") in message
    assert "scripts/fetch_model.sh" in message


def test_corrupt_model_is_refused(tmp_path):
    (tmp_path / "u2netp.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(ModelMissing, match=r"corrupt.*scripts/fetch_model\.sh"):
        load_session(str(tmp_path), threads=1)
