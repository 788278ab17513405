"""RoPE with the angles computed from the positions (torch.ops.flashhip.rope_pos_ids and
FlashInfer's eight apply_rope* / apply_llama31_rope* forms) against a float64 reference whose
frequencies are computed independently, on CPU and (when present) GPU."""

from __future__ import annotations

import math

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref
from flashhip.compat import flashinfer as fi
from flashhip.rope import inv_freq_linear, inv_freq_llama3, inv_freq_plain

from conftest import DEVICES, poison_like, requires_gpu

ops = torch.ops.flashhip
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Output rounding: fp32 to float rounding, 16-bit dtypes to about one ulp of the output.
TOL = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
LLAMA31 = dict(rope_scale=8.0, rope_theta=5e5, llama31=True, low_freq_factor=1.0, high_freq_factor=4.0,
               old_context_len=8192.0)


def angle_atol(pos_ids, x):
    """The fp32 angle (as FlashInfer computes it) errs by a few ulp of position * inv_freq: the
    frequency's rounding and the product's, each about |angle| * 2^-24, plus sincosf's. The
    output errs by that angle error times the pair's magnitude (at most 2 * max|x|)."""
    if pos_ids.numel() == 0:
        return 0.0
    largest = float(pos_ids.abs().max())
    return 4 * largest * 2.0**-24 * 2 * float(x.abs().max()) + 1e-6


def assert_close(actual, expected, dtype, extra_atol=0.0):
    torch.testing.assert_close(actual.detach().cpu().double(), expected, rtol=TOL[dtype], atol=TOL[dtype] + extra_atol)


def qk(nnz, hq, hk, head_dim, dtype, device):
    return (torch.randn(nnz, hq, head_dim, device=device).to(dtype),
            torch.randn(nnz, hk, head_dim, device=device).to(dtype))


def check(q, k, pos_ids, rotary_dim, interleave, dtype, freq_args=None):
    """The op into poisoned outputs against the reference; returns the outputs."""
    freq_args = freq_args or {}
    expected_q, expected_k = ref.rope_pos_ids(q, k, pos_ids, rotary_dim, interleave, **freq_args)
    q_out, k_out = poison_like(q), poison_like(k)
    flashhip.rope_pos_ids(q, k, pos_ids, rotary_dim, interleave, q_out=q_out, k_out=k_out, **freq_args)
    assert_close(q_out, expected_q, dtype, angle_atol(pos_ids, q))
    assert_close(k_out, expected_k, dtype, angle_atol(pos_ids, k))
    return q_out, k_out


# ---- Results against the reference ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 128, 256])
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("pos_dtype", [torch.int32, torch.int64])
def test_full_rotary(device, dtype, head_dim, interleave, pos_dtype):
    q, k = qk(13, 7, 3, head_dim, dtype, device)  # odd head counts
    pos_ids = torch.randint(0, 4096, (13,), device=device, dtype=pos_dtype)
    check(q, k, pos_ids, None, interleave, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim,rotary_dim", [(128, 64), (64, 32), (256, 128), (128, 2), (64, 48)])
@pytest.mark.parametrize("interleave", [False, True])
def test_partial_rotary_copies_the_rest(device, dtype, head_dim, rotary_dim, interleave):
    q, k = qk(9, 5, 1, head_dim, dtype, device)
    pos_ids = torch.randint(0, 8192, (9,), device=device)
    q_out, k_out = check(q, k, pos_ids, rotary_dim, interleave, dtype)
    assert torch.equal(q_out[..., rotary_dim:], q[..., rotary_dim:])
    assert torch.equal(k_out[..., rotary_dim:], k[..., rotary_dim:])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("head_dim,rotary_dim", [(128, 128), (128, 64)])
def test_llama31_frequencies(device, dtype, interleave, head_dim, rotary_dim):
    q, k = qk(11, 3, 1, head_dim, dtype, device)
    pos_ids = torch.randint(0, 131072, (11,), device=device)
    check(q, k, pos_ids, rotary_dim, interleave, dtype, LLAMA31)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interleave", [False, True])
def test_large_positions_and_scale_theta(device, dtype, interleave):
    q, k = qk(17, 4, 2, 128, dtype, device)
    pos_ids = torch.randint(100_000, 200_000, (17,), device=device)
    check(q, k, pos_ids, None, interleave, dtype, dict(rope_scale=2.5, rope_theta=1e6))


def test_reference_frequencies_match_the_cache_builders():
    # Two independent spellings of the same frequencies.
    torch.testing.assert_close(ref.rope_inv_freq(128, rope_theta=1e4), inv_freq_plain(128, 1e4))
    torch.testing.assert_close(ref.rope_inv_freq(128, rope_scale=3.0, rope_theta=5e5),
                               inv_freq_linear(128, 5e5, 3.0))
    llama = dict(LLAMA31)
    torch.testing.assert_close(ref.rope_inv_freq(128, **llama), inv_freq_llama3(128, 5e5, 8.0, 1.0, 4.0, 8192))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("llama31", [False, True])
def test_matches_the_cache_op_at_short_positions(device, llama31):
    # The computed angles agree with the cos|sin cache path (float64 angles) to fp32 rounding.
    q, k = qk(20, 8, 2, 128, torch.float32, device)
    pos_ids = torch.randint(0, 2048, (20,), device=device)
    if llama31:
        cache = flashhip.llama3_cos_sin_cache(2048, 128, device=device)
        got = flashhip.rope_pos_ids(q, k, pos_ids, **LLAMA31)
    else:
        cache = flashhip.cos_sin_cache(2048, 128, device=device)
        got = flashhip.rope_pos_ids(q, k, pos_ids)
    want = flashhip.rope(q, k, cache, pos_ids)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=2048 * 2.0**-22 * 8)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("offset", [0, 1])
def test_strided_fused_qkv_views(device, dtype, interleave, offset):
    nnz, hq, hk, d = 10, 5, 1, 128
    width = (hq + 2 * hk) * d
    storage = torch.randn(nnz * width + offset, device=device).to(dtype)
    qkv = storage[offset:].view(nnz, width)
    q = qkv[:, : hq * d].view(nnz, hq, d)
    k = qkv[:, hq * d : (hq + hk) * d].view(nnz, hk, d)
    v_before = qkv[:, (hq + hk) * d :].clone()
    pos_ids = torch.randint(0, 30000, (nnz,), device=device, dtype=torch.int32)
    check(q, k, pos_ids, 64, interleave, dtype)
    # In place into the views leaves v alone.
    expected_q, expected_k = ref.rope_pos_ids(q, k, pos_ids, 64, interleave)
    ops.rope_pos_ids(q, k, q, k, pos_ids, 64, interleave)
    assert_close(q, expected_q, dtype, angle_atol(pos_ids, expected_q))
    assert_close(k, expected_k, dtype, angle_atol(pos_ids, expected_k))
    assert torch.equal(qkv[:, (hq + hk) * d :], v_before)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_tokens_does_nothing(device):
    q, k = qk(0, 4, 2, 64, torch.bfloat16, device)
    pos = torch.empty(0, dtype=torch.int32, device=device)
    q_out, k_out = flashhip.rope_pos_ids(q, k, pos)
    assert q_out.shape == (0, 4, 64) and k_out.shape == (0, 2, 64)
    fi.apply_rope_inplace(q, k, torch.zeros(1, dtype=torch.int32, device=device),
                          torch.zeros(0, dtype=torch.int32, device=device))


def test_negative_positions_turn_backwards():
    q, k = qk(4, 2, 1, 64, torch.float32, "cpu")
    pos = torch.tensor([-5, -1, 0, 7])
    check(q, k, pos, None, False, torch.float32)


# ---- FlashInfer's forms ----

def ragged(device, lengths, offsets):
    indptr = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0).tolist()), dtype=torch.int32, device=device)
    return indptr, torch.tensor(offsets, dtype=torch.int32, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_ragged_pos_ids(device):
    indptr, offsets = ragged(device, [3, 0, 2, 4], [10, 99, 0, 50000])
    got = flashhip.ragged_pos_ids(indptr, offsets, 9)
    assert got.tolist() == [10, 11, 12, 0, 1, 50000, 50001, 50002, 50003]
    assert got.dtype == torch.int32 and got.device.type == torch.device(device).type


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("llama31", [False, True])
@pytest.mark.parametrize("interleave", [False, True])
def test_flashinfer_forms_agree(device, llama31, interleave):
    indptr, offsets = ragged(device, [5, 1, 7], [0, 4000, 123456])
    q, k = qk(13, 7, 1, 128, torch.bfloat16, device)
    pos_ids = flashhip.ragged_pos_ids(indptr, offsets, 13)
    freq = dict(LLAMA31) if llama31 else dict(rope_scale=1.0, rope_theta=1e4)
    fi_args = {key: v for key, v in freq.items() if key != "llama31"}
    expected_q, expected_k = ref.rope_pos_ids(q, k, pos_ids, 64, interleave, **freq)
    if llama31:
        by_pos = fi.apply_llama31_rope_pos_ids(q, k, pos_ids, 64, interleave, **fi_args)
        by_ragged = fi.apply_llama31_rope(q, k, indptr, offsets, 64, interleave, **fi_args)
    else:
        by_pos = fi.apply_rope_pos_ids(q, k, pos_ids, 64, interleave, **fi_args)
        by_ragged = fi.apply_rope(q, k, indptr, offsets, 64, interleave, **fi_args)
    # indptr/offsets and the positions they mean give the same bits.
    assert torch.equal(by_pos[0], by_ragged[0]) and torch.equal(by_pos[1], by_ragged[1])
    assert_close(by_pos[0], expected_q, torch.bfloat16, angle_atol(pos_ids, q))
    assert_close(by_pos[1], expected_k, torch.bfloat16, angle_atol(pos_ids, k))
    for in_place in ("pos_ids", "ragged"):
        q2, k2 = q.clone(), k.clone()
        if in_place == "pos_ids":
            (fi.apply_llama31_rope_pos_ids_inplace if llama31 else fi.apply_rope_pos_ids_inplace)(
                q2, k2, pos_ids, 64, interleave, **fi_args)
        else:
            (fi.apply_llama31_rope_inplace if llama31 else fi.apply_rope_inplace)(
                q2, k2, indptr, offsets, 64, interleave, **fi_args)
        assert torch.equal(q2, by_pos[0]) and torch.equal(k2, by_pos[1])


def test_flashinfer_llama31_defaults_are_llama31s():
    q, k = qk(6, 2, 1, 128, torch.float32, "cpu")
    pos_ids = torch.randint(0, 100000, (6,), dtype=torch.int32)
    got_q, _ = fi.apply_llama31_rope_pos_ids(q, k, pos_ids)
    expected_q, _ = ref.rope_pos_ids(q, k, pos_ids, None, False, **LLAMA31)
    assert_close(got_q, expected_q, torch.float32, angle_atol(pos_ids, q))


# ---- opcheck and torch.compile ----

def _samples(device):
    q, k = qk(6, 3, 1, 128, torch.bfloat16, device)
    pos32 = torch.randint(0, 100000, (6,), dtype=torch.int32, device=device)
    pos64 = pos32.long()
    f = torch.randn(6, 5, 64, device=device), torch.randn(6, 1, 64, device=device)
    return [
        (torch.empty_like(q), torch.empty_like(k), q, k, pos32, 128, False, 1.0, 1e4, False, 1.0, 4.0, 8192.0),
        (torch.empty_like(q), torch.empty_like(k), q, k, pos64, 64, True, 8.0, 5e5, True, 1.0, 4.0, 8192.0),
        (torch.empty_like(f[0]), torch.empty_like(f[1]), f[0], f[1], pos32, 32, False, 2.0, 1e6, False, 1.0, 4.0, 8192.0),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    for args in _samples(device):
        opcheck(ops.rope_pos_ids.default, args)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def prologue(qkv, indptr, offsets):
        q = qkv[:, : 4 * 64].view(-1, 4, 64)
        k = qkv[:, 4 * 64 : 5 * 64].view(-1, 1, 64)
        q_rot, k_rot = fi.apply_llama31_rope(q, k, indptr, offsets)  # out of place from views
        fi.apply_rope_inplace(q, k, indptr, offsets, rotary_dim=32, interleave=True)  # in place into the buffer
        return q_rot * 2, k_rot

    compiled = torch.compile(prologue, fullgraph=True)
    qkv = torch.randn(9, 6 * 64, device=device, dtype=torch.bfloat16)
    indptr, offsets = ragged(device, [4, 5], [7, 3000])
    qkv_eager, qkv_compiled = qkv.clone(), qkv.clone()
    eager = prologue(qkv_eager, indptr, offsets)
    got = compiled(qkv_compiled, indptr, offsets)
    torch.testing.assert_close(qkv_compiled, qkv_eager)
    assert not torch.equal(qkv_compiled, qkv)
    for a, b in zip(got, eager):
        torch.testing.assert_close(a, b)


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    q, k = torch.randn(3, 4, 64), torch.randn(3, 2, 64)
    pos = torch.tensor([0, 5, 15])
    qo = lambda: torch.full((3, 4, 64), 7.0)  # noqa: E731
    ko = lambda: torch.full((3, 2, 64), 7.0)  # noqa: E731
    shared = torch.randn(5, 4, 64)
    base = (64, False, 1.0, 1e4, False, 1.0, 4.0, 8192.0)

    def args(qo_=None, ko_=None, q_=q, k_=k, pos_=pos, *rest):
        tail = rest + base[len(rest):]
        return (qo() if qo_ is None else qo_, ko() if ko_ is None else ko_, q_, k_, pos_) + tail

    return [
        (args(None, None, q, k, pos, 63), "'rotary_dim' must be a positive even number no larger than the head_dim 64"),
        (args(None, None, q, k, pos, 128), "'rotary_dim' must be a positive even number"),
        (args(None, None, q, k, pos, 0), "'rotary_dim' must be a positive even number"),
        (args(None, None, q, k, pos, 64, False, 0.0), "'rope_scale' must be finite and positive"),
        (args(None, None, q, k, pos, 64, False, float("nan")), "'rope_scale' must be finite and positive"),
        (args(None, None, q, k, pos, 64, False, 1.0, -1.0), "'rope_theta' must be finite and positive"),
        (args(None, None, q, k, pos, 64, False, 8.0, 5e5, True, 4.0, 4.0), "'high_freq_factor' \\(4\\) must be finite and exceed"),
        (args(None, None, q, k, pos, 64, False, 8.0, 5e5, True, 0.0, 4.0), "'low_freq_factor' must be finite and positive"),
        (args(None, None, q, k, pos, 64, False, 8.0, 5e5, True, 1.0, 4.0, 0.0), "'old_context_len' must be finite and positive"),
        (args(None, None, q, k, pos.float()), "'pos_ids' must have dtype Int, Long"),
        (args(None, None, q, k, torch.tensor([0, 1])), "'pos_ids' must have shape \\[3\\]"),
        (args(None, torch.full((2, 2, 64), 7.0), q, torch.randn(2, 2, 64)), "'k' has 2 tokens but 'q' has 3"),
        (args(None, None, q.to(torch.int32)), "'q' must have dtype Half, BFloat16, Float"),
        (args(None, None, q, k.half()), "'k' must have the dtype of 'q'"),
        (args(None, None, torch.randn(3, 64, 4).transpose(1, 2)), "'q' must be contiguous in its innermost"),
        (args(None, None, q.flatten(1)), "'q' must be 3-D \\[nnz, num_q_heads, head_dim\\]"),
        (args(torch.full((3, 4, 65), 7.0)), "'q_out' must have the shape of 'q'"),
        (args(shared[1:4], None, shared[0:3]), "output 'q_out' overlaps 'q' without being it"),
        (args(torch.full((1, 4, 64), 7.0).expand(3, 4, 64)), "output 'q_out' has elements that share memory"),
        (args(torch.full((3, 2, 64), 7.0), q2 := torch.randn(3, 2, 64), q2, k), "'k_out' shares memory with 'q'"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    args, message = _bad_cases()[case]
    snapshots = [a.float().clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        ops.rope_pos_ids(*args)
    for a, snap in zip(args, snapshots):
        if snap is not None:
            torch.testing.assert_close(a.float(), snap, equal_nan=True)


@pytest.mark.parametrize("indptr,offsets,message", [
    ([0, 2, 3], [1], "'offsets' must be int32/int64 \\[2\\]"),
    ([[0, 3]], [1], "'indptr' must be int32/int64 \\[batch \\+ 1\\]"),
    ([1, 3], [0], "'indptr' must start at 0, not decrease and end at nnz = 3"),
    ([0, 2], [0], "'indptr' must start at 0, not decrease and end at nnz = 3"),
    ([0, 3, 2, 3], [0, 0, 0], "'indptr' must start at 0, not decrease"),
])
def test_bad_ragged_batch_is_named(indptr, offsets, message):
    q, k = torch.randn(3, 4, 64), torch.randn(3, 2, 64)
    before = q.clone()
    with pytest.raises(RuntimeError, match=message):
        fi.apply_rope_inplace(q, k, torch.tensor(indptr, dtype=torch.int32), torch.tensor(offsets, dtype=torch.int32))
    assert torch.equal(q, before)


# ---- GPU only ----

@requires_gpu
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("llama31", [False, True])
def test_gpu_matches_cpu(interleave, llama31):
    q, k = qk(300, 32, 8, 128, torch.bfloat16, "cpu")
    pos_ids = torch.randint(0, 200000, (300,), dtype=torch.int32)
    freq = LLAMA31 if llama31 else {}
    cpu = flashhip.rope_pos_ids(q, k, pos_ids, 96, interleave, **freq)
    gpu = flashhip.rope_pos_ids(q.cuda(), k.cuda(), pos_ids.cuda(), 96, interleave, **freq)
    for a, b in zip(cpu, gpu):
        # Same fp32 formula; sincosf and powf may differ by an ulp between the two libraries.
        torch.testing.assert_close(b.cpu().float(), a.float(), rtol=1.6e-2, atol=1.6e-2 + angle_atol(pos_ids, q))


@requires_gpu
def test_cuda_graph_capture_and_replay():
    q, k = qk(64, 32, 8, 128, torch.bfloat16, "cuda")
    indptr, offsets = ragged("cuda", [30, 34], [0, 9000])
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        pos = flashhip.ragged_pos_ids(indptr, offsets, 64)
        ops.rope_pos_ids(q_out, k_out, q, k, pos, 128, False)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        pos = flashhip.ragged_pos_ids(indptr, offsets, 64)
        ops.rope_pos_ids(q_out, k_out, q, k, pos, 128, False)
    offsets.copy_(torch.tensor([100, 50000], dtype=torch.int32, device="cuda"))
    graph.replay()
    torch.cuda.synchronize()
    expected_q, _ = ref.rope_pos_ids(q, k, flashhip.ragged_pos_ids(indptr, offsets, 64), None, False)
    assert_close(q_out, expected_q, torch.bfloat16, angle_atol(torch.tensor([50100]), q))
