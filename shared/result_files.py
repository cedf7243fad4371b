"""A task's result files as clients see them: name, link, format, pixel size and byte count.

The worker records a `ResultFile` per output it stores; the task document lists them as
`results`, beside `resultUrls`. Tasks whose results were not recorded so (model photos, results
reported through the status endpoint, tasks from before) get entries derived from their
`resultUrls`, with the sizes they cannot know left null.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

FORMATS_BY_EXTENSION = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}


@dataclass(frozen=True)
class ResultFile:
    """One stored output: its storage key (or absolute URL) and what it holds."""

    key: str
    format: str
    width: int
    height: int
    bytes: int
    upscaled: bool = False
    """The canvas's longer side is above the input photo's: its pixels were enlarged (Lanczos)."""

    def record(self) -> dict[str, Any]:
        return asdict(self)


def result_entries(
    keys: list[str], files: list[dict[str, Any]] | None, links: list[str]
) -> list[dict[str, Any]]:
    """`results` for a task: `keys` its stored results, `links` their resolved URLs (same order)."""
    recorded = {entry["key"]: entry for entry in files or ()}
    entries = []
    for key, url in zip(keys, links, strict=True):
        name = key.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        entry = recorded.get(key, {})
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        entries.append(
            {
                "name": name,
                "url": url,
                "format": entry.get("format", FORMATS_BY_EXTENSION.get(extension)),
                "width": entry.get("width"),
                "height": entry.get("height"),
                "bytes": entry.get("bytes"),
                "upscaled": entry.get("upscaled", False),
            }
        )
    return entries
