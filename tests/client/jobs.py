"""A stub job for the CLI tests (pointed at through JOB_OVERRIDES): stores real result files fast.

It decodes the input as the pipeline does (a photo under IMAGE_MIN_SIDE fails the task with the
pipeline's own message) and stores it as `white-bg.png`, without the model, so the batch's zip
has real entries to download.
"""

from __future__ import annotations

import io

from shared import results
from shared.app import storage
from shared.result_files import ResultFile
from worker.inputs import load_input_image
from worker.outputs import describe
from worker.runner import TaskSnapshot, run_task

OUTPUT = "white-bg.png"


def _store_input(task: TaskSnapshot, progress) -> list[ResultFile]:
    image = load_input_image(task.input_image_url)
    progress(50)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    data = buffer.getvalue()
    key = results.result_key(task.id, OUTPUT)
    storage().put(key, data, "image/png")
    return [ResultFile(key, **describe(data))]


def store_input(task_id: str) -> str:
    return run_task(task_id, _store_input)
