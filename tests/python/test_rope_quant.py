"""rope_quantize_fp8 (FlashInfer's rope_quantize_fp8 / mla_rope_quantize_fp8): RoPE on the rotary
parts of q and k, then fp8 quantisation (x * scale, saturated) of the rotated and the
pass-through parts, against the pure-torch reference, on CPU and (when present) GPU."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref
from flashhip.compat import flashinfer as fi

from conftest import DEVICES, requires_gpu

ops = torch.ops.flashhip
FP8_DTYPES = [torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2]
MAX_POSITION = 4096
# (num_q_heads, num_k_heads or None for MLA's 2-D k, rope_dim, nope_dim)
SHAPES = {
    "deepseek_mla": (128, None, 64, 512),
    "mla_small": (16, None, 64, 128),
    "gqa": (8, 2, 64, 64),
    "mha_partial": (4, 4, 32, 96),
    "odd_dims": (3, 1, 6, 5),  # no 16-byte vector fits: the GPU's scalar path
    "no_nope": (4, 2, 64, 0),
}


def as_bytes(t):
    return t.contiguous().view(torch.uint8)


def poisoned(shape, dtype, device):
    """An fp8 tensor of NaN (unwritten elements fail: the expected values are finite)."""
    return torch.full(shape, float("nan"), device=device).to(dtype)


def inputs(nnz, hq, hk, rope_dim, nope_dim, dtype, device, magnitude=4.0):
    """Fresh random q_rope, k_rope, q_nope, k_nope (k 2-D when hk is None, as MLA's)."""
    k_heads = () if hk is None else (hk,)

    def rand(*shape):
        return (torch.randn(*shape, device=device) * magnitude).to(dtype)

    return (rand(nnz, hq, rope_dim), rand(nnz, *k_heads, rope_dim), rand(nnz, hq, nope_dim),
            rand(nnz, *k_heads, nope_dim))


def assert_quantised_equal(actual, expected, exact):
    """Bit for bit (CPU: the same fp32 arithmetic and rounding), or on a GPU at most one fp8 step
    apart on a few elements (FMA contraction may move a fp32 rotation across a rounding boundary)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    a, e = as_bytes(actual.cpu()), as_bytes(expected.cpu())
    if exact:
        differ = (a != e).nonzero()
        assert differ.numel() == 0, f"{differ.shape[0]} of {a.numel()} bytes differ, first at {differ[:4].tolist()}"
        return
    af, ef = actual.cpu().float(), expected.cpu().float()
    assert not af.isnan().any(), "an output element was left unwritten"
    torch.testing.assert_close(af, ef, rtol=0.26, atol=2**-9)
    # A part of zero width (no nope dims) has nothing to compare: a mean over it would be NaN.
    assert (a != e).sum().item() <= 1e-2 * a.numel()


def run_and_check(q_rope, k_rope, q_nope, k_nope, cache, pos, interleave, scale_q, scale_kv, out_dtype, outs=None):
    """Runs the op into poisoned outputs (or the views given) and compares every output with the
    reference; returns the outputs."""
    device = q_rope.device
    if outs is None:
        outs = tuple(poisoned(t.shape, out_dtype, device) for t in (q_rope, k_rope, q_nope, k_nope))
    expected = ref.rope_quantize_fp8(q_rope.cpu(), k_rope.cpu(), q_nope.cpu(), k_nope.cpu(), cache.cpu(), pos.cpu(),
                                     interleave, scale_q, scale_kv, out_dtype)
    ops.rope_quantize_fp8(*outs, q_rope, k_rope, q_nope, k_nope, cache, pos, interleave, scale_q, scale_kv)
    for name, got, want in zip(("q_rope_out", "k_rope_out", "q_nope_out", "k_nope_out"), outs, expected):
        try:
            assert_quantised_equal(got, want, exact=device.type == "cpu")
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from e
    return outs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("out_dtype", FP8_DTYPES)
def test_matches_reference(device, shape, interleave, out_dtype):
    hq, hk, rope_dim, nope_dim = SHAPES[shape]
    nnz = 7  # odd
    q_rope, k_rope, q_nope, k_nope = inputs(nnz, hq, hk, rope_dim, nope_dim, torch.bfloat16, device)
    cache = flashhip.cos_sin_cache(MAX_POSITION, rope_dim, device=device)
    pos = torch.randint(0, MAX_POSITION, (nnz,), device=device)
    run_and_check(q_rope, k_rope, q_nope, k_nope, cache, pos, interleave, 0.75, 1.5, out_dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("positions_dtype", [torch.int32, torch.int64])
def test_input_and_position_dtypes(device, dtype, positions_dtype):
    q_rope, k_rope, q_nope, k_nope = inputs(5, 4, 2, 64, 64, dtype, device)
    cache = flashhip.cos_sin_cache(MAX_POSITION, 64, device=device)
    pos = torch.randint(0, MAX_POSITION, (5,), device=device, dtype=positions_dtype)
    run_and_check(q_rope, k_rope, q_nope, k_nope, cache, pos, False, 1.0, 0.5, torch.float8_e4m3fn)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("out_dtype", FP8_DTYPES)
def test_saturates_to_the_largest_finite_value(device, out_dtype):
    # Scales that push most values past the flavour's range: they must clamp, never become inf/NaN.
    limit = ref.FP8_MAX[out_dtype]
    q_rope, k_rope, q_nope, k_nope = inputs(9, 4, None, 64, 128, torch.bfloat16, device)
    cache = flashhip.cos_sin_cache(64, 64, device=device)
    pos = torch.randint(0, 64, (9,), device=device)
    outs = run_and_check(q_rope, k_rope, q_nope, k_nope, cache, pos, False, limit / 2, limit / 3, out_dtype)
    for out in outs:
        values = out.float()
        assert values.isfinite().all() and values.abs().max() == limit


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("interleave", [False, True])
def test_views_of_fused_buffers_as_deepseek_calls_it(device, offset, interleave):
    """q [nnz, H, 576] and kv [nnz, 576] split into nope | rope views, and the fp8 outputs views
    of fused fp8 buffers of the same layout (what an MLA attention reads); `offset` 1 starts the
    inputs off 16-byte alignment (the GPU's scalar path)."""
    nnz, heads, nope, rope = 11, 16, 512, 64
    width = nope + rope
    q_storage = torch.randn(nnz * heads * width + offset, device=device).to(torch.bfloat16)
    q = q_storage[offset:].view(nnz, heads, width)
    kv_storage = torch.randn(nnz * (width + 64) + offset, device=device).to(torch.bfloat16)
    kv = kv_storage[offset:].view(nnz, width + 64)[:, :width]  # a padded token stride
    q_nope, q_rope, k_nope, k_rope = q[..., :nope], q[..., nope:], kv[:, :nope], kv[:, nope:]
    q_fp8 = poisoned((nnz, heads, width), torch.float8_e4m3fn, device)
    kv_fp8 = poisoned((nnz, width), torch.float8_e4m3fn, device)
    outs = (q_fp8[..., nope:], kv_fp8[:, nope:], q_fp8[..., :nope], kv_fp8[:, :nope])
    cache = flashhip.cos_sin_cache(MAX_POSITION, rope, device=device)
    pos = torch.randint(0, MAX_POSITION, (nnz,), device=device)
    run_and_check(q_rope, k_rope, q_nope, k_nope, cache, pos, interleave, 1.0, 1.0, torch.float8_e4m3fn, outs)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_tokens_writes_nothing(device):
    q_rope, k_rope, q_nope, k_nope = inputs(0, 4, None, 64, 512, torch.bfloat16, device)
    cache = flashhip.cos_sin_cache(16, 64, device=device)
    outs = tuple(poisoned(t.shape, torch.float8_e4m3fn, device) for t in (q_rope, k_rope, q_nope, k_nope))
    ops.rope_quantize_fp8(*outs, q_rope, k_rope, q_nope, k_nope, cache, torch.zeros(0, dtype=torch.long, device=device),
                          False, 1.0, 1.0)
    assert all(o.numel() == 0 for o in outs)


def test_functional_form_allocates_and_infers_the_dtype():
    q_rope, k_rope, q_nope, k_nope = inputs(3, 4, 2, 64, 32, torch.bfloat16, "cpu")
    cache = flashhip.cos_sin_cache(16, 64)
    pos = torch.tensor([0, 3, 15])
    outs = flashhip.rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cache, pos, quant_scale_q=2.0)
    assert [o.dtype for o in outs] == [torch.float8_e4m3fn] * 4
    expected = ref.rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cache, pos, False, 2.0, 1.0)
    for got, want in zip(outs, expected):
        assert_quantised_equal(got, want, exact=True)
    # A given output's dtype is the one the others are allocated in.
    k_nope_out = poisoned(k_nope.shape, torch.float8_e5m2, "cpu")
    outs = flashhip.rope_quantize_fp8(q_rope, k_rope, None, None, cache, pos, True, k_nope_out=torch.empty(
        3, 2, 0, dtype=torch.float8_e5m2))
    assert [o.dtype for o in outs] == [torch.float8_e5m2] * 4 and outs[2].shape == (3, 4, 0)
    outs = flashhip.rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cache, pos, k_nope_out=k_nope_out)
    assert outs[3] is k_nope_out and not k_nope_out.float().isnan().any()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("is_neox", [True, False])
def test_flashinfer_forms(device, is_neox):
    """fi.rope_quantize_fp8 / fi.mla_rope_quantize_fp8 with FlashInfer's arguments, positional and
    by name: the same values as the op with interleave = not is_neox."""
    q_rope, k_rope, q_nope, k_nope = inputs(6, 16, None, 64, 512, torch.bfloat16, device)
    cache = flashhip.cos_sin_cache(MAX_POSITION, 64, device=device)
    pos = torch.randint(0, MAX_POSITION, (6,), device=device)
    expected = ref.rope_quantize_fp8(q_rope.cpu(), k_rope.cpu(), q_nope.cpu(), k_nope.cpu(), cache.cpu(), pos.cpu(),
                                     not is_neox, 0.5, 0.25, torch.float8_e4m3fn)
    exact = device == "cpu"
    got = fi.mla_rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cache, pos, is_neox, None, 0.5, 0.25)
    for g, e in zip(got, expected):
        assert_quantised_equal(g, e, exact)
    outs = tuple(poisoned(t.shape, torch.float8_e4m3fn, device) for t in (q_rope, k_rope, q_nope, k_nope))
    got = fi.rope_quantize_fp8(q_rope=q_rope, k_rope=k_rope, q_nope=q_nope, k_nope=k_nope, cos_sin_cache=cache,
                               pos_ids=pos, is_neox=is_neox, quantize_dtype=torch.float8_e4m3fn, quant_scale_q=0.5,
                               quant_scale_kv=0.25, q_rope_out=outs[0], k_rope_out=outs[1], q_nope_out=outs[2],
                               k_nope_out=outs[3], enable_pdl=True)
    assert all(g is o for g, o in zip(got, outs))
    for g, e in zip(got, expected):
        assert_quantised_equal(g, e, exact)
    # GQA shapes, quantize_dtype from the first output given, nope parts None.
    q_rope, k_rope, _, _ = inputs(6, 8, 2, 64, 0, torch.float16, device)
    k_rope_out = poisoned(k_rope.shape, torch.float8_e5m2, device)
    got = fi.rope_quantize_fp8(q_rope, k_rope, None, None, cache, pos, is_neox, k_rope_out=k_rope_out)
    assert [g.dtype for g in got] == [torch.float8_e5m2] * 4 and got[1] is k_rope_out
    assert got[2].shape == (6, 8, 0) and got[3].shape == (6, 2, 0)
    want = ref.rope_quantize_fp8(q_rope.cpu(), k_rope.cpu(), got[2].cpu().half(), got[3].cpu().half(), cache.cpu(),
                                 pos.cpu(), not is_neox, 1.0, 1.0, torch.float8_e5m2)
    assert_quantised_equal(got[0], want[0], exact)
    assert_quantised_equal(got[1], want[1], exact)


# ---- opcheck and torch.compile ----

def _samples(device):
    cache = flashhip.cos_sin_cache(64, 64, device=device)
    pos64 = torch.randint(0, 64, (5,), device=device)
    samples = []
    for hk, dtype, out_dtype, pos, interleave in [(None, torch.bfloat16, torch.float8_e4m3fn, pos64, False),
                                                  (2, torch.float16, torch.float8_e5m2, pos64.int(), True),
                                                  (4, torch.bfloat16, torch.float8_e4m3fnuz, pos64, False)]:
        ins = inputs(5, 4, hk, 64, 32, dtype, device)
        outs = tuple(torch.empty(t.shape, dtype=out_dtype, device=device) for t in ins)
        samples.append((*outs, *ins, cache, pos, interleave, 0.5, 2.0))
    return samples


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    # torch's schema check compares outputs with arithmetic that has no fp8 kernel, so it cannot
    # run on fp8 outputs (as for the norm quant ops); the (a!) marks are covered by aot dispatch
    # (which functionalises them) and by test_schemas.cpp.
    for args in _samples(device):
        opcheck(ops.rope_quantize_fp8.default, args,
                test_utils=("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def mla_prologue(q, kv, cache, positions):
        q_nope, q_rope = q[..., :128], q[..., 128:]
        k_nope, k_rope = kv[:, :128], kv[:, 128:]
        q_rope_out, k_rope_out, q_nope_out, k_nope_out = fi.mla_rope_quantize_fp8(
            q_rope, k_rope, q_nope, k_nope, cache, positions, True, torch.float8_e4m3fn, 0.5, 2.0)
        return torch.cat((q_nope_out.float(), q_rope_out.float()), -1), torch.cat((k_nope_out, k_rope_out), -1)

    compiled = torch.compile(mla_prologue, fullgraph=True)
    q = torch.randn(9, 8, 192, device=device, dtype=torch.bfloat16)
    kv = torch.randn(9, 192, device=device, dtype=torch.bfloat16)
    cache = flashhip.cos_sin_cache(128, 64, device=device)
    positions = torch.randint(0, 128, (9,), device=device)
    want_q, want_kv = mla_prologue(q, kv, cache, positions)
    got_q, got_kv = compiled(q, kv, cache, positions)
    torch.testing.assert_close(got_q, want_q)
    assert torch.equal(as_bytes(got_kv), as_bytes(want_kv))


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    q_rope, k_rope, q_nope, k_nope = inputs(3, 4, None, 64, 32, torch.bfloat16, "cpu")
    cache = flashhip.cos_sin_cache(16, 64)
    pos = torch.tensor([0, 5, 15])
    e4 = torch.float8_e4m3fn
    out = lambda t, dtype=e4: torch.full(t.shape, 7.0).to(dtype)  # noqa: E731
    shared = torch.full((3, 4, 64), 7.0).to(e4)
    raw_in = torch.randn(3 * 4 * 64).to(torch.bfloat16)

    def case(message, **changes):
        args = dict(q_rope_out=out(q_rope), k_rope_out=out(k_rope), q_nope_out=out(q_nope), k_nope_out=out(k_nope),
                    q_rope=q_rope, k_rope=k_rope, q_nope=q_nope, k_nope=k_nope, cos_sin_cache=cache, pos_ids=pos,
                    interleave=False, quant_scale_q=1.0, quant_scale_kv=1.0)
        args.update(changes)
        return tuple(args.values()), message

    return [
        case("'q_rope' must have dtype Half, BFloat16; got Float", q_rope=q_rope.float()),
        case("'k_nope' must have the dtype of 'q_rope'", k_nope=k_nope.half()),
        case("'q_rope' must be 3-D \\[nnz, num_q_heads, rope_dim\\]", q_rope=q_rope[0], q_rope_out=out(q_rope[0])),
        case("'k_rope' must be 2-D \\[nnz, rope_dim\\] \\(MLA\\) or 3-D", k_rope=k_rope[..., None, None]),
        case("'k_nope' must be 2-D \\[nnz, nope_dim\\] like 'k_rope'", k_nope=k_nope[:, None],
             k_nope_out=out(k_nope[:, None])),
        case("'q_nope' has 3 heads but 'q_rope' has 4", q_nope=q_nope[:, :3], q_nope_out=out(q_nope[:, :3])),
        case("'k_rope' has 2 tokens but 'q_rope' has 3", k_rope=k_rope[:2], k_rope_out=out(k_rope[:2])),
        case("'k_rope' has rope_dim 32 but 'q_rope' has 64", k_rope=k_rope[:, :32], k_rope_out=out(k_rope[:, :32])),
        case("'k_nope' has nope_dim 16 but 'q_nope' has 32", k_nope=k_nope[:, :16], k_nope_out=out(k_nope[:, :16])),
        case("'q_nope' must be contiguous in its innermost", q_nope=q_nope.transpose(1, 2).contiguous().transpose(1, 2)),
        case("'cos_sin_cache' has rotary_dim \\(size\\(1\\)\\) 32 but 'q_rope' has rope_dim 64",
             cos_sin_cache=flashhip.cos_sin_cache(16, 32)),
        case("'cos_sin_cache' must have dtype Float", cos_sin_cache=cache.half()),
        case("'pos_ids' must have dtype Int, Long; got Float", pos_ids=pos.float()),
        case("'pos_ids' must have shape \\[3\\] \\(one per token of 'q_rope'\\)", pos_ids=pos[:2]),
        case("'pos_ids' holds 16 at index 1, outside the 16 rows of 'cos_sin_cache'", pos_ids=torch.tensor([0, 16, 1])),
        case("'pos_ids' holds -1 at index 2", pos_ids=torch.tensor([0, 1, -1], dtype=torch.int32)),
        case("'quant_scale_q' must be finite and positive, got nan", quant_scale_q=float("nan")),
        case("'quant_scale_kv' must be finite and positive, got 0", quant_scale_kv=0.0),
        case("'q_rope_out' must have dtype Float8_e4m3fn, Float8_e4m3fnuz, Float8_e5m2; got BFloat16",
             q_rope_out=q_rope.clone()),
        case("'k_nope_out' must have the dtype of 'q_rope_out'", k_nope_out=out(k_nope, torch.float8_e5m2)),
        case("'q_nope_out' must have the shape of 'q_nope'", q_nope_out=torch.full((3, 4, 33), 7.0).to(e4)),
        case("output 'k_rope_out' has elements that share memory", k_rope_out=torch.full((1, 64), 7.0).to(e4).expand(3, 64)),
        case("output 'q_rope_out' shares memory with 'q_nope_out'", q_rope_out=shared,
             q_nope_out=shared[..., :32]),
        case("output 'q_rope_out' shares memory with 'q_rope'", q_rope=raw_in.view(3, 4, 64),
             q_rope_out=raw_in.view(torch.float8_e4m3fn)[: 3 * 4 * 64].view(3, 4, 64)),
        case("output 'k_nope_out' shares memory with 'pos_ids'",
             k_nope_out=(raw := torch.zeros(3 * 32, dtype=torch.float8_e4m3fn)).view(3, 32),
             pos_ids=raw.view(torch.int64)[:3].zero_()),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    args, message = _bad_cases()[case]
    snapshots = [as_bytes(a).clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        ops.rope_quantize_fp8(*args)
    for a, snap in zip(args, snapshots):
        if snap is not None:
            assert torch.equal(as_bytes(a), snap)


# ---- GPU only: devices, out-of-range positions on the device, CUDA graphs, non-default streams ----

@requires_gpu
def test_wrong_device_is_named():
    q_rope, k_rope, q_nope, k_nope = inputs(3, 4, None, 64, 32, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(16, 64, device="cuda")
    outs = tuple(torch.empty(t.shape, dtype=torch.float8_e4m3fn, device="cuda") for t in (q_rope, k_rope, q_nope, k_nope))
    with pytest.raises(RuntimeError, match="'pos_ids' must be on"):
        ops.rope_quantize_fp8(*outs, q_rope, k_rope, q_nope, k_nope, cache, torch.tensor([0, 1, 2]), False, 1.0, 1.0)
    with pytest.raises(RuntimeError, match="'k_nope_out' must be on"):
        ops.rope_quantize_fp8(*outs[:3], outs[3].cpu(), q_rope, k_rope, q_nope, k_nope, cache,
                              torch.tensor([0, 1, 2], device="cuda"), False, 1.0, 1.0)


@requires_gpu
def test_gpu_skips_tokens_whose_position_is_outside_the_cache():
    q_rope, k_rope, q_nope, k_nope = inputs(4, 8, None, 64, 128, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(16, 64, device="cuda")
    pos = torch.tensor([0, 16, -1, 15], device="cuda")
    outs = tuple(poisoned(t.shape, torch.float8_e4m3fn, "cuda") for t in (q_rope, k_rope, q_nope, k_nope))
    ops.rope_quantize_fp8(*outs, q_rope, k_rope, q_nope, k_nope, cache, pos, False, 1.0, 1.0)
    good = torch.tensor([0, 3])
    expected = ref.rope_quantize_fp8(q_rope.cpu()[good], k_rope.cpu()[good], q_nope.cpu()[good], k_nope.cpu()[good],
                                     cache.cpu(), pos.cpu()[good])
    for got, want in zip(outs, expected):
        got = got.cpu()  # indexed as bytes: fp8 has no index kernels everywhere
        assert got[1:3].float().isnan().all(), "a token outside the cache must be left as it was"
        assert_quantised_equal(got.view(torch.uint8)[good].view(got.dtype), want, exact=False)


@requires_gpu
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("out_dtype", FP8_DTYPES)
def test_gpu_matches_cpu_on_many_tokens(interleave, out_dtype):
    nnz = 5003
    q_rope, k_rope, q_nope, k_nope = inputs(nnz, 16, None, 64, 512, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(MAX_POSITION, 64, device="cuda")
    pos = torch.randint(0, MAX_POSITION, (nnz,), device="cuda")
    gpu = flashhip.rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cache, pos, interleave, 0.5, 2.0,
                                     out_dtype=out_dtype)
    cpu = flashhip.rope_quantize_fp8(q_rope.cpu(), k_rope.cpu(), q_nope.cpu(), k_nope.cpu(), cache.cpu(), pos.cpu(),
                                     interleave, 0.5, 2.0, out_dtype=out_dtype)
    for g, c in zip(gpu, cpu):
        assert_quantised_equal(g, c, exact=False)
    # The nope parts involve no rotation: the same conversion on both devices, bit for bit.
    assert torch.equal(as_bytes(gpu[2].cpu()), as_bytes(cpu[2])) and torch.equal(as_bytes(gpu[3].cpu()), as_bytes(cpu[3]))


@requires_gpu
def test_cuda_graph_capture_and_replay():
    nnz = 64
    q_rope, k_rope, q_nope, k_nope = inputs(nnz, 128, None, 64, 512, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(8192, 64, device="cuda")
    pos = torch.randint(0, 8192, (nnz,), device="cuda")
    outs = tuple(torch.empty(t.shape, dtype=torch.float8_e4m3fn, device="cuda") for t in (q_rope, k_rope, q_nope, k_nope))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture
        ops.rope_quantize_fp8(*outs, q_rope, k_rope, q_nope, k_nope, cache, pos, False, 0.5, 0.5)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.rope_quantize_fp8(*outs, q_rope, k_rope, q_nope, k_nope, cache, pos, False, 0.5, 0.5)
    for _ in range(2):
        for t in (q_rope, k_rope, q_nope, k_nope):
            t.copy_(torch.randn_like(t) * 4)
        pos.copy_(torch.randint(0, 8192, (nnz,), device="cuda"))
        for o in outs:
            o.copy_(torch.full(o.shape, float("nan"), device="cuda").to(o.dtype))
        expected = ref.rope_quantize_fp8(q_rope.cpu(), k_rope.cpu(), q_nope.cpu(), k_nope.cpu(), cache.cpu(),
                                         pos.cpu(), False, 0.5, 0.5)
        graph.replay()
        torch.cuda.synchronize()
        for got, want in zip(outs, expected):
            assert_quantised_equal(got, want, exact=False)


@requires_gpu
def test_non_default_stream_orders_with_its_work():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x = torch.randn(4096, 8192, device="cuda", dtype=torch.bfloat16)
        cache = flashhip.cos_sin_cache(8192, 64, device="cuda")
        pos = torch.randint(0, 8192, (4096,), device="cuda")
        # Queued behind a long matmul on the same stream: launching on the default stream
        # instead would read x before the matmul wrote it.
        x.copy_(x @ torch.eye(8192, device="cuda", dtype=torch.bfloat16))
        heads = x.view(4096, 16, 512)
        q_nope, q_rope = heads[:, 0:1], heads[:, 1:2, :64]
        k_nope, k_rope = heads[:, 2], heads[:, 3, :64]
        outs = flashhip.rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cache, pos)
    stream.synchronize()
    expected = ref.rope_quantize_fp8(q_rope.cpu(), k_rope.cpu(), q_nope.cpu(), k_nope.cpu(), cache.cpu(), pos.cpu())
    for got, want in zip(outs, expected):
        assert_quantised_equal(got, want, exact=False)
