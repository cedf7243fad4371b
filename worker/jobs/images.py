"""basic_clean: cut-out, white background and enhancement of the input photo."""

from __future__ import annotations

from shared import results
from shared.app import settings, storage
from shared.output_params import resolve
from shared.result_files import ResultFile

from ..inputs import load_input_image
from ..outputs import OutputTooLarge, describe
from ..pipeline import STAGES, run_basic_clean
from ..resources import hd_session, matting_session
from ..runner import Progress, TaskRejected, TaskSnapshot, run_task

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def process_basic_clean(task_id: str) -> str:
    return run_task(task_id, basic_clean)


def basic_clean(task: TaskSnapshot, progress: Progress) -> list[ResultFile]:
    """Decode → matting → white background → enhancement; store each output under the task.

    An output that cannot fit the task's `maxBytes` fails the task (and refunds it).
    """
    image = load_input_image(task.input_image_url)
    progress(STAGES["decoded"])
    spec = resolve(task.params)
    try:
        outputs = run_basic_clean(
            image,
            task.params.get("template", "all"),
            hd_session() if task.params.get("hd") else matting_session(),
            fill_ratio=settings().WHITE_BG_FILL_RATIO,
            on_stage=lambda _stage, percent: progress(percent),
            output=spec,
        )
    except OutputTooLarge as exc:
        raise TaskRejected(str(exc)) from None
    store = storage()
    stored = []
    for name, data in outputs:
        key = results.result_key(task.id, name)
        info = describe(data)
        store.put(key, data, CONTENT_TYPES[info["format"]])
        upscaled = max(info["width"], info["height"]) > max(image.size)
        stored.append(ResultFile(key, upscaled=spec is not None and upscaled, **info))
    return stored
