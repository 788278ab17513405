"""Times the tuning knobs that are read once per process (FLASHHIP_ROPE_HEADS_PER_THREAD,
FLASHHIP_MOE_TOPK_LAYOUT): each setting runs in its own process, and every process also times
the same-size device copy, so settings compare within one run. Prints one line per (setting, case) and writes JSON to --out.
With --library LABEL=PATH (repeatable) it compares builds instead: each library runs with the
default settings, the libraries taking turns, so that two commits compare within one run
(`scripts/gpu_run.sh OUTDIR ab` builds the other commit).

Cases: rope llama/8192 (bench_rope's inputs, out of place) and DeepSeek-V3 moe_topk at
T = 1, 64, 4096 and 16384 (bench_moe's call).
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
    {"FLASHHIP_MOE_TOPK_LAYOUT": "contiguous"},  # DeepSeek-V3 without its shape compiled in
    {"FLASHHIP_MOE_TOPK_LAYOUT": "strided"},
    {"FLASHHIP_ROPE_HEADS_PER_THREAD": "4"},
]


def child() -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_rope import llama_inputs  # noqa: E402
    from common import graph_time_us, time_us  # noqa: E402

    ops = torch.ops.flashhip
    results = {}
    q, k, cache, _ = llama_inputs(8192, 32, 8, 128, "cuda", torch.bfloat16)
    positions = torch.randint(0, cache.shape[0], (8192,), device="cuda")
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    rope = lambda: ops.rope(q_out, k_out, q, k, cache, positions, False)  # noqa: E731
    results["rope llama/8192"] = time_us(rope)
    # The same bytes as a plain copy: q and k in, q_out and k_out out.
    src = torch.randn(q.numel() + k.numel(), device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    results["copy of rope's bytes"] = time_us(lambda: dst.copy_(src))
    for tokens in (1, 64, 4096, 16384):
        g = torch.randn(tokens, 256, device="cuda")
        bias = torch.randn(256, device="cuda") * 0.05
        w = torch.empty(tokens, 8, device="cuda")
        ids = torch.empty(tokens, 8, dtype=torch.int32, device="cuda")
        call = lambda: ops.moe_topk(w, ids, g, bias, "sigmoid", 8, 4, True, 2.5)  # noqa: E731
        results[f"moe_topk T={tokens}"] = time_us(call)
        results[f"moe_topk T={tokens} graph"] = graph_time_us(call)
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each setting (spread = noise)")
    parser.add_argument("--library", action="append", default=[], metavar="LABEL=PATH",
                        help="compare these builds (default settings) instead of the settings")
    args = parser.parse_args()
    if args.child:
        child()
        return
    if args.library:
        variants = [(label, {"FLASHHIP_LIBRARY": path}) for label, path in (lib.split("=", 1) for lib in args.library)]
    else:
        variants = [(" ".join(f"{k.replace('FLASHHIP_', '')}={v}" for k, v in s.items()) or "default", s) for s in SETTINGS]
    rows = []
    for rep in range(args.repeat):
        for label, setting in variants:
            env = dict(os.environ, **setting)
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
