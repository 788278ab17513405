"""Where a decode-sized fp8_gemm call's time goes: each call's kernels on the device timeline
(torch.profiler), ours against cuBLASLt on the same inputs, each call after an L2 flush as
do_bench makes one. Prints, per shape and implementation, the median over the calls of every
kernel's duration, the gaps between them and the span from the first kernel's start to the last
one's end; with --json also writes them.

Usage: python benchmarks/tools/gemm_timeline.py [--shapes 1x4608x7168,16x7168x2048 ...] [--impls flashhip,cuBLASLt]
       [--json out.json]   (scripts/gpu_run.sh OUT ... decode runs it per DECODE_SETTINGS)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from flashhip import reference as ref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_gemm import cublas_blockwise  # noqa: E402

DEFAULT_SHAPES = "1x512x7168,1x4608x7168,1x7168x2048,16x1536x7168,16x7168x2304,64x4608x7168,128x7168x2048,128x4608x7168"


def timeline(fn, calls: int = 12) -> dict:
    """The device kernels of each of `calls` calls (after a flush each) and their medians."""
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for i in range(calls):
            flush.zero_()
            with torch.profiler.record_function(f"call{i}"):
                fn()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    kernels.sort(key=lambda e: e.time_range.start)
    # Calls are separated by the flush kernel (a fill of 256 MB, the longest kernel by far).
    calls_seen, current = [], None
    for e in kernels:
        if "fill" in e.name.lower() and e.time_range.elapsed_us() > 30:
            if current:
                calls_seen.append(current)
            current = []
            continue
        if current is not None:
            current.append(e)
    if current:
        calls_seen.append(current)
    per_kernel: dict = {}
    spans, gaps = [], []
    for ks in calls_seen:
        if not ks:
            continue
        spans.append(ks[-1].time_range.end - ks[0].time_range.start)
        gaps.append(sum(max(0, b.time_range.start - a.time_range.end) for a, b in zip(ks, ks[1:])))
        for j, e in enumerate(ks):
            per_kernel.setdefault(f"{j}:{e.name[:90]}", []).append(e.time_range.elapsed_us())
    medians = {name: round(statistics.median(v), 2) for name, v in per_kernel.items()}
    return {"kernels_us": medians, "span_us": round(statistics.median(spans), 2) if spans else None,
            "gaps_us": round(statistics.median(gaps), 2) if gaps else None, "calls": len(spans)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default=DEFAULT_SHAPES)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--impls", default="flashhip,cuBLASLt", help="comma-separated: flashhip, cuBLASLt")
    args = parser.parse_args()
    results = []
    for shape in args.shapes.split(","):
        m, n, k = (int(x) for x in shape.split("x"))
        a, b, sa, sb, _ = ref.fp8_challenge_inputs(m, n, k, 1000 + m, device="cuda", fp8_dtype=torch.float8_e4m3fn,
                                                   k_contiguous=True)
        out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
        impls = {"flashhip": lambda: torch.ops.flashhip.fp8_gemm(out, a, b, sa, sb),
                 "cuBLASLt": cublas_blockwise(a, b, sa, sb)}
        for impl, fn in ((i, impls[i]) for i in args.impls.split(",")):
            t = timeline(fn)
            t.update(shape=shape, impl=impl, weight_MB=round(n * k / 1e6, 2))
            results.append(t)
            print(json.dumps(t), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
