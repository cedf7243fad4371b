"""The content check every AI model-photo result passes before it is returned (pluggable via CONTENT_CHECK).

A check takes the downloaded images and raises `ContentRejected` with a user-facing reason.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from shared.app import settings


class ContentRejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def default_check(images: list[bytes]) -> None:
    """Twelve images that decode, are at least the minimum size, and are not blank."""
    config = settings()
    if len(images) != config.RUNNINGHUB_OUTPUT_COUNT:
        raise ContentRejected(
            f"AI 渲染结果不完整：收到 {len(images)} 张，需要 {config.RUNNINGHUB_OUTPUT_COUNT} 张"
        )
    for number, data in enumerate(images, start=1):
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                small = image.convert("L").resize((64, 64))
                size = image.size
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ContentRejected(f"AI 渲染结果第 {number} 张图片损坏，无法解码") from exc
        if min(size) < config.RUNNINGHUB_MIN_OUTPUT_SIDE:
            raise ContentRejected(
                f"AI 渲染结果第 {number} 张图片过小（{size[0]}×{size[1]}，至少 {config.RUNNINGHUB_MIN_OUTPUT_SIDE} px）"
            )
        if float(np.asarray(small).std()) < 2.0:
            raise ContentRejected(f"AI 渲染结果第 {number} 张图片为空白")
