"""Rotary embedding: flashhip vs torch.compile of the reference math vs eager PyTorch.

Shapes (bf16, q/k as strided views of the buffers an engine holds):
- llama: 32 q + 8 kv heads x 128, NeoX, Llama-3.1 cache; q/k are views of a fused
  [nnz, (32 + 2*8) * 128] qkv buffer.
- deepseek: DeepSeek-V3 MLA's rope part: q_pe = the last 64 of each of 128 q heads of 192
  (view of [nnz, 128, 192]) and one k_pe head of 64 (view of the [nnz, 576] latent row),
  GPT-J interleaved, YaRN cache. Small heads and a 1-head k: the awkward case.
Each at 8192 tokens (bandwidth) and 64 tokens (decode-batch latency).

Bytes counted: q and k read and written once (only the rotated views), positions, and one
cache row (rotary_dim fp32) per token. `--quick` runs small sizes (on the CPU when there is no
GPU). Writes JSON to --out and prints the table.

rope_set_kv_buffer (shape llama_kv/<tokens>): the llama shape rotated in place as SGLang calls
sgl-kernel's apply_rope_with_cos_sin_cache_inplace with a FusedSetKVBufferArg, the rotated k
and the v view of the same qkv buffer written to rows cache_loc (distinct, random) of a
[4 * tokens, 8, 128] KV pool. flashhip's fused op against, in the same run, flashhip's rope
followed by the two cache writes SGLang does otherwise: `k_cache[loc] = k; v_cache[loc] = v`
("rope+index_put") or `index_copy_` ("rope+index_copy"); `x_<peer>` is peer time / fused time.
Bytes counted (the fused op's): q and k read and written, v read, a k and a v row written per
token, positions, cache_loc and one cos|sin row per token.

rope_quantize_fp8 (shape deepseek_quant/<tokens>): DeepSeek-V3 MLA as FlashInfer's
mla_rope_quantize_fp8 is called: q_nope/q_rope the 512/64 split of each of 128 q heads of 576
(views of [nnz, 128, 576]), k_nope/k_rope the 512/64 split of the [nnz, 576] latent row, NeoX,
YaRN cache, e4m3fn outputs as views of fused [nnz, 128, 576] / [nnz, 576] fp8 buffers (what an
fp8 MLA attention reads). flashhip against torch.compile of the reference (rotate, scale, clamp,
cast) and a copy of the same bytes. Bytes counted: the bf16 inputs read, the fp8 outputs
written, positions and one cos|sin row per token.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Report, graph_time_us, same_bytes_copy, time_us  # noqa: E402

import flashhip  # noqa: E402
from flashhip import reference as ref  # noqa: E402

ops = torch.ops.flashhip


def torch_rope(q, k, cache, positions, interleave: bool):
    """The reference math, results in the input dtype: what the peers run."""
    q_rot, k_rot = ref.rope(q, k, cache, positions, interleave)
    return q_rot.to(q.dtype), k_rot.to(k.dtype)


def llama_inputs(nnz, hq, hk, head_dim, device, dtype):
    qkv = torch.randn(nnz, (hq + 2 * hk) * head_dim, device=device, dtype=dtype)
    q = qkv[:, : hq * head_dim].view(nnz, hq, head_dim)
    k = qkv[:, hq * head_dim : (hq + hk) * head_dim].view(nnz, hk, head_dim)
    cache = flashhip.llama3_cos_sin_cache(131072, head_dim, device=device)
    return q, k, cache, False


def deepseek_inputs(nnz, heads, device, dtype):
    q_full = torch.randn(nnz, heads, 192, device=device, dtype=dtype)
    latent = torch.randn(nnz, 576, device=device, dtype=dtype)
    q = q_full[..., 128:]
    k = latent[:, 512:].unsqueeze(1)
    cache = flashhip.yarn_cos_sin_cache(163840, 64, 10000.0, 40.0, 4096, mscale=1.0, mscale_all_dim=1.0, device=device)
    return q, k, cache, True


def bytes_moved(q, k, positions, rotary_dim) -> int:
    qk = (q.numel() + k.numel()) * q.element_size()
    return 2 * qk + positions.numel() * positions.element_size() + positions.numel() * rotary_dim * 4


def bench_case(report: Report, name: str, q, k, cache, interleave: bool, device) -> None:
    nnz = q.shape[0]
    positions = torch.randint(0, cache.shape[0], (nnz,), device=device, dtype=torch.int64)
    nbytes = bytes_moved(q, k, positions, cache.shape[1])
    shape = f"{name}/{nnz}"
    dtype = str(q.dtype).replace("torch.", "")
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)

    def ours():
        ops.rope(q_out, k_out, q, k, cache, positions, interleave)

    def ours_in_place():
        ops.rope(q, k, q, k, cache, positions, interleave)

    compiled = torch.compile(torch_rope, fullgraph=True, dynamic=False)
    peers = {
        "torch.compile": lambda: compiled(q, k, cache, positions, interleave),
        "eager": lambda: torch_rope(q, k, cache, positions, interleave),
    }

    expected_q, _ = torch_rope(q, k, cache, positions, interleave)
    ours()
    torch.testing.assert_close(q_out.float(), expected_q.float(), rtol=1.6e-2, atol=1.6e-2)

    report.add("rope", shape, dtype, "flashhip", time_us(ours), nbytes,
               inplace_us=round(time_us(ours_in_place), 2), graph_us=_round(graph_time_us(ours)))
    for impl, fn in peers.items():
        fn()  # compile / warm up outside the timing
        report.add("rope", shape, dtype, impl, time_us(fn), nbytes, graph_us=_round(_graph_or_none(fn)))
    # The ceiling at this size: one device copy of the q and k bytes (read once, written once).
    # Unlike the 1 GiB copy in the header it pays the same launch, ramp and tail as the kernel.
    src = torch.randn(q.numel() + k.numel(), device=device, dtype=q.dtype)
    dst = torch.empty_like(src)
    report.add("rope", shape, dtype, "copy_same_bytes", time_us(lambda: dst.copy_(src)), 2 * src.numel() * src.element_size())


def bench_kv_case(report: Report, nnz: int, hq: int, hk: int, head_dim: int, device, dtype) -> None:
    """rope_set_kv_buffer against rope + two cache writes (see the module docstring)."""
    qkv = torch.randn(nnz, (hq + 2 * hk) * head_dim, device=device, dtype=dtype)
    q = qkv[:, : hq * head_dim].view(nnz, hq, head_dim)
    k = qkv[:, hq * head_dim : (hq + hk) * head_dim].view(nnz, hk, head_dim)
    v = qkv[:, (hq + hk) * head_dim :].view(nnz, hk, head_dim)
    cache = flashhip.llama3_cos_sin_cache(131072, head_dim, device=device)
    interleave = False
    slots = 4 * nnz
    k_cache = torch.zeros(slots, hk, head_dim, device=device, dtype=dtype)
    v_cache = torch.zeros_like(k_cache)
    loc = torch.randperm(slots, device=device)[:nnz]
    positions = torch.randint(0, cache.shape[0], (nnz,), device=device, dtype=torch.int64)
    shape = f"llama_kv/{nnz}"
    dtype_name = str(dtype).replace("torch.", "")
    elem = q.element_size()
    nbytes = (2 * (q.numel() + k.numel()) + v.numel() + k.numel() + v.numel()) * elem + nnz * (8 + 8 + cache.shape[1] * 4)

    def fused():
        ops.rope_set_kv_buffer(q, k, k_cache, v_cache, q, k, v, cache, positions, loc, interleave)

    def rope_then_index_put():
        ops.rope(q, k, q, k, cache, positions, interleave)
        k_cache[loc] = k
        v_cache[loc] = v

    def rope_then_index_copy():
        ops.rope(q, k, q, k, cache, positions, interleave)
        k_cache.index_copy_(0, loc, k)
        v_cache.index_copy_(0, loc, v)

    # The same results from both paths (to the rounding of a rotation), before timing.
    saved = (qkv.clone(), k_cache.clone(), v_cache.clone())
    fused()
    got = (qkv.clone(), k_cache.clone(), v_cache.clone())
    for t, s in zip((qkv, k_cache, v_cache), saved):
        t.copy_(s)
    rope_then_index_put()
    for a, b in zip(got, (qkv, k_cache, v_cache)):
        torch.testing.assert_close(a, b, rtol=1.6e-2, atol=1.6e-2)

    report.add("rope_set_kv_buffer", shape, dtype_name, "flashhip", time_us(fused), nbytes,
               graph_us=_round(graph_time_us(fused)))
    report.add("rope_set_kv_buffer", shape, dtype_name, "rope+index_put", time_us(rope_then_index_put), nbytes,
               graph_us=_round(_graph_or_none(rope_then_index_put)))
    report.add("rope_set_kv_buffer", shape, dtype_name, "rope+index_copy", time_us(rope_then_index_copy), nbytes,
               graph_us=_round(_graph_or_none(rope_then_index_copy)))
    report.add("rope_set_kv_buffer", shape, dtype_name, "copy_same_bytes", time_us(same_bytes_copy(nbytes, device)), nbytes)


def bench_quant_case(report: Report, nnz: int, heads: int, device, dtype) -> None:
    """rope_quantize_fp8 on DeepSeek MLA shapes against torch.compile of the reference (see the
    module docstring)."""
    nope, rope_dim = 512, 64
    q = torch.randn(nnz, heads, nope + rope_dim, device=device, dtype=dtype)
    latent = torch.randn(nnz, nope + rope_dim, device=device, dtype=dtype)
    q_nope, q_rope, k_nope, k_rope = q[..., :nope], q[..., nope:], latent[:, :nope], latent[:, nope:]
    cache = flashhip.yarn_cos_sin_cache(163840, rope_dim, 10000.0, 40.0, 4096, mscale=1.0, mscale_all_dim=1.0,
                                        device=device)
    positions = torch.randint(0, cache.shape[0], (nnz,), device=device, dtype=torch.int64)
    fp8 = torch.float8_e4m3fn
    q_fp8 = torch.empty(q.shape, device=device, dtype=fp8)
    kv_fp8 = torch.empty(latent.shape, device=device, dtype=fp8)
    outs = (q_fp8[..., nope:], kv_fp8[:, nope:], q_fp8[..., :nope], kv_fp8[:, :nope])
    scale_q, scale_kv = 0.5, 0.25
    shape = f"deepseek_quant/{nnz}"
    dtype_name = str(dtype).replace("torch.", "")
    elements = q.numel() + latent.numel()
    nbytes = elements * (q.element_size() + 1) + nnz * (8 + rope_dim * 4)

    def ours():
        ops.rope_quantize_fp8(*outs, q_rope, k_rope, q_nope, k_nope, cache, positions, False, scale_q, scale_kv)

    def torch_quant(q_rope, k_rope, q_nope, k_nope, cache, positions):
        return ref.rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cache, positions, False, scale_q, scale_kv, fp8)

    compiled = torch.compile(torch_quant, fullgraph=True, dynamic=False)
    ours()
    expected = compiled(q_rope, k_rope, q_nope, k_nope, cache, positions)
    for got, want in zip(outs, expected):  # one fp8 step apart at most (fp32 rotation rounding)
        torch.testing.assert_close(got.float(), want.float(), rtol=0.13, atol=2**-9)

    report.add("rope_quantize_fp8", shape, dtype_name, "flashhip", time_us(ours), nbytes,
               graph_us=_round(graph_time_us(ours)))
    peer = lambda: compiled(q_rope, k_rope, q_nope, k_nope, cache, positions)  # noqa: E731
    report.add("rope_quantize_fp8", shape, dtype_name, "torch.compile", time_us(peer), nbytes,
               graph_us=_round(_graph_or_none(peer)))
    # The ceiling: a copy of as many bytes as the op reads plus writes (half read, half written),
    # with the same launch tail.
    src = torch.randn(nbytes // 8, device=device)
    dst = torch.empty_like(src)
    report.add("rope_quantize_fp8", shape, dtype_name, "copy_same_bytes", time_us(lambda: dst.copy_(src)),
               2 * src.numel() * src.element_size())


def _graph_or_none(fn):
    try:
        return graph_time_us(fn)
    except Exception:  # a peer that cannot be captured is reported without graph time
        return None


def _round(x):
    return None if x is None else round(x, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rope.json")
    parser.add_argument("--quick", action="store_true", help="small sizes (runs on the CPU when there is no GPU)")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.quick:
        parser.error("no GPU visible to torch: run with --quick for the small CPU sizes")
    dtype = torch.bfloat16
    report = Report("rope")
    if args.quick:
        cases = [("llama", llama_inputs(n, 8, 2, 128, device, dtype)) for n in (256, 16)]
        cases += [("deepseek", deepseek_inputs(n, 16, device, dtype)) for n in (256, 16)]
    else:
        cases = [("llama", llama_inputs(n, 32, 8, 128, device, dtype)) for n in (8192, 64)]
        cases += [("deepseek", deepseek_inputs(n, 128, device, dtype)) for n in (8192, 64)]
    for name, (q, k, cache, interleave) in cases:
        bench_case(report, name, q, k, cache, interleave, device)
    if args.quick:
        for n in (256, 16):
            bench_kv_case(report, n, 8, 2, 128, device, dtype)
            bench_quant_case(report, n, 16, device, dtype)
    else:
        for n in (8192, 64):
            bench_kv_case(report, n, 32, 8, 128, device, dtype)
            bench_quant_case(report, n, 128, device, dtype)
    report.finish(args.out)


if __name__ == "__main__":
    main()
