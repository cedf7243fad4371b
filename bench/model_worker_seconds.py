"""Worker time one model_pose12 task consumes, however long RunningHub renders.

Usage: python bench/model_worker_seconds.py [--tasks 5] [--render-seconds 20]
Runs the real worker against the RunningHub stand-in (real HTTP), then sums, per task, the
execution time of every rq job that worked on it (submit, polls, collect) from rq's own
job records, and prints the median next to the render time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import REDIS, ROOT, in_process_api, record, scratch_env, start, stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--render-seconds", type=float, default=20)
    args = parser.parse_args()
    (ROOT / "var").mkdir(exist_ok=True)
    from tests.standin_fixtures import STANDIN_API_KEY, start_standin

    workflows = str(ROOT / "config" / "runninghub-workflows.example.json")
    standin = start_standin(ROOT / "var", render_seconds=args.render_seconds, workflows=workflows)
    env = scratch_env(
        "shopimage_bench_model",
        RUNNINGHUB_BASE_URL=standin.base_url,
        RUNNINGHUB_API_KEY=STANDIN_API_KEY,
        RUNNINGHUB_WORKFLOWS_FILE=workflows,
        RUNNINGHUB_WEBHOOK_SECRET="bench-secret",
        RUNNINGHUB_POLL_SECONDS="5",
        RUNNINGHUB_MAX_CONCURRENCY=str(args.tasks),
        WORKER_PRELOAD="0",
    )
    client, headers = in_process_api(env, "model-bench@example.com", args.tasks)
    from redis import Redis
    from rq.job import Job

    from shared.db import db
    from shared.models import Task

    worker = start([sys.executable, "worker.py"], env, "bench-model-worker.log")
    try:
        import io

        from PIL import Image

        photo = io.BytesIO()
        Image.new("RGB", (600, 800), (200, 60, 60)).save(photo, "JPEG")
        upload = client.post(
            "/api/uploads", data={"file": (io.BytesIO(photo.getvalue()), "p.jpg")}, headers=headers
        )
        url = upload.get_json()["data"]["url"]
        ids = [
            client.post(
                "/api/task/create", json={"type": "model_pose12", "inputImageUrl": url}, headers=headers
            ).get_json()["data"]["taskId"]
            for _ in range(args.tasks)
        ]
        started = time.time()
        while True:
            db.session.expire_all()
            states = [db.session.get(Task, t).status for t in ids]
            if all(s in ("success", "failed") for s in states):
                break
            time.sleep(0.5)
        wall = time.time() - started
    finally:
        stop(worker)
        standin.stop()
    redis = Redis.from_url(REDIS)
    per_task = []
    for task_id in ids:
        seconds = 0.0
        for key in redis.scan_iter(f"rq:job:{task_id}*"):
            job_id = key.decode().split(":", 2)[2]
            if ":" in job_id:
                continue
            job = Job.fetch(job_id, connection=redis)
            if job.started_at and job.ended_at:
                seconds += (job.ended_at - job.started_at).total_seconds()
        per_task.append(seconds)
    print(f"model_pose12 tasks: {len(ids)}  statuses: {sorted(set(states))}")
    print(f"render time on the stand-in: {args.render_seconds:.0f} s; wall time for all: {wall:.1f} s")
    print(
        f"worker time per task: median {statistics.median(per_task):.3f} s  "
        f"max {max(per_task):.3f} s  (target < 2 s)"
    )
    record(
        "model_worker_seconds",
        [
            (
                f"model_pose12 worker time per task ({len(per_task)} tasks, {args.render_seconds:.0f} s render)",
                f"median {statistics.median(per_task):.3f} s, max {max(per_task):.3f} s",
                "< 2 s",
                "pass" if max(per_task) < 2 else "FAIL",
            )
        ],
    )


if __name__ == "__main__":
    main()
