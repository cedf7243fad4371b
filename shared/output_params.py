"""Marketplace-ready outputs: the basic_clean params that shape the images, and the presets.

The web process validates them at create (`OutputParams`, mixed into basic_clean's params schema),
the worker resolves what a task asked for into an `OutputSpec` (`resolve`). Both read the same
tables below, so a preset or a range is written once. Without any of these params a task's outputs
stay as they always were: PNGs at the input's size with the product filling 85 %.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

SIDE_MIN, SIDE_MAX = 256, 4096
"""Allowed canvas side in pixels (`outputSize`)."""

FILL_MIN, FILL_MAX = 0.5, 0.98
"""Allowed share of the canvas the product's bounding box fills along its limiting side."""

DEFAULT_FILL = 0.85
"""The fill of every output when `fill` is not given (and today's fill without params)."""

FORMATS = ("png", "jpeg", "webp")
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
"""File extension of each output format (`white-bg.jpg`)."""

QUALITY_MIN, QUALITY_MAX, DEFAULT_QUALITY = 1, 100, 92
"""`outputQuality` of the lossy formats."""

SHADOWS = ("none", "soft")
DEFAULT_BACKGROUND = "#FFFFFF"
COLOR_PATTERN = re.compile(r"^#[0-9A-Fa-f]{6}$")

MAX_BYTES_MIN, MAX_BYTES_MAX = 10_000, 50_000_000
"""Allowed `maxBytes`: below 10 kB no full-size JPEG fits; above 50 MB it bounds nothing."""

OUTPUT_KEYS = (
    "preset",
    "outputSize",
    "fill",
    "format",
    "outputQuality",
    "backgroundColor",
    "shadow",
    "maxBytes",
)
"""The params this module owns; a task with none of them gets today's outputs."""


@dataclass(frozen=True)
class Preset:
    """A marketplace's main-image rule and the params that satisfy it."""

    rule: str
    params: Mapping[str, Any]


PRESETS: dict[str, Preset] = {
    "amazon": Preset(
        "Amazon main image: pure white background (RGB 255), product fills at least 85 % of the frame, "
        "at least 1000 px on the longer side for zoom (1600+ recommended)",
        {"outputSize": 2000, "format": "jpeg", "fill": 0.88, "backgroundColor": "#FFFFFF", "shadow": "none"},
    ),
    "taobao": Preset(
        "Taobao main image: 800×800, at most 3 MB",
        {"outputSize": 800, "format": "jpeg", "maxBytes": 3 * 1024 * 1024},
    ),
    "jd": Preset("JD main image: 800×800", {"outputSize": 800, "format": "jpeg"}),
    "shopify": Preset(
        "Shopify recommends 2048×2048 square product images", {"outputSize": 2048, "format": "jpeg"}
    ),
    "ebay": Preset(
        "eBay: at least 500 px on the longer side, 1600 px recommended",
        {"outputSize": 1600, "format": "jpeg"},
    ),
}
"""Each preset sets defaults for the params it names; params the client sends override them."""


_SIDE = "0*(?:25[6-9]|2[6-9][0-9]|[3-9][0-9]{2}|[1-3][0-9]{3}|40[0-8][0-9]|409[0-6])"
SIZE_PATTERN = f"^{_SIDE}([xX]{_SIDE})?$"
"""The string form of `outputSize` (`"1000"` or `"1000x1250"`, each side in range), as documented."""


def parse_size(value: Any) -> tuple[int, int]:
    """`1000`, `"1000"` or `"1000x1250"` as (width, height); ValueError names the rule."""
    if isinstance(value, bool):
        raise ValueError(_SIZE_RULE)
    if isinstance(value, int):
        width = height = value
    elif isinstance(value, str) and re.fullmatch(SIZE_PATTERN, value):
        parts = value.lower().split("x")
        width, height = int(parts[0]), int(parts[-1])
    else:
        raise ValueError(_SIZE_RULE)
    if not (SIDE_MIN <= width <= SIDE_MAX and SIDE_MIN <= height <= SIDE_MAX):
        raise ValueError(_SIZE_RULE)
    return width, height


_SIZE_RULE = (
    f'outputSize must be a side in pixels (e.g. 1000) or "WIDTHxHEIGHT" (e.g. "1000x1250"), '
    f"each side from {SIDE_MIN} to {SIDE_MAX}"
)


class OutputSize(fields.Field):
    """A square side (int) or `"WxH"`; kept as the client wrote it, checked by `parse_size`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            parse_size(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return value


def _range(name: str, low: float, high: float) -> validate.Range:
    return validate.Range(min=low, max=high, error=f"{name} must be from {low} to {high}")


def _one_of(name: str, choices: tuple[str, ...]) -> validate.OneOf:
    return validate.OneOf(choices, error=f"{name} must be one of: {', '.join(choices)}")


class OutputParams(Schema):
    """basic_clean's output params, all optional; no defaults are written into the task's params."""

    preset = fields.String(
        validate=_one_of("preset", tuple(PRESETS)),
        metadata={"description": "; ".join(f"`{name}`: {p.rule}" for name, p in PRESETS.items())},
    )
    outputSize = OutputSize(
        metadata={
            "oneOf": [
                {"type": "integer", "minimum": SIDE_MIN, "maximum": SIDE_MAX},
                {"type": "string", "pattern": SIZE_PATTERN},
            ],
            "description": f"the canvas: a square side or WIDTHxHEIGHT, {SIDE_MIN}-{SIDE_MAX} px per side",
        }
    )
    fill = fields.Float(
        validate=_range("fill", FILL_MIN, FILL_MAX),
        error_messages={"invalid": f"fill must be a number from {FILL_MIN} to {FILL_MAX}"},
    )
    format = fields.String(validate=_one_of("format", FORMATS))
    outputQuality = fields.Integer(
        strict=True,
        validate=_range("outputQuality", QUALITY_MIN, QUALITY_MAX),
        error_messages={"invalid": f"outputQuality must be an integer from {QUALITY_MIN} to {QUALITY_MAX}"},
    )
    backgroundColor = fields.String(
        validate=validate.Regexp(COLOR_PATTERN, error='backgroundColor must be "#RRGGBB", e.g. "#FFFFFF"')
    )
    shadow = fields.String(validate=_one_of("shadow", SHADOWS))
    maxBytes = fields.Integer(
        strict=True,
        validate=_range("maxBytes", MAX_BYTES_MIN, MAX_BYTES_MAX),
        error_messages={"invalid": f"maxBytes must be an integer from {MAX_BYTES_MIN} to {MAX_BYTES_MAX}"},
    )


@dataclass(frozen=True)
class OutputSpec:
    """What a task's images look like, resolved from its params (preset first, then overrides)."""

    size: tuple[int, int] | None = None
    """Canvas (width, height); None: a square of the input's longer side."""
    fill: float = DEFAULT_FILL
    format: str = "png"
    quality: int = DEFAULT_QUALITY
    background: tuple[int, int, int] = (255, 255, 255)
    shadow: str = "none"
    max_bytes: int | None = None
    preset: str | None = None


def file_name(stem: str, spec: OutputSpec, *, transparent: bool = False) -> str:
    """`white-bg.jpg` …: transparent images stay PNG unless WebP (lossless) is asked."""
    fmt = spec.format if not transparent or spec.format == "webp" else "png"
    return f"{stem}.{EXTENSIONS[fmt]}"


TRANSPARENT_STEMS = ("matting",)
"""Outputs that keep their transparency (never JPEG)."""


def output_names(names: tuple[str, ...], params: Mapping[str, Any]) -> tuple[str, ...]:
    """A template's output names (`white-bg.png` …) as the task's params name them."""
    spec = resolve(params)
    if spec is None:
        return names
    stems = [name.rsplit(".", 1)[0] for name in names]
    return tuple(file_name(stem, spec, transparent=stem in TRANSPARENT_STEMS) for stem in stems)


def resolve(params: Mapping[str, Any]) -> OutputSpec | None:
    """The spec a task's (already validated) params ask for; None when they name none of them."""
    if not any(key in params for key in OUTPUT_KEYS):
        return None
    preset = params.get("preset")
    merged = {
        **(PRESETS[preset].params if preset else {}),
        **{k: params[k] for k in OUTPUT_KEYS if k in params},
    }
    color = merged.get("backgroundColor", DEFAULT_BACKGROUND)
    return OutputSpec(
        size=parse_size(merged["outputSize"]) if "outputSize" in merged else None,
        fill=float(merged.get("fill", DEFAULT_FILL)),
        format=merged.get("format", "png"),
        quality=int(merged.get("outputQuality", DEFAULT_QUALITY)),
        background=(int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)),
        shadow=merged.get("shadow", "none"),
        max_bytes=merged.get("maxBytes"),
        preset=preset,
    )
