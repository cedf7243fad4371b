"""Zip archives of a task's results."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterable
from typing import IO

from .storage import Storage

SPOOL_BYTES = 16 * 1024 * 1024


def results_zip(storage: Storage, keys: Iterable[str]) -> IO[bytes]:
    """A zip of the objects at `keys`, named by their last path part; spooled to disk when large.

    PNGs are already compressed, so entries are stored, not deflated.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed to send_file
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in keys:
            archive.writestr(key.rsplit("/", 1)[-1], storage.get(key))
    spool.seek(0)
    return spool
