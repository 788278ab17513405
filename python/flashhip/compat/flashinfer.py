"""Drop-in functions with FlashInfer's signatures (``from flashhip.compat import flashinfer as fi``).
``enable_pdl`` / ``launch_with_pdl`` are accepted and ignored: programmatic dependent launch is an
NVIDIA-only feature these kernels do not use. sgl-kernel's names live in
:mod:`flashhip.compat.sgl_kernel`; the norms sgl-kernel copies from FlashInfer with the same
signature are defined here and re-exported there."""

from __future__ import annotations

from typing import Optional

import torch

from .. import norm, rope
from ._moe import _route_into

_ops = torch.ops.flashhip

__all__ = [
    "rmsnorm",
    "gemma_rmsnorm",
    "fused_add_rmsnorm",
    "gemma_fused_add_rmsnorm",
    "layernorm",
    "rmsnorm_quant",
    "fused_add_rmsnorm_quant",
    "layernorm_quant",
    "apply_rope_with_cos_sin_cache_inplace",
    "apply_rope_with_cos_sin_cache",
    "apply_rope",
    "apply_rope_inplace",
    "apply_rope_pos_ids",
    "apply_rope_pos_ids_inplace",
    "apply_llama31_rope",
    "apply_llama31_rope_inplace",
    "apply_llama31_rope_pos_ids",
    "apply_llama31_rope_pos_ids_inplace",
    "rope_quantize_fp8",
    "mla_rope_quantize_fp8",
    "fused_topk_deepseek",
]


def rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl: Optional[bool] = None) -> torch.Tensor:
    """FlashInfer's ``flashinfer.norm.rmsnorm`` (sgl-kernel's ``sgl_kernel.rmsnorm`` has the same
    signature): fp32 arithmetic, the weight multiplied in fp32 and one rounding, as FlashInfer;
    ``[tokens, hidden]`` or the per-head qk-norm's ``[tokens, heads, head_dim]``, strided heads of
    a fused qkv buffer too, into ``out`` (in place when ``out`` is ``input``).

    Differences that remain: fp32 activations and any leading dimensions that collapse to one row
    stride or to ``[tokens, heads]`` are accepted (FlashInfer: fp16/bf16, 2-D or 3-D); a row whose
    fp32 mean square would overflow or underflow still normalises (README)."""
    return norm.rmsnorm(input, weight, eps, out=out)


def gemma_rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl: Optional[bool] = None) -> torch.Tensor:
    """FlashInfer's ``flashinfer.norm.gemma_rmsnorm`` (the same signature as sgl-kernel's
    ``sgl_kernel.gemma_rmsnorm``): RMSNorm scaled by ``1 + weight``, with :func:`rmsnorm`'s
    shapes and differences."""
    return norm.rmsnorm(input, weight, eps, gemma=True, out=out)


def fused_add_rmsnorm(input, residual, weight, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    """FlashInfer's ``flashinfer.norm.fused_add_rmsnorm`` (the same signature as sgl-kernel's
    ``sgl_kernel.fused_add_rmsnorm``, which runs FlashInfer's kernel): ``residual += input``, then
    ``input = rmsnorm(input + residual)`` with the sum in fp32, as FlashInfer computes it (the
    residual written is the sum rounded to its dtype; flashhip's own op normalises that rounded
    residual unless asked with ``fp32_sum``).

    Differences that remain: any leading dimensions (strided heads too; FlashInfer: 2-D) and
    fp32 activations; any hidden size on a 64 KiB-LDS device (FlashInfer stages the fp32 row in
    shared memory in its CUDA kernel)."""
    norm.fused_add_rmsnorm(input, residual, weight, eps, fp32_sum=True)


def gemma_fused_add_rmsnorm(input, residual, weight, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    """FlashInfer's ``flashinfer.norm.gemma_fused_add_rmsnorm`` (the same signature as
    sgl-kernel's ``sgl_kernel.gemma_fused_add_rmsnorm``): as ``fused_add_rmsnorm``, the fp32 sum
    normalised, scaled by ``1 + weight``, with its differences."""
    norm.fused_add_rmsnorm(input, residual, weight, eps, gemma=True, fp32_sum=True)


def layernorm(input, gemma, beta, eps=1e-6) -> torch.Tensor:
    """FlashInfer's ``flashinfer.norm.layernorm``: ``gemma``/``beta`` are the scale and shift
    (often fp32); mean and variance in fp32; returns a new tensor.

    Differences that remain: FlashInfer takes bf16 input with fp32 ``gemma``/``beta`` only;
    flashhip takes fp16/bf16/fp32 input, ``gemma``/``beta`` in its dtype or fp32, ``beta=None``,
    and any leading dimensions."""
    return norm.layernorm(input, gemma, beta, eps)


def _scale_tensor(scale, input: torch.Tensor) -> torch.Tensor:
    """The quantising forms' ``scale``: a tensor as given, or a Python float (FlashInfer still
    takes one, deprecated) as a one-element fp32 tensor on the input's device (a host-to-device
    copy: pass a tensor inside CUDA graphs)."""
    if isinstance(scale, torch.Tensor):
        return scale
    return torch.tensor([float(scale)], dtype=torch.float32, device=input.device)


def rmsnorm_quant(out, input, weight, scale, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    """FlashInfer's ``flashinfer.norm.rmsnorm_quant``: RMSNorm quantised to fp8 into ``out``
    (``float8_e4m3fn``, ``float8_e5m2``, and ``float8_e4m3fnuz`` too), saturating at the flavour's
    largest finite value. ``scale``: a one-element fp32 tensor or a Python float.

    Differences that remain: flashhip divides by ``scale`` (the IEEE quotient) where FlashInfer
    multiplies by its rounded reciprocal, so a value on an fp8 rounding boundary may land one fp8
    step apart; fp32 activations and any leading dimensions (strided heads too) are accepted."""
    norm.rmsnorm_quant(input, weight, _scale_tensor(scale, input), eps, out=out)


def fused_add_rmsnorm_quant(out, input, residual, weight, scale, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    """FlashInfer's ``flashinfer.norm.fused_add_rmsnorm_quant``: ``residual += input`` (rounded to
    its dtype), then ``rmsnorm(input + residual)`` of the unrounded fp32 sum, as FlashInfer computes
    it, quantised to fp8 into ``out``; ``input`` is left as it is (flashhip's own op normalises
    the rounded residual unless asked with ``fp32_sum``). ``scale``: a one-element fp32 tensor or
    a Python float.

    Differences that remain: those of :func:`rmsnorm_quant` (the IEEE quotient, not a multiply by
    the reciprocal; e4m3fnuz accepted)."""
    norm.fused_add_rmsnorm_quant(input, residual, weight, _scale_tensor(scale, input), eps, fp32_sum=True, out=out)


def layernorm_quant(out, input, gemma, beta, scale, eps=1e-6) -> None:
    """FlashInfer's ``flashinfer.norm.layernorm_quant``: layernorm with ``gemma``/``beta`` as the
    scale and shift, quantised to fp8 into ``out``. ``scale``: a one-element fp32 tensor or a
    Python float.

    Differences that remain: FlashInfer takes bf16 input with fp32 ``gemma``/``beta`` only;
    flashhip takes fp16/bf16/fp32 input with ``gemma``/``beta`` in its dtype or fp32. FlashInfer's
    CUDA kernel rounds the layernorm value to the input dtype, then multiplies it by the
    reciprocal of ``scale``; flashhip quantises the fp32 value once, dividing as
    :func:`rmsnorm_quant` does (results may differ by an fp8 step where the bf16 rounding moves a
    value across an fp8 rounding boundary)."""
    norm.layernorm_quant(input, gemma, beta, _scale_tensor(scale, input), eps, out=out)


def _heads(x: torch.Tensor, head_size: int, name: str) -> torch.Tensor:
    """``[nnz, heads * head_size]`` seen as ``[nnz, heads, head_size]`` (no copy)."""
    if x.dim() != 2 or head_size <= 0 or x.shape[1] % head_size:
        raise ValueError(f"'{name}' must be [nnz, heads * head_size] with head_size {head_size}, got {tuple(x.shape)}")
    return x.view(x.shape[0], x.shape[1] // head_size, head_size)


def _rope_flat(positions, query, key, head_size, cos_sin_cache, is_neox, query_out, key_out) -> None:
    """torch.ops.flashhip.rope on flattened ``[nnz, heads * head_size]`` q/k and outputs."""
    _ops.rope(_heads(query_out, head_size, "query"), _heads(key_out, head_size, "key"), _heads(query, head_size, "query"),
              _heads(key, head_size, "key"), cos_sin_cache, positions, not is_neox)


def apply_rope_with_cos_sin_cache_inplace(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    head_size: int,
    cos_sin_cache: torch.Tensor,
    is_neox: bool = True,
) -> None:
    """FlashInfer's ``flashinfer.rope.apply_rope_with_cos_sin_cache_inplace``: rotates ``query``
    ``[nnz, Hq * head_size]`` and ``key`` ``[nnz, Hk * head_size]`` in place by ``cos_sin_cache``
    (fp32 ``[max_pos, rotary_dim]``, cos | sin) rows ``positions``. ``is_neox=True`` is
    rotate-half, False is GPT-J interleaved. See :func:`flashhip.rope` for out-of-range positions.
    (sgl-kernel's function of this name adds ``fused_set_kv_buffer_arg`` / ``enable_pdl``: see
    :func:`flashhip.compat.sgl_kernel.apply_rope_with_cos_sin_cache_inplace`.)"""
    _rope_flat(positions, query, key, head_size, cos_sin_cache, is_neox, query, key)


def apply_rope_with_cos_sin_cache(positions, query, key, head_size, cos_sin_cache, is_neox=True):
    """FlashInfer's ``flashinfer.rope.apply_rope_with_cos_sin_cache``: as
    :func:`apply_rope_with_cos_sin_cache_inplace`, returning new ``(query_out, key_out)``."""
    query_out = torch.empty(query.shape, dtype=query.dtype, device=query.device)
    key_out = torch.empty(key.shape, dtype=key.dtype, device=key.device)
    _rope_flat(positions, query, key, head_size, cos_sin_cache, is_neox, query_out, key_out)
    return query_out, key_out


# ---- RoPE with the angles computed from the positions (no cache) ----
# All run torch.ops.flashhip.rope_pos_ids; the indptr/offsets forms first turn the ragged batch
# into per-token positions with tensor ops (flashhip.rope.ragged_pos_ids). Differences from
# FlashInfer, common to all eight: int64 positions are accepted besides int32; a bad argument
# raises RuntimeError naming it, and on the CPU a malformed 'indptr' too.

def _rope_computed(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, q_out, k_out, llama31=False,
                   low_freq_factor=1.0, high_freq_factor=4.0, old_context_len=8192.0):
    rope.rope_pos_ids(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, llama31=llama31,
                      low_freq_factor=low_freq_factor, high_freq_factor=high_freq_factor,
                      old_context_len=float(old_context_len), q_out=q_out, k_out=k_out)


def apply_rope_pos_ids(q, k, pos_ids, rotary_dim=None, interleave=False, rope_scale=1, rope_theta=1e4):
    """FlashInfer's ``flashinfer.rope.apply_rope_pos_ids``: returns new ``(q_rope, k_rope)``, q
    ``[nnz, Hq, head_dim]`` and k ``[nnz, Hk, head_dim]`` with the first ``rotary_dim`` (None:
    all) of each head turned by ``pos_ids[t] * rope_theta^(-2i/rotary_dim) / rope_scale``
    (``interleave``: GPT-J pairs, else NeoX halves); see :func:`flashhip.rope.rope_pos_ids`."""
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    _rope_computed(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, q_out, k_out)
    return q_out, k_out


def apply_rope_pos_ids_inplace(q, k, pos_ids, rotary_dim=None, interleave=False, rope_scale=1, rope_theta=1e4) -> None:
    """FlashInfer's ``flashinfer.rope.apply_rope_pos_ids_inplace``: :func:`apply_rope_pos_ids`
    written into ``q`` and ``k``."""
    _rope_computed(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, q, k)


def apply_rope(q, k, indptr, offsets, rotary_dim=None, interleave=False, rope_scale=1, rope_theta=1e4):
    """FlashInfer's ``flashinfer.rope.apply_rope``: :func:`apply_rope_pos_ids` of a ragged batch,
    request ``b`` owning tokens ``indptr[b]..indptr[b+1]`` at positions ``offsets[b]`` onwards."""
    pos_ids = rope.ragged_pos_ids(indptr, offsets, q.shape[0])
    return apply_rope_pos_ids(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta)


def apply_rope_inplace(q, k, indptr, offsets, rotary_dim=None, interleave=False, rope_scale=1, rope_theta=1e4) -> None:
    """FlashInfer's ``flashinfer.rope.apply_rope_inplace``: :func:`apply_rope` written into ``q``
    and ``k``."""
    pos_ids = rope.ragged_pos_ids(indptr, offsets, q.shape[0])
    _rope_computed(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, q, k)


def apply_llama31_rope_pos_ids(q, k, pos_ids, rotary_dim=None, interleave=False, rope_scale=8, rope_theta=5e5,
                               low_freq_factor=1, high_freq_factor=4, old_context_len=8192):
    """FlashInfer's ``flashinfer.rope.apply_llama31_rope_pos_ids``: :func:`apply_rope_pos_ids`
    with Llama-3.1's frequencies (``rope_scale`` slows the wavelengths longer than
    ``old_context_len / low_freq_factor``, those shorter than ``old_context_len / high_freq_factor``
    are kept, the band between is blended). FlashInfer divides by ``high_freq_factor -
    low_freq_factor`` unchecked; flashhip refuses ``high_freq_factor <= low_freq_factor``."""
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    _rope_computed(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, q_out, k_out, True, low_freq_factor,
                   high_freq_factor, old_context_len)
    return q_out, k_out


def apply_llama31_rope_pos_ids_inplace(q, k, pos_ids, rotary_dim=None, interleave=False, rope_scale=8,
                                       rope_theta=5e5, low_freq_factor=1, high_freq_factor=4,
                                       old_context_len=8192) -> None:
    """FlashInfer's ``flashinfer.rope.apply_llama31_rope_pos_ids_inplace``:
    :func:`apply_llama31_rope_pos_ids` written into ``q`` and ``k``."""
    _rope_computed(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, q, k, True, low_freq_factor,
                   high_freq_factor, old_context_len)


def apply_llama31_rope(q, k, indptr, offsets, rotary_dim=None, interleave=False, rope_scale=8, rope_theta=5e5,
                       low_freq_factor=1, high_freq_factor=4, old_context_len=8192):
    """FlashInfer's ``flashinfer.rope.apply_llama31_rope``: :func:`apply_llama31_rope_pos_ids` of a
    ragged batch (``indptr``/``offsets`` as in :func:`apply_rope`)."""
    pos_ids = rope.ragged_pos_ids(indptr, offsets, q.shape[0])
    return apply_llama31_rope_pos_ids(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, low_freq_factor,
                                      high_freq_factor, old_context_len)


def apply_llama31_rope_inplace(q, k, indptr, offsets, rotary_dim=None, interleave=False, rope_scale=8,
                               rope_theta=5e5, low_freq_factor=1, high_freq_factor=4, old_context_len=8192) -> None:
    """FlashInfer's ``flashinfer.rope.apply_llama31_rope_inplace``: :func:`apply_llama31_rope`
    written into ``q`` and ``k``."""
    pos_ids = rope.ragged_pos_ids(indptr, offsets, q.shape[0])
    _rope_computed(q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, q, k, True, low_freq_factor,
                   high_freq_factor, old_context_len)


def rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cos_sin_cache, pos_ids, is_neox=True,
                      quantize_dtype: Optional[torch.dtype] = None, quant_scale_q=1.0, quant_scale_kv=1.0,
                      q_rope_out=None, k_rope_out=None, q_nope_out=None, k_nope_out=None, enable_pdl=False):
    """FlashInfer's ``flashinfer.rope.rope_quantize_fp8``: ``q_rope`` ``[nnz, Hq, rope_dim]`` and
    ``k_rope`` (MLA ``[nnz, rope_dim]``, GQA/MHA ``[nnz, Hk, rope_dim]``) rotated by
    ``cos_sin_cache[pos_ids]`` (``is_neox``: rotate-half, else GPT-J interleaved), then the rotated
    parts and ``q_nope`` / ``k_nope`` (None: zero-size) multiplied by ``quant_scale_q`` (q) or
    ``quant_scale_kv`` (k) and stored as saturated fp8. ``quantize_dtype`` None: the dtype of the
    first output given, else ``float8_e4m3fn``; outputs left None are allocated. Returns
    ``(q_rope_out, k_rope_out, q_nope_out, k_nope_out)``; see :func:`flashhip.rope.rope_quantize_fp8`.

    Differences that remain: ``float8_e4m3fnuz`` outputs are accepted too (FlashInfer: e4m3fn and
    e5m2); every bad argument is a RuntimeError naming it (FlashInfer raises ValueError for a
    non-fp32 cache and fails its C++ checks otherwise), including ``cos_sin_cache.size(1) !=
    rope_dim``, outputs overlapping inputs or each other, and scales that are not finite and
    positive, which FlashInfer does not check; positions outside the cache raise on the CPU and
    skip the token on a GPU (FlashInfer reads past the cache); allocated outputs are contiguous
    (FlashInfer's ``empty_like`` keeps a dense input's strides)."""
    return rope.rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cos_sin_cache, pos_ids, not is_neox, quant_scale_q,
                                  quant_scale_kv, out_dtype=quantize_dtype, q_rope_out=q_rope_out,
                                  k_rope_out=k_rope_out, q_nope_out=q_nope_out, k_nope_out=k_nope_out)


def mla_rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cos_sin_cache, pos_ids, is_neox=True,
                          quantize_dtype: Optional[torch.dtype] = None, quant_scale_q=1.0, quant_scale_kv=1.0,
                          q_rope_out=None, k_rope_out=None, q_nope_out=None, k_nope_out=None, enable_pdl=False):
    """FlashInfer's ``flashinfer.rope.mla_rope_quantize_fp8``: the same function as
    :func:`rope_quantize_fp8` under its MLA name (DeepSeek: ``q_rope`` ``[nnz, 128, 64]``,
    ``q_nope`` ``[nnz, 128, 512]``, ``k_rope`` ``[nnz, 64]``, ``k_nope`` ``[nnz, 512]``), with its
    differences."""
    return rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cos_sin_cache, pos_ids, is_neox, quantize_dtype,
                             quant_scale_q, quant_scale_kv, q_rope_out, k_rope_out, q_nope_out, k_nope_out, enable_pdl)


def fused_topk_deepseek(scores, bias, n_group: int, topk_group: int, topk: int, routed_scaling_factor: float,
                        topk_values, topk_indices, launch_with_pdl: bool = True,
                        routing_replay_out: Optional[torch.Tensor] = None, *, backend: str = "default") -> None:
    """FlashInfer's ``flashinfer.fused_topk_deepseek`` (DeepSeek-V3 routing) into ``topk_values`` /
    ``topk_indices`` ``[T, topk]``: sigmoid(``scores``) + ``bias`` chooses (top-two group sums,
    ``topk_group`` of ``n_group`` groups kept), the chosen sigmoid scores are normalised to sum 1
    and multiplied by ``routed_scaling_factor``.

    ``routing_replay_out`` (int16 ``[>= T, topk]``, as FlashInfer's): when given, rows ``0..T-1``
    receive the chosen expert ids too (for routing replay; rows past ``T`` are left as they were,
    so one buffer sized for the largest batch serves every step of a CUDA graph).

    ``backend``: ``"default"`` (flashhip's kernel) only. FlashInfer's ``"cake"`` selects a
    Blackwell-only (SM100/103/107) kernel and raises elsewhere; flashhip has no such kernel, so it
    is refused with a ValueError naming ``backend``, as FlashInfer refuses it on Hopper.

    Differences that remain: FlashInfer also refuses ``topk > 8``, more than 32 experts per group
    and some larger shapes; flashhip routes them."""
    if backend != "default":
        raise ValueError(f"fused_topk_deepseek: argument 'backend' must be 'default' (flashhip has no "
                         f"{backend!r} kernel; FlashInfer's 'cake' backend runs on SM100/103/107 only), got {backend!r}")
    if topk_values.dim() != 2 or topk_values.shape[1] != topk:
        raise ValueError(f"fused_topk_deepseek: 'topk_values' must be [num_tokens, {topk}], got {tuple(topk_values.shape)}")
    tokens = scores.shape[0]
    if routing_replay_out is not None:
        if routing_replay_out.dtype != torch.int16:
            raise ValueError(f"fused_topk_deepseek: 'routing_replay_out' must be int16, got {routing_replay_out.dtype}")
        if (routing_replay_out.dim() != 2 or routing_replay_out.shape[0] < tokens
                or routing_replay_out.shape[1] != topk):
            raise ValueError(f"fused_topk_deepseek: 'routing_replay_out' must be [>= {tokens}, {topk}], got "
                             f"{tuple(routing_replay_out.shape)}")
        if routing_replay_out.device != scores.device:
            raise ValueError(f"fused_topk_deepseek: 'routing_replay_out' must be on {scores.device}, got "
                             f"{routing_replay_out.device}")
    _route_into(topk_values, topk_indices, scores, bias, "sigmoid", n_group, topk_group, True, routed_scaling_factor)
    if routing_replay_out is not None:
        routing_replay_out[:tokens].copy_(topk_indices)
