"""Where do_bench's time goes for the bf16 norms at 8192x4096, ours beside torch.compile's.

do_bench zeroes a 256 MB buffer before each timed call, so the call starts with L2 full of dirty
lines. This script repeats that loop under the CUDA profiler and splits each call's event time
into the kernel's own duration (CUPTI) and the rest (event and launch latency). It runs the loop
three ways: with do_bench's writing flush, with a reading flush (L2 left holding clean lines) and
with no flush (back to back). Prints a table and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flashhip  # noqa: E402,F401  (loads the library FLASHHIP_LIBRARY names)
from bench_norm import add_rms_eager, add_rms_quant_eager, rms_eager, rms_quant_eager  # noqa: E402
from common import commit, device_name  # noqa: E402

CALLS = 40
FLUSH_BYTES = 256 << 20


def flushes() -> dict:
    cache = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
    return {
        "write flush (do_bench)": cache.zero_,
        "read flush": lambda: cache.sum(dtype=torch.int64),
        "no flush": None,
    }


def timed_loop(fn, flush, marker) -> list:
    """CALLS calls, each after the flush and a marker kernel; returns the (start, end) events."""
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(CALLS)]
    for i, (start, end) in enumerate(events):
        if flush is not None:
            flush()
        marker.fill_(i)  # a kernel of its own type that opens each call's kernels in the trace
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return events


def measure(fn, flush) -> dict:
    """Median event time of fn (without the profiler, whose host work would show in the events
    of host-heavy calls), and the median summed duration of the kernels fn ran (with it)."""
    marker = torch.empty(1, dtype=torch.float64, device="cuda")
    for _ in range(5):
        fn()
    events = timed_loop(fn, flush, marker)
    event_us = statistics.median(s.elapsed_time(e) * 1e3 for s, e in events)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        timed_loop(fn, flush, marker)
    kernels = sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    per_call, current = [], None
    for k in kernels:
        if "FillFunctor<double>" in k.name:
            current = []
            per_call.append(current)
        elif current is not None and "FillFunctor<int>" not in k.name and "reduce_kernel" not in k.name:
            current.append(k.time_range.end - k.time_range.start)
    kernel_us = statistics.median(sum(c) for c in per_call if c) if any(per_call) else float("nan")
    return {"event_us": round(event_us, 2), "kernel_us": round(kernel_us, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ops = torch.ops.flashhip
    tokens, hidden = 8192, 4096
    x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
    r = torch.randn_like(x)
    w = torch.randn(hidden, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(x)
    q = torch.empty(tokens, hidden, device="cuda", dtype=torch.float8_e4m3fn)
    scale = torch.tensor([0.05], device="cuda")
    tiny = torch.empty(1, device="cuda")
    rms_c, add_c = torch.compile(rms_eager), torch.compile(add_rms_eager)
    quant_c, add_quant_c = torch.compile(rms_quant_eager), torch.compile(add_rms_quant_eager)
    cases = {
        "launch floor (1-element fill)": lambda: tiny.fill_(1.0),
        "copy": lambda: out.copy_(x),
        "rmsnorm": lambda: ops.rmsnorm(out, x, w, 1e-6, False),
        "compile rmsnorm": lambda: rms_c(x, w),
        "rmsnorm_quant": lambda: ops.rmsnorm_quant(q, x, w, scale, 1e-6, False),
        "compile rmsnorm_quant": lambda: quant_c(x, w, scale),
        "fused_add_rmsnorm": lambda: ops.fused_add_rmsnorm(x, r, w, 1e-6, False),
        "compile fused_add_rmsnorm": lambda: add_c(x, r, w),
        "fused_add_rmsnorm_quant": lambda: ops.fused_add_rmsnorm_quant(q, x, r, w, scale, 1e-6, False),
        "compile fused_add_rmsnorm_quant": lambda: add_quant_c(x, r, w, scale),
    }
    results = {"device": device_name(), "commit": commit(), "shape": f"{tokens}x{hidden}", "rows": []}
    for flush_name, flush in flushes().items():
        for name, fn in cases.items():
            m = measure(fn, flush)
            results["rows"].append({"flush": flush_name, "case": name, **m})
            print(f"{flush_name:<24} {name:<30} event {m['event_us']:8.2f} us   kernel {m['kernel_us']:8.2f} us", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
