"""worker.outputs: canvas geometry, exact background after encoding, soft shadow, maxBytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from shared.output_params import OutputSpec
from worker import outputs
from worker.outputs import OutputTooLarge, compose, encode_image, layout, scale_product


def product_mask(width: int = 600, height: int = 400, box=(200, 100, 120, 200)) -> np.ndarray:
    """An opaque rectangle (the product) on a transparent frame."""
    alpha = np.zeros((height, width), np.uint8)
    x, y, w, h = box
    alpha[y : y + h, x : x + w] = 255
    return alpha


def noisy_rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def render(spec: OutputSpec, alpha: np.ndarray | None = None) -> tuple[np.ndarray, outputs.Layout]:
    alpha = product_mask() if alpha is None else alpha
    rgb = noisy_rgb(alpha.shape[1], alpha.shape[0])
    place = layout(alpha, spec)
    product, product_alpha = scale_product(rgb, alpha, place)
    return compose(product, product_alpha, place, spec), place


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def border(image: np.ndarray, width: int = 4) -> np.ndarray:
    return np.concatenate(
        [
            image[:width].reshape(-1, 3),
            image[-width:].reshape(-1, 3),
            image[:, :width].reshape(-1, 3),
            image[:, -width:].reshape(-1, 3),
        ]
    )


def product_box(image: np.ndarray, color) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.any(image != np.array(color, np.uint8), axis=2))
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


@pytest.mark.parametrize(("size", "fill"), [((1000, 1000), 0.88), ((1000, 1250), 0.5), ((800, 600), 0.98)])
def test_fill_is_measured_along_the_limiting_side_and_centred(size, fill):
    canvas, _ = render(OutputSpec(size=size, fill=fill))
    assert canvas.shape == (size[1], size[0], 3)
    x, y, w, h = product_box(canvas, (255, 255, 255))
    # the 120×200 product is tall: the limiting side is the canvas's height unless the canvas is wider
    expected = fill * min(size[0] / 120, size[1] / 200)
    assert abs(h - 200 * expected) <= 1 and abs(w - 120 * expected) <= 1
    assert abs((x + w / 2) - size[0] / 2) <= 1 and abs((y + h / 2) - size[1] / 2) <= 1


def test_default_canvas_is_a_square_of_the_input_longer_side():
    canvas, place = render(OutputSpec())
    assert canvas.shape == (600, 600, 3) and place.size[1] == round(0.85 * 600)


@pytest.mark.parametrize("color", [(255, 255, 255), (250, 128, 0), (17, 200, 99), (245, 245, 245), (0, 0, 0)])
@pytest.mark.parametrize(("fmt", "quality"), [("jpeg", 92), ("jpeg", 20), ("jpeg", 1), ("webp", 80)])
def test_background_decodes_to_the_exact_colour(color, fmt, quality):
    spec = OutputSpec(size=(1000, 1250), fill=0.8, format=fmt, quality=quality, background=color)
    canvas, _ = render(spec)
    image = decoded(encode_image(canvas, spec, "white-bg"))
    assert np.all(border(image, 16) == color)
    assert np.all(image[:100, :100] == color) and np.all(image[-100:, -100:] == color)


def test_plain_jpeg_would_move_white_and_colours_which_the_chosen_settings_keep():
    """Why `jpeg_options` exists: plain 4:4:4 JPEGs turn #FA8000 (any quality) and white (low
    quality) into other colours."""
    for color, quality in (((250, 128, 0), 92), ((255, 255, 255), 20)):
        spec = OutputSpec(size=(1000, 1250), fill=0.8, format="jpeg", quality=quality, background=color)
        canvas, _ = render(spec)
        assert not np.all(border(decoded(outputs._jpeg(canvas, quality=quality)), 16) == color)
        assert np.all(border(decoded(encode_image(canvas, spec, "white-bg")), 16) == color)


@pytest.mark.parametrize("fill", [0.8, 0.98])
def test_soft_shadow_darkens_under_the_product_and_never_reaches_the_border(fill):
    spec = OutputSpec(size=(800, 800), fill=fill, shadow="soft")
    canvas, place = render(spec)
    plain, _ = render(OutputSpec(size=(800, 800), fill=fill))
    (ox, oy), (tw, th) = place.offset, place.size
    assert np.all(border(canvas, 8) == 255)
    if fill < 0.9:
        below = canvas[oy + th : oy + th + 20, ox : ox + tw]
        assert below.min() < 235  # a visible shadow right under the product
    changed = np.any(canvas != plain, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.max() < 800 - 8 and xs.min() >= 8 and xs.max() < 800 - 8 and ys.min() >= 8


def test_shadow_survives_jpeg_with_the_border_exact():
    spec = OutputSpec(size=(800, 800), fill=0.9, shadow="soft", format="jpeg")
    canvas, _ = render(spec)
    image = decoded(encode_image(canvas, spec, "white-bg"))
    assert np.all(border(image, 8) == 255)


def test_max_bytes_lowers_quality_until_it_fits():
    spec = OutputSpec(size=(1500, 1500), fill=0.9, format="jpeg", quality=95)
    canvas, _ = render(spec)
    full = encode_image(canvas, spec, "white-bg")
    limit = len(full) // 3
    fitted = encode_image(canvas, OutputSpec(**{**spec.__dict__, "max_bytes": limit}), "white-bg")
    assert len(fitted) <= limit < len(full)
    assert np.all(border(decoded(fitted)) == 255)


def test_max_bytes_that_cannot_fit_fails_with_a_message():
    spec = OutputSpec(size=(3000, 3000), fill=0.9, format="jpeg", max_bytes=10_000)
    canvas, _ = render(spec)
    with pytest.raises(OutputTooLarge, match=r"white-bg.jpg is \d+ bytes .* above maxBytes 10000"):
        encode_image(canvas, spec, "white-bg.jpg")


def test_cutout_is_lossless_webp_with_alpha_or_png():
    rgba = np.dstack([noisy_rgb(300, 200), product_mask(300, 200, (50, 50, 100, 100))])
    rgba[rgba[..., 3] == 0] = 0  # as the pipeline's cut-out has it
    webp = outputs.encode_cutout(rgba, OutputSpec(format="webp"))
    image = Image.open(io.BytesIO(webp))
    assert image.format == "WEBP" and image.mode == "RGBA"
    assert np.array_equal(np.asarray(image), rgba)
    assert Image.open(io.BytesIO(outputs.encode_cutout(rgba, OutputSpec(format="jpeg")))).format == "PNG"


def test_file_names_follow_the_format():
    assert outputs.file_name("white-bg", OutputSpec(format="jpeg")) == "white-bg.jpg"
    assert outputs.file_name("matting", OutputSpec(format="jpeg"), transparent=True) == "matting.png"
    assert outputs.file_name("matting", OutputSpec(format="webp"), transparent=True) == "matting.webp"


def test_small_product_is_upscaled_with_lanczos():
    alpha = product_mask(300, 300, (100, 100, 100, 100))
    place = layout(alpha, OutputSpec(size=(2000, 2000), fill=0.9))
    product, product_alpha = scale_product(noisy_rgb(300, 300), alpha, place)
    assert product.shape[:2] == (1800, 1800) and product_alpha.min() == 255
