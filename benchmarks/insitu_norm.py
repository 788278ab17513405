"""Where do_bench's time goes for the bf16 norms at 8192x4096, ours beside torch.compile's.

do_bench zeroes a 256 MB buffer before each timed call, so the call starts with L2 full of dirty
lines. This script reads each call's event time (do_bench's own, with its flush), then repeats
the loop under the CUDA profiler for the kernels' own durations (CUPTI). It runs three ways: with
do_bench's writing flush, with a reading flush (L2 left holding clean lines) and with no flush
(back to back, the previous call's output left in L2; the event time would then be the host's
launch time and is not shown). Prints a table and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flashhip  # noqa: E402,F401  (loads the library FLASHHIP_LIBRARY names)
from bench_norm import add_rms_eager, add_rms_quant_eager, rms_eager, rms_quant_eager  # noqa: E402
from common import commit, device_name, time_us  # noqa: E402

CALLS = 40
FLUSH_BYTES = 256 << 20


def flushes() -> dict:
    cache = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
    return {
        "write flush (do_bench)": cache.zero_,
        "read flush": lambda: cache.sum(dtype=torch.int64),
        "no flush": None,
    }


class Markers:
    """Two one-element fills of their own types around each call, so that the call's kernels can
    be told apart from the flush's in the trace."""

    def __init__(self) -> None:
        self.open = torch.empty(1, dtype=torch.float64, device="cuda")
        self.close = torch.empty(1, dtype=torch.int16, device="cuda")

    @staticmethod
    def call_kernels(kernels) -> list:
        calls, current = [], None
        for k in sorted(kernels, key=lambda e: e.time_range.start):
            if "FillFunctor<double>" in k.name:
                current = []
            elif "FillFunctor<short>" in k.name:
                if current:
                    calls.append(current)
                current = None
            elif current is not None:
                current.append(k.time_range.end - k.time_range.start)
        return calls


def timed_loop(fn, flush, markers: Markers) -> list:
    """CALLS calls, each after the flush; returns their (start, end) events."""
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(CALLS)]
    for i, (start, end) in enumerate(events):
        if flush is not None:
            flush()
        markers.open.fill_(i)
        start.record()
        fn()
        end.record()
        markers.close.fill_(i)
    torch.cuda.synchronize()
    return events


def event_us(fn, flush, markers: Markers) -> float:
    """Median event time of a call, as do_bench sees it when a flush keeps the device busy while
    the host launches. Without a flush the host's launch time shows instead."""
    for _ in range(5):
        fn()
    return statistics.median(s.elapsed_time(e) * 1e3 for s, e in timed_loop(fn, flush, markers))


def kernel_us(fn, flush, markers: Markers) -> float:
    """Median summed duration (CUPTI) of the kernels a call ran."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        timed_loop(fn, flush, markers)
    calls = Markers.call_kernels(e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    return statistics.median(sum(c) for c in calls) if calls else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-peers", action="store_true", help="flashhip and the copy only (comparing builds)")
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
    if args.no_peers:
        cases = {k: v for k, v in cases.items() if not k.startswith("compile")}
    results = {"device": device_name(), "commit": commit(), "shape": f"{tokens}x{hidden}",
               "knobs": {k: v for k, v in os.environ.items() if k.startswith("FLASHHIP_NORM")}, "rows": []}
    markers, flushes_by_name = Markers(), flushes()
    # Every event loop runs before the profiler is first enabled: its hooks slow later launches.
    # With do_bench's flush the event time is do_bench's own (this loop's events were seen to
    # catch the host's launch of torch.compile's calls there, 61-74 us where do_bench reads 50).
    timers = {"write flush (do_bench)": lambda fn, flush: time_us(fn), "read flush": lambda fn, flush: event_us(fn, flush, markers)}
    rows = [{"flush": f, "case": c, "event_us": round(timers[f](fn, flush), 2) if f in timers else None}
            for f, flush in flushes_by_name.items() for c, fn in cases.items()]
    for row in rows:
        row["kernel_us"] = round(kernel_us(cases[row["case"]], flushes_by_name[row["flush"]], markers), 2)
        results["rows"].append(row)
        event = f"{row['event_us']:8.2f}" if row["event_us"] is not None else "       -"
        print(f"{row['flush']:<24} {row['case']:<32} event {event} us   kernel {row['kernel_us']:8.2f} us", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
