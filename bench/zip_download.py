"""Zip download: the streamed archive (`shared.archive.stream_zip`) against building it first.

Usage: python bench/zip_download.py [--objects 12] [--mb 3] [--repeat 5]

Both read the same objects from a `LocalStorage` in a scratch folder (random bytes, as large as
a model photo). "built first" is the former download path, kept here as the reference: the whole
archive written to a `SpooledTemporaryFile` (in memory up to 16 MB, then on disk) before its first
byte could be sent. Printed per approach, medians over `--repeat` runs measured alternately in one
process: time to the first byte, time to the last byte, and the peak of Python's traced memory
(`tracemalloc`) while the archive is produced and read in 64 KB pieces, as a server would send it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.archive import result_entries, stream_zip
from shared.storage import LocalStorage, Storage

SPOOL_BYTES = 16 * 1024 * 1024


def built_first(store: Storage, keys: list[str]) -> Iterator[bytes]:
    """The former path: the whole zip into a spooled file, then sent in 64 KB pieces."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed below
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in keys:
            archive.writestr(key.rsplit("/", 1)[-1], store.get(key))
    spool.seek(0)
    with spool:
        while piece := spool.read(64 * 1024):
            yield piece


def streamed(store: Storage, keys: list[str]) -> Iterator[bytes]:
    return stream_zip(store, result_entries(keys))


def measure(produce: Callable[[Storage, list[str]], Iterator[bytes]], store: Storage, keys: list[str]):
    tracemalloc.start()
    started = time.perf_counter()
    first = None
    size = 0
    for piece in produce(store, keys):
        if first is None and piece:
            first = time.perf_counter() - started
        size += len(piece)
    total = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return first, total, peak, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=12)
    parser.add_argument("--mb", type=float, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        store = LocalStorage(root, "http://bench.invalid", "bench-secret")
        keys = []
        for number in range(1, args.objects + 1):
            keys.append(f"tasks/bench/r{number}/pose-{number:02d}.png")
            store.put(keys[-1], os.urandom(int(args.mb * 1024 * 1024)), "image/png")
        runs: dict[str, list[tuple]] = {"built first": [], "streamed": []}
        for _ in range(args.repeat):
            for name, produce in (("built first", built_first), ("streamed", streamed)):
                runs[name].append(measure(produce, store, keys))
    print(f"zip of {args.objects} objects x {args.mb:g} MB, medians of {args.repeat} runs")
    print(f"{'approach':<12} {'first byte ms':>14} {'last byte ms':>13} {'peak traced MB':>15} {'zip MB':>8}")
    for name, samples in runs.items():
        first, total, peak, size = (statistics.median(column) for column in zip(*samples, strict=True))
        print(
            f"{name:<12} {first * 1000:>14.1f} {total * 1000:>13.1f} {peak / 2**20:>15.1f} {size / 2**20:>8.1f}"
        )


if __name__ == "__main__":
    main()
