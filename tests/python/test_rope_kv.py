"""rope_set_kv_buffer: the rotary embedding with the KV-cache write fused in (sgl-kernel's
apply_rope_with_cos_sin_cache_inplace with a FusedSetKVBufferArg), against rope followed by the
two index writes an engine does (``k_cache[loc] = k; v_cache[loc] = v``), on CPU and (when
present) GPU."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref
from flashhip.compat import sgl_kernel

from conftest import DEVICES, poison_like, requires_gpu

ops = torch.ops.flashhip
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Each rotated element is x1*cos -/+ x2*sin in fp32, rounded once to the dtype: fp32 agrees to
# float rounding (FMA contraction may differ), 16-bit dtypes to one ulp of the output. The cache
# rows are compared bit for bit with what the op wrote to k_out, and with v.
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
MAX_POSITION = 4096


def assert_close(actual, expected, dtype):
    torch.testing.assert_close(actual.float(), expected.float(), rtol=TOL[dtype], atol=TOL[dtype])


def as_bytes(t):
    """The elements' bytes (NaN poison compares equal to itself this way)."""
    return t.contiguous().view(torch.uint8) if t.element_size() == 1 else t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)


def fused_qkv(nnz, hq, hk, head_dim, dtype, device, offset=0):
    """q, k and v as strided views of one [nnz, (hq + 2 hk) * head_dim] buffer (token stride the
    whole row), starting `offset` elements in (1 breaks 16-byte alignment: the GPU's scalar
    path). Returns (qkv, q, k, v), each of q/k/v [nnz, heads, head_dim]."""
    width = (hq + 2 * hk) * head_dim
    storage = torch.randn(nnz * width + offset, device=device).to(dtype)
    qkv = storage[offset:].view(nnz, width)
    q = qkv[:, : hq * head_dim].view(nnz, hq, head_dim)
    k = qkv[:, hq * head_dim : (hq + hk) * head_dim].view(nnz, hk, head_dim)
    v = qkv[:, (hq + hk) * head_dim :].view(nnz, hk, head_dim)
    return qkv, q, k, v


def kv_caches(slots, hk, head_dim, dtype, device, padded=False):
    """Poisoned (NaN) k and v caches [slots, hk, head_dim]; `padded`: views with a padded head
    and slot stride, out of larger buffers."""
    if padded:
        k_base = torch.full((slots, hk + 1, head_dim + 8), float("nan"), device=device, dtype=dtype)
        v_base = torch.full((slots + 3, hk, head_dim + 16), float("nan"), device=device, dtype=dtype)
        return k_base[:, 1:, 8:], v_base[3:, :, :head_dim]
    return (torch.full((slots, hk, head_dim), float("nan"), device=device, dtype=dtype),
            torch.full((slots, hk, head_dim), float("nan"), device=device, dtype=dtype))


def rows_for(nnz, slots, device):
    """nnz distinct cache rows in a random order, as SGLang's out_cache_loc (int64)."""
    return torch.randperm(slots, device=device)[:nnz]


def check(q, k, v, cache, positions, k_cache, v_cache, loc, interleave, dtype, q_out=None, k_out=None):
    """Runs the op (into poisoned q_out/k_out unless given: pass q, k for in place) and checks
    q_out/k_out against the reference, the cache rows `loc` against k_out and v bit for bit, and
    every other cache row untouched."""
    expected_q, expected_k, expected_k_cache, expected_v_cache = ref.rope_set_kv_buffer(
        q, k, v, cache, positions, k_cache, v_cache, loc, interleave)
    v_before = v.clone()
    q_out = poison_like(q) if q_out is None else q_out
    k_out = poison_like(k) if k_out is None else k_out
    ops.rope_set_kv_buffer(q_out, k_out, k_cache, v_cache, q, k, v, cache, positions, loc, interleave)
    assert_close(q_out, expected_q, dtype)
    assert_close(k_out, expected_k, dtype)
    assert torch.equal(v, v_before)
    rows = loc.long()
    assert torch.equal(as_bytes(k_cache[rows]), as_bytes(k_out)), "the k cache rows must be what k_out got"
    assert torch.equal(as_bytes(v_cache[rows]), as_bytes(v)), "the v cache rows must be v"
    assert_close(k_cache[rows], expected_k_cache[rows], dtype)
    untouched = torch.ones(k_cache.shape[0], dtype=torch.bool, device=k_cache.device)
    untouched[rows] = False
    assert torch.equal(as_bytes(k_cache[untouched]), as_bytes(expected_k_cache[untouched])), "a k cache row no token names was written"
    assert torch.equal(as_bytes(v_cache[untouched]), as_bytes(expected_v_cache[untouched])), "a v cache row no token names was written"
    return q_out, k_out


# ---- Results against rope + index writes ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim,rotary_dim", [(128, 128), (64, 64), (128, 64), (80, 32), (96, 96)])
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("in_place", [False, True])
def test_matches_rope_then_index_writes(device, dtype, head_dim, rotary_dim, interleave, in_place):
    # 13 tokens (odd) of 8 q and 2 kv heads into a 40-row pool; other rows stay poisoned.
    q = torch.randn(13, 8, head_dim, device=device).to(dtype)
    k = torch.randn(13, 2, head_dim, device=device).to(dtype)
    v = torch.randn(13, 2, head_dim, device=device).to(dtype)
    cache = flashhip.cos_sin_cache(MAX_POSITION, rotary_dim, device=device)
    positions = torch.randint(0, MAX_POSITION, (13,), device=device, dtype=torch.int32 if in_place else torch.int64)
    k_cache, v_cache = kv_caches(40, 2, head_dim, dtype, device)
    outputs = dict(q_out=q, k_out=k) if in_place else {}
    q_in, k_in = q.clone(), k.clone()
    q_out, k_out = check(q, k, v, cache, positions, k_cache, v_cache, rows_for(13, 40, device), interleave, dtype,
                         **outputs)
    # The pass-through part is a bit-exact copy (in the cache too, checked against k_out above).
    assert torch.equal(q_out[..., rotary_dim:], q_in[..., rotary_dim:])
    assert torch.equal(k_out[..., rotary_dim:], k_in[..., rotary_dim:])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("offset", [0, 1])
def test_in_place_on_fused_qkv_views_as_sglang_calls_it(device, dtype, interleave, offset):
    # q, k, v strided views of one qkv buffer, rotated in place (q_out is q, k_out is k).
    qkv, q, k, v = fused_qkv(11, 8, 2, 128, dtype, device, offset)
    assert not v.is_contiguous() and v.stride() == ((8 + 4) * 128, 128, 1)
    cache = flashhip.llama3_cos_sin_cache(MAX_POSITION, 128, device=device)
    positions = torch.randint(0, MAX_POSITION, (11,), device=device)
    k_cache, v_cache = kv_caches(64, 2, 128, dtype, device)
    q_rows_before = qkv[:, : 8 * 128].clone()
    check(q, k, v, cache, positions, k_cache, v_cache, rows_for(11, 64, device), interleave, dtype, q_out=q, k_out=k)
    assert not torch.equal(qkv[:, : 8 * 128], q_rows_before)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rotary_dim", [64, 32])
def test_strided_caches_and_one_kv_head(device, dtype, rotary_dim):
    # MQA-like: one kv head; caches are views with padded head and slot strides; out of place.
    q = torch.randn(9, 4, 64, device=device).to(dtype)
    k = torch.randn(9, 1, 64, device=device).to(dtype)
    v = torch.randn(9, 1, 64, device=device).to(dtype)
    cache = flashhip.cos_sin_cache(MAX_POSITION, rotary_dim, device=device)
    positions = torch.randint(0, MAX_POSITION, (9,), device=device)
    k_cache, v_cache = kv_caches(17, 1, 64, dtype, device, padded=True)
    assert not k_cache.is_contiguous() and not v_cache.is_contiguous()
    k_base, v_base = k_cache._base.clone(), v_cache._base.clone()
    check(q, k, v, cache, positions, k_cache, v_cache, rows_for(9, 17, device), False, dtype)
    # The padding around the views is not touched either.
    mask_k = torch.ones_like(k_base, dtype=torch.bool)
    mask_k[:, 1:, 8:] = False
    mask_v = torch.ones_like(v_base, dtype=torch.bool)
    mask_v[3:, :, :64] = False
    assert torch.equal(as_bytes(k_cache._base[mask_k]), as_bytes(k_base[mask_k]))
    assert torch.equal(as_bytes(v_cache._base[mask_v]), as_bytes(v_base[mask_v]))


@pytest.mark.parametrize("device", DEVICES)
def test_single_token_many_heads_and_every_row(device):
    # One token of 64 q and 16 kv heads; then a batch that fills every row of the pool.
    q = torch.randn(1, 64, 128, device=device).to(torch.bfloat16)
    k = torch.randn(1, 16, 128, device=device).to(torch.bfloat16)
    v = torch.randn(1, 16, 128, device=device).to(torch.bfloat16)
    cache = flashhip.cos_sin_cache(MAX_POSITION, 128, device=device)
    k_cache, v_cache = kv_caches(3, 16, 128, torch.bfloat16, device)
    check(q, k, v, cache, torch.tensor([4095], device=device), k_cache, v_cache,
          torch.tensor([2], device=device), False, torch.bfloat16)
    _, q, k, v = fused_qkv(7, 4, 2, 64, torch.float16, device)
    k_cache, v_cache = kv_caches(7, 2, 64, torch.float16, device)
    check(q, k, v, flashhip.cos_sin_cache(16, 64, device=device), torch.randint(0, 16, (7,), device=device),
          k_cache, v_cache, rows_for(7, 7, device), True, torch.float16, q_out=q, k_out=k)
    assert not k_cache.isnan().any() and not v_cache.isnan().any()


@pytest.mark.parametrize("device", DEVICES)
def test_zero_tokens_writes_nothing(device):
    for dtype in DTYPES:
        q = torch.empty(0, 8, 128, device=device, dtype=dtype)
        k = torch.empty(0, 2, 128, device=device, dtype=dtype)
        k_cache, v_cache = kv_caches(5, 2, 128, dtype, device)
        ops.rope_set_kv_buffer(torch.empty_like(q), torch.empty_like(k), k_cache, v_cache, q, k, torch.empty_like(k),
                               flashhip.cos_sin_cache(16, 128, device=device), torch.empty(0, dtype=torch.long, device=device),
                               torch.empty(0, dtype=torch.long, device=device), False)
        assert k_cache.isnan().all() and v_cache.isnan().all()
    # An empty pool with no tokens is valid too.
    k_cache, v_cache = kv_caches(0, 2, 128, torch.bfloat16, device)
    q = torch.empty(0, 8, 128, device=device, dtype=torch.bfloat16)
    k = torch.empty(0, 2, 128, device=device, dtype=torch.bfloat16)
    ops.rope_set_kv_buffer(q, k, k_cache, v_cache, q, k, k.clone(), flashhip.cos_sin_cache(16, 128, device=device),
                           torch.empty(0, dtype=torch.int32, device=device), torch.empty(0, dtype=torch.long, device=device),
                           True)


def test_functional_form_allocates_or_writes_given_outputs():
    _, q, k, v = fused_qkv(5, 4, 1, 64, torch.bfloat16, "cpu")
    cache = flashhip.cos_sin_cache(64, 64)
    positions = torch.randint(0, 64, (5,), dtype=torch.int32)
    k_cache, v_cache = kv_caches(8, 1, 64, torch.bfloat16, "cpu")
    loc = rows_for(5, 8, "cpu")
    expected_q, expected_k, expected_kc, _ = ref.rope_set_kv_buffer(q, k, v, cache, positions, k_cache, v_cache, loc, True)
    q_out, k_out = flashhip.rope_set_kv_buffer(q, k, v, cache, positions, k_cache, v_cache, loc, interleave=True)
    assert_close(q_out, expected_q, torch.bfloat16)
    assert_close(k_cache[loc], expected_kc[loc], torch.bfloat16)
    q_in_place, k_in_place = flashhip.rope_set_kv_buffer(q, k, v, cache, positions, k_cache, v_cache, loc, True,
                                                         q_out=q, k_out=k)
    assert q_in_place is q and k_in_place is k
    assert_close(q, expected_q, torch.bfloat16)
    assert_close(k, expected_k, torch.bfloat16)


# ---- sgl-kernel's form ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("is_neox", [True, False])
def test_sgl_kernel_form(device, is_neox):
    # SGLang's call: flattened [nnz, heads * head_size] q/k/v views of the qkv buffer, the pool's
    # buffers viewed [slots, kv_heads * head_size], scales None, int64 cache_loc.
    qkv, q, k, v = fused_qkv(9, 8, 2, 128, torch.bfloat16, device)
    query, key, value = qkv[:, : 8 * 128], qkv[:, 8 * 128 : 10 * 128], qkv[:, 10 * 128 :]
    cache = flashhip.cos_sin_cache(MAX_POSITION, 96, device=device)  # partial rotary
    positions = torch.randint(0, MAX_POSITION, (9,), device=device)
    k_pool, v_pool = kv_caches(32, 2, 128, torch.bfloat16, device)
    loc = rows_for(9, 32, device)
    expected_q, expected_k, expected_kc, expected_vc = ref.rope_set_kv_buffer(
        q, k, v, cache, positions, k_pool, v_pool, loc, not is_neox)
    arg = sgl_kernel.FusedSetKVBufferArg(value=value, k_buffer=k_pool.view(32, -1), v_buffer=v_pool.view(32, -1),
                                         k_scale=None, v_scale=None, cache_loc=loc)
    sgl_kernel.apply_rope_with_cos_sin_cache_inplace(positions, query, key, 128, cache, is_neox,
                                                     fused_set_kv_buffer_arg=arg, enable_pdl=True)
    assert_close(q, expected_q, torch.bfloat16)
    assert_close(k, expected_k, torch.bfloat16)
    assert torch.equal(as_bytes(k_pool[loc]), as_bytes(k)) and torch.equal(as_bytes(v_pool[loc]), as_bytes(v))
    assert_close(k_pool[loc], expected_kc[loc], torch.bfloat16)
    assert torch.equal(as_bytes(v_pool), as_bytes(expected_vc))  # other rows still poisoned
    # Without the argument it is FlashInfer's in-place rope; 3-D buffers work as well.
    q2, k2 = torch.randn(3, 4, 64, device=device), torch.randn(3, 1, 64, device=device)
    want_q, want_k = ref.rope(q2, k2, flashhip.cos_sin_cache(16, 64, device=device), torch.tensor([1, 2, 3], device=device),
                              not is_neox)
    sgl_kernel.apply_rope_with_cos_sin_cache_inplace(torch.tensor([1, 2, 3], device=device), q2.view(3, -1),
                                                     k2.view(3, -1), 64, flashhip.cos_sin_cache(16, 64, device=device),
                                                     is_neox)
    assert_close(q2, want_q, torch.float32)
    assert_close(k2, want_k, torch.float32)
    k3, v3 = kv_caches(4, 1, 64, torch.float32, device)
    sgl_kernel.apply_rope_with_cos_sin_cache_inplace(
        torch.tensor([1, 2, 3], device=device), q2.view(3, -1), k2.view(3, -1), 64,
        flashhip.cos_sin_cache(16, 64, device=device), is_neox,
        sgl_kernel.FusedSetKVBufferArg(k2.view(3, -1).clone(), k3, v3, None, None, torch.tensor([3, 0, 1], device=device)))
    assert torch.equal(k3[[3, 0, 1]], k2) and v3[2].isnan().all()


def test_sgl_kernel_form_refuses_scales_and_bad_views():
    q, k, v = torch.randn(2, 4, 64), torch.randn(2, 1, 64), torch.randn(2, 1, 64)
    cache = flashhip.cos_sin_cache(16, 64)
    k_pool, v_pool = kv_caches(4, 1, 64, torch.float32, "cpu")
    q_before, k_before = q.clone(), k.clone()

    def call(**changes):
        fields = dict(value=v.view(2, -1), k_buffer=k_pool, v_buffer=v_pool, k_scale=None, v_scale=None,
                      cache_loc=torch.tensor([0, 1]))
        fields.update(changes)
        sgl_kernel.apply_rope_with_cos_sin_cache_inplace(torch.tensor([0, 1]), q.view(2, -1), k.view(2, -1), 64, cache,
                                                         True, sgl_kernel.FusedSetKVBufferArg(**fields))

    with pytest.raises(RuntimeError, match="'fused_set_kv_buffer_arg.k_scale' must be None.*not supported"):
        call(k_scale=1.0)
    with pytest.raises(RuntimeError, match="'fused_set_kv_buffer_arg.v_scale' must be None"):
        call(v_scale=0.5)
    with pytest.raises(ValueError, match="'fused_set_kv_buffer_arg.value' must be \\[rows, heads \\* head_size\\]"):
        call(value=torch.randn(2, 65))
    with pytest.raises(RuntimeError, match="'cache_loc' must have dtype Long"):
        call(cache_loc=torch.tensor([0, 1], dtype=torch.int32))
    with pytest.raises(RuntimeError, match="'k_cache' must have the dtype of 'k'.*fp8"):
        call(k_buffer=torch.zeros(4, 64, dtype=torch.float8_e4m3fn))
    assert torch.equal(q, q_before) and torch.equal(k, k_before)
    assert k_pool.isnan().all() and v_pool.isnan().all()


# ---- opcheck and torch.compile ----

def _samples(device):
    _, q, k, v = fused_qkv(6, 4, 2, 80, torch.bfloat16, device)
    cache = flashhip.cos_sin_cache(64, 64, device=device)
    pos64 = torch.randint(0, 64, (6,), device=device)
    pos32 = pos64.int()
    loc = rows_for(6, 10, device)
    kc, vc = kv_caches(10, 2, 80, torch.bfloat16, device)
    kc16, vc16 = kv_caches(10, 2, 80, torch.float16, device, padded=True)
    q16, k16, v16 = q.half().contiguous(), k.half().contiguous(), v.half().contiguous()
    return [
        (torch.empty_like(q), torch.empty_like(k), kc, vc, q, k, v, cache, pos64, loc, False),
        (torch.empty_like(q16), torch.empty_like(k16), kc16, vc16, q16, k16, v16, cache, pos32, loc, True),
        (torch.empty(6, 4, 80, device=device), torch.empty(6, 2, 80, device=device), kc.float(), vc.float(),
         q.float(), k.float(), v.float(), cache, pos32, loc, False),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    for args in _samples(device):
        opcheck(ops.rope_set_kv_buffer.default, args)  # schema, autograd registration, fake, aot dispatch


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def attention_prologue(qkv, cache, positions, k_pool, v_pool, loc):
        query, key, value = qkv[:, : 8 * 64], qkv[:, 8 * 64 : 10 * 64], qkv[:, 10 * 64 :]
        arg = sgl_kernel.FusedSetKVBufferArg(value=value, k_buffer=k_pool.view(k_pool.shape[0], -1),
                                             v_buffer=v_pool.view(v_pool.shape[0], -1), k_scale=None, v_scale=None,
                                             cache_loc=loc)
        sgl_kernel.apply_rope_with_cos_sin_cache_inplace(positions, query, key, 64, cache, True,
                                                         fused_set_kv_buffer_arg=arg)
        q = qkv[:, : 8 * 64].view(-1, 8, 64)
        return q * 2

    compiled = torch.compile(attention_prologue, fullgraph=True)
    qkv = torch.randn(9, 12 * 64, device=device, dtype=torch.bfloat16)
    cache = flashhip.cos_sin_cache(128, 64, device=device)
    positions = torch.randint(0, 128, (9,), device=device)
    loc = rows_for(9, 20, device)
    eager_state = (qkv.clone(), *kv_caches(20, 2, 64, torch.bfloat16, device))
    compiled_state = (qkv.clone(), *kv_caches(20, 2, 64, torch.bfloat16, device))
    eager = attention_prologue(eager_state[0], cache, positions, eager_state[1], eager_state[2], loc)
    got = compiled(compiled_state[0], cache, positions, compiled_state[1], compiled_state[2], loc)
    torch.testing.assert_close(got, eager)
    for a, b in zip(compiled_state, eager_state):
        assert torch.equal(as_bytes(a), as_bytes(b))
    assert not compiled_state[1][loc].isnan().any() and compiled_state[1].isnan().any()


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    q = torch.randn(3, 4, 64)
    k = torch.randn(3, 2, 64)
    v = torch.randn(3, 2, 64)
    cache = flashhip.cos_sin_cache(16, 64)
    pos = torch.tensor([0, 5, 15])
    loc = torch.tensor([7, 0, 39])
    qo = lambda: torch.full((3, 4, 64), 7.0)  # noqa: E731
    ko = lambda: torch.full((3, 2, 64), 7.0)  # noqa: E731
    kc = lambda **kw: torch.full((40, 2, 64), 7.0, **kw)  # noqa: E731
    shared = torch.full((40, 2, 64), 7.0)
    kv_view = torch.full((40, 2, 64), 7.0)

    def case(message, **changes):
        args = dict(q_out=qo(), k_out=ko(), k_cache=kc(), v_cache=kc(), q=q, k=k, v=v, cos_sin_cache=cache,
                    positions=pos, cache_loc=loc, interleave=False)
        args.update(changes)
        return tuple(args.values()), message

    return [
        case("'cache_loc' holds 40 at index 1, outside the 40 rows of 'k_cache' and 'v_cache'",
             cache_loc=torch.tensor([0, 40, 2])),
        case("'cache_loc' holds -1 at index 2", cache_loc=torch.tensor([0, 1, -1])),
        case("'cache_loc' holds row 5 at indices 0 and 2; each token needs a row of its own",
             cache_loc=torch.tensor([5, 1, 5])),
        case("'positions' holds 16 at index 1, outside the 16 rows", positions=torch.tensor([0, 16, 2])),
        case("'cache_loc' must have dtype Long", cache_loc=loc.int()),
        case("'cache_loc' must have shape \\[3\\]", cache_loc=torch.tensor([0, 1])),
        case("'cache_loc' must have shape \\[3\\]", cache_loc=loc[:, None]),
        case("'k_cache' must have the dtype of 'k' \\(Float\\), got Float8_e4m3fn; .*fp8",
             k_cache=kc().to(torch.float8_e4m3fn)),
        case("'v_cache' must have the dtype of 'k' \\(Float\\), got Half", v_cache=kc(dtype=torch.float16)),
        case("'k_cache' must be 3-D \\[cache_slots, num_k_heads = 2, head_dim = 64\\], got shape \\[40, 128\\]",
             k_cache=torch.full((40, 128), 7.0)),
        case("'v_cache' must be 3-D \\[cache_slots, num_k_heads = 2, head_dim = 64\\]",
             v_cache=torch.full((40, 1, 64), 7.0)),
        case("'v_cache' must have the shape of 'k_cache'", v_cache=torch.full((41, 2, 64), 7.0)),
        case("'v' must have the shape of 'k'", v=torch.randn(3, 1, 64)),
        case("'v' must have the dtype of 'k'", v=v.half()),
        case("'v' must be contiguous in its innermost", v=torch.randn(3, 64, 2).transpose(1, 2)),
        case("'k_cache' must be contiguous in its innermost", k_cache=torch.full((40, 64, 2), 7.0).transpose(1, 2)),
        case("output 'v_cache' has elements that share memory", v_cache=torch.full((1, 2, 64), 7.0).expand(40, 2, 64)),
        case("'cos_sin_cache' must have dtype Float", cos_sin_cache=cache.half()),
        case("'k' has 2 tokens but 'q' has 3", k=torch.randn(2, 2, 64), k_out=torch.full((2, 2, 64), 7.0)),
        # Aliasing: the caches are separate from every other argument and from each other.
        case("output 'k_cache' shares memory with 'v_cache'", k_cache=shared, v_cache=shared),
        case("output 'k_cache' shares memory with 'k'", k_cache=kv_view, k=kv_view[:3], k_out=kv_view[:3]),
        case("output 'v_cache' shares memory with 'v'", v_cache=kv_view, v=kv_view[5:8]),
        case("output 'k_cache' shares memory with 'k_out'", k_out=kv_view[10:13], k_cache=kv_view),
        case("output 'q_out' shares memory with 'v'", q_out=(qv := torch.full((3, 4, 64), 7.0)), v=qv[:, :2]),
        case("output 'k_cache' shares memory with 'cache_loc'",
             k_cache=(raw := torch.zeros(40 * 2 * 64, dtype=torch.float32)).view(40, 2, 64),
             cache_loc=raw.view(torch.int64)[:3]),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    args, message = _bad_cases()[case]
    snapshots = [as_bytes(a).clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        ops.rope_set_kv_buffer(*args)
    for a, snap in zip(args, snapshots):
        if snap is not None:
            assert torch.equal(as_bytes(a), snap)


# ---- GPU only: devices, out-of-range values on the device, CUDA graphs, non-default streams ----

@requires_gpu
def test_wrong_device_is_named():
    _, q, k, v = fused_qkv(3, 4, 2, 64, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(16, 64, device="cuda")
    pos = torch.tensor([0, 1, 2], device="cuda")
    kc, vc = kv_caches(8, 2, 64, torch.bfloat16, "cuda")
    with pytest.raises(RuntimeError, match="'cache_loc' must be on cuda"):
        ops.rope_set_kv_buffer(q, k, kc, vc, q, k, v, cache, pos, torch.tensor([0, 1, 2]), False)
    with pytest.raises(RuntimeError, match="'k_cache' must be on cuda"):
        ops.rope_set_kv_buffer(q, k, kc.cpu(), vc, q, k, v, cache, pos, pos, False)
    with pytest.raises(RuntimeError, match="'v' must be on cuda"):
        ops.rope_set_kv_buffer(q, k, kc, vc, q, k, v.cpu(), cache, pos, pos, False)
    assert kc.isnan().all() and vc.isnan().all()


@requires_gpu
def test_gpu_skips_rows_and_positions_outside_the_caches():
    # Documented GPU behaviour (no host sync): a token whose position is outside the cos|sin
    # cache is skipped entirely; one whose row is outside the pool is rotated but writes no row.
    _, q, k, v = fused_qkv(5, 8, 2, 128, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(16, 128, device="cuda")
    positions = torch.tensor([3, 16, 5, 15, 0], device="cuda")
    loc = torch.tensor([1, 2, 8, -1, 0], device="cuda")
    kc, vc = kv_caches(8, 2, 128, torch.bfloat16, "cuda")
    q_out, k_out = poison_like(q), poison_like(k)
    ops.rope_set_kv_buffer(q_out, k_out, kc, vc, q, k, v, cache, positions, loc, False)
    rotated = torch.tensor([0, 2, 3, 4], device="cuda")
    want_q, want_k = ref.rope(q[rotated], k[rotated], cache, positions[rotated])
    assert_close(q_out[rotated], want_q, torch.bfloat16)
    assert_close(k_out[rotated], want_k, torch.bfloat16)
    assert q_out[1].isnan().all() and k_out[1].isnan().all()
    written = torch.tensor([0, 4], device="cuda")  # tokens with a good position and row
    assert torch.equal(as_bytes(kc[loc[written]]), as_bytes(k_out[written]))
    assert torch.equal(as_bytes(vc[loc[written]]), as_bytes(v[written]))
    others = torch.tensor([2, 3, 4, 5, 6, 7], device="cuda")  # row 2 is token 1's, skipped with it
    assert kc[others].isnan().all() and vc[others].isnan().all()


@requires_gpu
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("rotary_dim", [128, 64])
@pytest.mark.parametrize("offset", [0, 1])
def test_gpu_many_tokens_in_place(interleave, rotary_dim, offset):
    # Thousands of tokens of Llama's 32 q + 8 kv heads, views of one qkv buffer, in place, into
    # a pool twice as large; offset 1: the scalar kernel.
    nnz = 5003
    _, q, k, v = fused_qkv(nnz, 32, 8, 128, torch.bfloat16, "cuda", offset)
    cache = flashhip.cos_sin_cache(4096, rotary_dim, device="cuda")
    positions = torch.randint(0, 4096, (nnz,), device="cuda", dtype=torch.int32)
    kc, vc = kv_caches(2 * nnz, 8, 128, torch.bfloat16, "cuda")
    check(q, k, v, cache, positions, kc, vc, rows_for(nnz, 2 * nnz, "cuda"), interleave, torch.bfloat16, q_out=q, k_out=k)


@requires_gpu
@pytest.mark.parametrize("interleave", [False, True])
def test_gpu_matches_cpu(interleave):
    _, q, k, v = fused_qkv(300, 32, 8, 128, torch.bfloat16, "cpu")
    cache = flashhip.llama3_cos_sin_cache(8192, 128)
    positions = torch.randint(0, 8192, (300,))
    loc = rows_for(300, 1000, "cpu")
    kc, vc = kv_caches(1000, 8, 128, torch.bfloat16, "cpu")
    kc_gpu, vc_gpu = kc.cuda(), vc.cuda()
    flashhip.rope_set_kv_buffer(q, k, v, cache, positions, kc, vc, loc, interleave)
    flashhip.rope_set_kv_buffer(q.cuda(), k.cuda(), v.cuda(), cache.cuda(), positions.cuda(), kc_gpu, vc_gpu, loc.cuda(),
                                interleave)
    # Both round fp32 results once; FMA contraction can move a value across a rounding boundary.
    assert (as_bytes(kc) != as_bytes(kc_gpu.cpu())).float().mean() < 1e-2
    assert torch.equal(as_bytes(vc), as_bytes(vc_gpu.cpu()))


@requires_gpu
def test_cuda_graph_capture_and_replay():
    qkv, q, k, v = fused_qkv(64, 32, 8, 128, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(8192, 128, device="cuda")
    positions = torch.randint(0, 8192, (64,), device="cuda")
    loc = rows_for(64, 256, "cuda")
    kc, vc = kv_caches(256, 8, 128, torch.bfloat16, "cuda")
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture
        ops.rope_set_kv_buffer(q_out, k_out, kc, vc, q, k, v, cache, positions, loc, False)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.rope_set_kv_buffer(q_out, k_out, kc, vc, q, k, v, cache, positions, loc, False)
    for _ in range(2):
        qkv.copy_(torch.randn_like(qkv))
        positions.copy_(torch.randint(0, 8192, (64,), device="cuda"))
        loc.copy_(rows_for(64, 256, "cuda"))
        kc.fill_(float("nan"))
        vc.fill_(float("nan"))
        expected_q, expected_k, expected_kc, expected_vc = ref.rope_set_kv_buffer(q, k, v, cache, positions, kc, vc, loc)
        graph.replay()
        torch.cuda.synchronize()
        assert_close(q_out, expected_q, torch.bfloat16)
        assert_close(k_out, expected_k, torch.bfloat16)
        assert torch.equal(as_bytes(kc[loc]), as_bytes(k_out)) and torch.equal(as_bytes(vc), as_bytes(expected_vc))


@requires_gpu
def test_non_default_stream_orders_with_its_work():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x = torch.randn(4096, 8192, device="cuda", dtype=torch.bfloat16)
        cache = flashhip.cos_sin_cache(8192, 128, device="cuda")
        positions = torch.randint(0, 8192, (4096,), device="cuda")
        loc = rows_for(4096, 8192, "cuda")
        kc, vc = kv_caches(8192, 8, 128, torch.bfloat16, "cuda")
        # Queued behind a long matmul on the same stream: launching on the default stream
        # instead would read x before the matmul wrote it.
        x.copy_(x @ torch.eye(8192, device="cuda", dtype=torch.bfloat16))
        heads = x.view(4096, 64, 128)
        q, k, v = heads[:, :48], heads[:, 48:56], heads[:, 56:]
        q_out, k_out = flashhip.rope_set_kv_buffer(q, k, v, cache, positions, kc, vc, loc)
    stream.synchronize()
    expected_q, expected_k = ref.rope(q, k, cache, positions)
    assert_close(q_out, expected_q, torch.bfloat16)
    assert_close(k_out, expected_k, torch.bfloat16)
    assert torch.equal(as_bytes(kc[loc]), as_bytes(k_out)) and torch.equal(as_bytes(vc[loc]), as_bytes(v))
