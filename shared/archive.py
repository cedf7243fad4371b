"""Zip archives of stored results, streamed: built while they are sent, never held whole.

Built with the standard library's `zipfile`, writing to a sink that hands each written piece on:
`zipfile` supports unseekable output (it then writes each entry's sizes and CRC after its data),
so no third-party zip streamer is needed, and its ZIP64 and CRC handling is the tested one.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterable, Iterator

from .storage import Storage

CHUNK_BYTES = 256 * 1024
"""Bytes of an entry written (and handed on) at a time."""


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that keeps what was written until it is drained."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pieces.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces.clear()
        return data


def stream_zip(store: Storage, entries: Iterable[tuple[str, str]]) -> Iterator[bytes]:
    """The zip of `entries` (name in the archive, storage key), as chunks to send as they come.

    Objects are read one at a time, when their turn comes: memory holds one object and one chunk,
    whatever the number of entries. PNGs and JPEGs are compressed already, so entries are stored,
    not deflated. A storage error after the first chunk ends the stream early (the client sees
    a truncated download), since the status line has gone by then.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, key in entries:
            data = store.get(key)
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            with archive.open(info, "w", force_zip64=len(data) > zipfile.ZIP64_LIMIT) as entry:
                for start in range(0, len(data), CHUNK_BYTES):
                    entry.write(data[start : start + CHUNK_BYTES])
                    yield sink.drain()
            del data
            yield sink.drain()
    yield sink.drain()


def result_entries(keys: Iterable[str]) -> list[tuple[str, str]]:
    """A task's stored results as archive entries, each named by the last part of its key."""
    return [(key.rsplit("/", 1)[-1], key) for key in keys]
