"""Every GPU kernel variant once, on small inputs, for compute-sanitizer (memcheck, racecheck).
Run with PYTORCH_NO_CUDA_MEMORY_CACHING=1 so each tensor is its own allocation and an
out-of-bounds access cannot land in a neighbour. Exits non-zero on a wrong result."""

import os

import torch

import flashhip
from flashhip import reference as ref

ops = torch.ops.flashhip
dev = "cuda"


def close(a, b, tol):
    torch.testing.assert_close(a.float(), b.float(), rtol=tol, atol=tol)


def norm_cases():
    # hidden sizes covering: sub-wave rows sharing a block, one vector per thread, 2/4/8 vectors
    # per thread, streaming (too big for registers), and the unaligned scalar streaming path.
    for hidden in (64, 1024, 4096, 8192, 16384, 70000, 4099):
        for dtype in (torch.bfloat16, torch.float32):
            x = torch.randn(3, hidden, device=dev, dtype=dtype)
            r = torch.randn_like(x)
            w = torch.randn(hidden, device=dev, dtype=dtype)
            out = torch.empty_like(x)
            tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
            ops.rmsnorm(out, x, w, 1e-6, True)
            close(out, ref.rmsnorm(x, w, gemma=True), tol)
            ops.layernorm(out, x, w, w, 1e-5)
            close(out, ref.layernorm(x, w, w), tol)
            y, new_r = ref.fused_add_rmsnorm(x, r, w)
            q = torch.empty(3, hidden, device=dev, dtype=torch.float8_e4m3fnuz)
            ops.fused_add_rmsnorm_quant(q, x, r.clone(), w, torch.ones(1, device=dev), 1e-6, False)
            ops.fused_add_rmsnorm_quant(q, x, r.clone(), w, torch.ones(1, device=dev), 1e-6, False, True)  # fp32 sum
            ops.rmsnorm_quant(q, x, w, torch.ones(1, device=dev), 1e-6, False)
            ops.layernorm_quant(q, x, w, w.float(), torch.ones(1, device=dev), 1e-5)
            x2 = x.clone()
            ops.fused_add_rmsnorm(x2, r, w, 1e-6, False)
            close(r, new_r, tol)
            close(x2, y, tol)
    torch.cuda.synchronize()
    print("norm: ok")


def rope_cases():
    for head_dim, rotary_dim in ((128, 128), (80, 64), (64, 32)):
        for interleave in (False, True):
            for dtype in (torch.bfloat16, torch.float32):
                nnz, hq, hk = 37, 8, 2
                qkv = torch.randn(nnz, (hq + 2 * hk) * head_dim, device=dev, dtype=dtype)
                q = qkv[:, : hq * head_dim].view(nnz, hq, head_dim)
                k = qkv[:, hq * head_dim : (hq + hk) * head_dim].view(nnz, hk, head_dim)
                cache = flashhip.cos_sin_cache(4096, rotary_dim, device=dev)
                positions = torch.randint(0, 4096, (nnz,), device=dev)
                q_ref, k_ref = ref.rope(q, k, cache, positions, interleave)
                q_out, k_out = flashhip.rope(q, k, cache, positions, interleave)
                tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
                close(q_out, q_ref, tol)
                close(k_out, k_ref, tol)
                flashhip.rope(q, k, cache, positions.int(), interleave, q_out=q, k_out=k)  # in place
                close(q, q_ref, tol)
    # rope_quantize_fp8: MLA views of fused buffers (the vector path; offset 1: the scalar path)
    # and GQA, each rotation style and fp8 flavour, against the CPU reference (one fp8 step).
    for offset in (0, 1):
        for interleave in (False, True):
            for f8 in (torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2):
                nnz, heads = 37, 8
                q = torch.randn(nnz * heads * 576 + offset, device=dev).to(torch.bfloat16)[offset:].view(nnz, heads, 576)
                kv = torch.randn(nnz * 576 + offset, device=dev).to(torch.bfloat16)[offset:].view(nnz, 576)
                ins = (q[..., 512:], kv[:, 512:], q[..., :512], kv[:, :512])
                gqa = (torch.randn(nnz, heads, 64, device=dev, dtype=torch.half),
                       torch.randn(nnz, 2, 64, device=dev, dtype=torch.half),
                       torch.randn(nnz, heads, 24, device=dev, dtype=torch.half),
                       torch.randn(nnz, 2, 24, device=dev, dtype=torch.half))
                cache = flashhip.cos_sin_cache(4096, 64, device=dev)
                positions = torch.randint(0, 4096, (nnz,), device=dev)
                for parts in (ins, gqa):
                    got = flashhip.rope_quantize_fp8(*parts, cache, positions, interleave, 0.5, 2.0, out_dtype=f8)
                    want = ref.rope_quantize_fp8(*(t.cpu() for t in parts), cache.cpu(), positions.cpu(), interleave,
                                                 0.5, 2.0, f8)
                    for g, w in zip(got, want):
                        torch.testing.assert_close(g.cpu().float(), w.float(), rtol=0.26, atol=2**-9)
    torch.cuda.synchronize()
    print("rope: ok")


def moe_cases():
    # Groups across a whole warp, across runs of lanes, and in shared memory; no groups.
    for experts, k, groups, keep in ((256, 8, 8, 4), (128, 8, 8, 3), (384, 16, 4, 2), (60, 4, 1, 1)):
        for tokens in (1, 37, 300):
            g = torch.randn(tokens, experts, device=dev)
            bias = torch.randn(experts, device=dev) * 0.1
            w, ids = flashhip.moe_topk(g, k, bias, "sigmoid", groups, keep, True, 2.5)
            w_cpu, ids_cpu = flashhip.moe_topk(g.cpu(), k, bias.cpu(), "sigmoid", groups, keep, True, 2.5)
            assert (ids.cpu() == ids_cpu).float().mean() > 0.9
            w, ids = flashhip.moe_topk(g, k, None, "softmax")
            assert torch.equal(ids.cpu(), flashhip.moe_topk(g.cpu(), k, None, "softmax")[1])
    # The contiguous kernel's one-element loads: DeepSeek rows that start off a 16-byte boundary.
    wide = torch.randn(300, 257, device=dev, dtype=torch.bfloat16)
    bias = torch.randn(256, device=dev) * 0.1
    w, ids = flashhip.moe_topk(wide[:, 1:], 8, bias, "sigmoid", 8, 4, True, 2.5)
    assert (ids.cpu() == flashhip.moe_topk(wide[:, 1:].cpu(), 8, bias.cpu(), "sigmoid", 8, 4, True, 2.5)[1]).float().mean() > 0.9
    for tokens in (5, 300, 4096, 65536):  # one tile; tiles of one chunk per wave; of several
        ids = torch.randint(0, 256, (tokens, 8), device=dev, dtype=torch.int32)
        got = flashhip.moe_align_block_size(ids, 256, 64)
        want = flashhip.moe_align_block_size(ids.cpu(), 256, 64)
        for a, b in zip(got, want):
            assert torch.equal(a.cpu(), b), "alignment differs from the CPU"
    torch.cuda.synchronize()
    print("moe: ok")


def gemm_cases():
    # fp8_gemm: small shapes, both layouts, partial N blocks, and shapes that want split-K (few
    # output tiles, long K) so its workspace and reduction run, and stream-K (its flags and partials); then the group quantiser's vector
    # and scalar kernels, both scale layouts.
    f8 = flashhip.native_fp8_dtype(dev)
    for m, n, k in ((1, 64, 128), (7, 192, 256), (64, 64, 128), (64, 1536, 7168), (128, 512, 7168), (200, 320, 1024),
                    (2048, 1536, 1024), (1024, 4608, 2048)):  # 256-row tiles, then stream-K
        for k_contiguous in (True, False):
            a, b, sa, sb, _ = ref.fp8_challenge_inputs(m, n, k, 7, device=dev, fp8_dtype=f8, k_contiguous=k_contiguous)
            out = torch.full((m, n), float("nan"), device=dev, dtype=torch.bfloat16)
            ops.fp8_gemm(out, a, b, sa, sb)
            want = ref.fp8_gemm(a, b, sa, sb)
            bound = 2e-2 * want.abs() + 1e-3 * want.pow(2).mean().sqrt()
            err = (out.double() - want).abs()
            # Hopper's fp8 accumulation leaves a rare element past the bound (test_fp8_gemm.py says why).
            assert int((err > bound).sum()) <= max(4, 1e-6 * err.numel()) and not (err > 2 * bound).any() \
                and not out.isnan().any(), f"fp8_gemm {m}x{n}x{k} k_contiguous={k_contiguous}"
    for m, k, g in ((1, 128, 128), (37, 7168, 128), (5, 960, 96), (300, 512, 64)):
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        for m_major in (False, True):
            q, s = flashhip.per_token_group_quant_fp8(x, g, fp8_dtype=f8, scale_m_major=m_major)
            want_q, want_s = ref.group_quant_fp8(x, g, 1e-10, f8)
            torch.testing.assert_close(s, want_s, rtol=1e-6, atol=0)
            assert (q.float() != want_q.float()).float().mean() < 1e-3
    unaligned = torch.randn(9, 515, device=dev, dtype=torch.bfloat16)[:, 3:]  # the scalar kernel
    q, s = flashhip.per_token_group_quant_fp8(unaligned, 128, fp8_dtype=f8)
    torch.testing.assert_close(s, ref.group_quant_fp8(unaligned, 128, 1e-10, f8)[1], rtol=1e-6, atol=0)
    torch.cuda.synchronize()
    print("gemm: ok")


if __name__ == "__main__":
    # SANITIZE_CASES narrows the run (e.g. "gemm_cases"), as racecheck is slow.
    for name in os.environ.get("SANITIZE_CASES", "norm_cases rope_cases moe_cases gemm_cases").split():
        globals()[name]()
