"""MoE routing benchmarks: flashhip against torch doing the same math, same inputs, same run.

- moe_topk with DeepSeek-V3 routing (256 experts, 8 groups, keep 4, top-8, renormalised, x2.5)
  against torch.compile of the same routing math (the DeepSeek-V3 gate transcription in
  flashhip.reference) and against it eager.
- moe_align_block_size (k=8, 256 experts, block 64) against a sort-based torch alignment.
- moe_sum (the combine after the experts: [T, 8, 7168] bf16 summed over the 8 slots) against
  torch's fp32 sum, eager and compiled.
- Each case against a device copy moving the same bytes at its size (`copy_same_bytes`; our records'
  `x_copy_same_bytes` is the fraction of it we reach), as the other families report it.

Usage: python benchmarks/bench_moe.py [--out benchmarks/results/moe.json] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DSV3_EXPERTS, DSV3_GROUPS, DSV3_KEEP, DSV3_SCALE, DSV3_TOPK, ROOT,  # noqa: E402
                    DeepSeekV3TopkCase, Report, graph_time_us, same_bytes_copy, time_us)

import flashhip  # noqa: E402
from flashhip import reference as ref  # noqa: E402

EXPERTS, TOPK, GROUPS, KEEP, SCALE, BLOCK = DSV3_EXPERTS, DSV3_TOPK, DSV3_GROUPS, DSV3_KEEP, DSV3_SCALE, 64


def bench_topk(report: Report, tokens: int, dtype: torch.dtype, device: str, compile_peer: bool) -> None:
    case = DeepSeekV3TopkCase(tokens, device, dtype)
    g, bias, weights, ids = case.gating, case.bias, case.weights, case.ids
    shape = f"T={tokens} E={EXPERTS} k={TOPK}"
    nbytes = g.numel() * g.element_size() + weights.numel() * 4 + ids.numel() * 4

    ours = case.call

    def eager():
        return ref.deepseek_v3_routing(g, bias, GROUPS, KEEP, TOPK, SCALE)

    dtype_name = str(dtype).replace("torch.", "")
    report.add("moe_topk", shape, dtype_name, "flashhip", time_us(ours), nbytes, graph_us=graph_time_us(ours))
    report.add("moe_topk", shape, dtype_name, "torch_eager", time_us(eager), nbytes)
    if compile_peer:
        compiled = torch.compile(eager)
        compiled()
        report.add("moe_topk", shape, dtype_name, "torch_compile", time_us(compiled), nbytes,
                   graph_us=graph_time_us(compiled))
    report.add("moe_topk", shape, dtype_name, "copy_same_bytes", time_us(same_bytes_copy(nbytes, device)), nbytes)


def bench_align(report: Report, tokens: int, device: str) -> None:
    ids = torch.randint(0, EXPERTS, (tokens, TOPK), device=device, dtype=torch.int32)
    max_padded = ids.numel() + EXPERTS * (BLOCK - 1)
    sorted_ids = torch.empty(max_padded, dtype=torch.int32, device=device)
    expert_ids = torch.empty((max_padded + BLOCK - 1) // BLOCK, dtype=torch.int32, device=device)
    total = torch.empty(1, dtype=torch.int32, device=device)
    shape = f"T={tokens} E={EXPERTS} k={TOPK} block={BLOCK}"
    nbytes = ids.numel() * 4 + (sorted_ids.numel() + expert_ids.numel() + 1) * 4

    def ours():
        torch.ops.flashhip.moe_align_block_size(ids, EXPERTS, BLOCK, sorted_ids, expert_ids, total)

    def sort_based():
        return ref.moe_align_block_size(ids, EXPERTS, BLOCK)

    report.add("moe_align_block_size", shape, "int32", "flashhip", time_us(ours), nbytes, graph_us=graph_time_us(ours))
    # The sort-based alignment has data-dependent shapes (no CUDA graph, host syncs): eager only.
    report.add("moe_align_block_size", shape, "int32", "torch_sort", time_us(sort_based), nbytes)
    report.add("moe_align_block_size", shape, "int32", "copy_same_bytes", time_us(same_bytes_copy(nbytes, device)), nbytes)


def bench_sum(report: Report, tokens: int, device: str, compile_peer: bool, hidden: int = 7168) -> None:
    x = torch.randn(tokens, TOPK, hidden, device=device, dtype=torch.bfloat16)
    out = torch.empty(tokens, hidden, device=device, dtype=torch.bfloat16)
    shape = f"T={tokens} k={TOPK} H={hidden}"
    nbytes = (x.numel() + out.numel()) * 2

    def ours():
        torch.ops.flashhip.moe_sum(out, x)

    def eager():  # the same math: fp32 sum over the slots, rounded once
        return x.float().sum(1).to(torch.bfloat16)

    report.add("moe_sum", shape, "bfloat16", "flashhip", time_us(ours), nbytes, graph_us=graph_time_us(ours))
    report.add("moe_sum", shape, "bfloat16", "torch_eager", time_us(eager), nbytes)
    if compile_peer:
        compiled = torch.compile(eager)
        compiled()
        report.add("moe_sum", shape, "bfloat16", "torch_compile", time_us(compiled), nbytes,
                   graph_us=graph_time_us(compiled))
    report.add("moe_sum", shape, "bfloat16", "copy_same_bytes", time_us(same_bytes_copy(nbytes, device)), nbytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "moe.json")
    parser.add_argument("--quick", action="store_true", help="small sizes on the CPU (a smoke test of the script)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="gating dtype for moe_topk")
    args = parser.parse_args()
    device = "cpu" if args.quick or not torch.cuda.is_available() else "cuda"
    token_counts = [1, 64] if args.quick else [1, 64, 4096, 16384]
    dtype = getattr(torch, args.dtype)

    report = Report("moe")
    for tokens in token_counts:
        bench_topk(report, tokens, dtype, device, compile_peer=True)
        bench_align(report, tokens, device)
        bench_sum(report, tokens, device, compile_peer=not args.quick)
    report.finish(args.out)


if __name__ == "__main__":
    main()
