"""Times the launchers' tuning fields through their development overrides, read once per process
(FLASHHIP_DEV_*: csrc/ops/dev_overrides.h): each setting runs in its own process, and every process also times
the same-size device copy, so settings compare within one run. Prints one line per (setting, case) and writes JSON to --out.
With --library LABEL=PATH (repeatable) it compares builds instead: each library runs with the
default settings, the libraries taking turns, so that two commits compare within one run
(`scripts/gpu_run.sh OUTDIR ab` builds the other commit).

Cases (--cases, default rope,moe): rope llama/8192 (bench_rope's inputs, out of place),
DeepSeek-V3 moe_topk at T = 1, 64, 4096 and 16384 (bench_moe's call), and norm: the bf16 norms
(rmsnorm, fused_add_rmsnorm and their fp8 forms) at 8192x4096, 16384x8192 and 4096x7168, a
same-size copy beside each and torch.compile's rmsnorm at 8192x4096, and quant:
per_token_group_quant_fp8 (bf16, group 128, bench_gemm's call) at 8192x7168 with row-major and
M-major scales and at 1024x7168, a copy of the same bytes beside each; gemm: fp8_gemm at the
challenge's 18 benchmark shapes and 8192^3 (that also M/N-contiguous, and a bf16 matmul beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = [
    {},
    {"FLASHHIP_DEV_MOE_TOPK_LAYOUT": "contiguous"},  # DeepSeek-V3 without its shape compiled in
    {"FLASHHIP_DEV_MOE_TOPK_LAYOUT": "strided"},
    {"FLASHHIP_DEV_ROPE_HEADS_PER_THREAD": "4"},
    {"FLASHHIP_DEV_NORM_GRID": "rows"},
    {"FLASHHIP_DEV_NORM_THREADS_PER_ROW": "128"},
    {"FLASHHIP_DEV_NORM_THREADS_PER_ROW": "128", "FLASHHIP_DEV_NORM_GRID": "rows"},
    {"FLASHHIP_DEV_NORM_THREADS_PER_ROW": "512"},
    {"FLASHHIP_DEV_QUANT_GROUPS_IN_FLIGHT": "4"},
    {"FLASHHIP_DEV_QUANT_GROUPS_IN_FLIGHT": "8"},
    {"FLASHHIP_DEV_GEMM_STREAM_K": "on"},
    {"FLASHHIP_DEV_GEMM_STREAM_K": "off"},
]


def child() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/
    if os.environ.get("FLASHHIP_SWEEP_RAW_LIBRARY"):
        # An older commit's library beside this tree's Python package, which may wrap ops that
        # library lacks: only its torch.ops (the norm and quant cases need nothing else).
        import torch

        torch.ops.load_library(os.environ["FLASHHIP_LIBRARY"])
    else:
        import flashhip  # noqa: F401,E402  (loads the library FLASHHIP_LIBRARY names)

    results = {}
    cases = os.environ.get("FLASHHIP_SWEEP_CASES", "rope,moe").split(",")
    if "norm" in cases:
        norm_cases(results)
    if "rope" in cases:
        rope_cases(results)
    if "moe" in cases:
        moe_cases(results)
    if "quant" in cases:
        quant_cases(results)
    if "gemm" in cases:
        gemm_cases(results)
    print(json.dumps(results))


def norm_cases(results: dict) -> None:
    import torch

    from bench_norm import rms_eager  # noqa: E402
    from common import time_us  # noqa: E402

    ops = torch.ops.flashhip
    for tokens, hidden in ((8192, 4096), (16384, 8192), (4096, 7168)):
        shape = f"{tokens}x{hidden}"
        x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(hidden, device="cuda", dtype=torch.bfloat16)
        out = torch.empty_like(x)
        results[f"copy {shape}"] = time_us(lambda: out.copy_(x))
        results[f"rmsnorm {shape}"] = time_us(lambda: ops.rmsnorm(out, x, w, 1e-6, False))
        if hidden == 4096:
            rms_compiled = torch.compile(rms_eager)
            results[f"compile rmsnorm {shape}"] = time_us(lambda: rms_compiled(x, w))
        r = torch.randn_like(x)
        results[f"fused_add_rmsnorm {shape}"] = time_us(lambda: ops.fused_add_rmsnorm(x, r, w, 1e-6, False))
        q = torch.empty(tokens, hidden, device="cuda", dtype=torch.float8_e4m3fn)
        scale = torch.tensor([0.05], device="cuda")
        results[f"rmsnorm_quant {shape}"] = time_us(lambda: ops.rmsnorm_quant(q, x, w, scale, 1e-6, False))
        results[f"fused_add_rmsnorm_quant {shape}"] = time_us(
            lambda: ops.fused_add_rmsnorm_quant(q, x, r, w, scale, 1e-6, False)
        )


def rope_cases(results: dict) -> None:
    import torch

    from bench_rope import llama_inputs  # noqa: E402
    from common import time_us  # noqa: E402

    ops = torch.ops.flashhip
    q, k, cache, _ = llama_inputs(8192, 32, 8, 128, "cuda", torch.bfloat16)
    positions = torch.randint(0, cache.shape[0], (8192,), device="cuda")
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    rope = lambda: ops.rope(q_out, k_out, q, k, cache, positions, False)  # noqa: E731
    results["rope llama/8192"] = time_us(rope)
    # The same bytes as a plain copy: q and k in, q_out and k_out out.
    src = torch.randn(q.numel() + k.numel(), device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    results["copy of rope's bytes"] = time_us(lambda: dst.copy_(src))


def moe_cases(results: dict) -> None:
    import torch

    from common import DeepSeekV3TopkCase, graph_time_us, time_us  # noqa: E402

    for tokens in (1, 64, 4096, 16384):
        call = DeepSeekV3TopkCase(tokens).call
        results[f"moe_topk T={tokens}"] = time_us(call)
        results[f"moe_topk T={tokens} graph"] = graph_time_us(call)


def gemm_cases(results: dict) -> None:
    """fp8_gemm on inputs drawn as the challenge's (N(0,1) fp8 operands and scales, bench_gemm's),
    built here with torch alone (the Python package may be newer than the library): K-contiguous,
    and at 8192^3 also the challenge's M/N-contiguous views."""
    import torch

    from common import time_us  # noqa: E402

    ops = torch.ops.flashhip
    # The challenge's 18 benchmark shapes (FP8_CHALLENGE_BENCH_SHAPES), then 8192^3.
    shapes = [(m, n, k) for m in (1024, 6144) for n, k in ((1536, 7168), (3072, 1536), (576, 7168), (7168, 256), (7168, 2048),
                                                           (4608, 7168), (7168, 2304), (512, 7168), (4096, 512))]
    for m, n, k in shapes + [(8192, 8192, 8192)]:
        gen = torch.Generator(device="cuda")
        gen.manual_seed(m + n + k)
        a_mn = torch.randn((k, m), dtype=torch.bfloat16, device="cuda", generator=gen).to(torch.float8_e4m3fn).T
        b_mn = torch.randn((k, n), dtype=torch.bfloat16, device="cuda", generator=gen).to(torch.float8_e4m3fn).T
        sa_mn = torch.randn((k // 128, m), device="cuda", generator=gen).T
        sb_mn = torch.randn((k // 128, (n + 127) // 128), device="cuda", generator=gen).T
        a, b, sa, sb = a_mn.contiguous(), b_mn.contiguous(), sa_mn.contiguous(), sb_mn.contiguous()
        out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
        results[f"fp8_gemm {m}x{n}x{k}"] = time_us(lambda: ops.fp8_gemm(out, a, b, sa, sb))
        if m == n == k:
            results[f"fp8_gemm M/N-contig. {m}x{n}x{k}"] = time_us(lambda: ops.fp8_gemm(out, a_mn, b_mn, sa_mn, sb_mn))
            results[f"bf16 matmul {m}x{n}x{k}"] = time_us(lambda: a.to(torch.bfloat16) @ b.to(torch.bfloat16).t())


def quant_cases(results: dict) -> None:
    import torch

    from common import same_bytes_copy, time_us  # noqa: E402

    ops = torch.ops.flashhip
    for m, k in ((8192, 7168), (1024, 7168)):
        shape = f"{m}x{k}"
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        q = torch.empty(m, k, device="cuda", dtype=torch.float8_e4m3fn)
        s_row = torch.empty(m, k // 128, device="cuda")
        results[f"group_quant {shape}"] = time_us(lambda: ops.per_token_group_quant_fp8(q, s_row, x, 128, 1e-10, False))
        if m == 8192:
            s_mm = torch.empty(k // 128, m, device="cuda").t()
            results[f"group_quant M-major {shape}"] = time_us(
                lambda: ops.per_token_group_quant_fp8(q, s_mm, x, 128, 1e-10, True)
            )
        results[f"copy of group_quant's bytes {shape}"] = time_us(
            same_bytes_copy(m * k * 2 + m * k + m * (k // 128) * 4, "cuda")
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each setting (spread = noise)")
    parser.add_argument("--cases", default="rope,moe", help="comma-separated: rope, moe, norm, quant, gemm")
    parser.add_argument("--library", action="append", default=[], metavar="LABEL=PATH",
                        help="compare these builds (default settings) instead of the settings")
    args = parser.parse_args()
    if args.child:
        child()
        return
    if args.library:
        variants = [(label, {"FLASHHIP_LIBRARY": path}) for label, path in (lib.split("=", 1) for lib in args.library)]
    else:
        # The default, and each setting of a knob of a family among the cases.
        families = [c.upper() for c in args.cases.split(",")]
        settings = [s for s in SETTINGS if not s or any(f"FLASHHIP_DEV_{f}_" in k for k in s for f in families)]
        variants = [(" ".join(f"{k.replace('FLASHHIP_DEV_', '')}={v}" for k, v in s.items()) or "default", s) for s in settings]
    rows = []
    for rep in range(args.repeat):
        for label, setting in variants:
            env = dict(os.environ, FLASHHIP_SWEEP_CASES=args.cases, **setting)
            out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(setting, "failed:", out.stderr[-2000:])
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"setting": label, "repeat": rep, **res})
            print(f"{label:<34} " + "  ".join(f"{k}={v:.2f}" for k, v in res.items()), flush=True)
    print("best of the repeats (us):")
    for label, _ in variants:
        mine = [r for r in rows if r["setting"] == label]
        if mine:
            cases = [k for k in mine[0] if k not in ("setting", "repeat")]
            print(f"{label:<34} " + "  ".join(f"{k}={min(r[k] for r in mine):.2f}" for k in cases), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
