"""`make run` on a fresh machine: how long after /healthz answers is the first 2000 px basic_clean done?

    .venv/bin/python bench/first_task.py [--side 2000]

Starts `scripts/run_local.py` (what `make run` runs: migrations, demo member, honcho with web +
worker) on a scratch SQLite file, a free port and the benches' Redis (BENCH_REDIS_URL, else db 9 of
the local server), with NUMBA_CACHE_DIR pointing at an empty directory as on a fresh machine.
As soon as /healthz answers, the demo member uploads one photo and creates a basic_clean task;
the figure is /healthz → task completedAt, beside its target, plus what the task detail said
while it waited (workersStarting).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.harness import REDIS, ROOT, free_port, record
from bench.service_throughput import Client, jpeg, product_photo

TARGET_S = 20.0
PASSWORD = "first-task-pass-1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--side", type=int, default=2000)
    args = parser.parse_args(argv)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "PORT": str(port),
            "PUBLIC_BASE_URL": base,
            "DATABASE_URL": f"sqlite:///{scratch}/first-task.db",
            "REDIS_URL": REDIS,
            "STORAGE_LOCAL_ROOT": f"{scratch}/storage",
            "RUNNINGHUB_API_KEY": "unused-by-basic-clean",
            "DEMO_PASSWORD": PASSWORD,
            "NUMBA_CACHE_DIR": f"{scratch}/numba-cache",
        }
        os.mkdir(env["NUMBA_CACHE_DIR"])
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        log = open(Path(scratch) / "run.log", "wb")  # noqa: SIM115 - closed below
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "scripts/run_local.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            healthz_at = wait_healthz(base, 180)
            healthz = healthz_at - started
            client = Client(base)
            token = client.call(
                "POST", "/api/auth/login", json={"email": "demo@example.com", "password": PASSWORD}
            )
            client.http.headers["Authorization"] = "Bearer " + token["accessToken"]
            task_id = client.create(client.upload(jpeg(product_photo(args.side, 0)), "first.jpg"))
            notes = set()
            while (task := client.task(task_id))["status"] not in ("success", "failed"):
                if task["status"] == "pending":
                    notes.add(task.get("workersStarting"))
                time.sleep(0.1)
            done = time.monotonic() - healthz_at
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
            log.close()
        print(f"make run, empty numba cache: /healthz answered {healthz:.1f} s after start")
        print(f"first basic_clean {args.side}px: {task['status']}, done {done:.1f} s after /healthz answered "
              f"(upload + create right after it) — target <= {TARGET_S:.0f} s: "
              f"{'pass' if done <= TARGET_S else 'FAIL'}")  # fmt: skip
        print(f"workersStarting seen while it waited: {sorted(notes, key=str)}")
        record("first_task", [(f"make run: first basic_clean {args.side}px after /healthz", f"{done:.1f} s",
                               f"<= {TARGET_S:.0f} s", "pass" if done <= TARGET_S else "FAIL")])  # fmt: skip


def wait_healthz(base: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"/healthz did not answer within {timeout:.0f} s")


if __name__ == "__main__":
    main()
