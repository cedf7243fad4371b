"""Stub job bodies for lifecycle tests (pointed at through JOB_OVERRIDES, never shipped).

They run through the shipped job frame (`worker.runner.run_task`); only the work is stubbed.
The task's input URL drives them: `?sleep=S` pauses, `?reject=msg` rejects the input,
`?raise=1` raises (rq retries, then the failure callback fails the task).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

from worker.runner import TaskRejected, TaskSnapshot, run_task


def _body(task: TaskSnapshot, progress) -> list[str]:
    query = {k: v[0] for k, v in parse_qs(urlparse(task.input_image_url).query).items()}
    progress(20)
    time.sleep(float(query.get("sleep", "0")))
    if "reject" in query:
        raise TaskRejected(query["reject"])
    if "raise" in query:
        raise RuntimeError("stub job crashed")
    progress(80)
    return [f"https://results.example.com/{task.id}/out.png"]


def succeed_after_pause(task_id: str) -> str:
    return run_task(task_id, _body)
