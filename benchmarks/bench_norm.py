"""Normalisation family against torch.compile, F.rms_norm / F.layer_norm and eager, same run
(the fp8 quantising forms, layernorm_quant included, against torch.compile of the pure-torch
norm and quantisation).

Bytes counted: every input element read once and every output written once (the weight row is
negligible). Every case also has a device copy moving the same bytes at its own size
(`copy_same_bytes`; our records' `x_copy_same_bytes` is the fraction of it we reach), timed once
per byte count and shape. Usage: python benchmarks/bench_norm.py [--out results.json] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import flashhip
from flashhip import reference as ref

from common import ROOT, Report, graph_time_us, same_bytes_copy, time_us

FP8 = torch.float8_e4m3fn


def rms_eager(x, w, eps=1e-6):
    return ref.rmsnorm(x, w, eps).to(x.dtype)


def add_rms_eager(x, r, w, eps=1e-6):
    new_r = x + r
    return ref.rmsnorm(new_r, w, eps).to(x.dtype), new_r


def rms_quant_eager(x, w, scale, eps=1e-6):
    return ref.quantize_fp8(ref.rmsnorm(x, w, eps), scale, FP8)


def add_rms_quant_eager(x, r, w, scale, eps=1e-6):
    new_r = x + r
    return ref.quantize_fp8(ref.rmsnorm(new_r, w, eps), scale, FP8), new_r


def layer_quant_eager(x, w, b, scale, eps=1e-5):
    return ref.quantize_fp8(ref.layernorm(x, w, b, eps), scale, FP8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "norm.json")
    parser.add_argument("--quick", action="store_true", help="small shapes (CPU smoke run)")
    parser.add_argument("--only-ours", action="store_true", help="skip the peers (tuning sweeps)")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16
    big = [(64, 1024)] if args.quick else [(8192, 4096), (16384, 8192), (4096, 7168)]
    small_tokens = [1, 16] if args.quick else [1, 8, 32, 64, 128]
    report = Report("norm")
    if args.only_ours:  # every peer record is dropped as it is made
        report.add = (lambda add: lambda *a, **k: add(*a, **k) if a[3] == "flashhip" else None)(report.add)
    compile_ = (lambda f: f) if device == "cpu" and args.quick else torch.compile

    rms_c, add_c = compile_(rms_eager), compile_(add_rms_eager)
    quant_c, add_quant_c = compile_(rms_quant_eager), compile_(add_rms_quant_eager)
    ln_c = compile_(lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b, 1e-5))
    ln_quant_c = compile_(layer_quant_eager)
    scale = torch.tensor([0.05], device=device)

    for tokens, hidden in big:
        shape = f"{tokens}x{hidden}"
        x = torch.randn(tokens, hidden, device=device, dtype=dtype)
        r = torch.randn_like(x)
        w = torch.randn(hidden, device=device, dtype=dtype)
        out = torch.empty_like(x)
        q = torch.empty(tokens, hidden, device=device, dtype=FP8)
        n = x.numel()

        b = 2 * n * 2  # read x, write out (bf16)
        # The ceiling at this size: a device copy moving the same bytes (read x, write out). The
        # 1 GiB copy in the header has no launch, ramp or tail to amortise; this one does.
        copy_us = time_us(lambda: out.copy_(x))
        report.add("rmsnorm", shape, "bf16", "copy_same_bytes", copy_us, b)
        report.add("rmsnorm", shape, "bf16", "flashhip", time_us(lambda: torch.ops.flashhip.rmsnorm(out, x, w, 1e-6, False)), b)
        report.add("rmsnorm", shape, "bf16", "torch.compile", time_us(lambda: rms_c(x, w)), b)
        report.add("rmsnorm", shape, "bf16", "F.rms_norm", time_us(lambda: F.rms_norm(x, (hidden,), w, 1e-6)), b)
        report.add("rmsnorm", shape, "bf16", "eager", time_us(lambda: rms_eager(x, w)), b)

        b = 4 * n * 2  # read x, r; write r, x
        xs, rs = x.clone(), r.clone()
        report.add("fused_add_rmsnorm", shape, "bf16", "flashhip",
                   time_us(lambda: torch.ops.flashhip.fused_add_rmsnorm(xs, rs, w, 1e-6, False)), b)
        report.add("fused_add_rmsnorm", shape, "bf16", "torch.compile", time_us(lambda: add_c(x, r, w)), b)
        both_in, both_out = torch.cat([x, r]), torch.empty(2 * tokens, hidden, device=device, dtype=dtype)
        report.add("fused_add_rmsnorm", shape, "bf16", "copy_same_bytes", time_us(lambda: both_out.copy_(both_in)), b)
        del both_in, both_out

        b = n * 2 + n  # read x (bf16), write fp8
        report.add("rmsnorm_quant", shape, "bf16>fp8", "copy_same_bytes", time_us(same_bytes_copy(b, device)), b)
        report.add("rmsnorm_quant", shape, "bf16>fp8", "flashhip",
                   time_us(lambda: torch.ops.flashhip.rmsnorm_quant(q, x, w, scale, 1e-6, False)), b)
        report.add("rmsnorm_quant", shape, "bf16>fp8", "torch.compile", time_us(lambda: quant_c(x, w, scale)), b)

        b = 3 * n * 2 + n  # read x, r; write r (bf16) and fp8
        report.add("fused_add_rmsnorm_quant", shape, "bf16>fp8", "copy_same_bytes", time_us(same_bytes_copy(b, device)), b)
        report.add("fused_add_rmsnorm_quant", shape, "bf16>fp8", "flashhip",
                   time_us(lambda: torch.ops.flashhip.fused_add_rmsnorm_quant(q, x, rs, w, scale, 1e-6, False)), b)
        report.add("fused_add_rmsnorm_quant", shape, "bf16>fp8", "torch.compile", time_us(lambda: add_quant_c(x, r, w, scale)), b)

        b = 2 * n * 2
        bias = torch.randn_like(w)
        report.add("layernorm", shape, "bf16", "copy_same_bytes", copy_us, b)  # rmsnorm's bytes: its copy
        report.add("layernorm", shape, "bf16", "flashhip",
                   time_us(lambda: torch.ops.flashhip.layernorm(out, x, w, bias, 1e-5)), b)
        report.add("layernorm", shape, "bf16", "torch.compile", time_us(lambda: ln_c(x, w, bias)), b)
        report.add("layernorm", shape, "bf16", "F.layer_norm", time_us(lambda: F.layer_norm(x, (hidden,), w, bias, 1e-5)), b)

        # layernorm_quant as FlashInfer's callers pass it: bf16 input, fp32 gamma/beta.
        b = n * 2 + n  # read x (bf16), write fp8
        gamma, beta = torch.randn(hidden, device=device), torch.randn(hidden, device=device)
        report.add("layernorm_quant", shape, "bf16>fp8", "copy_same_bytes", time_us(same_bytes_copy(b, device)), b)
        report.add("layernorm_quant", shape, "bf16>fp8", "flashhip",
                   time_us(lambda: torch.ops.flashhip.layernorm_quant(q, x, gamma, beta, scale, 1e-5)), b)
        report.add("layernorm_quant", shape, "bf16>fp8", "torch.compile",
                   time_us(lambda: ln_quant_c(x, gamma, beta, scale)), b)
        del x, r, out, q, xs, rs

    # Per-head qk-norm (Qwen3, Gemma-3): q as [tokens, heads, head_dim] strided out of a fused qkv
    # buffer (32 q + 8 k + 8 v heads of 128), normalised over head_dim into a dense output.
    tokens, q_heads, kv_heads, head_dim = (64, 4, 1, 64) if args.quick else (16384, 32, 8, 128)
    qkv = torch.randn(tokens, (q_heads + 2 * kv_heads) * head_dim, device=device, dtype=dtype)
    q_view = qkv[:, : q_heads * head_dim].view(tokens, q_heads, head_dim)
    w = torch.randn(head_dim, device=device, dtype=dtype)
    out = torch.empty(tokens, q_heads, head_dim, device=device, dtype=dtype)
    shape = f"qk_norm/{tokens}x{q_heads}x{head_dim}"
    b = 2 * q_view.numel() * 2  # read the strided q, write out
    report.add("rmsnorm", shape, "bf16", "copy_same_bytes", time_us(lambda: out.copy_(q_view)), b)
    report.add("rmsnorm", shape, "bf16", "flashhip", time_us(lambda: torch.ops.flashhip.rmsnorm(out, q_view, w, 1e-6, False)), b)
    report.add("rmsnorm", shape, "bf16", "torch.compile", time_us(lambda: rms_c(q_view, w)), b)
    del qkv, q_view, out

    # Decode-sized batches: latency. Several input sets rotate so the timing is not of L2 alone.
    hidden = 1024 if args.quick else 4096
    for tokens in small_tokens:
        shape = f"{tokens}x{hidden}"
        sets = [torch.randn(tokens, hidden, device=device, dtype=dtype) for _ in range(8)]
        w = torch.randn(hidden, device=device, dtype=dtype)
        outs = [torch.empty_like(s) for s in sets]
        i = [0]

        def ours():
            k = i[0] = (i[0] + 1) % 8
            torch.ops.flashhip.rmsnorm(outs[k], sets[k], w, 1e-6, False)

        def peer():
            k = i[0] = (i[0] + 1) % 8
            return F.rms_norm(sets[k], (hidden,), w, 1e-6)

        def compiled():
            k = i[0] = (i[0] + 1) % 8
            return rms_c(sets[k], w)

        b = 2 * tokens * hidden * 2
        report.add("rmsnorm", shape, "bf16", "flashhip", time_us(ours), b, graph_us=graph_time_us(ours))
        report.add("rmsnorm", shape, "bf16", "F.rms_norm", time_us(peer), b, graph_us=graph_time_us(peer))
        report.add("rmsnorm", shape, "bf16", "torch.compile", time_us(compiled), b)
        report.add("rmsnorm", shape, "bf16", "copy_same_bytes", time_us(same_bytes_copy(b, device)), b)

    report.finish(args.out)


if __name__ == "__main__":
    main()
