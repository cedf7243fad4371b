"""Recognise an image by its first bytes, not by its name."""

from __future__ import annotations

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""Pillow plugins tried on an upload (the JPEG plugin also opens multi-picture camera JPEGs)."""

NOT_AN_IMAGE = "not a supported image (JPEG, PNG or WebP expected)"
TRUNCATED = "image is truncated or corrupt"
"""What a seller is told when the bytes are not, or not entirely, an image."""

SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png", "image/png"),
    (b"WEBP", 8, "webp", "image/webp"),
    (b"GIF87a", 0, "gif", "image/gif"),
    (b"GIF89a", 0, "gif", "image/gif"),
    (b"BM", 0, "bmp", "image/bmp"),
    (b"II*\x00", 0, "tif", "image/tiff"),
    (b"MM\x00*", 0, "tif", "image/tiff"),
)


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """(extension, content type) for a supported image format, else None."""
    for magic, offset, extension, content_type in SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (extension != "webp" or data[:4] == b"RIFF"):
            return extension, content_type
    return None
