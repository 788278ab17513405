"""Timing and reporting shared by the per-family benchmark scripts.

Every script measures flashhip and its peers in the same process on the same inputs, reports
time, achieved TB/s (or TFLOP/s), the fraction of the device-to-device copy bandwidth measured
in the same run, and the ratio against each peer, and writes JSON records.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The commit a result measured: FLASHHIP_COMMIT when set (scripts/gpu_run.sh sets it; set it
    yourself for a copied tree, whose .git may be stale or absent), else what git says."""
    if os.environ.get("FLASHHIP_COMMIT"):
        return os.environ["FLASHHIP_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) or os.environ.get("FLASHHIP_COMMIT", "unknown")
    except OSError:
        return os.environ.get("FLASHHIP_COMMIT", "unknown")


def device_name() -> str:
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return f"{p.name} ({p.multi_processor_count} SMs)"
    return "cpu"


def time_us(fn: Callable[[], object], *, warmup_ms: float = 25, rep_ms: float = 100) -> float:
    """Median time of one call in microseconds (device events on GPU, wall clock on CPU)."""
    if torch.cuda.is_available():
        from triton.testing import do_bench

        return do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median") * 1e3
    import time

    for _ in range(3):
        fn()
    samples = []
    for _ in range(20):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2] * 1e6


def graph_time_us(fn: Callable[[], object], calls: int = 20) -> Optional[float]:
    """Per-call time of `calls` back-to-back calls replayed from one CUDA graph: the launch
    overhead out of the way, what an engine running under graphs sees. None on CPU."""
    if not torch.cuda.is_available():
        return None
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    return time_us(graph.replay) / calls


def copy_bandwidth_tbps() -> Optional[float]:
    """Device-to-device copy of 1 GiB, counting bytes read plus written: the ceiling we compare to."""
    if not torch.cuda.is_available():
        return None
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    t = time_us(lambda: y.copy_(x))
    del x, y
    return 2 * 2**30 / (t * 1e-6) / 1e12


def launch_floor_us() -> Optional[float]:
    """time_us of a one-element elementwise kernel: what any single launch costs under this timing
    (the L2 flush, the launch, the events), the floor of the smallest calls. None on CPU."""
    if not torch.cuda.is_available():
        return None
    x = torch.randn(1, device="cuda")
    y = torch.empty_like(x)
    return time_us(lambda: torch.neg(x, out=y))


def same_bytes_copy(nbytes: int, device: str) -> Callable[[], object]:
    """A device copy moving `nbytes` in all (half read, half written): the ceiling of a
    memory-bound case at its own size, paying the same launch, ramp and tail as the kernel
    (the 1 GiB copy in the header does not)."""
    src = torch.empty(max(1, nbytes // 2), dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


class Report:
    """Collects records and prints a table; `write` saves JSON."""

    def __init__(self, family: str):
        self.family = family
        self.copy_tbps = copy_bandwidth_tbps()
        self.records: list[dict] = []
        self.meta = {
            "family": family,
            "device": device_name(),
            "torch": torch.__version__,
            "commit": commit(),
            "copy_TBps": self.copy_tbps,
            "launch_floor_us": launch_floor_us(),
        }

    def add(self, op: str, shape: str, dtype: str, impl: str, us: float, nbytes: Optional[int] = None,
            flops: Optional[int] = None, **extra) -> dict:
        rec = {"op": op, "shape": shape, "dtype": dtype, "impl": impl, "us": round(us, 2)}
        if nbytes is not None:
            rec["TBps"] = round(nbytes / (us * 1e-6) / 1e12, 3)
            if self.copy_tbps:
                rec["frac_of_copy"] = round(rec["TBps"] / self.copy_tbps, 3)
        if flops is not None:
            rec["TFLOPs"] = round(flops / (us * 1e-6) / 1e12, 1)
        rec.update(extra)
        self.records.append(rec)
        return rec

    def ratios(self, ours: str = "flashhip") -> None:
        """Adds `x_<peer>` = peer time / our time to each of our records (same op, shape, dtype)."""
        for rec in self.records:
            if rec["impl"] != ours:
                continue
            for peer in self.records:
                if peer["impl"] != ours and (peer["op"], peer["shape"], peer["dtype"]) == (rec["op"], rec["shape"], rec["dtype"]):
                    rec[f"x_{peer['impl']}"] = round(peer["us"] / rec["us"], 3)

    def print_table(self) -> None:
        print(f"# {self.family} on {self.meta['device']}, torch {self.meta['torch']}, commit {self.meta['commit']}, "
              f"copy {self.copy_tbps and round(self.copy_tbps, 3)} TB/s, launch floor {self.meta['launch_floor_us']} us")
        for rec in self.records:
            extras = " ".join(f"{k}={v}" for k, v in rec.items() if k not in ("op", "shape", "dtype", "impl", "us"))
            print(f"{rec['op']:<28} {rec['shape']:<16} {rec['dtype']:<9} {rec['impl']:<14} {rec['us']:>9.2f} us  {extras}")

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": self.meta, "records": self.records}, indent=1) + "\n")

    def finish(self, path: Path) -> None:
        """Ratios, the table, the JSON at `path` and, where matplotlib is installed, its plot."""
        self.ratios()
        self.print_table()
        self.write(path)
        print(f"wrote {path}")
        try:
            from plot import plot_family

            plot_family(path, path.with_suffix(".png"))
        except ImportError as e:  # the JSON is the record; plot later with benchmarks/plot.py
            print(f"no plot: {e}")


# DeepSeek-V3's routing: 256 experts in 8 groups, keep 4 groups, top 8, renormalised, x2.5.
DSV3_EXPERTS, DSV3_TOPK, DSV3_GROUPS, DSV3_KEEP, DSV3_SCALE = 256, 8, 8, 4, 2.5


class DeepSeekV3TopkCase:
    """One DeepSeek-V3 moe_topk call on fresh inputs: gating [tokens, 256] in `dtype`, a bias,
    and the outputs; `call()` runs flashhip's op on them."""

    def __init__(self, tokens: int, device: str = "cuda", dtype: torch.dtype = torch.float32):
        self.gating = torch.randn(tokens, DSV3_EXPERTS, device=device).to(dtype)
        self.bias = torch.randn(DSV3_EXPERTS, device=device) * 0.05
        self.weights = torch.empty(tokens, DSV3_TOPK, device=device)
        self.ids = torch.empty(tokens, DSV3_TOPK, dtype=torch.int32, device=device)

    def call(self) -> None:
        torch.ops.flashhip.moe_topk(self.weights, self.ids, self.gating, self.bias, "sigmoid", DSV3_GROUPS, DSV3_KEEP,
                                    True, DSV3_SCALE)
