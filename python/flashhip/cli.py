"""The checker/benchmark CLI: checks every op against its pure-torch reference on fresh random
inputs and times it, on the GPU when there is one and on the CPU otherwise.

    python -m flashhip check [--device cpu|cuda] [--json PATH]
    python -m flashhip info     (version, backend, archs, fp8 flavour per arch, torch, library path)

Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import torch

from . import _library, gemm, moe, norm, reference as ref
from .rope import llama3_cos_sin_cache, rope as rotate

ops = torch.ops.flashhip


def _time_us(fn: Callable[[], object], device: str) -> float:
    for _ in range(3):
        fn()
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) * 1e3 / 20
    t0 = time.perf_counter()
    for _ in range(5):
        fn()
    return (time.perf_counter() - t0) * 1e6 / 5


def _max_rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    a, e = actual.double(), expected.double()
    return ((a - e).norm() / e.norm().clamp_min(1e-30)).item()


def _cases(device: str, tokens: int, hidden: int):
    """(name, run, check) triples: run() calls the op; check() returns the relative error."""
    bf16 = torch.bfloat16
    x = torch.randn(tokens, hidden, device=device, dtype=bf16)
    r = torch.randn_like(x)
    w = torch.randn(hidden, device=device, dtype=bf16)
    scale = torch.tensor([0.05], device=device)
    out = torch.full_like(x, float("nan"))
    q = torch.empty(tokens, hidden, device=device, dtype=torch.float8_e4m3fn)
    xs, rs = x.clone(), r.clone()

    def check_fused():
        x2, r2 = x.clone(), r.clone()
        ops.fused_add_rmsnorm(x2, r2, w, 1e-6, False)
        y, new_r = ref.fused_add_rmsnorm(x, r, w)
        return max(_max_rel_err(x2, y), _max_rel_err(r2, new_r))

    def check_quant():
        ops.rmsnorm_quant(q, x, w, scale, 1e-6, False)
        return _max_rel_err(q.float(), ref.quantize_fp8(ref.rmsnorm(x, w), scale, q.dtype).float())

    def check_fused_quant():
        r2 = r.clone()
        ops.fused_add_rmsnorm_quant(q, x, r2, w, scale, 1e-6, False)
        y, _ = ref.fused_add_rmsnorm(x, r, w)
        return _max_rel_err(q.float(), ref.quantize_fp8(y, scale, q.dtype).float())

    def check_layer_quant():
        ops.layernorm_quant(q, x, w, w, scale, 1e-5)
        return _max_rel_err(q.float(), ref.layernorm_quant(x, w, w, scale, q.dtype).float())

    return [
        ("rmsnorm", lambda: ops.rmsnorm(out, x, w, 1e-6, False),
         lambda: _max_rel_err(norm.rmsnorm(x, w), ref.rmsnorm(x, w)), 4 * tokens * hidden, 1e-2),
        ("fused_add_rmsnorm", lambda: ops.fused_add_rmsnorm(xs, rs, w, 1e-6, False), check_fused, 8 * tokens * hidden, 1e-2),
        ("layernorm", lambda: ops.layernorm(out, x, w, None, 1e-5),
         lambda: _max_rel_err(norm.layernorm(x, w), ref.layernorm(x, w)), 4 * tokens * hidden, 1e-2),
        ("rmsnorm_quant", lambda: ops.rmsnorm_quant(q, x, w, scale, 1e-6, False), check_quant, 3 * tokens * hidden, 5e-2),
        ("fused_add_rmsnorm_quant", lambda: ops.fused_add_rmsnorm_quant(q, x, rs, w, scale, 1e-6, False),
         check_fused_quant, 7 * tokens * hidden, 5e-2),
        ("layernorm_quant", lambda: ops.layernorm_quant(q, x, w, w, scale, 1e-5), check_layer_quant,
         3 * tokens * hidden, 5e-2),
    ]


def _more_cases(device: str, tokens: int):
    """rope (Llama-3.1: 32 q + 8 kv heads x 128, views of a fused qkv buffer), rope_quantize_fp8
    (DeepSeek-V3 MLA into e4m3fn), DeepSeek-V3 routing with its token alignment and the experts' combine (moe_sum), each as (name, run,
    check, bytes, limit)."""
    bf16 = torch.bfloat16
    qkv = torch.randn(tokens, 48 * 128, device=device, dtype=bf16)
    q, k = qkv[:, : 32 * 128].view(tokens, 32, 128), qkv[:, 32 * 128 : 40 * 128].view(tokens, 8, 128)
    cache = llama3_cos_sin_cache(8192, 128, device=device)
    positions = torch.randint(0, 8192, (tokens,), device=device)
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)

    def check_rope():
        got_q, got_k = rotate(q, k, cache, positions)
        want_q, want_k = ref.rope(q, k, cache, positions)
        return max(_max_rel_err(got_q, want_q), _max_rel_err(got_k, want_k))

    experts, topk = 256, 8
    logits = torch.randn(tokens, experts, device=device)
    bias = torch.randn(experts, device=device) * 0.05
    weights = torch.empty(tokens, topk, device=device)
    ids = torch.empty(tokens, topk, dtype=torch.int32, device=device)
    ops.moe_topk(weights, ids, logits, bias, "sigmoid", 8, 4, True, 2.5)  # the ids the alignment sorts

    def check_routing():
        # The share of tokens whose experts differ from DeepSeek-V3's gate (ties and 1-ulp
        # differences in exp() can flip a near-tie, so a few are allowed), or the weights' error.
        got_w, got_ids = moe.moe_topk(logits, topk, bias, "sigmoid", 8, 4, True, 2.5)
        want_w, want_ids = ref.deepseek_v3_routing(logits, bias)
        same = (got_ids.sort(-1).values == want_ids.sort(-1).values).all(-1)
        if not same.any():
            return 1.0
        return max(1.0 - same.float().mean().item(), _max_rel_err(got_w[same].sort(-1).values, want_w[same].sort(-1).values))

    block = 64
    sorted_ids = torch.empty(tokens * topk + experts * (block - 1), dtype=torch.int32, device=device)
    expert_ids = torch.empty((sorted_ids.numel() + block - 1) // block, dtype=torch.int32, device=device)
    total = torch.empty(1, dtype=torch.int32, device=device)

    def check_align():
        got = moe.moe_align_block_size(ids, experts, block)
        want = ref.moe_align_block_size(ids, experts, block)
        return 0.0 if all(torch.equal(a, b) for a, b in zip(got, want)) else 1.0

    combine_in = torch.randn(tokens, topk, 7168, device=device, dtype=bf16)  # the experts' outputs
    combine_out = torch.empty(tokens, 7168, device=device, dtype=bf16)

    def check_sum():
        got = moe.moe_sum(combine_in)
        return _max_rel_err(got, combine_in.float().sum(1))

    # rope_quantize_fp8 on DeepSeek-V3 MLA (128 q heads of 512 + 64, one k head), views of the
    # fused buffers in and out, as FlashInfer's mla_rope_quantize_fp8 is called.
    q_mla = torch.randn(tokens, 128, 576, device=device, dtype=bf16)
    kv_mla = torch.randn(tokens, 576, device=device, dtype=bf16)
    mla_in = (q_mla[..., 512:], kv_mla[:, 512:], q_mla[..., :512], kv_mla[:, :512])
    mla_cache = llama3_cos_sin_cache(8192, 64, device=device)
    q_fp8 = torch.empty(q_mla.shape, device=device, dtype=torch.float8_e4m3fn)
    kv_fp8 = torch.empty(kv_mla.shape, device=device, dtype=torch.float8_e4m3fn)
    mla_out = (q_fp8[..., 512:], kv_fp8[:, 512:], q_fp8[..., :512], kv_fp8[:, :512])

    def run_rope_quant():
        ops.rope_quantize_fp8(*mla_out, *mla_in, mla_cache, positions, False, 0.5, 2.0)

    def check_rope_quant():
        # The share of fp8 codes that differ from the reference (an FMA may move a rotation
        # across a rounding boundary on a GPU).
        run_rope_quant()
        want = ref.rope_quantize_fp8(*mla_in, mla_cache, positions, False, 0.5, 2.0)
        differ = sum((got.float() != w.float()).sum().item() for got, w in zip(mla_out, want))
        return differ / (q_mla.numel() + kv_mla.numel())

    rope_bytes = 2 * (q.numel() + k.numel()) * 2 + tokens * 128 * 4
    rope_quant_bytes = (q_mla.numel() + kv_mla.numel()) * 3 + tokens * 64 * 4
    return [
        ("rope", lambda: torch.ops.flashhip.rope(q_out, k_out, q, k, cache, positions, False), check_rope, rope_bytes, 1e-2),
        ("rope_quantize_fp8 (MLA)", run_rope_quant, check_rope_quant, rope_quant_bytes, 1e-2),
        ("moe_topk (DeepSeek-V3)", lambda: ops.moe_topk(weights, ids, logits, bias, "sigmoid", 8, 4, True, 2.5),
         check_routing, logits.numel() * 4, 1e-2),
        ("moe_align_block_size", lambda: ops.moe_align_block_size(ids, experts, block, sorted_ids, expert_ids, total),
         check_align, ids.numel() * 4 + sorted_ids.numel() * 4, 0.0),
        ("moe_sum", lambda: ops.moe_sum(combine_out, combine_in), check_sum,
         (combine_in.numel() + combine_out.numel()) * 2, 1e-2),
    ]


def _gemm_cases(device: str, tokens: int):
    """fp8_gemm on a challenge shape (DeepSeek-V3's 4608x7168 projection on the GPU, scaled down
    on the CPU) in both layouts, against the float64 blockwise reference, and the activation
    quantiser over [tokens, 7168] bf16, each as (name, run, check, bytes, limit)."""
    m, n, k = (1024, 4608, 7168) if device == "cuda" else (64, 1536, 1024)
    f8 = gemm.native_fp8_dtype(device)
    cases = []
    for layout, k_contiguous in (("K-contig.", True), ("M/N-contig.", False)):
        a, b, sa, sb, _ = ref.fp8_challenge_inputs(m, n, k, 1234, device=device, fp8_dtype=f8, k_contiguous=k_contiguous)
        out = torch.full((m, n), float("nan"), device=device, dtype=torch.bfloat16)
        expected = ref.fp8_gemm(a, b, sa, sb)

        def run(out=out, a=a, b=b, sa=sa, sb=sb):
            ops.fp8_gemm(out, a, b, sa, sb)

        def check_gemm(run=run, out=out, expected=expected):
            run()
            return _max_rel_err(out, expected)

        nbytes = m * k + n * k + 2 * m * n
        cases.append((f"fp8_gemm {layout}", run, check_gemm, nbytes, 1e-2))

    x = torch.randn(tokens, 7168, device=device, dtype=torch.bfloat16)
    q = torch.empty(tokens, 7168, device=device, dtype=f8)
    s = torch.empty(7168 // 128, tokens, device=device).t()

    def check_quant():
        # The share of fp8 codes that differ from the reference, or the scales' error.
        ops.per_token_group_quant_fp8(q, s, x, 128, 1e-10, True)
        want_q, want_s = ref.group_quant_fp8(x, 128, 1e-10, f8)
        return max((q.float() != want_q.float()).float().mean().item(), _max_rel_err(s, want_s))

    cases.append(("per_token_group_quant_fp8", lambda: ops.per_token_group_quant_fp8(q, s, x, 128, 1e-10, True),
                  check_quant, x.numel() * 3 + s.numel() * 4, 1e-3))
    return cases


def check(device: str, json_path: str | None) -> int:
    tokens, hidden = (8192, 4096) if device == "cuda" else (256, 4096)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"flashhip check on {name} ({device}), torch {torch.__version__}: norms {tokens}x{hidden} bf16, "
          f"rope and MoE routing over {tokens} tokens, fp8 GEMM and group quant")
    print(f"{'op':<26}{'rel. error':>12}{'limit':>9}{'time (us)':>12}{'GB/s':>9}  result")
    results, failed = [], 0
    for op, run, check_fn, nbytes, limit in _cases(device, tokens, hidden) + _more_cases(device, tokens) + _gemm_cases(device, tokens):
        err = check_fn()
        us = _time_us(run, device)
        ok = err <= limit
        failed += not ok
        gbps = nbytes / us / 1e3
        print(f"{op:<26}{err:>12.2e}{limit:>9.0e}{us:>12.1f}{gbps:>9.1f}  {'ok' if ok else 'FAIL'}")
        results.append({"op": op, "rel_err": err, "limit": limit, "us": us, "GBps": gbps, "ok": ok})
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "shape": [tokens, hidden], "results": results}, f, indent=1)
    print("all checks passed" if not failed else f"{failed} check(s) FAILED")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flashhip", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="check every op against the reference and time it")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="also write the results here")
    p = sub.add_parser("info", help="print what was built: backend, archs, fp8 flavours, torch, library path")
    p.add_argument("--json", action="store_true", help="as JSON")
    args = parser.parse_args(argv)
    if args.command == "info":
        facts = _library.info()
        print(json.dumps(facts, indent=1) if args.json else _library.format_info(facts))
        return 0
    return check(args.device, args.json)


if __name__ == "__main__":
    sys.exit(main())
