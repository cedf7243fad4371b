"""A large anonymous JSON body against the real web server: time to answer and the web processes' memory.

Usage: python bench/body_limit.py [--mb 5] [--count 5]
Starts `python -m api.serve` (the Procfile's web line, two worker processes) twice, side by side
on one database: as configured (MAX_JSON_BYTES, 64 KB) and as before the limit (MAX_JSON_BYTES
raised to MAX_CONTENT_LENGTH, so the body is parsed and walked). Each gets `--count` anonymous
POST /api/task/create requests carrying `--mb` MB of tiny JSON objects; the script prints the
median answer time, the statuses, and the RSS and peak RSS (VmHWM) of the server's processes
before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, free_port, memory_mb, record, scratch_env, start, stop, wait_http


def group_memory_mb(pgid: int) -> tuple[float, float]:
    """Summed RSS and peak RSS (MB) of every process in the server's process group."""
    pids = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    rss = peak = 0.0
    for pid in pids:
        try:
            one_rss, one_peak = memory_mb(pid)
        except OSError:  # ended since pgrep listed it
            continue
        rss, peak = rss + one_rss, peak + one_peak
    return rss, peak


def run(label: str, env: dict[str, str], body: bytes, count: int) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(
        [sys.executable, "-m", "api.serve"],
        {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2", "PUBLIC_BASE_URL": url},
        f"bench-body-limit-{label}.log",
    )
    try:
        wait_http(f"{url}/healthz", 60)
        for _ in range(4):  # warm both workers (imports, first connections)
            requests.get(f"{url}/api/task/list", headers={"Connection": "close"}, timeout=10)
        before = group_memory_mb(proc.pid)
        times, statuses = [], []
        for _ in range(count):
            started = time.perf_counter()
            answer = requests.post(
                f"{url}/api/task/create",
                data=body,
                headers={"Content-Type": "application/json", "Connection": "close"},
                timeout=120,
            )
            times.append(time.perf_counter() - started)
            statuses.append(answer.status_code)
        after = group_memory_mb(proc.pid)
    finally:
        stop(proc)
    return {"label": label, "times": times, "statuses": statuses, "before": before, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=5)
    parser.add_argument("--count", type=int, default=5)
    args = parser.parse_args()
    (ROOT / "var").mkdir(exist_ok=True)
    size = int(args.mb * 1024 * 1024)
    body = b'{"params": [' + b"{}," * (size // 3) + b"{}]}"
    env = scratch_env("shopimage_bench_body_limit", LOG_LEVEL="WARNING")
    unlimited = str(int(env.get("MAX_CONTENT_LENGTH") or 25 * 1024 * 1024))
    results = [
        run("limited", env, body, args.count),
        run("unlimited", {**env, "MAX_JSON_BYTES": unlimited}, body, args.count),
    ]
    print(
        f"anonymous POST /api/task/create, {len(body) / 1e6:.1f} MB of tiny JSON objects, n={args.count} each"
    )
    print("(real server: python -m api.serve, 2 worker processes; RSS summed over the server's processes)")
    for result in results:
        rss0, peak0 = result["before"]
        rss1, peak1 = result["after"]
        print(
            f"  {result['label']:<10} median {statistics.median(result['times']) * 1000:8.1f} ms   "
            f"max {max(result['times']) * 1000:8.1f} ms   statuses {sorted(set(result['statuses']))}   "
            f"RSS {rss0:6.1f} -> {rss1:6.1f} MB   peak RSS {peak0:6.1f} -> {peak1:6.1f} MB"
        )
    limited, unlimited_run = results
    ratio = statistics.median(unlimited_run["times"]) / statistics.median(limited["times"])
    print(f"  answer time, unlimited / limited: {ratio:.0f}x")
    record(
        "body_limit",
        [
            (
                f"{args.mb:g} MB anonymous JSON: median answer",
                f"{statistics.median(limited['times']) * 1000:.0f} ms",
                "well under 1 s",
                "ok" if statistics.median(limited["times"]) < 1 else "slow",
            ),
            (
                "peak RSS growth (web processes)",
                f"{limited['after'][1] - limited['before'][1]:+.1f} MB "
                f"(unlimited: {unlimited_run['after'][1] - unlimited_run['before'][1]:+.1f} MB)",
                "none",
                "",
            ),
        ],
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
