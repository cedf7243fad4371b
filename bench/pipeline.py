"""Benchmark of the basic_clean pipeline against a plain rembg.remove call.

    .venv/bin/python -m bench.pipeline              # full run (about 6 minutes on 2 cores)
    .venv/bin/python -m bench.pipeline --quick      # a shorter run for a smoke check

Prints one table: pipeline vs rembg medians and their ratio, mask IoU vs rembg, worker
start-to-ready with an empty numba cache, and the worker arrangement (session per job vs once,
1 process × 2 threads vs 2 processes × 1 thread).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from bench.harness import record
from tests.worker.conftest import jpeg_bytes, product_photo
from worker.imaging import decode_image
from worker.matting import load_rembg_session, load_session
from worker.pipeline import run_basic_clean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.environ.get("MODEL_DIR", os.path.join(ROOT, "models"))
MAX_PIXELS = 40_000_000
MIN_SIDE = 64


def photo_bytes(side: int, seed: int = 0) -> bytes:
    """A side×side product photo as a seller's JPEG upload."""
    return jpeg_bytes(product_photo((side, side), seed=seed), quality=90)


def clean_bytes(data: bytes, session, out_dir: str | None = None) -> list[tuple[str, bytes]]:
    """decode → basic_clean(all) → PNG bytes; optionally written to out_dir (stands for storage)."""
    image = decode_image(data, max_pixels=MAX_PIXELS, min_side=MIN_SIDE)
    results = run_basic_clean(image, "all", session)
    if out_dir is not None:
        for name, png in results:
            with open(os.path.join(out_dir, name), "wb") as fh:
                fh.write(png)
    return results


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def mask_iou(ours_png: bytes, reference: Image.Image) -> float:
    import io

    ours = np.asarray(Image.open(io.BytesIO(ours_png)))[..., 3] >= 128
    ref = np.asarray(reference.convert("L")) >= 128
    return float((ours & ref).sum() / max((ours | ref).sum(), 1))


def compare(side: int, session, reference, runs: int) -> dict[str, float]:
    """Pipeline vs one warm rembg.remove (on rembg's own session), interleaved run by run."""
    import rembg

    data = photo_bytes(side)
    image = decode_image(data, max_pixels=MAX_PIXELS, min_side=MIN_SIDE)
    with tempfile.TemporaryDirectory() as out_dir:
        for _ in range(2):  # warm-up
            clean_bytes(data, session, out_dir)
            rembg.remove(image, session=reference)
        ours, stored, theirs = [], [], []
        for _ in range(runs):
            ours.append(median_ms(lambda: clean_bytes(data, session), 1))
            stored.append(median_ms(lambda: clean_bytes(data, session, out_dir), 1))
            theirs.append(median_ms(lambda: rembg.remove(image, session=reference), 1))
    matting_png = clean_bytes(data, session)[0][1]
    iou = mask_iou(matting_png, rembg.remove(image, session=reference, only_mask=True))
    ours_ms, stored_ms, rembg_ms = (statistics.median(v) for v in (ours, stored, theirs))
    return {
        "ours": ours_ms,
        "stored": stored_ms,
        "rembg": rembg_ms,
        "ratio": ours_ms / rembg_ms,
        "ratio_stored": stored_ms / rembg_ms,
        "iou": iou,
    }


READY_TARGET_S = 3.0


def start_to_ready(threads: int) -> float:
    """Wall time of a fresh interpreter importing a worker's modules and loading the session,
    with numba's cache pointing at an empty directory (a fresh machine)."""
    code = (
        "import worker.process, worker.jobs.images; from worker.matting import load_session; "
        f"load_session({MODEL_DIR!r}, {threads})"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
        return time.perf_counter() - start


def _throughput_child(threads: int, jobs: int, barrier, results) -> None:
    session = load_session(MODEL_DIR, threads)
    data = photo_bytes(1000)
    clean_bytes(data, session)  # warm-up
    barrier.wait()
    start = time.time()
    for _ in range(jobs):
        clean_bytes(data, session)
    results.put((start, time.time(), jobs))


def throughput(processes: int, threads: int, jobs_per_process: int) -> float:
    """Images/min for ``processes`` spawned workers (never forked: onnxruntime is not fork-safe)."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_throughput_child, args=(threads, jobs_per_process, barrier, results))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    spans = [results.get() for _ in workers]
    for w in workers:
        w.join()
    start, end = min(s[0] for s in spans), max(s[1] for s in spans)
    return sum(s[2] for s in spans) / (end - start) * 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs, short arrangement")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per size (default 7, quick 3)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of the bench session")
    parser.add_argument("--skip-arrangement", action="store_true", help="skip the process/thread comparison")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    jobs = 10 if args.quick else 40

    print(f"basic_clean bench — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores, runs={runs}")
    session = load_session(MODEL_DIR, args.threads)
    reference = load_rembg_session(MODEL_DIR, args.threads)
    rows = [(side, compare(side, session, reference, runs)) for side in (2000, 1000)]
    ready = start_to_ready(args.threads)
    load_ms = median_ms(lambda: load_session(MODEL_DIR, args.threads), 5)

    line = "-" * 86
    print(line)
    print(
        f"{'input':<11}{'pipeline':>10}{'+ write':>10}{'rembg.remove':>14}{'ratio':>8}{'ratio+write':>13}{'IoU':>8}"
    )
    for side, r in rows:
        print(
            f"{side}×{side:<6}{r['ours']:>8.0f}ms{r['stored']:>8.0f}ms{r['rembg']:>12.0f}ms"
            f"{r['ratio']:>8.3f}{r['ratio_stored']:>13.3f}{r['iou']:>8.4f}"
        )
    print(line)
    print(
        f"worker start-to-ready (fresh process, empty numba cache: imports + load_session): {ready:.2f} s "
        f"(target <= {READY_TARGET_S:.0f} s)"
    )
    print(f"load_session alone (per-job session cost): {load_ms:.0f} ms")
    if not args.skip_arrangement:
        one = throughput(1, 2, jobs)
        two = throughput(2, 1, jobs // 2)
        print(f"1 process × 2 threads: {one:.0f} images/min (1000×1000, {jobs} jobs)")
        print(f"2 processes × 1 thread: {two:.0f} images/min (1000×1000, {jobs // 2} jobs each)")
    print("memory per worker and speed vs today's worker: run bench/worker_memory.py")
    print("service end-to-end throughput: run bench/service_throughput.py")
    print(line)
    figures = []
    for side, r in rows:
        ok = r["ratio"] <= 1.2
        figures.append((f"basic_clean(all) / rembg.remove, {side}x{side}", f"{r['ratio']:.3f}", "<= 1.2",
                        "pass" if ok else "FAIL"))  # fmt: skip
        figures.append((f"IoU vs rembg's u2netp mask, {side}x{side}", f"{r['iou']:.4f}", ">= 0.98",
                        "pass" if r["iou"] >= 0.98 else "FAIL"))  # fmt: skip
    figures.append(("worker start to ready, empty numba cache", f"{ready:.2f} s", f"<= {READY_TARGET_S:.0f} s",
                    "pass" if ready <= READY_TARGET_S else "FAIL"))  # fmt: skip
    record("pipeline", figures)


if __name__ == "__main__":
    main()
