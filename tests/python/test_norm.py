"""The normalisation family against the pure-torch reference, on CPU and (when present) GPU."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref

from conftest import DEVICES, HAS_GPU, NO_GPU_REASON, poison_like, requires_gpu, strided_rows

ops = torch.ops.flashhip
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# One rounding of the output at the end: fp32 results agree to float rounding of the reduction,
# 16-bit ones to one or two ulps of the output dtype.
TOL = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
FP8 = [torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2]
# Hidden sizes: odd (scalar path), small (rows share a block), vector-aligned, register-held,
# and streaming (row larger than the registers hold, 16384+ without large shared memory).
HIDDEN = [1, 7, 127, 128, 1000, 4096, 5120, 16384, 32768, 40000]


def assert_close(actual, expected, dtype):
    torch.testing.assert_close(actual.float(), expected.float(), rtol=TOL[dtype], atol=TOL[dtype])


def assert_fp8_close(actual, expected_fp32, scale, out_dtype):
    """Within one fp8 ulp of the exactly quantised value (fp32 rounding differences can move a
    value across a rounding boundary), and never NaN."""
    q = ref.quantize_fp8(expected_fp32, scale, out_dtype).float()
    a = actual.float()
    assert not a.isnan().any()
    # e4m3: 3 mantissa bits, subnormal quantum 2^-9 (2^-10 fnuz); e5m2: 2 bits, 2^-16.
    rel, quantum = (2.0**-2, 2.0**-16) if out_dtype == torch.float8_e5m2 else (2.0**-3, 2.0**-9)
    ulp = torch.maximum(q.abs(), a.abs()) * rel + quantum
    assert ((a - q).abs() <= ulp).all(), f"max diff {(a - q).abs().max()}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("gemma", [False, True])
def test_rmsnorm(device, dtype, hidden, gemma):
    rows = 3 if hidden > 16384 else 13
    x = torch.randn(rows, hidden, device=device).to(dtype)
    w = torch.randn(hidden, device=device).to(dtype)
    out = poison_like(x)
    ops.rmsnorm(out, x, w, 1e-6, gemma)
    assert_close(out, ref.rmsnorm(x, w, 1e-6, gemma), dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [127, 4096, 40000])
def test_rmsnorm_strided_3d_and_in_place(device, dtype, hidden):
    x = strided_rows(8, hidden, dtype, device)
    w = torch.randn(hidden, device=device).to(dtype)
    expected = ref.rmsnorm(x, w)
    out = poison_like(x)
    ops.rmsnorm(out, x, w, 1e-6, False)
    assert_close(out, expected, dtype)
    if hidden < 8192:
        # [batch, heads, head_dim] with padded heads (QK-norm on a slice of a fused buffer):
        # the leading dimensions collapse to one row stride.
        x3 = torch.randn(4, 6, hidden + 8, device=device).to(dtype)[:, :, :hidden]
        out3 = poison_like(torch.empty(4, 6, hidden, dtype=dtype, device=device))
        ops.rmsnorm(out3, x3, w, 1e-6, False)
        assert_close(out3, ref.rmsnorm(x3, w), dtype)
    # In place: out is input.
    ops.rmsnorm(x, x, w, 1e-6, False)
    assert_close(x, expected, dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_leading_dims_without_two_strides_are_refused(device):
    # Three levels of gaps: neither one row stride nor [tokens, heads] with a stride each.
    x_gaps = torch.randn(4, 6, 5, 128, device=device)[:, :5, :3]
    w = torch.randn(128, device=device)
    out = torch.full((4, 5, 3, 128), 3.0, device=device)
    with pytest.raises(RuntimeError, match="'input'.*one row dimension, nor as \\[tokens, heads\\]"):
        ops.rmsnorm(out, x_gaps, w, 1e-6, False)
    assert (out == 3.0).all()
    # Each view has a layout of its own, but no common split into tokens and heads.
    x = torch.randn(4, 6, 8, 128, device=device)[:, :5]        # tokens [4], heads [5, 8]
    out = torch.randn(4, 5, 10, 128, device=device)[:, :, :8]  # tokens [4, 5], heads [8]
    before = out.clone()
    with pytest.raises(RuntimeError, match="'out'.*'input'.*no common place"):
        ops.rmsnorm(out, x, w, 1e-6, False)
    assert torch.equal(out, before)


def _qkv(tokens, heads_q, heads_k, head_dim, dtype, device):
    """q and k views [tokens, heads, head_dim] out of one fused [tokens, (hq + 2 hk) * head_dim]
    buffer, as an engine's qk-norm (Qwen3, Gemma-3) sees them: heads a head apart, tokens a whole
    qkv row apart."""
    qkv = torch.randn(tokens, (heads_q + 2 * heads_k) * head_dim, device=device).to(dtype)
    q = qkv[:, : heads_q * head_dim].view(tokens, heads_q, head_dim)
    k = qkv[:, heads_q * head_dim : (heads_q + heads_k) * head_dim].view(tokens, heads_k, head_dim)
    return qkv, q, k


def _torch_rmsnorm(x, w, eps, gemma=False):
    """Pure torch, float64, independent of flashhip.reference."""
    xd = x.double()
    wd = w.double() + 1.0 if gemma else w.double()
    return xd / torch.sqrt(xd.pow(2).mean(-1, keepdim=True) + eps) * wd


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 128, 256, 7])
@pytest.mark.parametrize("tokens", [1, 5, 37])
def test_rmsnorm_per_head_of_a_fused_qkv_view(device, dtype, head_dim, tokens):
    qkv, q, k = _qkv(tokens, 16, 4, head_dim, dtype, device)
    assert tokens == 1 or (q.stride() == (qkv.stride(0), head_dim, 1) and not q.is_contiguous())
    wq = torch.randn(head_dim, device=device).to(dtype)
    wk = torch.randn(head_dim, device=device).to(dtype)
    want_q, want_k = _torch_rmsnorm(q, wq, 1e-6), _torch_rmsnorm(k, wk, 1e-6, gemma=True)
    rest = qkv[:, 20 * head_dim :].clone()
    # Into a fresh output, then in place inside the fused buffer.
    out = poison_like(torch.empty(q.shape, dtype=dtype, device=device))
    ops.rmsnorm(out, q, wq, 1e-6, False)
    assert_close(out, want_q, dtype)
    # Out as a strided view of another fused buffer too.
    _, q2, _ = _qkv(tokens, 16, 4, head_dim, dtype, device)
    q2.fill_(float("nan"))
    ops.rmsnorm(q2, q, wq, 1e-6, False)
    assert_close(q2, want_q, dtype)
    ops.rmsnorm(q, q, wq, 1e-6, False)
    ops.rmsnorm(k, k, wk, 1e-6, True)
    assert_close(q, want_q, dtype)
    assert_close(k, want_k, dtype)
    assert torch.equal(qkv[:, 20 * head_dim :], rest), "v must be left as it is"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["fused_add_rmsnorm", "rmsnorm_quant", "layernorm", "layernorm_quant"])
def test_other_norms_take_strided_heads(device, name):
    dtype = torch.bfloat16
    _, q, _ = _qkv(9, 8, 2, 128, dtype, device)
    w = torch.randn(128, device=device).to(dtype)
    if name == "fused_add_rmsnorm":
        _, r, _ = _qkv(9, 8, 2, 128, dtype, device)
        want_r = (q.float() + r.float()).to(dtype)
        want = _torch_rmsnorm(want_r, w, 1e-6)
        ops.fused_add_rmsnorm(q, r, w, 1e-6, False)
        assert torch.equal(r, want_r)
        assert_close(q, want, dtype)
    elif name == "rmsnorm_quant":
        out = poison_like(torch.empty(q.shape, dtype=torch.float8_e4m3fn, device=device))
        scale = torch.tensor([0.02], device=device)
        ops.rmsnorm_quant(out, q, w, scale, 1e-6, False)
        assert_fp8_close(out, _torch_rmsnorm(q, w, 1e-6).float(), scale, torch.float8_e4m3fn)
    elif name == "layernorm_quant":
        out = poison_like(torch.empty(q.shape, dtype=torch.float8_e4m3fn, device=device))
        scale = torch.tensor([0.02], device=device)
        b = torch.randn(128, device=device).to(dtype)
        ops.layernorm_quant(out, q, w, b, scale, 1e-5)
        assert_fp8_close(out, ref.layernorm(q, w, b, 1e-5), scale, torch.float8_e4m3fn)
    else:
        out = poison_like(q.clone())
        ops.layernorm(out, q, w, None, 1e-5)
        assert_close(out, ref.layernorm(q, w, None, 1e-5), dtype)


def test_compat_wrappers_pass_strided_heads_through():
    _, q, k = _qkv(6, 8, 2, 128, torch.bfloat16, "cpu")
    w = torch.randn(128).to(torch.bfloat16)
    want_q, want_k = _torch_rmsnorm(q, w, 1e-6), _torch_rmsnorm(k, w, 1e-6, gemma=True)
    got = flashhip.compat.flashinfer.rmsnorm(q, w, 1e-6)
    assert got.shape == q.shape
    assert_close(got, want_q, torch.bfloat16)
    flashhip.compat.sgl_kernel.rmsnorm(q, w, 1e-6, out=q)  # in place, as engines call it
    assert_close(q, want_q, torch.bfloat16)
    flashhip.compat.flashinfer.gemma_rmsnorm(k, w, 1e-6, out=k)
    assert_close(k, want_k, torch.bfloat16)


def _flashinfer_fused_add_rmsnorm(x, residual, weight, eps, gemma=False):
    """FlashInfer's arithmetic in pure torch: the fp32 sum normalised, the residual its rounding."""
    total = x.float() + residual.float()
    w = weight.float() + 1.0 if gemma else weight.float()
    return total * torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + eps) * w, total.to(residual.dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [7, 1000, 4096, 40000])
@pytest.mark.parametrize("gemma", [False, True])
def test_fused_add_rmsnorm_of_the_fp32_sum(device, dtype, hidden, gemma):
    # fp32_sum=True normalises input + residual in fp32 (FlashInfer's result); the default the
    # rounded residual. Each is checked to a tolerance tighter than their difference.
    x = strided_rows(6, hidden, dtype, device)
    r = torch.randn(6, hidden, device=device).to(dtype)
    w = torch.randn(hidden, device=device).to(dtype)
    want, want_r = _flashinfer_fused_add_rmsnorm(x, r, w, 1e-6, gemma)
    x1, r1 = x.clone(), r.clone()
    ops.fused_add_rmsnorm(x1, r1, w, 1e-6, gemma, True)
    assert torch.equal(r1, want_r)
    # One rounding of the fp32 result: within half an ulp but for fp32 reduction differences.
    assert_close(x1, want, dtype)
    x2, r2 = x.clone(), r.clone()
    ops.fused_add_rmsnorm(x2, r2, w, 1e-6, gemma)  # the default: the rounded residual
    assert torch.equal(r2, want_r)
    rounded, _ = ref.fused_add_rmsnorm(x, r, w, 1e-6, gemma)
    assert_close(x2, rounded, dtype)
    if dtype == torch.float32:  # the sum is the residual: the same result
        torch.testing.assert_close(x1, x2)
    else:  # 16-bit: each matches its own arithmetic, bit for bit but for rare rounding ties
        assert (x1.float() == want.to(dtype).float()).float().mean() > 0.99
        assert (x2.float() == rounded.to(dtype).float()).float().mean() > 0.99
        if hidden >= 1000:
            assert not torch.equal(x1, x2), "the two must differ somewhere for 16-bit dtypes"


def test_flashinfer_surface_normalises_the_fp32_sum():
    x = torch.randn(16, 4096).to(torch.bfloat16)
    r = torch.randn(16, 4096).to(torch.bfloat16)
    w = torch.randn(4096).to(torch.bfloat16)
    for fn, gemma in ((flashhip.compat.flashinfer.fused_add_rmsnorm, False),
                      (flashhip.compat.flashinfer.gemma_fused_add_rmsnorm, True),
                      (flashhip.compat.sgl_kernel.fused_add_rmsnorm, False)):
        want, want_r = _flashinfer_fused_add_rmsnorm(x, r, w, 1e-6, gemma)
        xi, ri = x.clone(), r.clone()
        fn(xi, ri, w, 1e-6)
        assert torch.equal(ri, want_r)
        assert (xi.float() == want.to(torch.bfloat16).float()).float().mean() > 0.999
    # And the strided-heads view through the same surface.
    qkv = torch.randn(5, 12 * 128).to(torch.bfloat16)
    q = qkv[:, : 8 * 128].view(5, 8, 128)
    rq = torch.randn(5, 8, 128).to(torch.bfloat16)
    want, want_r = _flashinfer_fused_add_rmsnorm(q, rq, w[:128], 1e-6)
    flashhip.compat.flashinfer.fused_add_rmsnorm(q, rq, w[:128], 1e-6)
    assert torch.equal(rq, want_r)
    assert_close(q, want, torch.bfloat16)


# ---- fused_add_rmsnorm_quant(..., fp32_sum): FlashInfer's arithmetic for the quantising form ----

def _fp8_code_mismatch(actual, expected):
    """The fraction of elements whose fp8 value differs (by value: -0 and +0 are one)."""
    return (actual.float() != expected.float()).float().mean().item()


def _rounding_matters(rows, hidden, dtype, device):
    """x in +-(1, 2) and r of a random sign just under half an ulp of x: x + r rounds back to x in
    the 16-bit dtype, so the rounded residual (x) and the fp32 sum (x + r) differ by 0.45 ulp in
    every element (up and down, so the row's rms hardly moves), enough to move an fp8 code across
    a rounding boundary in 0.2% (fp16) to 3% (bf16) of the elements."""
    bits = {torch.bfloat16: 7, torch.float16: 10}[dtype]
    magnitude = 1 + torch.randint(1, 2**bits, (rows, hidden)).double() / 2**bits
    x = torch.where(torch.rand(rows, hidden) < 0.5, -magnitude, magnitude)
    r = torch.where(torch.rand(rows, hidden) < 0.5, -1.0, 1.0) * (115 / 256) * 2.0**-bits
    assert torch.equal((x + r).to(dtype).double(), x)  # the sum rounds back to x
    return x.to(dtype).to(device), r.to(dtype).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", FP8)
@pytest.mark.parametrize("hidden", [7, 1000, 4096, 40000])
@pytest.mark.parametrize("gemma", [False, True])
def test_fused_add_rmsnorm_quant_of_the_fp32_sum(device, dtype, out_dtype, hidden, gemma):
    # Both modes against their own pure-torch reference (register and streaming kernels: 4096 and
    # 40000), on strided rows: the residual is the rounded sum either way, input is untouched.
    x = strided_rows(4, hidden, dtype, device)
    x_before = x.clone()
    r = torch.randn(4, hidden, device=device).to(dtype)
    w = torch.randn(hidden, device=device).to(dtype)
    scale = torch.tensor([0.05 / (128 if out_dtype == torch.float8_e5m2 else 1)], device=device)
    for fp32_sum in (True, False):
        want_q, want_r = ref.fused_add_rmsnorm_quant(x, r, w, scale, out_dtype, 1e-6, gemma, fp32_sum)
        want_y, _ = ref.fused_add_rmsnorm(x, r, w, 1e-6, gemma, fp32_sum)
        ri = r.clone()
        out = poison_like(torch.empty(4, hidden, dtype=out_dtype, device=device))
        ops.fused_add_rmsnorm_quant(out, x, ri, w, scale, 1e-6, gemma, fp32_sum)
        assert torch.equal(ri, want_r)
        assert torch.equal(x, x_before), "input must be left as it is"
        assert_fp8_close(out, want_y, scale, out_dtype)
        # The reference's codes but where fp32 reduction order moves a value across a boundary.
        assert _fp8_code_mismatch(out, want_q) < 1e-2, fp32_sum


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("out_dtype", FP8)
@pytest.mark.parametrize("hidden", [4096, 40000])
def test_fused_add_rmsnorm_quant_modes_differ_where_rounding_matters(device, dtype, out_dtype, hidden):
    # Where x + r rounds back to x, the rounded residual and the fp32 sum normalise differently:
    # each mode gives its own reference's fp8 codes (but for rare reduction-order ties), and the
    # two modes' codes differ in a share of the elements far above that.
    rows = 8
    x, r = _rounding_matters(rows, hidden, dtype, device)
    w = torch.randn(hidden, device=device).to(dtype)
    scale = torch.tensor([0.01 / (128 if out_dtype == torch.float8_e5m2 else 1)], device=device)
    got = {}
    for fp32_sum in (True, False):
        out = poison_like(torch.empty(rows, hidden, dtype=out_dtype, device=device))
        ri = r.clone()
        ops.fused_add_rmsnorm_quant(out, x, ri, w, scale, 1e-6, False, fp32_sum)
        assert torch.equal(ri, x), "the residual written is the rounded sum, x itself here"
        got[fp32_sum] = out
    want = {s: ref.fused_add_rmsnorm_quant(x, r, w, scale, out_dtype, 1e-6, False, s)[0] for s in (True, False)}
    between_refs = _fp8_code_mismatch(want[True], want[False])
    assert between_refs > 1e-3, f"the inputs should make the modes differ ({between_refs:.2%})"
    for s in (True, False):
        own, other = _fp8_code_mismatch(got[s], want[s]), _fp8_code_mismatch(got[s], want[not s])
        assert own < between_refs / 4, (s, own, between_refs)
        assert other > between_refs / 2, (s, other, between_refs)
    assert _fp8_code_mismatch(got[True], got[False]) > between_refs / 2


@pytest.mark.parametrize("device", DEVICES)
def test_fused_add_rmsnorm_quant_modes_agree_for_fp32(device):
    x = torch.randn(6, 4096, device=device)
    r = torch.randn_like(x)
    w = torch.randn(4096, device=device)
    scale = torch.tensor([0.02], device=device)
    outs = []
    for fp32_sum in (True, False):
        out = torch.empty(6, 4096, dtype=torch.float8_e4m3fn, device=device)
        ops.fused_add_rmsnorm_quant(out, x, r.clone(), w, scale, 1e-6, False, fp32_sum)
        outs.append(out.float())
    assert torch.equal(outs[0], outs[1])


def test_flashinfer_fused_add_rmsnorm_quant_normalises_the_fp32_sum():
    # compat.flashinfer's form is FlashInfer's arithmetic (the fp32 sum), a float scale too;
    # flashhip's functional form keeps the rounded residual unless asked.
    x, r = _rounding_matters(8, 4096, torch.bfloat16, "cpu")
    w = torch.randn(4096).to(torch.bfloat16)
    scale = torch.tensor([0.01])
    want_fi, want_r = ref.fused_add_rmsnorm_quant(x, r, w, scale, torch.float8_e4m3fn, fp32_sum=True)
    want_rounded, _ = ref.fused_add_rmsnorm_quant(x, r, w, scale, torch.float8_e4m3fn)
    assert _fp8_code_mismatch(want_fi, want_rounded) > 5e-3
    for s in (scale, 0.01):
        out, ri = poison_like(torch.empty(8, 4096, dtype=torch.float8_e4m3fn)), r.clone()
        flashhip.compat.flashinfer.fused_add_rmsnorm_quant(out, x, ri, w, s, 1e-6)
        assert torch.equal(ri, want_r)
        assert _fp8_code_mismatch(out, want_fi) < 5e-4
    ri = r.clone()
    got = flashhip.fused_add_rmsnorm_quant(x, ri, w, scale)
    assert _fp8_code_mismatch(got, want_rounded) < 5e-4
    ri = r.clone()
    got = flashhip.fused_add_rmsnorm_quant(x, ri, w, scale, fp32_sum=True, out_dtype=torch.float8_e5m2)
    want = ref.fused_add_rmsnorm_quant(x, r, w, scale, torch.float8_e5m2, fp32_sum=True)[0]
    assert _fp8_code_mismatch(got, want) < 5e-4
    # A float scale through the other quantising forms of the surface too.
    q = poison_like(torch.empty(8, 4096, dtype=torch.float8_e4m3fn))
    flashhip.compat.flashinfer.rmsnorm_quant(q, x, w, 0.01)
    assert _fp8_code_mismatch(q, ref.rmsnorm_quant(x, w, scale)) < 5e-4


@requires_gpu
def test_gpu_fused_add_rmsnorm_quant_fp32_sum_matches_the_cpu():
    # Register (4096), wide register (16384) and streaming (40000) kernels, both sums, every flavour.
    for hidden in (4096, 16384, 40000):
        x, r = _rounding_matters(16, hidden, torch.bfloat16, "cpu")
        w = torch.randn(hidden).to(torch.bfloat16)
        scale = torch.tensor([0.01])
        for out_dtype in FP8:
            s = scale / (128 if out_dtype == torch.float8_e5m2 else 1)
            for fp32_sum in (True, False):
                cpu = flashhip.fused_add_rmsnorm_quant(x, r.clone(), w, s, fp32_sum=fp32_sum, out_dtype=out_dtype)
                gpu = flashhip.fused_add_rmsnorm_quant(x.cuda(), r.cuda(), w.cuda(), s.cuda(), fp32_sum=fp32_sum,
                                                       out_dtype=out_dtype).cpu()
                assert _fp8_code_mismatch(cpu, gpu) < 1e-3, (hidden, out_dtype, fp32_sum)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [7, 1000, 4096, 16384, 40000])
@pytest.mark.parametrize("gemma", [False, True])
def test_fused_add_rmsnorm(device, dtype, hidden, gemma):
    x = strided_rows(5, hidden, dtype, device)
    r = torch.randn(5, hidden, device=device).to(dtype)
    expected, expected_residual = ref.fused_add_rmsnorm(x, r, w := torch.randn(hidden, device=device).to(dtype), 1e-6, gemma)
    ops.fused_add_rmsnorm(x, r, w, 1e-6, gemma)
    assert_close(r, expected_residual, dtype)
    assert_close(x, expected, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [7, 1000, 4096, 40000])
@pytest.mark.parametrize("affine", ["none", "same", "fp32"])
def test_layernorm(device, dtype, hidden, affine):
    x = (torch.randn(6, hidden, device=device) * 3 + 2).to(dtype)  # a non-zero mean matters here
    wdtype = torch.float32 if affine == "fp32" else dtype
    w = torch.randn(hidden, device=device).to(wdtype)
    b = None if affine == "none" else torch.randn(hidden, device=device).to(wdtype)
    out = poison_like(x)
    ops.layernorm(out, x, w, b, 1e-5)
    assert_close(out, ref.layernorm(x, w, b, 1e-5), dtype)
    torch.testing.assert_close(
        out.float(), torch.nn.functional.layer_norm(x.float(), (hidden,), w.float(), None if b is None else b.float(), 1e-5),
        rtol=TOL[dtype] * 2, atol=TOL[dtype] * 2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", FP8)
@pytest.mark.parametrize("hidden", [7, 4096, 40000])
@pytest.mark.parametrize("gemma", [False, True])
def test_rmsnorm_quant(device, dtype, out_dtype, hidden, gemma):
    x = torch.randn(9, hidden, device=device).to(dtype)
    w = torch.randn(hidden, device=device).to(dtype)
    # Some values saturate, most do not (e5m2 reaches 57344 at a 128th of the scale).
    scale = torch.tensor([0.0125 / (128 if out_dtype == torch.float8_e5m2 else 1)], device=device)
    out = poison_like(torch.empty(9, hidden, dtype=out_dtype, device=device))
    ops.rmsnorm_quant(out, x, w, scale, 1e-6, gemma)
    assert_fp8_close(out, ref.rmsnorm(x, w, 1e-6, gemma), scale, out_dtype)
    if hidden >= 4096:  # enough samples that some exceed the fp8 range: saturated, not beyond
        assert out.float().abs().max() == ref.FP8_MAX[out_dtype]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", FP8)
@pytest.mark.parametrize("hidden", [7, 4096, 40000])
def test_fused_add_rmsnorm_quant(device, dtype, out_dtype, hidden):
    x = strided_rows(4, hidden, dtype, device)
    x_before = x.clone()
    r = torch.randn(4, hidden, device=device).to(dtype)
    w = torch.randn(hidden, device=device).to(dtype)
    scale = torch.tensor([0.05], device=device)
    y, expected_residual = ref.fused_add_rmsnorm(x, r, w)
    out = poison_like(torch.empty(4, hidden, dtype=out_dtype, device=device))
    ops.fused_add_rmsnorm_quant(out, x, r, w, scale, 1e-6, False)
    assert_close(r, expected_residual, dtype)
    assert torch.equal(x, x_before), "input must be left as it is"
    assert_fp8_close(out, y, scale, out_dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", FP8)
@pytest.mark.parametrize("hidden", [7, 4096, 40000])
@pytest.mark.parametrize("affine", ["none", "same", "fp32"])
def test_layernorm_quant(device, dtype, out_dtype, hidden, affine):
    # Strided rows with a non-zero mean (the centring matters), weight/bias as layernorm takes them.
    x = strided_rows(9, hidden, dtype, device)
    x.copy_(x.float() * 3 + 2)
    wdtype = torch.float32 if affine == "fp32" else dtype
    w = torch.randn(hidden, device=device).to(wdtype)
    b = None if affine == "none" else torch.randn(hidden, device=device).to(wdtype)
    x_before = x.clone()
    # Some values saturate, most do not (e5m2 reaches 57344 at a 128th of the scale).
    scale = torch.tensor([0.0125 / (128 if out_dtype == torch.float8_e5m2 else 1)], device=device)
    out = poison_like(torch.empty(9, hidden, dtype=out_dtype, device=device))
    ops.layernorm_quant(out, x, w, b, scale, 1e-5)
    assert torch.equal(x, x_before), "input must be left as it is"
    assert_fp8_close(out, ref.layernorm(x, w, b, 1e-5), scale, out_dtype)
    if hidden >= 4096:  # enough samples that some exceed the fp8 range: saturated, not beyond
        assert out.float().abs().max() == ref.FP8_MAX[out_dtype]


# ---- The quantising forms at extreme scales (issue 18): out = saturate(y / scale), y in fp32 ----

def _quant(name, x, w, scale, eps, out_dtype=torch.float8_e4m3fn):
    out = poison_like(torch.empty(x.shape, dtype=out_dtype, device=x.device))
    if name == "rmsnorm_quant":
        ops.rmsnorm_quant(out, x, w, scale, eps, False)
    elif name == "layernorm_quant":
        ops.layernorm_quant(out, x, w, None, scale, eps)
    else:
        ops.fused_add_rmsnorm_quant(out, x, torch.zeros_like(x), w, scale, eps, False)
    return out.float()


def _quant_ref(name, x, w, eps):
    """The fp32 value each quantising form divides by the scale."""
    return ref.layernorm(x, w, None, eps) if name == "layernorm_quant" else ref.rmsnorm(x, w, eps)


QUANT_NAMES = ["rmsnorm_quant", "fused_add_rmsnorm_quant", "layernorm_quant"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", QUANT_NAMES)
@pytest.mark.parametrize("hidden", [4, 4096, 40000])
def test_quant_zero_row_with_a_tiny_scale_is_zero(device, name, hidden):
    # 1/scale folded into the row factor gave 0 * inf = NaN here; 0 / 1e-36 is 0.
    x = torch.zeros(3, hidden, device=device, dtype=torch.bfloat16)
    x[1] = torch.randn(hidden, device=device).to(torch.bfloat16)  # a normal row beside: saturates
    w = torch.randn(hidden, device=device).to(torch.bfloat16)
    got = _quant(name, x, w, torch.tensor([1e-36], device=device), 1e-6)
    assert (got[0] == 0).all() and (got[2] == 0).all()
    y = _quant_ref(name, x[1:2], w, 1e-6)
    torch.testing.assert_close(got[1], ref.quantize_fp8(y, torch.tensor([1e-36], device=device), torch.float8_e4m3fn)[0].float())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["rmsnorm_quant", "fused_add_rmsnorm_quant"])
@pytest.mark.parametrize("out_dtype", FP8)
def test_quant_large_y_and_large_scale_saturates(device, name, out_dtype):
    # bf16 x = 1e19, w = 3e38: y = 3e38 and y / 1e30 = 3e8 saturates to 448 (the folded factor
    # 1e-19 * 1e-30 underflowed to 0).
    limit = ref.FP8_MAX[out_dtype]
    for hidden in (1, 8, 4096):
        x = torch.full((2, hidden), 1e19, device=device, dtype=torch.bfloat16)
        x[1] *= -1
        w = torch.full((hidden,), 3e38, device=device, dtype=torch.bfloat16)
        got = _quant(name, x, w, torch.tensor([1e30], device=device), 1e-6, out_dtype)
        assert (got[0] == limit).all() and (got[1] == -limit).all(), got


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("out_dtype", FP8)
def test_layernorm_quant_large_y_and_large_scale_saturates(device, out_dtype):
    # Alternating +-1e17 (mean 0, variance 1e34 within fp32), w = 3e38: y = +-3e38 and
    # y / 1e30 = +-3e8 saturates.
    limit = ref.FP8_MAX[out_dtype]
    for hidden in (2, 8, 4096):
        signs = torch.tensor([1.0, -1.0], device=device).repeat(hidden // 2)
        x = (signs * 1e17).to(torch.bfloat16).unsqueeze(0)
        w = torch.full((hidden,), 3e38, device=device, dtype=torch.bfloat16)
        got = _quant("layernorm_quant", x, w, torch.tensor([1e30], device=device), 1e-5, out_dtype)
        assert (got[0] == signs * limit).all(), got


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", [1e-38, 1e-30, 1e-6, 3e33, 1e37, 8e37])
@pytest.mark.parametrize("out_dtype", FP8)
def test_quant_saturates_infinite_y_and_keeps_nan(device, scale, out_dtype):
    # y = +-inf (x * rstd * w past fp32) saturates to +-448 for every scale (the reciprocal path
    # would give inf - inf = NaN without the bound); a NaN input gives NaN.
    hidden = 64
    x = torch.randn(3, hidden, device=device)
    x[0, :8] = torch.tensor([8.0, -8.0, 1.0, -1.0, 0.0, 1e-3, -1e-3, 2.0])
    x[0, 8:] = 0.0
    w = torch.full((hidden,), 3e38, device=device)
    x[2, 5] = float("nan")
    s = torch.tensor([scale], device=device)
    got = _quant("rmsnorm_quant", x, w, s, 1e-6, out_dtype)
    want = ref.quantize_fp8(ref.rmsnorm_float64(x, w, 1e-6).float(), s, out_dtype).float()
    limit = ref.FP8_MAX[out_dtype]
    assert got[0, 0] == limit and got[0, 1] == -limit
    torch.testing.assert_close(got[:2], want[:2], rtol=0.125, atol=0)
    assert got[2].isnan().all()  # one NaN makes the row's mean square NaN


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", [1e-38, 1e-30, 1e-6, 3e33, 1e37, 8e37])
@pytest.mark.parametrize("out_dtype", FP8)
def test_layernorm_quant_saturates_infinite_y_and_keeps_nan(device, scale, out_dtype):
    # As for rmsnorm_quant: y = (x - mean) * rstd * w past fp32 is +-inf and saturates at every
    # scale; a NaN makes its row's mean NaN.
    hidden = 64
    x = torch.randn(3, hidden, device=device)
    x[0, :8] = torch.tensor([8.0, -8.0, 1.0, -1.0, 0.0, 1e-3, -1e-3, 2.0])
    x[0, 8:] = 0.0
    w = torch.full((hidden,), 3e38, device=device)
    x[2, 5] = float("nan")
    s = torch.tensor([scale], device=device)
    got = _quant("layernorm_quant", x, w, s, 1e-5, out_dtype)
    limit = ref.FP8_MAX[out_dtype]
    assert got[0, 0] == limit and got[0, 1] == -limit
    assert_fp8_close(got[:2], ref.layernorm(x[:2], w, None, 1e-5), s, out_dtype)
    assert got[2].isnan().all()


@requires_gpu
def test_gpu_quant_extremes_match_the_cpu():
    # The CPU (a true division) is the oracle: quotients near the fp8 range's edges, scales over
    # the reciprocal's range and outside it, dividends near fp32's limits.
    torch.manual_seed(18)
    x = (torch.randn(64, 1024) * torch.logspace(-30, 30, 64).unsqueeze(1)).to(torch.bfloat16)
    w = torch.randn(1024).to(torch.bfloat16) * 1e3
    b = torch.randn(1024).to(torch.bfloat16) * 1e3
    xd = x.double()
    y64 = (xd - xd.mean(-1, keepdim=True)) * torch.rsqrt(xd.var(-1, unbiased=False, keepdim=True) + 1e-5)
    y64 = y64 * w.double() + b.double()
    for scale in (1e-37, 1e-20, 1e-3, 0.05, 1e20, 1e36):
        s = torch.tensor([scale])
        for out_dtype in FP8:
            cpu = flashhip.rmsnorm_quant(x, w, s, out_dtype=out_dtype).float()
            gpu = flashhip.rmsnorm_quant(x.cuda(), w.cuda(), s.cuda(), out_dtype=out_dtype).cpu().float()
            assert not gpu.isnan().any()
            assert (cpu != gpu).float().mean() < 1e-3, (scale, out_dtype)
            cpu = flashhip.layernorm_quant(x, w, b, s, out_dtype=out_dtype).float()
            gpu = flashhip.layernorm_quant(x.cuda(), w.cuda(), b.cuda(), s.cuda(), out_dtype=out_dtype).cpu().float()
            assert not gpu.isnan().any()
            # Where w * x_hat + b cancels to almost nothing, the two devices' mean and rstd (summed
            # in different orders) may disagree on the sign: at a tiny scale that is +-max apart.
            # Count only the elements the float64 layernorm puts clear of zero.
            clear = y64.abs() > 1e-3 * (w.double().abs() + b.double().abs())
            assert (cpu != gpu)[clear].float().mean() < 1e-3, ("layernorm_quant", scale, out_dtype)


# ---- Mean squares outside fp32's range (issue 18): the row normalises as the arithmetic says ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("hidden", [2, 4096, 40000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["rmsnorm", "fused_add_rmsnorm", "rmsnorm_quant"])
def test_mean_square_outside_fp32_range(device, hidden, dtype, name):
    base = torch.randn(6, hidden, device=device)
    base[:, 0] = 2.0  # one dominant element per row
    magnitudes = torch.tensor([1e20, 3e36, 1.0, 1e-30, 1e-36, 1e-18], device=device).unsqueeze(1)
    x = (base * magnitudes).to(dtype)
    if dtype == torch.float32:
        x[5] = torch.full((hidden,), 1e-40, device=device)  # subnormal: mean square 1e-80
    w = torch.randn(hidden, device=device).to(dtype)
    eps = 0.0
    want = ref.rmsnorm_float64(x, w, eps)
    if name == "rmsnorm":
        out = poison_like(x)
        ops.rmsnorm(out, x, w, eps, False)
        got = out
    elif name == "fused_add_rmsnorm":
        got, r = x.clone(), torch.zeros_like(x)
        ops.fused_add_rmsnorm(got, r, w, eps, False)
    else:
        scale = torch.tensor([0.01], device=device)
        got = _quant(name, x, w, scale, eps)
        torch.testing.assert_close(got, ref.quantize_fp8(want.float(), scale, torch.float8_e4m3fn).float(),
                                   rtol=0.125, atol=2.0**-9)
        return
    assert not got.isnan().any()
    torch.testing.assert_close(got.double(), want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("device", DEVICES)
def test_mean_square_edges_of_the_issue(device):
    w = torch.tensor([0.5, -2.0], device=device)
    x = torch.tensor([[1e20, 1e20]], device=device, dtype=torch.bfloat16)
    got = flashhip.rmsnorm(x, w.to(torch.bfloat16), 1e-6)
    torch.testing.assert_close(got.float(), w.unsqueeze(0), rtol=1e-2, atol=0)  # was [0, 0]
    x = torch.tensor([[1e-30, 1e-30]], device=device)
    torch.testing.assert_close(flashhip.rmsnorm(x, w, 0.0), w.unsqueeze(0))  # was inf
    # An all-zero row with eps = 0 is 0 / 0: NaN, as the arithmetic says; with eps > 0 it is 0.
    z = torch.zeros(1, 2, device=device)
    assert flashhip.rmsnorm(z, w, 0.0).isnan().all()
    assert (flashhip.rmsnorm(z, w, 1e-30) == 0).all()
    # A row holding inf: inf / inf is NaN there, 0 elsewhere.
    got = flashhip.rmsnorm(torch.tensor([[float("inf"), 1.0]], device=device), w, 1e-6)
    assert got[0, 0].isnan() and got[0, 1] == 0


@pytest.mark.parametrize("device", DEVICES)
def test_zero_tokens(device):
    for dtype in DTYPES:
        x = torch.empty(0, 4096, device=device, dtype=dtype)
        w = torch.randn(4096, device=device).to(dtype)
        ops.rmsnorm(torch.empty_like(x), x, w, 1e-6, False)
        ops.fused_add_rmsnorm(x, torch.empty_like(x), w, 1e-6, False)
        ops.layernorm(torch.empty_like(x), x, w, None, 1e-5)
        q = torch.empty(0, 4096, device=device, dtype=torch.float8_e4m3fn)
        scale = torch.ones(1, device=device)
        ops.rmsnorm_quant(q, x, w, scale, 1e-6, False)
        ops.fused_add_rmsnorm_quant(q, x, torch.empty_like(x), w, scale, 1e-6, False)
        ops.fused_add_rmsnorm_quant(q, x, torch.empty_like(x), w, scale, 1e-6, False, True)
        ops.layernorm_quant(q, x, w, w, scale, 1e-5)


def _samples(device):
    x = torch.randn(5, 256, device=device, dtype=torch.bfloat16)
    w = torch.randn(256, device=device, dtype=torch.bfloat16)
    wf = torch.randn(256, device=device)
    scale = torch.tensor([0.1], device=device)
    q = torch.empty(5, 256, device=device, dtype=torch.float8_e4m3fn)
    return [
        (ops.rmsnorm.default, (torch.empty_like(x), x, w, 1e-6, True)),
        (ops.fused_add_rmsnorm.default, (x.clone(), torch.randn_like(x), w, 1e-6, False)),
        (ops.fused_add_rmsnorm.default, (x.clone(), torch.randn_like(x), w, 1e-6, False, True)),
        (ops.layernorm.default, (torch.empty_like(x), x, wf, wf.clone(), 1e-5)),
        (ops.layernorm.default, (torch.empty_like(x), x, w, None, 1e-5)),
        (ops.rmsnorm_quant.default, (q, x, w, scale, 1e-6, False)),
        (ops.fused_add_rmsnorm_quant.default, (q.clone(), x, torch.randn_like(x), w, scale, 1e-6, True)),
        (ops.fused_add_rmsnorm_quant.default, (q.clone(), x, torch.randn_like(x), w, scale, 1e-6, False, True)),
        (ops.layernorm_quant.default, (q.clone(), x, wf, wf.clone(), scale, 1e-5)),
        (ops.layernorm_quant.default, (q.clone(), x, w, None, scale, 1e-5)),
    ]


# torch's schema check compares outputs with arithmetic that has no fp8 kernel ("mul" not
# implemented for Float8_e4m3fn), so for fp8 outputs it cannot run; the (a!) marks of those ops
# are covered by the other checks here (aot dispatch functionalises them) and by test_schemas.cpp.
FP8_SKIPPED_CHECKS = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    for op, args in _samples(device):
        writes_fp8 = any(isinstance(a, torch.Tensor) and a.dtype in FP8 for a in args)
        if writes_fp8:
            opcheck(op, args, test_utils=FP8_SKIPPED_CHECKS)
        else:
            opcheck(op, args)  # every default check: schema, autograd registration, fake, aot dispatch


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def block(x, r, w, scale):
        flashhip.fused_add_rmsnorm(x, r, w)
        y = flashhip.rmsnorm(x * 2, w, gemma=True)
        return (y, flashhip.rmsnorm_quant(y, w, scale), flashhip.layernorm(y, w.float()),
                flashhip.layernorm_quant(y, w.float(), w.float(), scale, out_dtype=torch.float8_e5m2))

    compiled = torch.compile(block, fullgraph=True)
    x = torch.randn(7, 512, device=device, dtype=torch.bfloat16)
    r = torch.randn_like(x)
    w = torch.randn(512, device=device, dtype=torch.bfloat16)
    scale = torch.tensor([0.1], device=device)
    x1, r1, x2, r2 = x.clone(), r.clone(), x.clone(), r.clone()
    eager = block(x1, r1, w, scale)
    got = compiled(x2, r2, w, scale)
    torch.testing.assert_close(r2, r1)
    torch.testing.assert_close(x2, x1)
    for a, b in zip(got, eager):
        torch.testing.assert_close(a.float(), b.float())


def test_functional_and_flashinfer_forms():
    x = torch.randn(4, 96, dtype=torch.float16)
    w = torch.randn(96, dtype=torch.float16)
    assert_close(flashhip.flashinfer.rmsnorm(x, w), ref.rmsnorm(x, w), torch.float16)
    assert_close(flashhip.flashinfer.gemma_rmsnorm(x, w), ref.rmsnorm(x, w, gemma=True), torch.float16)
    gamma, beta = torch.randn(96), torch.randn(96)
    assert_close(flashhip.flashinfer.layernorm(x, gamma, beta, 1e-6), ref.layernorm(x, gamma, beta, 1e-6), torch.float16)
    r = torch.randn_like(x)
    expected, expected_r = ref.fused_add_rmsnorm(x, r, w, gemma=True)
    flashhip.flashinfer.gemma_fused_add_rmsnorm(x, r, w)
    assert_close(x, expected, torch.float16)
    assert_close(r, expected_r, torch.float16)
    for out_dtype in FP8:
        q = flashhip.rmsnorm_quant(x, w, torch.tensor([0.1]), out_dtype=out_dtype)
        assert q.dtype == out_dtype and q.shape == x.shape
        assert_fp8_close(q, ref.rmsnorm(x, w), torch.tensor([0.1]), out_dtype)
    # FlashInfer's destination-passing form with an e5m2 output (issue 16).
    q = torch.empty(x.shape, dtype=torch.float8_e5m2)
    flashhip.compat.flashinfer.rmsnorm_quant(q, x, w, torch.tensor([0.01]))
    assert_fp8_close(q, ref.rmsnorm(x, w), torch.tensor([0.01]), torch.float8_e5m2)
    # layernorm_quant: flashhip's functional form and FlashInfer's (fp32 gamma/beta, a float or
    # tensor scale, eps 1e-6 by default).
    for out_dtype in FP8:
        q = flashhip.layernorm_quant(x, gamma, beta, torch.tensor([0.05]), out_dtype=out_dtype)
        assert q.dtype == out_dtype and q.shape == x.shape
        assert_fp8_close(q, ref.layernorm(x, gamma, beta, 1e-5), torch.tensor([0.05]), out_dtype)
        want = ref.layernorm_quant(x, gamma, beta, torch.tensor([0.05]), out_dtype)
        assert (q.float() != want.float()).float().mean() < 1e-2  # the reference's rounding, but for ties
        for scale in (0.05, torch.tensor([0.05])):
            q = poison_like(torch.empty(x.shape, dtype=out_dtype))
            flashhip.compat.flashinfer.layernorm_quant(q, x, gamma, beta, scale)
            assert_fp8_close(q, ref.layernorm(x, gamma, beta, 1e-6), torch.tensor([0.05]), out_dtype)
    assert flashhip.flashinfer.layernorm_quant is flashhip.compat.flashinfer.layernorm_quant


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    x = torch.randn(4, 64)
    w = torch.randn(64)
    s = torch.tensor([1.0])
    q = torch.empty(4, 64, dtype=torch.float8_e4m3fn)
    out = lambda **kw: torch.empty(4, 64, **kw)  # noqa: E731
    return [
        ("rmsnorm", (out(), x, torch.randn(63), 1e-6, False), "'weight' must have shape \\[64\\]"),
        ("rmsnorm", (out(dtype=torch.float16), x, w, 1e-6, False), "'out' must have the dtype of 'input'"),
        ("rmsnorm", (torch.empty(4, 65), x, w, 1e-6, False), "'out' must have the shape of 'input'"),
        ("rmsnorm", (out(), x.to(torch.int32), w, 1e-6, False), "'input' must have dtype"),
        ("rmsnorm", (out(), torch.randn(64, 4).t(), w, 1e-6, False), "'input' must be contiguous in its innermost"),
        ("rmsnorm", (out(), x, w.half(), 1e-6, False), "'weight' must have the dtype of 'input'"),
        ("rmsnorm", (out(), x, w, -1.0, False), "'eps' must be finite and >= 0"),
        ("rmsnorm", (torch.empty(1, 64).expand(4, 64), x, w, 1e-6, False), "output 'out' has elements that share memory"),
        ("rmsnorm", (torch.empty(4, 0), torch.randn(4, 0), torch.randn(0), 1e-6, False), "'input' has an empty hidden"),
        ("fused_add_rmsnorm", (x, torch.randn(4, 32), w, 1e-6, False), "'residual' must have the shape of 'input'"),
        ("fused_add_rmsnorm", (x, x, w, 1e-6, False), "output 'residual' shares memory with 'input'"),
        ("layernorm", (out(), x, w, torch.randn(32), 1e-5), "'bias' must have shape \\[64\\]"),
        ("layernorm", (out(), x, w.to(torch.float16), None, 1e-5), "'weight' must have the dtype of 'input'"),
        ("rmsnorm_quant", (out(), x, w, s, 1e-6, False), "'out' must have dtype Float8_e4m3fn, Float8_e4m3fnuz, Float8_e5m2"),
        ("rmsnorm_quant", (q, x, w, torch.tensor([1.0, 2.0]), 1e-6, False), "'scale' must hold one fp32 value"),
        ("rmsnorm_quant", (q, x, w, torch.tensor([1.0], dtype=torch.float64), 1e-6, False), "'scale' must have dtype Float"),
        ("fused_add_rmsnorm_quant", (q, x, torch.randn(4, 64).half(), w, s, 1e-6, False), "'residual' must have the dtype of 'input'"),
        ("layernorm_quant", (out(), x, w, None, s, 1e-5), "'out' must have dtype Float8_e4m3fn, Float8_e4m3fnuz, Float8_e5m2"),
        ("layernorm_quant", (q, x, w, torch.randn(32), s, 1e-5), "'bias' must have shape \\[64\\]"),
        ("layernorm_quant", (q, x, w, w.half(), s, 1e-5), "'bias' must have the dtype of 'weight'"),
        ("layernorm_quant", (q, x, w.half(), None, s, 1e-5), "'weight' must have the dtype of 'input'"),
        ("layernorm_quant", (q, x, torch.randn(63), None, s, 1e-5), "'weight' must have shape \\[64\\]"),
        ("layernorm_quant", (q, x, w, None, torch.tensor([1.0, 2.0]), 1e-5), "'scale' must hold one fp32 value"),
        ("layernorm_quant", (q, x, w, None, s.double(), 1e-5), "'scale' must have dtype Float"),
        ("layernorm_quant", (q, x, w, None, s, float("inf")), "'eps' must be finite and >= 0"),
        ("layernorm_quant", (torch.empty(4, 65, dtype=torch.float8_e4m3fn), x, w, None, s, 1e-5),
         "'out' must have the shape of 'input'"),
    ] + [
        (name, {"rmsnorm_quant": (q, x, w, torch.tensor([bad]), 1e-6, False),
                "fused_add_rmsnorm_quant": (q, x, torch.randn(4, 64), w, torch.tensor([bad]), 1e-6, False),
                "layernorm_quant": (q, x, w, w, torch.tensor([bad]), 1e-5)}[name],
         "'scale' must be finite and positive")
        for name in QUANT_NAMES
        for bad in (0.0, -1.0, float("inf"), float("nan"))
    ]


@pytest.mark.parametrize("shape", [(1,), (), (1, 1)])
def test_quant_scale_of_one_element_in_any_shape(shape):
    x = torch.randn(4, 64)
    w = torch.randn(64)
    q = torch.empty(4, 64, dtype=torch.float8_e4m3fn)
    scale = torch.full(shape, 0.5)
    ops.rmsnorm_quant(q, x, w, scale, 1e-6, False)
    assert_fp8_close(q, ref.rmsnorm(x, w, 1e-6), scale.reshape(1), torch.float8_e4m3fn)
    ops.layernorm_quant(q, x, w, None, scale, 1e-5)
    assert_fp8_close(q, ref.layernorm(x, w, None, 1e-5), scale.reshape(1), torch.float8_e4m3fn)


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    name, args, message = _bad_cases()[case]
    snapshots = [a.float().clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        getattr(ops, name)(*args)
    for a, snap in zip(args, snapshots):
        if snap is not None:
            torch.testing.assert_close(a.float(), snap, equal_nan=True)


@requires_gpu
def test_wrong_device_is_named():
    x = torch.randn(4, 64, device="cuda")
    w = torch.randn(64)  # on the CPU
    with pytest.raises(RuntimeError, match="'weight' must be on cuda"):
        ops.rmsnorm(torch.empty_like(x), x, w, 1e-6, False)


# ---- GPU only: CUDA graphs, non-default streams ----

@requires_gpu
def test_cuda_graph_capture_and_replay():
    x = torch.randn(64, 4096, device="cuda", dtype=torch.bfloat16)
    r = torch.randn_like(x)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(x)
    q = torch.empty(64, 4096, device="cuda", dtype=torch.float8_e4m3fn)
    q_ln = torch.empty_like(q)
    scale = torch.tensor([0.1], device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture
        ops.rmsnorm(out, x, w, 1e-6, False)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.rmsnorm(out, x, w, 1e-6, False)
        ops.rmsnorm_quant(q, x, w, scale, 1e-6, False)
        ops.layernorm(out, out, w, None, 1e-5)
        ops.layernorm_quant(q_ln, x, w, w, scale, 1e-5)
    for _ in range(2):
        x.copy_(torch.randn_like(x))
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert_close(out, ref.layernorm(ref.rmsnorm(x, w).to(x.dtype), w, None, 1e-5), torch.bfloat16)
        assert_fp8_close(q, ref.rmsnorm(x, w), scale, torch.float8_e4m3fn)
        assert_fp8_close(q_ln, ref.layernorm(x, w, w, 1e-5), scale, torch.float8_e4m3fn)
    del r


@requires_gpu
def test_non_default_stream_orders_with_its_work():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x = torch.randn(4096, 8192, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(8192, device="cuda", dtype=torch.bfloat16)
        out = torch.full_like(x, float("nan"))
        # Queued behind a long matmul on the same stream: launching on the default stream
        # instead would read x before the matmul wrote it.
        x.copy_(x @ torch.eye(8192, device="cuda", dtype=torch.bfloat16))
        ops.rmsnorm(out, x, w, 1e-6, False)
    stream.synchronize()
    assert_close(out, ref.rmsnorm(x, w), torch.bfloat16)


@requires_gpu
def test_gpu_matches_cpu_for_fp8():
    # Same values, not always the same codes: the GPU's conversion keeps the sign of values that
    # underflow to zero (-0, code 0x80 in e4m3fn) where the CPU path writes +0. A value that
    # differs means the arithmetic differs (fp32 reduction order moves a value across a rounding
    # boundary now and then: allowed rarely).
    x = torch.randn(33, 5120, dtype=torch.bfloat16)
    w = torch.randn(5120, dtype=torch.bfloat16)
    scale = torch.tensor([0.02])
    for out_dtype in FP8:
        cpu = flashhip.rmsnorm_quant(x, w, scale, out_dtype=out_dtype)
        gpu = flashhip.rmsnorm_quant(x.cuda(), w.cuda(), scale.cuda(), out_dtype=out_dtype).cpu()
        mismatch = (cpu.float() != gpu.float()).float().mean().item()
        assert mismatch < 1e-3, f"{out_dtype}: {mismatch:.2%} of values differ"
        for affine in (w, w.float()):
            cpu = flashhip.layernorm_quant(x, affine, affine, scale, out_dtype=out_dtype)
            gpu = flashhip.layernorm_quant(x.cuda(), affine.cuda(), affine.cuda(), scale.cuda(), out_dtype=out_dtype).cpu()
            mismatch = (cpu.float() != gpu.float()).float().mean().item()
            assert mismatch < 1e-3, f"layernorm_quant {out_dtype} {affine.dtype}: {mismatch:.2%} of values differ"
