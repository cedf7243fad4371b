from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.worker.conftest import jpeg_bytes, png_bytes, product_photo
from worker.imaging import ImageRejected, decode_image, encode_png

LIMITS = {"max_pixels": 40_000_000, "min_side": 64}


def decode(data: bytes, **limits) -> Image.Image:
    return decode_image(data, **{**LIMITS, **limits})


def save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size but carries no pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_non_image_bytes_are_rejected():
    with pytest.raises(ImageRejected, match=r"^not a supported image \(JPEG, PNG or WebP expected\)$"):
        decode(b"%PDF-1.4 definitely not a picture" * 10)


def test_empty_upload_is_rejected():
    with pytest.raises(ImageRejected, match="empty file"):
        decode(b"")


def test_extension_does_not_matter_content_does():
    # An SVG (text) is refused even though it is "an image" by name.
    with pytest.raises(ImageRejected, match="not a supported image"):
        decode(b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>')


def test_truncated_jpeg_is_rejected():
    data = jpeg_bytes(product_photo((400, 300)))
    with pytest.raises(ImageRejected, match=r"^image is truncated or corrupt$"):
        decode(data[: len(data) // 2])


def test_pixel_count_above_limit_is_rejected_before_decoding():
    data = png_bytes(Image.new("RGB", (3000, 2000), "white"))
    with pytest.raises(ImageRejected) as err:
        decode(data, max_pixels=4_000_000)
    assert str(err.value) == "image is 3000×2000 = 6.0 MP, above the 4.0 MP limit"


def test_bomb_header_is_rejected_without_allocating():
    with pytest.raises(ImageRejected, match=r"^image is 12000×12000 = 144\.0 MP, above the 40\.0 MP limit$"):
        decode(png_header_only(12_000, 12_000))


def test_pillow_own_bomb_guard_becomes_our_error():
    # 10^10 pixels trips Pillow's DecompressionBombError inside open().
    with pytest.raises(ImageRejected, match=r"^image is 10000\.0 MP, above the 40\.0 MP limit$"):
        decode(png_header_only(100_000, 100_000))


def test_tiny_image_is_rejected():
    with pytest.raises(ImageRejected) as err:
        decode(png_bytes(Image.new("RGB", (20, 20), "red")))
    assert str(err.value) == "image is 20×20, smaller than the 64 px minimum"


def test_one_short_side_is_enough_to_be_tiny():
    with pytest.raises(ImageRejected, match="image is 500×40, smaller than the 64 px minimum"):
        decode(png_bytes(Image.new("RGB", (500, 40), "red")))


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = jpeg_bytes(product_photo((200, 100)), exif=exif.tobytes())
    image = decode(data)
    assert image.size == (100, 200)
    assert image.mode == "RGB"


def test_jpeg_decodes_to_rgb():
    image = decode(jpeg_bytes(product_photo((320, 240))))
    assert (image.mode, image.size) == ("RGB", (320, 240))


def test_cmyk_jpeg_decodes_to_rgb():
    image = decode(save(Image.new("CMYK", (100, 80), (0, 255, 255, 0)), "JPEG", quality=95))
    assert image.mode == "RGB"
    r, g, b = image.getpixel((50, 40))
    assert r > 200 and g < 60 and b < 60  # pure red survives the conversion


def test_16_bit_grayscale_png_keeps_its_tones():
    wide = np.zeros((80, 100), np.uint16)
    wide[:, 50:] = 65535
    wide[:40, :50] = 32768
    image = decode(png_bytes(Image.fromarray(wide)))
    assert image.mode == "RGB"
    assert image.getpixel((75, 10)) == (255, 255, 255)
    assert image.getpixel((10, 10)) == (128, 128, 128)
    assert image.getpixel((10, 70)) == (0, 0, 0)


def test_palette_with_transparency_decodes_to_rgba():
    pal = Image.new("P", (100, 80), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 50, 80))
    image = decode(png_bytes(pal, transparency=0))
    assert image.mode == "RGBA"
    assert image.getpixel((10, 10)) == (0, 0, 255, 255)
    assert image.getpixel((90, 10))[3] == 0


def test_grayscale_and_gray_alpha_decode_to_rgb_and_rgba():
    assert decode(png_bytes(Image.new("L", (100, 80), 77))).getpixel((5, 5)) == (77, 77, 77)
    la = decode(png_bytes(Image.new("LA", (100, 80), (77, 10))))
    assert (la.mode, la.getpixel((5, 5))) == ("RGBA", (77, 77, 77, 10))


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (100, 80), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = decode(data)
    assert image.mode in ("RGB", "RGBA")
    assert image.getpixel((50, 40))[:3] == (255, 0, 0)


def test_webp_with_and_without_alpha():
    rgb = decode(save(product_photo((200, 150)), "WEBP", quality=90))
    assert (rgb.mode, rgb.size) == ("RGB", (200, 150))
    rgba = decode(save(Image.new("RGBA", (200, 150), (0, 128, 0, 100)), "WEBP", lossless=True))
    assert (rgba.mode, rgba.getpixel((5, 5))) == ("RGBA", (0, 128, 0, 100))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_encode_png_round_trips(mode):
    rng = np.random.default_rng(1)
    shape = (37, 53) if mode == "L" else (37, 53, len(mode))
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(array)
    back = Image.open(io.BytesIO(data))
    back.load()
    assert back.mode == mode
    assert np.array_equal(np.asarray(back), array)


def test_encode_png_accepts_pil_images():
    image = product_photo((64, 64))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(image, 3)))), np.asarray(image))
