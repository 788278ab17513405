"""Drop-in functions with FlashInfer's / sgl-kernel's signatures, so an engine can switch by
import (``from flashhip import flashinfer as fi``). ``enable_pdl`` / ``launch_with_pdl`` are
accepted and ignored: programmatic dependent launch is an NVIDIA-only feature these kernels do
not use."""

from __future__ import annotations

from typing import Optional

import torch

from . import moe, norm
from .gemm import fp8_blockwise_scaled_mm, sgl_per_token_group_quant_fp8  # noqa: F401  (sgl-kernel's FP8 GEMM names)

_ops = torch.ops.flashhip


def rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl: Optional[bool] = None) -> torch.Tensor:
    return norm.rmsnorm(input, weight, eps, out=out)


def gemma_rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl: Optional[bool] = None) -> torch.Tensor:
    return norm.rmsnorm(input, weight, eps, gemma=True, out=out)


def fused_add_rmsnorm(input, residual, weight, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    norm.fused_add_rmsnorm(input, residual, weight, eps)


def gemma_fused_add_rmsnorm(input, residual, weight, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    norm.fused_add_rmsnorm(input, residual, weight, eps, gemma=True)


def layernorm(input, gemma, beta, eps=1e-6) -> torch.Tensor:
    """FlashInfer's layernorm: ``gemma``/``beta`` are the scale and shift (often fp32)."""
    return norm.layernorm(input, gemma, beta, eps)


def rmsnorm_quant(out, input, weight, scale, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    norm.rmsnorm_quant(input, weight, scale, eps, out=out)


def fused_add_rmsnorm_quant(out, input, residual, weight, scale, eps=1e-6, enable_pdl: Optional[bool] = None) -> None:
    norm.fused_add_rmsnorm_quant(input, residual, weight, scale, eps, out=out)


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
    """FlashInfer's signature: rotates ``query`` ``[nnz, Hq * head_size]`` and ``key``
    ``[nnz, Hk * head_size]`` in place by ``cos_sin_cache`` (fp32 ``[max_pos, rotary_dim]``,
    cos | sin) rows ``positions``. ``is_neox=True`` is rotate-half, False is GPT-J interleaved.
    See :func:`flashhip.rope` for out-of-range positions."""
    _rope_flat(positions, query, key, head_size, cos_sin_cache, is_neox, query, key)


def apply_rope_with_cos_sin_cache(positions, query, key, head_size, cos_sin_cache, is_neox=True):
    """As :func:`apply_rope_with_cos_sin_cache_inplace`, returning new ``(query_out, key_out)``."""
    query_out = torch.empty(query.shape, dtype=query.dtype, device=query.device)
    key_out = torch.empty(key.shape, dtype=key.dtype, device=key.device)
    _rope_flat(positions, query, key, head_size, cos_sin_cache, is_neox, query_out, key_out)
    return query_out, key_out


# ---- MoE routing: sgl-kernel's topk_softmax / moe_fused_gate / moe_align_block_size and
# FlashInfer's fused_topk_deepseek, on torch.ops.flashhip.moe_topk and moe_align_block_size. ----


def _route_into(topk_weights, topk_ids, gating, bias, scoring_func, groups, topk_group, renormalize, scale) -> None:
    """moe_topk into the caller's buffers. The op writes fp32 weights and int32 ids; buffers of
    another dtype (int64 ids, bf16 weights) receive a converted copy."""
    weights = topk_weights if topk_weights.dtype == torch.float32 else torch.empty(
        topk_weights.shape, dtype=torch.float32, device=topk_weights.device)
    ids = topk_ids if topk_ids.dtype == torch.int32 else torch.empty(
        topk_ids.shape, dtype=torch.int32, device=topk_ids.device)
    if bias is not None and bias.dtype != torch.float32:
        bias = bias.float()
    _ops.moe_topk(weights, ids, gating, bias, scoring_func, groups, topk_group, renormalize, scale)
    if weights is not topk_weights:
        topk_weights.copy_(weights)
    if ids is not topk_ids:
        topk_ids.copy_(ids)


def topk_softmax(topk_weights, topk_ids, *args, renormalize: bool = False, moe_softcapping: float = 0.0,
                 correction_bias: Optional[torch.Tensor] = None) -> None:
    """Softmax routing (Mixtral, Qwen) into ``topk_weights`` ``[T, k]`` and ``topk_ids`` ``[T, k]``.

    Both signatures in use are accepted:
    - sgl-kernel: ``topk_softmax(topk_weights, topk_ids, gating_output, renormalize=False)``;
    - vLLM and older sgl-kernel: ``topk_softmax(topk_weights, topk_ids, token_expert_indices,
      gating_output[, renormalize])``, where ``token_expert_indices[t, j]`` is set to ``j * T + t``.

    ``moe_softcapping > 0`` caps the logits at ``cap * tanh(logit / cap)`` first (a separate
    elementwise op). With ``correction_bias`` experts are chosen by probability + bias and weighted
    by the probability. Ties go to the lower expert index.
    """
    token_expert_indices = None
    if len(args) >= 2 and isinstance(args[1], torch.Tensor):
        token_expert_indices, gating_output, rest = args[0], args[1], args[2:]
    elif args:
        gating_output, rest = args[0], args[1:]
    else:
        raise TypeError("topk_softmax() missing 'gating_output'")
    if len(rest) > 1:
        raise TypeError(f"topk_softmax() takes at most one argument after 'gating_output' (renormalize), got {len(rest)}")
    if rest:
        renormalize = bool(rest[0])
    if moe_softcapping > 0:
        gating_output = moe_softcapping * torch.tanh(gating_output.float() / moe_softcapping)
    _route_into(topk_weights, topk_ids, gating_output, correction_bias, "softmax", 1, 1, renormalize, 1.0)
    if token_expert_indices is not None:
        tokens, k = topk_ids.shape
        device = token_expert_indices.device
        slots = torch.arange(k, device=device) * tokens + torch.arange(tokens, device=device)[:, None]
        token_expert_indices.copy_(slots)


def moe_fused_gate(input_tensor, bias, num_expert_group: int, topk_group: int, topk: int,
                   num_fused_shared_experts: int = 0, routed_scaling_factor: float = 0,
                   apply_routed_scaling_factor_on_output: bool = False):
    """sgl-kernel's DeepSeek-V3 gate: sigmoid scores, chosen by score + ``bias`` within the
    ``topk_group`` best of ``num_expert_group`` groups (top-two sums), weights renormalised to sum
    1 and multiplied by ``routed_scaling_factor`` only with ``apply_routed_scaling_factor_on_output``.
    Returns ``(weights fp32 [T, topk], ids int32 [T, topk])``. Unlike sgl-kernel's kernel, any
    expert count and group size work. Fused shared experts are not supported."""
    if num_fused_shared_experts:
        raise NotImplementedError("moe_fused_gate: num_fused_shared_experts > 0 is not supported; route the "
                                  "routed experts (num_fused_shared_experts=0) and append the shared ones")
    scale = routed_scaling_factor if apply_routed_scaling_factor_on_output and routed_scaling_factor > 0 else 1.0
    return moe.moe_topk(input_tensor, topk, bias, "sigmoid", num_expert_group, topk_group, True, scale)


def fused_topk_deepseek(scores, bias, n_group: int, topk_group: int, topk: int, routed_scaling_factor: float,
                        topk_values, topk_indices, launch_with_pdl: bool = True,
                        routing_replay_out: Optional[torch.Tensor] = None) -> None:
    """FlashInfer's DeepSeek-V3 routing into ``topk_values`` / ``topk_indices`` ``[T, topk]``:
    sigmoid(``scores``) + ``bias`` chooses (top-two group sums, ``topk_group`` of ``n_group``
    groups kept), the chosen sigmoid scores are normalised to sum 1 and multiplied by
    ``routed_scaling_factor``."""
    if routing_replay_out is not None:
        raise NotImplementedError("fused_topk_deepseek: routing_replay_out is not supported")
    if topk_values.dim() != 2 or topk_values.shape[1] != topk:
        raise ValueError(f"fused_topk_deepseek: 'topk_values' must be [num_tokens, {topk}], got {tuple(topk_values.shape)}")
    _route_into(topk_values, topk_indices, scores, bias, "sigmoid", n_group, topk_group, True, routed_scaling_factor)


def moe_align_block_size(topk_ids, num_experts: int, block_size: int, sorted_token_ids, experts_ids,
                         num_tokens_post_pad, *scratch, pad_sorted_token_ids: bool = False) -> None:
    """sgl-kernel's signature, both forms: ``(..., num_tokens_post_pad, cumsum_buffer,
    pad_sorted_token_ids=False)`` and the older ``(..., num_tokens_post_pad, token_cnts_buffer,
    cumsum_buffer)``. The scratch buffers are not needed and are left untouched. The padding of
    ``sorted_token_ids`` (``topk_ids.numel()``) is always written, so ``pad_sorted_token_ids``
    changes nothing; buffers longer than the worst case are filled to their end (padding, and -1
    for unused blocks). See :func:`flashhip.moe_align_block_size` for the layout."""
    for extra in scratch:
        if not isinstance(extra, (torch.Tensor, bool)) and extra is not None:
            raise TypeError(f"moe_align_block_size(): unexpected argument {extra!r} after 'num_tokens_post_pad'")
    _ops.moe_align_block_size(topk_ids, num_experts, block_size, sorted_token_ids, experts_ids, num_tokens_post_pad,
                              None)
