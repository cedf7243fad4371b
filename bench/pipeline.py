"""Benchmark of the basic_clean pipeline against a plain rembg.remove call.

    .venv/bin/python -m bench.pipeline              # full run (about 6 minutes on 2 cores)
    .venv/bin/python -m bench.pipeline --quick      # a shorter run for a smoke check

Prints one table: pipeline vs rembg medians and their ratio, mask IoU vs rembg, worker
start-to-ready with an empty numba cache, the worker arrangement (session per job vs once,
1 process × 2 threads vs 2 processes × 1 thread), and white_bg with the amazon preset (2000² JPEG)
next to today's PNG, with the soft shadow's cost (`--marketplace-only` runs just those lines).
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

import cv2
import numpy as np
from PIL import Image

from bench.harness import MODEL_DIR, ROOT, iou, record
from shared.output_params import resolve
from tests.worker.conftest import jpeg_bytes, product_photo
from worker import outputs, pipeline
from worker.imaging import decode_image, encode_png
from worker.matting import load_rembg_session, load_session
from worker.pipeline import run_basic_clean

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
    """IoU of a cut-out PNG's alpha with rembg's mask."""
    import io

    return iou(np.asarray(Image.open(io.BytesIO(ours_png)))[..., 3], np.asarray(reference.convert("L")))


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


def marketplace(session, runs: int, side: int = 2000) -> dict[str, float]:
    """white_bg of a side×side photo: today's PNG vs the amazon preset (2000² JPEG), and + soft shadow.

    Whole runs (model included) and the work after the mask alone (placement, compositing,
    encoding: what the output params change), each interleaved run by run so load hits all alike.
    """
    image = decode_image(photo_bytes(side), max_pixels=MAX_PIXELS, min_side=MIN_SIDE)
    rgb = np.asarray(image.convert("RGB"))
    alpha = pipeline.predict_alpha(session, rgb)
    hard = cv2.LUT(alpha, pipeline.HARD_ALPHA_LUT)
    amazon, shadow = resolve({"preset": "amazon"}), resolve({"preset": "amazon", "shadow": "soft"})

    def default_after_mask() -> bytes:  # the steps run_basic_clean takes for white_bg without params
        place = pipeline.placement(hard, 0.85)
        product, product_alpha = pipeline._scaled_product(rgb, hard, place)
        return encode_png(pipeline.on_white(product, product_alpha, place), pipeline.PNG_LEVEL)

    def after_mask(spec) -> Callable[[], object]:
        return lambda: outputs.finish(
            rgb, alpha, ["white-bg"], spec, hard_alpha=hard, cutout=pipeline.cutout,
            enhance=pipeline.enhance, report=lambda _stem: None,
        )  # fmt: skip

    cases = {
        "png": lambda: run_basic_clean(image, "white_bg", session),
        "amazon": lambda: run_basic_clean(image, "white_bg", session, output=amazon),
        "png_after": default_after_mask,
        "amazon_after": after_mask(amazon),
        "shadow_after": after_mask(shadow),
    }
    for fn in cases.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs * 3):
        for name, fn in cases.items():
            if name.endswith("_after") or i < runs:
                times[name].append(median_ms(fn, 1))
    result = {name: statistics.median(values) for name, values in times.items()}
    # The floor any JPEG path stands on: encoding the finished 2000² canvas alone, beside the PNG
    # encode today's default uses, interleaved the same way.
    place = pipeline.placement(hard, 0.85)
    canvas = pipeline.on_white(*pipeline._scaled_product(rgb, hard, place), place)
    encoders = {
        "encode_png": lambda: encode_png(canvas, pipeline.PNG_LEVEL),
        "encode_jpeg444": lambda: outputs._jpeg(canvas, quality=92),
    }
    floor: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(runs * 3):
        for name, fn in encoders.items():
            floor[name].append(median_ms(fn, 1))
    result.update({name: statistics.median(values) for name, values in floor.items()})
    result["bytes_png"] = len(default_after_mask())
    result["bytes_amazon"] = len(after_mask(amazon)()[0][1])
    return result


def print_marketplace(m: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """The marketplace lines of the table, and their figures for the summary."""
    ratio, after_ratio = m["amazon"] / m["png"], m["amazon_after"] / m["png_after"]
    added = m["shadow_after"] - m["amazon_after"]
    print(
        "white_bg, 2000×2000 photo (interleaved medians; 'after the mask' = placement, compositing, encoding):"
    )
    print(
        f"  today's default, PNG {m['bytes_png'] / 1e6:.2f} MB: {m['png']:.0f} ms whole, {m['png_after']:.1f} ms after the mask"
    )
    print(
        f"  amazon preset, 2000² JPEG {m['bytes_amazon'] / 1e3:.0f} kB: {m['amazon']:.0f} ms whole, "
        f"{m['amazon_after']:.1f} ms after the mask; ratio whole {ratio:.2f}, after the mask {after_ratio:.2f}"
    )
    print(f"  + soft shadow: {m['shadow_after']:.1f} ms after the mask, adds {added:+.1f} ms")
    print(
        f"  encoders alone on the finished canvas: PNG (ISA-L, 'up' filter) {m['encode_png']:.1f} ms, "
        f"JPEG q92 4:4:4 (libjpeg-turbo) {m['encode_jpeg444']:.1f} ms: the JPEG encode by itself is "
        f"{m['encode_jpeg444'] / m['png_after']:.2f}x today's whole after-the-mask PNG path"
    )
    return [
        ("white_bg amazon JPEG / default PNG, 2000x2000, whole", f"{ratio:.2f}", "<= 0.5", "pass" if ratio <= 0.5 else "FAIL"),
        ("  same, after the mask only", f"{after_ratio:.2f}", "<= 0.5", "pass" if after_ratio <= 0.5 else "FAIL"),
        ("soft shadow adds (amazon, 2000x2000)", f"{added:+.1f} ms", "", ""),
    ]  # fmt: skip


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
    parser.add_argument("--marketplace-only", action="store_true", help="only the marketplace-output lines")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    if args.marketplace_only:
        print_marketplace(marketplace(load_session(MODEL_DIR, args.threads), runs))
        return
    jobs = 10 if args.quick else 40

    print(f"basic_clean bench — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores, runs={runs}")
    session = load_session(MODEL_DIR, args.threads)
    reference = load_rembg_session(MODEL_DIR, args.threads)
    rows = [(side, compare(side, session, reference, runs)) for side in (2000, 1000)]
    market = marketplace(session, runs)
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
    figures = print_marketplace(market)
    print(line)
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
    # The pipeline runs as a worker process runs it: with the worker's malloc settings.
    from worker.memory import exec_with_allocator_settings

    exec_with_allocator_settings()
    main()
