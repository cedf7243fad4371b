"""basic_clean: cut-out, white background and enhancement of the input photo."""

from __future__ import annotations

from shared.app import settings, storage

from ..inputs import load_input_image
from ..pipeline import STAGES, run_basic_clean
from ..resources import matting_session
from ..runner import Progress, TaskSnapshot, run_task


def process_basic_clean(task_id: str) -> str:
    return run_task(task_id, basic_clean)


def basic_clean(task: TaskSnapshot, progress: Progress) -> list[str]:
    """Decode → matting → white background → enhancement; store each output once under the task."""
    image = load_input_image(task.input_image_url)
    progress(STAGES["decoded"])
    outputs = run_basic_clean(
        image,
        task.params.get("template", "all"),
        matting_session(),
        fill_ratio=settings().WHITE_BG_FILL_RATIO,
        on_stage=lambda _stage, percent: progress(percent),
    )
    store = storage()
    keys = []
    for name, data in outputs:
        key = f"tasks/{task.id}/{name}"
        store.put(key, data, "image/png")
        keys.append(key)
    return keys
