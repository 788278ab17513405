"""Runs each benchmark case of interest once inside a profiler range, after a warm-up, so that
`ncu --profile-from-start off` sees exactly one launch of each of our kernels (and nothing of
the warm-up or of torch's own kernels outside the range).

Usage (scripts/gpu_run.sh OUTDIR profile does this):
  ncu --profile-from-start off --section SpeedOfLight ... python benchmarks/tools/profile_cases.py [case ...]
Cases: see CASES below; none given runs them all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Dict

import torch

import flashhip

# The benchmark scripts' folder (bench_norm's peers, common's cases).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import DeepSeekV3TopkCase  # noqa: E402


def moe_topk_case(tokens: int) -> Callable[[], None]:
    return DeepSeekV3TopkCase(tokens).call


def moe_align_case(tokens: int) -> Callable[[], None]:
    ids = torch.randint(0, 256, (tokens, 8), device="cuda", dtype=torch.int32)
    capacity = ids.numel() + 256 * 63
    sorted_ids = torch.empty(capacity, dtype=torch.int32, device="cuda")
    expert_ids = torch.empty((capacity + 63) // 64, dtype=torch.int32, device="cuda")
    total = torch.empty(1, dtype=torch.int32, device="cuda")
    return lambda: torch.ops.flashhip.moe_align_block_size(ids, 256, 64, sorted_ids, expert_ids, total)


def norm_case(op: str, rows: int, hidden: int) -> Callable[[], None]:
    x = torch.randn(rows, hidden, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(hidden, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(x)
    if op == "rmsnorm":
        return lambda: torch.ops.flashhip.rmsnorm(out, x, w, 1e-6, False)
    if op == "rmsnorm_quant":
        out8 = torch.empty(rows, hidden, device="cuda", dtype=torch.float8_e4m3fn)
        scale = torch.tensor([0.05], device="cuda")
        return lambda: torch.ops.flashhip.rmsnorm_quant(out8, x, w, scale, 1e-6, False)
    residual = torch.randn_like(x)
    return lambda: torch.ops.flashhip.fused_add_rmsnorm(x, residual, w, 1e-6, False)


def peer_norm_case(peer: str, rows: int, hidden: int) -> Callable[[], None]:
    """The peers at the same shape: torch.compile of the reference math (rmsnorm, or its fp8 form), a device copy."""
    x = torch.randn(rows, hidden, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(hidden, device="cuda", dtype=torch.bfloat16)
    if peer == "copy":
        out = torch.empty_like(x)
        return lambda: out.copy_(x)
    from bench_norm import rms_eager, rms_quant_eager  # bench_norm's peers (benchmarks/ is on sys.path)

    if peer == "compile_quant":
        compiled_quant = torch.compile(rms_quant_eager)
        scale = torch.tensor([0.05], device="cuda")
        return lambda: compiled_quant(x, w, scale)
    compiled = torch.compile(rms_eager)
    return lambda: compiled(x, w)


def rope_llama_case(tokens: int) -> Callable[[], None]:
    """32 q + 8 kv heads x 128 as strided views of one qkv buffer, out of place (bench_rope's case)."""
    qkv = torch.randn(tokens, 48 * 128, device="cuda", dtype=torch.bfloat16)
    q = qkv[:, : 32 * 128].view(tokens, 32, 128)
    k = qkv[:, 32 * 128 : 40 * 128].view(tokens, 8, 128)
    cache = flashhip.llama3_cos_sin_cache(131072, 128, device="cuda")
    positions = torch.randint(0, cache.shape[0], (tokens,), device="cuda")
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    return lambda: torch.ops.flashhip.rope(q_out, k_out, q, k, cache, positions, False)


def gemm_case(m: int, n: int, k: int, impl: str = "flashhip") -> Callable[[], None]:
    """fp8_gemm on the challenge's inputs (K-contiguous), or cuBLASLt's blockwise _scaled_mm on them."""
    from flashhip import reference as ref
    from bench_gemm import cublas_blockwise

    a, b, sa, sb, _ = ref.fp8_challenge_inputs(m, n, k, 1000 + m, device="cuda", fp8_dtype=torch.float8_e4m3fn,
                                               k_contiguous=True)
    if impl == "cuBLASLt":
        return cublas_blockwise(a, b, sa, sb)
    out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
    return lambda: torch.ops.flashhip.fp8_gemm(out, a, b, sa, sb)


def group_quant_case(rows: int, hidden: int, m_major: bool) -> Callable[[], None]:
    x = torch.randn(rows, hidden, device="cuda", dtype=torch.bfloat16)
    q = torch.empty(rows, hidden, device="cuda", dtype=torch.float8_e4m3fn)
    s = torch.empty(hidden // 128, rows, device="cuda").t() if m_major else torch.empty(rows, hidden // 128, device="cuda")
    return lambda: torch.ops.flashhip.per_token_group_quant_fp8(q, s, x, 128, 1e-10, m_major)


def copy_bytes_case(nbytes: int) -> Callable[[], None]:
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


CASES: Dict[str, Callable[[], Callable[[], None]]] = {
    "moe_topk_T1": lambda: moe_topk_case(1),
    "moe_topk_T64": lambda: moe_topk_case(64),
    "moe_topk_T4096": lambda: moe_topk_case(4096),
    "moe_align_T64": lambda: moe_align_case(64),
    "moe_align_T4096": lambda: moe_align_case(4096),
    "rmsnorm_8192x4096": lambda: norm_case("rmsnorm", 8192, 4096),
    "fused_add_rmsnorm_8192x4096": lambda: norm_case("fused_add_rmsnorm", 8192, 4096),
    "rmsnorm_quant_8192x4096": lambda: norm_case("rmsnorm_quant", 8192, 4096),
    "compile_rmsnorm_8192x4096": lambda: peer_norm_case("compile", 8192, 4096),
    "compile_rmsnorm_quant_8192x4096": lambda: peer_norm_case("compile_quant", 8192, 4096),
    "copy_8192x4096": lambda: peer_norm_case("copy", 8192, 4096),
    "rope_llama_8192": lambda: rope_llama_case(8192),
    "group_quant_8192x7168": lambda: group_quant_case(8192, 7168, False),
    "group_quant_mmajor_8192x7168": lambda: group_quant_case(8192, 7168, True),
    "copy_group_quant_8192x7168": lambda: copy_bytes_case(8192 * 7168 * 3 + 8192 * 56 * 4),
}
# fp8_gemm's decode shapes, ours and cuBLASLt's: gemm_MxNxK, cublas_MxNxK.
for _shape in ("1x512x7168", "1x4608x7168", "16x7168x2048", "64x4608x7168", "128x7168x2048"):
    _m, _n, _k = (int(x) for x in _shape.split("x"))
    CASES["gemm_" + _shape] = lambda m=_m, n=_n, k=_k: gemm_case(m, n, k)
    CASES["cublas_" + _shape] = lambda m=_m, n=_n, k=_k: gemm_case(m, n, k, "cuBLASLt")


def main() -> None:
    names = sys.argv[1:] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; known: {list(CASES)}")
    calls = {name: CASES[name]() for name in names}
    for fn in calls.values():
        for _ in range(3):
            fn()
    torch.cuda.synchronize()
    cudart = torch.cuda.cudart()
    # FLASHHIP_PROFILE_REPEAT=n runs each case n times in its range: with `ncu --cache-control none`
    # the later launches then start from the L2 that the one before left, as back-to-back calls do.
    repeat = int(os.environ.get("FLASHHIP_PROFILE_REPEAT", "1"))
    for name, fn in calls.items():
        print("case", name, flush=True)
        cudart.cudaProfilerStart()
        for _ in range(repeat):
            fn()
        torch.cuda.synchronize()
        cudart.cudaProfilerStop()


if __name__ == "__main__":
    main()
