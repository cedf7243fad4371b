"""A catalogue as one batch against the same photos as single tasks, and what another user waits.

Usage: python bench/batch.py [--images 100] [--size 1000] [--repeat 2] [--probes 4]

Service: the real web process (`python -m api.serve`, as the Procfile) and the real worker
(`python worker.py`, default arrangement), the shipped basic_clean (template=all), model preloaded,
scratch PostgreSQL database and Redis db 9. A seller uploads N distinct synthetic 1000×1000
product photos (JPEG q90) once; after warm-up tasks, rounds alternate (singles, batch, singles,
batch, ...):

- singles: the N photos as N single tasks created back to back (the per-user active-task cap is
  off for this, as in the other benches);
- batch: the N photos as one `POST /api/batches`.

Images per minute = N / (first request sent → last task's completedAt) × 60. While each round
runs, another member creates a single task every few seconds (`--probes` of them): its time to
`processing` (startedAt − createdAt, server clocks) is what a second seller waits behind the first
one's catalogue. Targets: batch throughput no slower than singles (ratio ≥ 1.0, medians of the
rounds), and the other user's wait under the batch below 10 s (worst probe).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, free_port, record, scratch_env, start, stop, wait_http
from bench.service_throughput import (
    Client,
    cpu_model,
    create_member,
    jpeg,
    parse_ts,
    product_photo,
    wait_worker_ready,
)

DB_NAME = "shopimage_bench_batch"
WORKER_LOG = "bench-batch-worker.log"
SELLER, OTHER = "catalogue@example.com", "other@example.com"
WAIT_TARGET_SECONDS = 10.0
PARAMS = {"template": "all"}


def login(base: str, email: str) -> Client:
    client = Client(base)
    client.login(email)
    return client


def single(client: Client, url: str) -> str:
    body = {"type": "basic_clean", "inputImageUrl": url, "params": PARAMS}
    return client.call("POST", "/api/task/create", 201, json=body)["taskId"]


class Probes:
    """Another user's single tasks, one every `every` seconds while a round runs."""

    def __init__(self, client: Client, url: str, count: int, every: float) -> None:
        self.client, self.url, self.count, self.every = client, url, count, every
        self.ids: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        for _ in range(self.count):
            time.sleep(self.every)
            self.ids.append(single(self.client, self.url))

    def waits(self, timeout: float = 120) -> list[float]:
        """Seconds each probe waited from created to processing (after all have started)."""
        self.thread.join()
        waits = []
        for task_id in self.ids:
            task = self.client.wait_one(task_id, timeout)
            waits.append(parse_ts(task["startedAt"]) - parse_ts(task["createdAt"]))
        return waits


def wait_all(client: Client, ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    for task_id in ids:
        client.wait_one(task_id, max(1.0, deadline - time.monotonic()))
    return [client.task(task_id) for task_id in ids]


def run_round(kind: str, seller: Client, other: Client, urls: list[str], probe_url: str, args) -> dict:
    n = len(urls)
    probes = Probes(other, probe_url, args.probes, args.probe_every)
    probes.start()
    sent = time.time()
    if kind == "singles":
        ids = [single(seller, url) for url in urls]
    else:
        body = {
            "type": "basic_clean",
            "params": PARAMS,
            "items": [{"inputImageUrl": url, "ref": f"sku-{i:03d}"} for i, url in enumerate(urls)],
        }
        batch_id = seller.call("POST", "/api/batches", 201, json=body)["id"]
        ids = [t["id"] for t in seller.call("GET", f"/api/batches/{batch_id}")["tasks"]]
    tasks = wait_all(seller, ids, 60 + 10 * n)
    failed = [t for t in tasks if t["status"] != "success"]
    if failed:
        raise RuntimeError(f"{len(failed)} {kind} task(s) failed: {failed[0].get('errorMessage')}")
    last = max(parse_ts(t["completedAt"]) for t in tasks)
    waits = probes.waits()
    return {"kind": kind, "per_minute": n / (last - sent) * 60, "seconds": last - sent, "waits": waits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each kind, alternating")
    parser.add_argument("--probes", type=int, default=4, help="the other user's tasks per round")
    parser.add_argument("--probe-every", type=float, default=6.0, help="seconds between probes")
    args = parser.parse_args()

    photos = [jpeg(product_photo(args.size, seed)) for seed in range(args.images)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    shutil.rmtree(ROOT / "var" / f"{DB_NAME}-storage", ignore_errors=True)
    env = scratch_env(DB_NAME, PORT=str(port), HOST="127.0.0.1", PUBLIC_BASE_URL=base, JOB_OVERRIDES="",
                      WORKER_PRELOAD="1", MAX_BATCH_ITEMS=str(max(100, args.images)))  # fmt: skip
    for name in ("WORKER_PROCESSES", "INFERENCE_THREADS", "WORKER_QUEUES"):
        env.pop(name, None)  # the default worker arrangement
    create_member(env, SELLER, 2 * args.repeat * args.images + 10)
    create_member(env, OTHER, 2 * args.repeat * args.probes + 5)
    web = start([sys.executable, "-m", "api.serve"], env, "bench-batch-web.log")
    worker = start([sys.executable, "worker.py"], {**env, "LOG_LEVEL": "INFO"}, WORKER_LOG)
    rounds = []
    try:
        wait_http(base + "/readyz", 60)
        seller, other = login(base, SELLER), login(base, OTHER)
        urls = [
            seller.call("POST", "/api/uploads", 201, files={"file": (f"p{i}.jpg", d, "image/jpeg")})["url"]
            for i, d in enumerate(photos)
        ]
        probe_url = other.call(
            "POST", "/api/uploads", 201, files={"file": ("probe.jpg", photos[0], "image/jpeg")}
        )["url"]
        processes, _ = wait_worker_ready(ROOT / "var" / WORKER_LOG, 180)
        wait_all(seller, [single(seller, urls[0]) for _ in range(2 * processes)], 180)  # warm-up
        for repeat in range(args.repeat):
            for kind in ("singles", "batch") if repeat % 2 == 0 else ("batch", "singles"):
                rounds.append(run_round(kind, seller, other, urls, probe_url, args))
                print(
                    f"  {kind:8s} {rounds[-1]['per_minute']:6.1f} images/min  "
                    f"other user's waits {', '.join(f'{w:.1f}' for w in rounds[-1]['waits'])} s",
                    flush=True,
                )
    finally:
        stop(worker)
        stop(web)
    report(args, processes, rounds)


def report(args, processes: int, rounds: list[dict]) -> None:
    def of(kind: str, key: str) -> list:
        return [r[key] for r in rounds if r["kind"] == kind]

    singles, batch = (
        statistics.median(of("singles", "per_minute")),
        statistics.median(of("batch", "per_minute")),
    )
    batch_waits = [w for ws in of("batch", "waits") for w in ws]
    single_waits = [w for ws in of("singles", "waits") for w in ws]
    ratio = batch / singles
    worst = max(batch_waits) if batch_waits else float("nan")
    load = os.getloadavg()
    print(
        f"\nbatch bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.python_version()}; {processes} worker process(es); load {load[0]:.1f} {load[1]:.1f}"
    )
    print(
        f"{args.images} photos {args.size}×{args.size}, basic_clean template=all, {args.repeat} round(s) each"
    )
    print(
        f"  singles  median {singles:6.1f} images/min   ({', '.join(f'{v:.1f}' for v in of('singles', 'per_minute'))})"
    )
    print(
        f"  batch    median {batch:6.1f} images/min   ({', '.join(f'{v:.1f}' for v in of('batch', 'per_minute'))})"
    )
    print(f"  batch / singles {ratio:.3f}  (target ≥ 1.0: {'met' if ratio >= 1.0 else 'NOT met'})")
    print(
        f"  another user's single task, time to processing: under the batch median "
        f"{statistics.median(batch_waits):.2f} s, worst {worst:.2f} s (target < {WAIT_TARGET_SECONDS:.0f} s: "
        f"{'met' if worst < WAIT_TARGET_SECONDS else 'NOT met'}); behind the same photos as single tasks "
        f"median {statistics.median(single_waits):.1f} s, worst {max(single_waits):.1f} s"
    )
    record(
        "batch",
        [
            ("batch images/min (median)", f"{batch:.1f}", "", ""),
            ("singles images/min (median)", f"{singles:.1f}", "", ""),
            ("batch / singles", f"{ratio:.3f}", "≥ 1.0", "met" if ratio >= 1.0 else "not met"),
            ("other user's wait under a batch (worst)", f"{worst:.2f} s", f"< {WAIT_TARGET_SECONDS:.0f} s",
             "met" if worst < WAIT_TARGET_SECONDS else "not met"),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
