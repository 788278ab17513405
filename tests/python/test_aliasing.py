"""Outputs that alias inputs (issue 18): every op decides by the bytes the views touch, refuses
when it cannot prove them apart, and writes nothing when it refuses. Views that interleave in one
buffer without sharing a byte (q and k of a fused qkv) stay accepted. Device-independent checks,
run on the CPU."""

from __future__ import annotations

import pytest
import torch

ops = torch.ops.flashhip
F8 = torch.float8_e4m3fn


def refused(fn, match, *watched):
    before = [t.clone() for t in watched]
    with pytest.raises(RuntimeError, match=match):
        fn()
    for t, b in zip(watched, before):  # compared as bytes: NaN bit patterns compare too
        assert torch.equal(t.contiguous().view(torch.uint8), b.view(torch.uint8)), "a refused call wrote"


def test_non_dense_views_of_one_buffer_are_refused():
    # The reproducer: rows of 3 in a buffer of pitch 4, out one element after x.
    buf = torch.arange(12.0)
    x = buf.as_strided((3, 3), (4, 1), 0)
    out = buf.as_strided((3, 3), (4, 1), 1)
    refused(lambda: ops.rmsnorm(out, x, torch.ones(3), 1e-6, False), "output 'out' overlaps 'input' without being it", buf)
    refused(lambda: ops.layernorm(out, x, torch.ones(3), None, 1e-6), "output 'out' overlaps 'input' without being it", buf)
    refused(lambda: ops.fused_add_rmsnorm(x, out, torch.ones(3), 1e-6, False),
            "output 'residual' shares memory with 'input'", buf)


def test_interleaved_views_that_share_no_byte_are_accepted():
    buf = torch.randn(4, 8)
    x, out = buf[:, :4], buf[:, 4:]  # same pitch, disjoint halves of each row
    expected = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
    ops.rmsnorm(out, x, torch.ones(4), 1e-6, False)
    torch.testing.assert_close(out, expected)
    # In place (the same view) is allowed where the schema says so.
    ops.rmsnorm(x, x, torch.ones(4), 1e-6, False)
    torch.testing.assert_close(x, expected)


def test_weight_inside_the_output_is_refused():
    buf = torch.randn(2, 8)
    out = buf[:, :4]
    weight = buf[1, 2:6]  # its first two elements are out[1, 2:4]
    refused(lambda: ops.rmsnorm(out, torch.randn(2, 4), weight, 1e-6, False), "output 'out' shares memory with 'weight'", buf)


def test_quant_out_inside_input_or_residual_is_refused():
    x = torch.randn(2, 4, dtype=torch.bfloat16)
    out = x.view(torch.uint8)[:, :4].view(F8)
    scale = torch.ones(1)
    refused(lambda: ops.rmsnorm_quant(out, x, torch.ones(4, dtype=torch.bfloat16), scale, 1e-6, False),
            "output 'out' shares memory with 'input'", x)
    r = torch.randn(2, 4, dtype=torch.bfloat16)
    out_r = r.view(torch.uint8)[:, :4].view(F8)
    refused(lambda: ops.fused_add_rmsnorm_quant(out_r, torch.randn(2, 4, dtype=torch.bfloat16), r,
                                                torch.ones(4, dtype=torch.bfloat16), scale, 1e-6, False),
            "output 'out' shares memory with 'residual'", r)
    refused(lambda: ops.layernorm_quant(out, x, torch.ones(4, dtype=torch.bfloat16), None, scale, 1e-5),
            "output 'out' shares memory with 'input'", x)
    # The layernorm kinds' bias and weight are read while the output is written.
    wb = torch.ones(2, 8)
    out_w = wb.view(torch.uint8)[:, :8].view(F8)
    refused(lambda: ops.layernorm_quant(out_w, torch.randn(2, 8), torch.ones(8), wb[1], scale, 1e-5),
            "output 'out' shares memory with 'bias'", wb)
    refused(lambda: ops.layernorm_quant(out_w, torch.randn(2, 8), wb[0], None, scale, 1e-5),
            "output 'out' shares memory with 'weight'", wb)


def test_moe_topk_outputs_aliasing_inputs_or_each_other_are_refused():
    g = torch.tensor([[0.1, 3.0, 2.0, -1.0]])
    w = torch.empty(1, 2)
    refused(lambda: ops.moe_topk(w, w.view(torch.int32), g, None, "softmax", 1, 1, False, 1.0),
            "output 'topk_ids' shares memory with 'topk_weights'", g)
    refused(lambda: ops.moe_topk(torch.empty(1, 2), g.view(torch.int32)[:, :2], g, None, "softmax", 1, 1, False, 1.0),
            "output 'topk_ids' shares memory with 'gating_output'", g)
    refused(lambda: ops.moe_topk(g[:, :2], torch.empty(1, 2, dtype=torch.int32), g, None, "softmax", 1, 1, False, 1.0),
            "output 'topk_weights' shares memory with 'gating_output'", g)


def test_moe_align_outputs_inside_topk_ids_are_refused():
    b = torch.tensor([1, 0, 1, 0], dtype=torch.int32)
    refused(lambda: ops.moe_align_block_size(b.view(2, 2), 2, 1, b, torch.empty(4, dtype=torch.int32),
                                             torch.empty(1, dtype=torch.int32), None),
            "output 'sorted_token_ids' shares memory with 'topk_ids'", b)


def test_group_quant_and_gemm_outputs_inside_inputs_are_refused():
    x = torch.randn(2, 256, dtype=torch.bfloat16)
    q = x.view(torch.uint8)[:, :256].view(F8)
    refused(lambda: ops.per_token_group_quant_fp8(q, torch.empty(2, 2), x, 128, 1e-10, False),
            "output 'out' shares memory with 'input'", x)
    a = torch.randn(4, 128).to(F8)
    b = torch.randn(64, 128).to(F8)
    sb = torch.ones(1, 1)
    out = torch.empty(4, 64, dtype=torch.bfloat16)
    sa_in_out = out.view(torch.float32)[:, :1]  # a_scale [4, 1] inside out's bytes
    refused(lambda: ops.fp8_gemm(out, a, b, sa_in_out, sb), "output 'out' shares memory with 'a_scale'", out)
