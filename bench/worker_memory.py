"""Where an image worker's memory goes, and its speed, for today's and the lean loading side by side.

    .venv/bin/python -m bench.worker_memory                  # 300 jobs of 2000×2000 per variant
    .venv/bin/python -m bench.worker_memory --jobs 40 --variants rembg,lean,no-arena

Each variant is one fresh spawned process that does what a worker process does (imports the
worker's modules, loads the session, runs basic_clean(all) jobs on 2000×2000 JPEGs) and reports
its RSS after each phase; the variants run their jobs in alternating rounds, so a busy machine
slows them alike and the images/min ratio is fair. Tools: RSS and peak RSS (VmHWM) from /proc,
tracemalloc for the Python-tracked buffers of one job (numpy arrays, PNG bytes), glibc's
mallinfo2 for bytes the allocator holds free (fragmentation), and malloc_trim to show how much
of that it could hand back.

Variants:
- ``rembg``: today's worker (the code path before issue 19): ``import rembg``, rembg's own u2netp
  session with onnxruntime's CPU arena, glibc's default malloc. The reference.
- ``lean``: the worker as shipped: ``worker.matting.load_session`` (arena off) and the worker's
  malloc settings (``worker.memory``: two arenas, transparent huge pages).
- ``lean+ort-arena``: the same with ``INFERENCE_ARENA=1`` (today's speed, ~0.7 GB per process).
- ``lean-no-hugepages``, ``lean+trim``, ``lean-default-malloc``, ``lean+keep-heap``: one malloc
  option changed, to weigh it.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass

import psutil

from bench.harness import MODEL_DIR, iou, memory_mb, record
from worker import matting, memory

MAX_PIXELS = 40_000_000

RSS_TARGET_MB = 350
GROWTH_TARGET_MB = 50
SPEED_TOLERANCE = 0.05
MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                    "keepcost")  # fmt: skip


@dataclass
class Variant:
    name: str
    rembg: bool = False
    arena: bool = False
    trim: bool = False
    env: dict[str, str] | None = None
    """Environment added to the process; None: the worker's own malloc settings (worker.memory)."""


SHIPPED_ENV = memory.allocator_env({}) or {}
VARIANTS = {
    v.name: v
    for v in (
        Variant("rembg", rembg=True, arena=True, trim=False, env={}),
        Variant("lean"),
        Variant("lean+ort-arena", arena=True),
        Variant("lean-no-hugepages", env={"MALLOC_ARENA_MAX": memory.ARENA_MAX}),
        Variant("lean+trim", trim=True),
        Variant("lean-default-malloc", env={}),
        Variant(
            "lean+keep-heap",
            env={
                "MALLOC_ARENA_MAX": memory.ARENA_MAX,
                "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824",
            },
        ),
    )
}


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _malloc_free_mb() -> float:
    """Bytes glibc's malloc holds but has not handed out (all arenas): fragmentation."""
    import ctypes

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    return libc.mallinfo2().fordblks / 2**20


def _load(variant: Variant, threads: int) -> matting.MattingSession:
    """The session a worker of this variant would use."""
    if variant.rembg:
        inner = matting.load_rembg_session(MODEL_DIR, threads).inner_session
        return matting.MattingSession(matting.U2NETP, inner, inner.get_inputs()[0].name)
    return matting.load_session(MODEL_DIR, threads, arena=variant.arena)


def _child(variant: Variant, threads: int, conn) -> None:
    """One worker-like process: report RSS per phase, then run job rounds on request."""
    report = {"start": _rss_mb()}
    import worker.jobs.images  # noqa: F401  (what a worker process imports)
    from worker.imaging import decode_image
    from worker.pipeline import run_basic_clean

    if variant.rembg:
        import rembg  # noqa: F401
    report["imports"] = _rss_mb()
    started = time.perf_counter()
    session = _load(variant, threads)
    report["ready_s"] = time.perf_counter() - started
    report["session"] = _rss_mb()
    conn.send(report)

    def job(data: bytes) -> bytes:
        image = decode_image(data, max_pixels=MAX_PIXELS, min_side=64)
        png = run_basic_clean(image, "all", session)[0][1]
        if variant.trim:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        return png

    while True:
        command, payload = conn.recv()
        if command == "stop":
            return
        if command == "traced":
            import tracemalloc

            tracemalloc.start()
            job(payload[0])
            conn.send(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            continue
        if command == "mask":
            from worker.pipeline import predict_alpha

            image = decode_image(payload[0], max_pixels=MAX_PIXELS, min_side=64)
            conn.send(predict_alpha(session, __import__("numpy").asarray(image)))
            continue
        times = []
        for data in payload:
            t = time.perf_counter()
            job(data)
            times.append(time.perf_counter() - t)
        conn.send({"times": times, "rss": _rss_mb(), "peak": memory_mb()[1], "free": _malloc_free_mb()})


def photos(side: int, count: int) -> list[bytes]:
    from tests.worker.conftest import jpeg_bytes, product_photo

    return [jpeg_bytes(product_photo((side, side), seed=seed), quality=90) for seed in range(count)]


def start_children(variants: list[Variant], threads: int) -> dict[str, tuple]:
    ctx = mp.get_context("spawn")
    children = {}
    for variant in variants:
        parent, child = ctx.Pipe()
        saved = dict(os.environ)
        for key in SHIPPED_ENV:
            os.environ.pop(key, None)
        os.environ.update(SHIPPED_ENV if variant.env is None else variant.env)
        proc = ctx.Process(target=_child, args=(variant, threads, child), name=variant.name)
        proc.start()
        os.environ.clear()
        os.environ.update(saved)
        children[variant.name] = (proc, parent, parent.recv())
    return children


def run_rounds(children: dict[str, tuple], inputs: list[bytes], jobs: int, size: int) -> dict[str, dict]:
    """``jobs`` jobs per child, in alternating rounds of ``size``; RSS figures after each round."""
    after: dict[str, dict] = {name: {"times": []} for name in children}
    done = 0
    while done < jobs:
        batch = [inputs[(done + i) % len(inputs)] for i in range(min(size, jobs - done))]
        for name, (_, conn, _) in children.items():
            conn.send(("run", batch))
            result = conn.recv()
            after[name]["times"] += result["times"]
            after[name].update({k: result[k] for k in ("rss", "peak", "free")})
            after[name].setdefault("first", result["rss"])
            if done + len(batch) <= 10:
                after[name]["at10"] = result["rss"]
        done += len(batch)
    return after


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=300, help="2000×2000 jobs per variant (default 300)")
    parser.add_argument("--speed-jobs", type=int, default=40, help="1000×1000 jobs per variant (default 40)")
    parser.add_argument("--round", type=int, default=10, help="jobs per alternating round")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (the default worker: 1)")
    parser.add_argument(
        "--variants", default="rembg,lean,lean+ort-arena", help=f"comma-separated, of: {','.join(VARIANTS)}"
    )
    args = parser.parse_args(argv)
    variants = [VARIANTS[name] for name in args.variants.split(",")]
    large, small = photos(2000, 4), photos(1000, 4)
    print(f"worker memory bench — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}, {args.jobs} jobs of 2000×2000 then {args.speed_jobs} of 1000×1000 per "
          f"variant, threads={args.threads}")  # fmt: skip

    children = start_children(variants, args.threads)
    traced = {}
    for name, (_, conn, _) in children.items():
        conn.send(("traced", large[:1]))
        traced[name] = conn.recv()
    soak = run_rounds(children, large, args.jobs, args.round)
    speed = run_rounds(children, small, args.speed_jobs, args.round)
    masks = {}
    for name, (_, conn, _) in children.items():
        conn.send(("mask", large[:1]))
        masks[name] = conn.recv()
        conn.send(("stop", None))
    for proc, _, _ in children.values():
        proc.join()

    ref = "rembg" if "rembg" in children else next(iter(children))
    ipm2k = {name: 60 / statistics.median(a["times"]) for name, a in soak.items()}
    ipm1k = {name: 60 / statistics.median(a["times"]) for name, a in speed.items()}
    line = "-" * 132
    print(line)
    print(f"{'variant':<28}{'imports':>8}{'session':>8}{'1st job':>8}{'at 10':>7}{'at end':>8}{'peak':>7}"
          f"{'malloc free':>12}{'job trace':>10}{'ready':>7}{'img/min 2k':>11}{'1k':>7}{'ratio 2k/1k':>13}"
          f"{'IoU':>8}")  # fmt: skip
    for name, (_, _, before) in children.items():
        a = soak[name]
        ratios = f"{ipm2k[name] / ipm2k[ref]:.3f}/{ipm1k[name] / ipm1k[ref]:.3f}"
        print(f"{name:<28}{before['imports']:>7.0f}M{before['session']:>7.0f}M{a['first']:>7.0f}M{a['at10']:>6.0f}M"
              f"{a['rss']:>7.0f}M{a['peak']:>6.0f}M{a['free']:>11.0f}M{traced[name]:>9.0f}M"
              f"{before['ready_s']:>6.2f}s{ipm2k[name]:>11.1f}{ipm1k[name]:>7.1f}{ratios:>13}"
              f"{iou(masks[name], masks[ref]):>8.4f}")  # fmt: skip
    print(line)
    print(f"RSS after each phase (imports, session load, first round, 10 jobs, all {args.jobs}); peak = VmHWM;\n"
          "malloc free = bytes glibc holds unused at the end (fragmentation); job trace = tracemalloc peak of one "
          "2000 px job\n(numpy buffers, PNG bytes); images/min from the median job time, side by side; ratios and "
          f"IoU against {ref!r}")  # fmt: skip
    if "lean" not in soak:
        return
    lean = soak["lean"]
    growth = lean["rss"] - lean["at10"]
    r2k, r1k = ipm2k["lean"] / ipm2k[ref], ipm1k["lean"] / ipm1k[ref]
    overlap = iou(masks["lean"], masks[ref])
    figures = [
        (f"image worker RSS after {args.jobs} jobs of 2000x2000", f"{lean['rss']:.0f} MB",
         f"<= {RSS_TARGET_MB} MB", verdict(lean["rss"] <= RSS_TARGET_MB)),
        (f"image worker RSS growth, 10 -> {args.jobs} jobs", f"{growth:+.1f} MB", f"< {GROWTH_TARGET_MB} MB",
         verdict(growth < GROWTH_TARGET_MB)),
        ("image worker peak RSS (VmHWM)", f"{lean['peak']:.0f} MB", "", ""),
        (f"images/min vs {ref}, 2000x2000", f"{r2k:.3f}", f">= {1 - SPEED_TOLERANCE:.2f}",
         verdict(r2k >= 1 - SPEED_TOLERANCE)),
        (f"images/min vs {ref}, 1000x1000", f"{r1k:.3f}", f">= {1 - SPEED_TOLERANCE:.2f}",
         verdict(r1k >= 1 - SPEED_TOLERANCE)),
        (f"mask IoU vs {ref}", f"{overlap:.4f}", ">= 0.999", verdict(overlap >= 0.999)),
        ("session load (fresh process)", f"{children['lean'][2]['ready_s']:.2f} s", "", ""),
    ]  # fmt: skip
    for figure, value, target, ok in figures:
        print(f"{figure:<48}{value:>12}   target {target or '-':<10} {ok}")
    record("worker_memory", figures)


if __name__ == "__main__":
    main()
