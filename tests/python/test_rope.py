"""The rotary embedding against the pure-torch reference (and transformers' rotary functions
when installed), on CPU and (when present) GPU."""

from __future__ import annotations

import math

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref
from flashhip.rope import inv_freq_llama3, inv_freq_plain, inv_freq_yarn, yarn_attention_factor

from conftest import DEVICES, poison_like, requires_gpu

ops = torch.ops.flashhip
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Each output element is x1*cos -/+ x2*sin in fp32, rounded once to the dtype: fp32 agrees to
# float rounding (FMA contraction may differ), 16-bit dtypes to one ulp of the output.
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
MAX_POSITION = 4096


def assert_close(actual, expected, dtype):
    torch.testing.assert_close(actual.float(), expected.float(), rtol=TOL[dtype], atol=TOL[dtype])


def qk(nnz, hq, hk, head_dim, dtype, device):
    q = torch.randn(nnz, hq, head_dim, device=device).to(dtype)
    k = torch.randn(nnz, hk, head_dim, device=device).to(dtype)
    return q, k


def positions_for(nnz, dtype, device, max_position=MAX_POSITION):
    return torch.randint(0, max_position, (nnz,), device=device, dtype=dtype)


def check_rope(q, k, cache, positions, interleave, dtype, q_out=None, k_out=None):
    """Runs the op into poisoned outputs (unless given) and compares with the reference."""
    expected_q, expected_k = ref.rope(q, k, cache, positions, interleave)
    q_out = poison_like(q) if q_out is None else q_out
    k_out = poison_like(k) if k_out is None else k_out
    ops.rope(q_out, k_out, q, k, cache, positions, interleave)
    assert_close(q_out, expected_q, dtype)
    assert_close(k_out, expected_k, dtype)
    return q_out, k_out


# ---- Results against the reference ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 80, 96, 128, 256])
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("positions_dtype", [torch.int32, torch.int64])
def test_rope_full_rotary(device, dtype, head_dim, interleave, positions_dtype):
    # GQA (8 q heads, 2 kv heads) and MQA-like k (1 head) alternate with the head size.
    hk = 2 if head_dim % 64 == 0 else 1
    q, k = qk(13, 8, hk, head_dim, dtype, device)
    cache = flashhip.cos_sin_cache(MAX_POSITION, head_dim, device=device)
    check_rope(q, k, cache, positions_for(13, positions_dtype, device), interleave, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim,rotary_dim", [(128, 64), (80, 32), (96, 48), (64, 24), (256, 2), (72, 8)])
@pytest.mark.parametrize("interleave", [False, True])
def test_rope_partial_rotary_copies_the_rest(device, dtype, head_dim, rotary_dim, interleave):
    q, k = qk(9, 4, 2, head_dim, dtype, device)
    cache = flashhip.cos_sin_cache(MAX_POSITION, rotary_dim, device=device)
    q_out, k_out = check_rope(q, k, cache, positions_for(9, torch.int64, device), interleave, dtype)
    # The pass-through part is a bit-exact copy.
    assert torch.equal(q_out[..., rotary_dim:], q[..., rotary_dim:])
    assert torch.equal(k_out[..., rotary_dim:], k[..., rotary_dim:])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("rotary_dim", [128, 64])
def test_rope_in_place(device, dtype, interleave, rotary_dim):
    q, k = qk(17, 8, 2, 128, dtype, device)
    cache = flashhip.cos_sin_cache(MAX_POSITION, rotary_dim, device=device)
    positions = positions_for(17, torch.int32, device)
    expected_q, expected_k = ref.rope(q, k, cache, positions, interleave)
    q_tail, k_tail = q[..., rotary_dim:].clone(), k[..., rotary_dim:].clone()
    ops.rope(q, k, q, k, cache, positions, interleave)
    assert_close(q, expected_q, dtype)
    assert_close(k, expected_k, dtype)
    assert torch.equal(q[..., rotary_dim:], q_tail) and torch.equal(k[..., rotary_dim:], k_tail)


def fused_qkv(nnz, hq, hk, head_dim, dtype, device, offset=0):
    """q and k as strided views of one [nnz, (hq + 2 hk) * head_dim] buffer (token stride the
    whole row, head stride head_dim), starting `offset` elements in (offset 1 breaks 16-byte
    alignment and takes the scalar path on a GPU). Returns (qkv, q, k, v)."""
    width = (hq + 2 * hk) * head_dim
    storage = torch.randn(nnz * width + offset, device=device).to(dtype)
    qkv = storage[offset:].view(nnz, width)
    q = qkv[:, : hq * head_dim].view(nnz, hq, head_dim)
    k = qkv[:, hq * head_dim : (hq + hk) * head_dim].view(nnz, hk, head_dim)
    v = qkv[:, (hq + hk) * head_dim :]
    return qkv, q, k, v


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 80, 128])
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("offset", [0, 1])
def test_rope_strided_fused_qkv_views(device, dtype, head_dim, interleave, offset):
    _, q, k, v = fused_qkv(11, 6, 2, head_dim, dtype, device, offset)
    assert not q.is_contiguous() and q.stride() == ((6 + 4) * head_dim, head_dim, 1)
    cache = flashhip.cos_sin_cache(MAX_POSITION, head_dim, device=device)
    positions = positions_for(11, torch.int64, device)
    # Out of place from the views into separate (poisoned) outputs...
    check_rope(q, k, cache, positions, interleave, dtype)
    # ...and in place, leaving v alone.
    v_before = v.clone()
    expected_q, expected_k = ref.rope(q, k, cache, positions, interleave)
    ops.rope(q, k, q, k, cache, positions, interleave)
    assert_close(q, expected_q, dtype)
    assert_close(k, expected_k, dtype)
    assert torch.equal(v, v_before)


@pytest.mark.parametrize("device", DEVICES)
def test_rope_strided_outputs_and_deepseek_like_views(device):
    # DeepSeek-style MLA: rope on the last 64 of each 192-wide q head and on one k_pe head that
    # sits at the end of a 576-wide latent row; outputs are views into larger buffers too.
    dtype = torch.bfloat16
    q_full = torch.randn(10, 16, 192, device=device).to(dtype)
    latent = torch.randn(10, 576, device=device).to(dtype)
    q_pe = q_full[..., 128:]
    k_pe = latent[:, 512:].unsqueeze(1)
    cache = flashhip.yarn_cos_sin_cache(MAX_POSITION, 64, 10000.0, 40.0, 4096, mscale=1.0, mscale_all_dim=1.0, device=device)
    positions = positions_for(10, torch.int64, device)
    q_out_full = poison_like(torch.empty(10, 16, 200, device=device, dtype=dtype))
    check_rope(q_pe, k_pe, cache, positions, True, dtype, q_out=q_out_full[..., 8:72])


@pytest.mark.parametrize("device", DEVICES)
def test_rope_zero_tokens_does_nothing(device):
    for dtype in DTYPES:
        q, k = qk(0, 8, 2, 128, dtype, device)
        cache = flashhip.cos_sin_cache(16, 128, device=device)
        for positions_dtype in (torch.int32, torch.int64):
            ops.rope(torch.empty_like(q), torch.empty_like(k), q, k, cache, torch.empty(0, dtype=positions_dtype, device=device), False)
        # No heads at all is nothing to do as well.
        q0 = torch.empty(3, 0, 128, device=device, dtype=dtype)
        ops.rope(q0, torch.empty_like(q0), q0, q0.clone(), cache, torch.zeros(3, dtype=torch.long, device=device), False)


@pytest.mark.parametrize("device", DEVICES)
def test_rope_single_token_and_many_heads(device):
    # One token with 128 q heads and 128 k heads; one token with one head of each.
    for hq, hk in ((128, 128), (1, 1)):
        q, k = qk(1, hq, hk, 128, torch.bfloat16, device)
        cache = flashhip.cos_sin_cache(MAX_POSITION, 128, device=device)
        check_rope(q, k, cache, positions_for(1, torch.int64, device), False, torch.bfloat16)


# ---- Cache builders ----

def test_plain_and_linear_caches():
    cache = flashhip.cos_sin_cache(300, 64, 10000.0)
    assert cache.dtype == torch.float32 and cache.shape == (300, 64) and cache.is_contiguous()
    p, i = 123, 5
    angle = p * 10000.0 ** (-2 * i / 64)
    assert cache[p, i].item() == pytest.approx(math.cos(angle), abs=1e-7)
    assert cache[p, 32 + i].item() == pytest.approx(math.sin(angle), abs=1e-7)
    # Linear scaling: position p turns like p / factor.
    linear = flashhip.linear_scaling_cos_sin_cache(400, 64, 10000.0, 4.0)
    torch.testing.assert_close(linear[::4][:100], cache[:100], rtol=0, atol=1e-6)


def test_llama3_frequency_bands():
    inv = inv_freq_llama3(128, 500000.0, 8.0, 1.0, 4.0, 8192)
    plain = inv_freq_plain(128, 500000.0)
    wavelength = 2 * math.pi / plain
    high = wavelength < 8192 / 4
    low = wavelength > 8192 / 1
    torch.testing.assert_close(inv[high], plain[high])  # short wavelengths are kept
    torch.testing.assert_close(inv[low], plain[low] / 8)  # long ones are slowed by the factor
    band = ~high & ~low
    assert band.any() and ((inv[band] <= plain[band]) & (inv[band] >= plain[band] / 8)).all()


def test_yarn_ramp_and_attention_factor():
    inv = inv_freq_yarn(64, 10000.0, 40.0, 4096)
    plain = inv_freq_plain(64, 10000.0)
    assert torch.allclose(inv[:4], plain[:4])  # fast pairs extrapolate
    assert torch.allclose(inv[-4:], plain[-4:] / 40)  # slow pairs interpolate
    assert yarn_attention_factor(40.0) == pytest.approx(0.1 * math.log(40.0) + 1)
    assert yarn_attention_factor(40.0, mscale=1.0, mscale_all_dim=1.0) == 1.0
    assert yarn_attention_factor(1.0) == 1.0 and yarn_attention_factor(4.0, attention_factor=0.5) == 0.5
    cache = flashhip.yarn_cos_sin_cache(64, 64, 10000.0, 40.0, 4096)
    assert cache[0, 0].item() == pytest.approx(yarn_attention_factor(40.0), rel=1e-6)


def _transformers_rope(rope_parameters, head_dim, max_position_embeddings):
    """(inv_freq, attention_factor) from transformers' ROPE_INIT_FUNCTIONS, and a function
    applying its Llama rotary embedding to q/k [nnz, heads, head_dim] at `positions`."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed here (it is on the GPU machine)")
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    if int(transformers.__version__.split(".")[0]) >= 5:  # 5.x: everything in rope_parameters
        rope_kwargs = {"rope_parameters": dict(rope_parameters)}
    else:  # 4.x: rope_theta beside a rope_scaling dict
        scaling = {key: value for key, value in rope_parameters.items() if key != "rope_theta"}
        rope_kwargs = {"rope_theta": rope_parameters["rope_theta"], "rope_scaling": scaling}
    config = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, num_key_value_heads=1, head_dim=head_dim,
                         max_position_embeddings=max_position_embeddings, **rope_kwargs)
    inv_freq, attention_factor = ROPE_INIT_FUNCTIONS[rope_parameters["rope_type"]](config, "cpu")
    rotary = LlamaRotaryEmbedding(config)

    def apply(q, k, positions):
        # transformers' layout: [batch, heads, seq, head_dim]; cos/sin [batch, seq, head_dim].
        cos, sin = rotary(q.float(), positions.long()[None])
        q_hf, k_hf = apply_rotary_pos_emb(q.float().transpose(0, 1)[None], k.float().transpose(0, 1)[None], cos, sin)
        return q_hf[0].transpose(0, 1), k_hf[0].transpose(0, 1)

    return inv_freq, attention_factor, apply


LLAMA31 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
# DeepSeek-V3's YaRN (rope head 64), and one with the default attention factor.
YARN_DEEPSEEK = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "original_max_position_embeddings": 4096,
                 "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}
YARN_DEFAULT = {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0, "original_max_position_embeddings": 32768}


@pytest.mark.parametrize("params,head_dim,max_pos", [(LLAMA31, 128, 131072), (YARN_DEEPSEEK, 64, 163840),
                                                     (YARN_DEFAULT, 128, 131072)])
def test_caches_match_transformers(params, head_dim, max_pos):
    inv_freq_hf, attention_factor_hf, apply_hf = _transformers_rope(params, head_dim, max_pos)
    if params["rope_type"] == "llama3":
        inv = inv_freq_llama3(head_dim, params["rope_theta"], params["factor"], params["low_freq_factor"],
                              params["high_freq_factor"], params["original_max_position_embeddings"])
        scale = 1.0
        cache = flashhip.llama3_cos_sin_cache(8192, head_dim, params["rope_theta"], params["factor"],
                                              params["low_freq_factor"], params["high_freq_factor"],
                                              params["original_max_position_embeddings"])
    else:
        inv = inv_freq_yarn(head_dim, params["rope_theta"], params["factor"], params["original_max_position_embeddings"])
        scale = yarn_attention_factor(params["factor"], params.get("mscale"), params.get("mscale_all_dim"))
        cache = flashhip.yarn_cos_sin_cache(8192, head_dim, params["rope_theta"], params["factor"],
                                            params["original_max_position_embeddings"], mscale=params.get("mscale"),
                                            mscale_all_dim=params.get("mscale_all_dim"))
    # transformers computes in fp32, we in fp64: agreement to fp32 rounding.
    torch.testing.assert_close(inv, inv_freq_hf.double(), rtol=1e-6, atol=0)
    assert scale == pytest.approx(attention_factor_hf, rel=1e-12)
    # The whole path: transformers' rotary embedding applied to q/k against flashhip's op. Its
    # fp32 angles (position * fp32 inv_freq) lose ~position * 6e-8 radians, hence the tolerance.
    q, k = qk(32, 4, 1, head_dim, torch.float32, "cpu")
    positions = torch.randint(0, 2048, (32,))
    q_hf, k_hf = apply_hf(q, k, positions)
    q_out, k_out = flashhip.rope(q, k, cache, positions)
    torch.testing.assert_close(q_out, q_hf, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(k_out, k_hf, rtol=1e-3, atol=1e-3)


# ---- Python forms ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("is_neox", [True, False])
def test_flashinfer_forms(device, is_neox):
    qkv, q, k, _ = fused_qkv(7, 8, 2, 128, torch.float16, device)
    query, key = qkv[:, : 8 * 128], qkv[:, 8 * 128 : 10 * 128]  # flattened [nnz, heads * head_size] views
    cache = flashhip.cos_sin_cache(MAX_POSITION, 96, device=device)  # partial rotary
    positions = positions_for(7, torch.int64, device)
    expected_q, expected_k = ref.rope(q, k, cache, positions, not is_neox)
    query_out, key_out = flashhip.flashinfer.apply_rope_with_cos_sin_cache(positions, query, key, 128, cache, is_neox)
    assert query_out.shape == query.shape and key_out.shape == key.shape
    assert_close(query_out.view(7, 8, 128), expected_q, torch.float16)
    assert_close(key_out.view(7, 2, 128), expected_k, torch.float16)
    flashhip.flashinfer.apply_rope_with_cos_sin_cache_inplace(positions, query, key, 128, cache, is_neox)
    assert_close(q, expected_q, torch.float16)
    assert_close(k, expected_k, torch.float16)
    with pytest.raises(ValueError, match="'query' must be \\[nnz, heads \\* head_size\\]"):
        flashhip.flashinfer.apply_rope_with_cos_sin_cache_inplace(positions, query, key, 100, cache, is_neox)


def test_functional_form_allocates_or_writes_given_outputs():
    q, k = qk(5, 4, 1, 64, torch.bfloat16, "cpu")
    cache = flashhip.cos_sin_cache(64, 64)
    positions = positions_for(5, torch.int32, "cpu", 64)
    q_out, k_out = flashhip.rope(q, k, cache, positions, interleave=True)
    expected_q, expected_k = ref.rope(q, k, cache, positions, True)
    assert_close(q_out, expected_q, torch.bfloat16)
    assert_close(k_out, expected_k, torch.bfloat16)
    q_in_place, k_in_place = flashhip.rope(q, k, cache, positions, True, q_out=q, k_out=k)
    assert q_in_place is q and k_in_place is k
    assert_close(q, expected_q, torch.bfloat16)


# ---- opcheck and torch.compile ----

def _samples(device):
    q, k = qk(6, 4, 2, 80, torch.bfloat16, device)
    cache = flashhip.cos_sin_cache(64, 64, device=device)
    _, fq, fk, _ = fused_qkv(6, 4, 2, 128, torch.float16, device)
    full_cache = flashhip.cos_sin_cache(64, 128, device=device)
    pos64 = positions_for(6, torch.int64, device, 64)
    pos32 = positions_for(6, torch.int32, device, 64)
    return [
        (torch.empty_like(q), torch.empty_like(k), q, k, cache, pos64, False),
        (torch.empty_like(q), torch.empty_like(k), q, k, cache, pos32, True),
        (torch.empty_like(fq), torch.empty_like(fk), fq, fk, full_cache, pos64, False),
        (torch.empty(6, 4, 80, device=device), torch.empty(6, 2, 80, device=device), q.float(), k.float(), cache, pos32, True),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    for args in _samples(device):
        opcheck(ops.rope.default, args)  # every default check: schema, autograd registration, fake, aot dispatch


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def attention_prologue(qkv, cache, positions):
        q = qkv[:, : 8 * 64].view(-1, 8, 64)
        k = qkv[:, 8 * 64 : 10 * 64].view(-1, 2, 64)
        q_rot, k_rot = flashhip.rope(q, k, cache, positions)  # out of place from views
        flashhip.flashinfer.apply_rope_with_cos_sin_cache_inplace(positions, qkv[:, : 8 * 64], qkv[:, 8 * 64 : 10 * 64],
                                                                  64, cache, False)  # in place into the buffer
        return q_rot * 2, k_rot

    compiled = torch.compile(attention_prologue, fullgraph=True)
    qkv = torch.randn(9, 12 * 64, device=device, dtype=torch.bfloat16)
    cache = flashhip.cos_sin_cache(128, 64, device=device)
    positions = positions_for(9, torch.int64, device, 128)
    qkv_eager, qkv_compiled = qkv.clone(), qkv.clone()
    eager = attention_prologue(qkv_eager, cache, positions)
    got = compiled(qkv_compiled, cache, positions)
    torch.testing.assert_close(qkv_compiled, qkv_eager)
    assert not torch.equal(qkv_compiled, qkv)
    for a, b in zip(got, eager):
        torch.testing.assert_close(a, b)


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    q = torch.randn(3, 4, 64)
    k = torch.randn(3, 2, 64)
    cache = flashhip.cos_sin_cache(16, 64)
    pos = torch.tensor([0, 5, 15])
    qo = lambda **kw: torch.full((3, 4, 64), 7.0, **kw)  # noqa: E731
    ko = lambda **kw: torch.full((3, 2, 64), 7.0, **kw)  # noqa: E731
    shared = torch.randn(5, 4, 64)
    return [
        ((qo(), ko(), q, k, cache, torch.tensor([0, 16, 2]), False), "'positions' holds 16 at index 1, outside the 16 rows"),
        ((qo(), ko(), q, k, cache, torch.tensor([0, 1, -1], dtype=torch.int32), True), "'positions' holds -1 at index 2"),
        ((qo(), ko(), q, k, flashhip.cos_sin_cache(16, 64)[:, :63], pos, False), "'cos_sin_cache' has rotary_dim .*63.*positive even"),
        ((qo(), ko(), q, k, flashhip.cos_sin_cache(16, 128), pos, False), "'cos_sin_cache' has rotary_dim .*128, larger than the head_dim 64"),
        ((qo(), torch.full((2, 2, 64), 7.0), q, torch.randn(2, 2, 64), cache, pos, False), "'k' has 2 tokens but 'q' has 3"),
        ((qo(), torch.full((3, 2, 32), 7.0), q, torch.randn(3, 2, 32), cache, pos, False), "'k' has head_dim 32 but 'q' has 64"),
        ((qo(), ko(), torch.randn(3, 64, 4).transpose(1, 2), k, cache, pos, False), "'q' must be contiguous in its innermost"),
        ((qo(), torch.full((3, 64, 2), 7.0).transpose(1, 2), q, k, cache, pos, False), "'k_out' must be contiguous in its innermost"),
        ((qo(), ko(), q.to(torch.int32), k, cache, pos, False), "'q' must have dtype Half, BFloat16, Float"),
        ((qo(), ko(), q, k.half(), cache, pos, False), "'k' must have the dtype of 'q'"),
        ((qo(), ko(), q, k, cache.half(), pos, False), "'cos_sin_cache' must have dtype Float"),
        ((qo(), ko(), q, k, cache[None], pos, False), "'cos_sin_cache' must be 2-D"),
        ((qo(), ko(), q, k, cache, pos.float(), False), "'positions' must have dtype Int, Long"),
        ((qo(), ko(), q, k, cache, torch.tensor([0, 1, 2, 3]), False), "'positions' must have shape \\[3\\]"),
        ((qo(), ko(), q, k, cache, pos[:, None], False), "'positions' must have shape \\[3\\]"),
        ((qo(), ko(), q.flatten(1), k, cache, pos, False), "'q' must be 3-D \\[nnz, num_q_heads, head_dim\\]"),
        ((torch.full((3, 4, 65), 7.0), ko(), q, k, cache, pos, False), "'q_out' must have the shape of 'q'"),
        ((qo(), ko(dtype=torch.float16), q, k, cache, pos, False), "'k_out' must have the dtype of 'k'"),
        ((torch.full((1, 4, 64), 7.0).expand(3, 4, 64), ko(), q, k, cache, pos, False), "output 'q_out' has elements that share memory"),
        ((shared[1:4], ko(), shared[0:3], k, cache, pos, False), "output 'q_out' overlaps 'q' without being it"),
        # k_out is q itself (same shape here): an output may only alias its own input. (Overlaps
        # between non-dense views are not detectable cheaply, as in torch's own checks.)
        ((torch.full((3, 2, 64), 7.0), q2 := torch.randn(3, 2, 64), q2, k, cache, pos, False), "'k_out' shares memory with 'q'"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    args, message = _bad_cases()[case]
    snapshots = [a.float().clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        ops.rope(*args)
    for a, snap in zip(args, snapshots):
        if snap is not None:
            torch.testing.assert_close(a.float(), snap, equal_nan=True)


# ---- GPU only: devices, positions on the device, CUDA graphs, non-default streams ----

@requires_gpu
def test_wrong_device_is_named():
    q, k = qk(3, 4, 2, 64, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(16, 64, device="cuda")
    with pytest.raises(RuntimeError, match="'positions' must be on cuda"):
        ops.rope(torch.empty_like(q), torch.empty_like(k), q, k, cache, torch.tensor([0, 1, 2]), False)
    with pytest.raises(RuntimeError, match="'cos_sin_cache' must be on cuda"):
        ops.rope(torch.empty_like(q), torch.empty_like(k), q, k, cache.cpu(), torch.tensor([0, 1, 2], device="cuda"), False)


@requires_gpu
def test_gpu_skips_tokens_whose_position_is_outside_the_cache():
    # Documented GPU behaviour (no host sync): such a token's rows are left as they were.
    q, k = qk(4, 8, 2, 128, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(16, 128, device="cuda")
    positions = torch.tensor([3, 16, -1, 15], device="cuda")
    q_out, k_out = poison_like(q), poison_like(k)
    ops.rope(q_out, k_out, q, k, cache, positions, False)
    good = torch.tensor([0, 3], device="cuda")
    expected_q, expected_k = ref.rope(q[good], k[good], cache, positions[good])
    assert_close(q_out[good], expected_q, torch.bfloat16)
    assert_close(k_out[good], expected_k, torch.bfloat16)
    assert q_out[1:3].isnan().all() and k_out[1:3].isnan().all()


@requires_gpu
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("rotary_dim", [128, 64])
def test_gpu_many_tokens_with_some_out_of_range(interleave, rotary_dim):
    # Thousands of tokens (many blocks, each thread its heads of one token), some of whose
    # positions are outside the cache: those rows are skipped, the others rotated, the
    # pass-through tail (partial rotary, out of place) copied; then the same in place.
    nnz = 5003
    _, q, k, _ = fused_qkv(nnz, 32, 8, 128, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(4096, rotary_dim, device="cuda")
    positions = positions_for(nnz, torch.int32, "cuda", 4096)
    bad = torch.arange(7, nnz, 977, device="cuda")
    positions[bad] = 4096 + bad.int()
    good = torch.ones(nnz, dtype=torch.bool, device="cuda")
    good[bad] = False
    q_out, k_out = poison_like(q), poison_like(k)
    ops.rope(q_out, k_out, q, k, cache, positions, interleave)
    expected_q, expected_k = ref.rope(q[good], k[good], cache, positions[good], interleave)
    assert_close(q_out[good], expected_q, torch.bfloat16)
    assert_close(k_out[good], expected_k, torch.bfloat16)
    assert q_out[bad].isnan().all() and k_out[bad].isnan().all()
    # In place over the fused buffer: reading and writing the same rows.
    q_in, k_in = q.clone(), k.clone()
    positions[bad] = 0
    expected_q, expected_k = ref.rope(q_in, k_in, cache, positions, interleave)
    ops.rope(q_in, k_in, q_in, k_in, cache, positions, interleave)
    assert_close(q_in, expected_q, torch.bfloat16)
    assert_close(k_in, expected_k, torch.bfloat16)


@requires_gpu
@pytest.mark.parametrize("interleave", [False, True])
def test_gpu_matches_cpu(interleave):
    _, q, k, _ = fused_qkv(300, 32, 8, 128, torch.bfloat16, "cpu")
    cache = flashhip.llama3_cos_sin_cache(8192, 128)
    positions = positions_for(300, torch.int64, "cpu", 8192)
    q_cpu, k_cpu = flashhip.rope(q, k, cache, positions, interleave)
    q_gpu, k_gpu = flashhip.rope(q.cuda(), k.cuda(), cache.cuda(), positions.cuda(), interleave)
    # Both round fp32 results once; FMA contraction can move a value across a rounding boundary.
    assert (q_cpu != q_gpu.cpu()).float().mean() < 1e-2 and (k_cpu != k_gpu.cpu()).float().mean() < 1e-2
    assert_close(q_gpu.cpu(), q_cpu, torch.bfloat16)


@requires_gpu
def test_cuda_graph_capture_and_replay():
    qkv, q, k, _ = fused_qkv(64, 32, 8, 128, torch.bfloat16, "cuda")
    cache = flashhip.cos_sin_cache(8192, 128, device="cuda")
    positions = positions_for(64, torch.int32, "cuda", 8192)
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture
        ops.rope(q_out, k_out, q, k, cache, positions, False)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.rope(q_out, k_out, q, k, cache, positions, False)
    for _ in range(2):
        qkv.copy_(torch.randn_like(qkv))
        positions.copy_(positions_for(64, torch.int32, "cuda", 8192))
        q_out.fill_(float("nan"))
        k_out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        expected_q, expected_k = ref.rope(q, k, cache, positions)
        assert_close(q_out, expected_q, torch.bfloat16)
        assert_close(k_out, expected_k, torch.bfloat16)


@requires_gpu
def test_non_default_stream_orders_with_its_work():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x = torch.randn(4096, 8192, device="cuda", dtype=torch.bfloat16)
        cache = flashhip.cos_sin_cache(8192, 128, device="cuda")
        positions = positions_for(4096, torch.int64, "cuda", 8192)
        # Queued behind a long matmul on the same stream: launching on the default stream
        # instead would read x before the matmul wrote it.
        x.copy_(x @ torch.eye(8192, device="cuda", dtype=torch.bfloat16))
        q = x.view(4096, 64, 128)[:, :48]
        k = x.view(4096, 64, 128)[:, 48:56]
        q_out, k_out = flashhip.rope(q, k, cache, positions)
    stream.synchronize()
    expected_q, expected_k = ref.rope(q, k, cache, positions)
    assert_close(q_out, expected_q, torch.bfloat16)
    assert_close(k_out, expected_k, torch.bfloat16)
