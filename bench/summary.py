"""One table of the headline figures the benches of this run left in var/bench-results/.

Usage: python bench/summary.py   (the last step of `make bench`, which clears the folder first)
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import RESULTS

ORDER = (
    "api_load",
    "lifecycle_latency",
    "pipeline",
    "worker_memory",
    "first_task",
    "service_throughput",
    "model_worker_seconds",
)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> int:
    entries = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    if not entries:
        print(f"no bench results in {RESULTS}")
        return 1
    print()
    print(
        f"Bench summary - {len(os.sched_getaffinity(0))} cores, {cpu_model()}, Python {platform.python_version()}"
    )
    print()
    print("| bench | figure | measured | target | result |")
    print("|---|---|---|---|---|")
    names = [n for n in ORDER if n in entries] + sorted(n for n in entries if n not in ORDER)
    for name in names:
        for figure, value, target, result in entries[name]["rows"]:
            print(f"| {name} | {figure} | {value} | {target or '-'} | {result or '-'} |")
    missing = [n for n in ORDER if n not in entries]
    if missing:
        print(f"\n(no results from: {', '.join(missing)})")
    failed = [r for e in entries.values() for r in e["rows"] if r[3] in ("FAIL", "MISSED")]
    print(f"\n{len(failed)} figure(s) below target." if failed else "\nEvery figure with a target met it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
