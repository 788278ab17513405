"""Drop-in functions with sgl-kernel's signatures (``from flashhip.compat import sgl_kernel``).
``enable_pdl`` is accepted and ignored, as in :mod:`flashhip.compat.flashinfer`. The norms
sgl-kernel copies from FlashInfer with the same signature (``rmsnorm``, ``fused_add_rmsnorm``,
``gemma_rmsnorm``, ``gemma_fused_add_rmsnorm``) are FlashInfer's, re-exported here; the fp8 GEMM
and group quant are defined in :mod:`flashhip.gemm`; the rope with the fused KV-cache write
(``apply_rope_with_cos_sin_cache_inplace``, ``FusedSetKVBufferArg``) is defined here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from .. import moe
from ..gemm import fp8_blockwise_scaled_mm, sgl_per_token_group_quant_fp8
from ._moe import _route_into
from .flashinfer import _heads, _rope_flat, fused_add_rmsnorm, gemma_fused_add_rmsnorm, gemma_rmsnorm, rmsnorm

_ops = torch.ops.flashhip

__all__ = [
    "rmsnorm",
    "fused_add_rmsnorm",
    "gemma_rmsnorm",
    "gemma_fused_add_rmsnorm",
    "topk_softmax",
    "moe_fused_gate",
    "moe_align_block_size",
    "moe_sum",
    "fp8_blockwise_scaled_mm",
    "sgl_per_token_group_quant_fp8",
    "FusedSetKVBufferArg",
    "apply_rope_with_cos_sin_cache_inplace",
]


@dataclass
class FusedSetKVBufferArg:
    """sgl-kernel's ``sgl_kernel.FusedSetKVBufferArg`` (the same fields in the same order, none
    with a default): what :func:`apply_rope_with_cos_sin_cache_inplace` writes into the KV cache.

    - ``value``: the v of each token, ``[nnz, num_kv_heads * head_size]`` (or already
      ``[nnz, num_kv_heads, head_size]``), typically a strided view of the fused qkv buffer.
    - ``k_buffer``, ``v_buffer``: one layer's KV pool, ``[cache_slots, num_kv_heads * head_size]``
      (SGLang passes ``get_key_buffer(layer).view(slots, -1)``) or ``[cache_slots, num_kv_heads,
      head_size]``, of the dtype of ``key``.
    - ``k_scale``, ``v_scale``: must be None. sgl-kernel asserts so ("not yet supported"): there is
      no fp8 KV cache on this path, in sgl-kernel or here.
    - ``cache_loc``: int64 ``[nnz]``, the pool row of each token (SGLang's ``out_cache_loc``).
    """

    value: torch.Tensor
    k_buffer: torch.Tensor
    v_buffer: torch.Tensor
    k_scale: Optional[float]
    v_scale: Optional[float]
    cache_loc: torch.Tensor


def _kv_heads(x: torch.Tensor, head_size: int, name: str) -> torch.Tensor:
    """``[rows, heads * head_size]`` or ``[rows, heads, head_size]`` seen as ``[rows, heads,
    head_size]`` (no copy), as sgl-kernel's ``x.view(x.shape[0], -1, head_size)``."""
    width = math.prod(x.shape[1:]) if x.dim() >= 2 else -1
    if width < 0 or head_size <= 0 or width % head_size:
        raise ValueError(f"'fused_set_kv_buffer_arg.{name}' must be [rows, heads * head_size] with head_size "
                         f"{head_size}, got {tuple(x.shape)}")
    return x.view(x.shape[0], width // head_size, head_size)


def apply_rope_with_cos_sin_cache_inplace(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    head_size: int,
    cos_sin_cache: torch.Tensor,
    is_neox: bool = True,
    fused_set_kv_buffer_arg: Optional[FusedSetKVBufferArg] = None,
    enable_pdl: Optional[bool] = None,
) -> None:
    """sgl-kernel's ``sgl_kernel.apply_rope_with_cos_sin_cache_inplace``: rotates ``query``
    ``[nnz, Hq * head_size]`` and ``key`` ``[nnz, Hk * head_size]`` in place by the fp32
    ``cos_sin_cache`` ``[max_pos, rotary_dim]`` (cos | sin) rows ``positions`` (``is_neox=True``:
    rotate-half; False: GPT-J interleaved), as FlashInfer's function of this name does.

    With ``fused_set_kv_buffer_arg`` (:class:`FusedSetKVBufferArg`) the same kernel also does
    SGLang's ``set_kv_buffer``: row ``cache_loc[t]`` of ``k_buffer`` receives token ``t``'s rotated
    key heads (the whole heads: with partial rotary, the unrotated rest too) and the same row of
    ``v_buffer`` its ``value`` heads, unchanged; other rows are not touched
    (``torch.ops.flashhip.rope_set_kv_buffer``, see :func:`flashhip.rope_set_kv_buffer`).

    As sgl-kernel: ``k_scale``/``v_scale`` must be None (a RuntimeError naming the field
    otherwise), ``cache_loc`` int64, the buffers of the dtype of ``key`` (no fp8 KV cache),
    ``value`` with ``key``'s heads and head size. ``enable_pdl`` is ignored. Differences: any
    head size with an even ``rotary_dim <= head_size`` works (sgl-kernel's kernel takes 64, 128,
    256, 512), fp32 ``query``/``key`` too; int32 ``positions`` are used as they are (sgl-kernel
    casts them to int64, a copy); a bad argument raises a RuntimeError naming it (sgl-kernel:
    ValueError for a non-fp32 ``cos_sin_cache``, assertions otherwise), and on the CPU
    ``positions`` and ``cache_loc`` are range-checked and repeated rows refused. On a GPU, a
    token whose row is outside the pool writes no row (sgl-kernel writes out of bounds).
    """
    if fused_set_kv_buffer_arg is None:
        _rope_flat(positions, query, key, head_size, cos_sin_cache, is_neox, query, key)
        return
    arg = fused_set_kv_buffer_arg
    for name in ("k_scale", "v_scale"):
        if getattr(arg, name) is not None:
            raise RuntimeError(f"apply_rope_with_cos_sin_cache_inplace: argument 'fused_set_kv_buffer_arg.{name}' "
                               f"must be None, got {getattr(arg, name)!r}: KV-cache scales (an fp8 KV cache) are not "
                               f"supported, as in sgl-kernel")
    q = _heads(query, head_size, "query")
    k = _heads(key, head_size, "key")
    _ops.rope_set_kv_buffer(q, k, _kv_heads(arg.k_buffer, head_size, "k_buffer"),
                            _kv_heads(arg.v_buffer, head_size, "v_buffer"), q, k,
                            _kv_heads(arg.value, head_size, "value"), cos_sin_cache, positions, arg.cache_loc,
                            not is_neox)


def topk_softmax(topk_weights, topk_ids, *args, renormalize: bool = False, moe_softcapping: float = 0.0,
                 correction_bias: Optional[torch.Tensor] = None) -> None:
    """sgl-kernel's ``sgl_kernel.topk_softmax``: softmax routing (Mixtral, Qwen) into
    ``topk_weights`` ``[T, k]`` and ``topk_ids`` ``[T, k]``.

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
    """sgl-kernel's ``sgl_kernel.moe_fused_gate`` (the DeepSeek-V3 gate): sigmoid scores, chosen
    by score + ``bias`` within the ``topk_group`` best of ``num_expert_group`` groups (top-two
    sums), weights renormalised to sum 1 and multiplied by ``routed_scaling_factor`` only with
    ``apply_routed_scaling_factor_on_output``. Returns ``(weights fp32 [T, topk], ids int32
    [T, topk])``. Unlike sgl-kernel's kernel, any expert count and group size work.

    ``num_fused_shared_experts = F > 0`` (SGLang's DeepSeek with the shared expert fused into the
    routed GEMM), as sgl-kernel's GPU kernel: ``topk`` counts the F shared slots too; slots
    ``0..topk-F-1`` hold the routed experts as above, slot ``topk-F+i`` holds expert ``E + i`` (E:
    the routed experts, ``input_tensor.shape[1]``) with weight ``1 / routed_scaling_factor``
    (the routed sum over the factor, renormalised by the routed sum), or 1 with
    ``apply_routed_scaling_factor_on_output``: the GEMM output times the factor then weights
    the shared expert by 1. ``routed_scaling_factor`` must be positive there (sgl-kernel's kernel
    gives inf for 0) and at least one slot must stay routed; ValueErrors name the argument.
    sgl-kernel's CPU kernel (one shared slot with a random shared id) is not what this copies."""
    apply_scale = apply_routed_scaling_factor_on_output and routed_scaling_factor > 0
    scale = routed_scaling_factor if apply_scale else 1.0
    if not num_fused_shared_experts:
        return moe.moe_topk(input_tensor, topk, bias, "sigmoid", num_expert_group, topk_group, True, scale)
    shared = int(num_fused_shared_experts)
    if shared < 0 or shared >= topk:
        raise ValueError(f"moe_fused_gate: argument 'num_fused_shared_experts' must be 0 to topk - 1 = {topk - 1} "
                         f"(at least one routed slot), got {num_fused_shared_experts}")
    if not (math.isfinite(routed_scaling_factor) and routed_scaling_factor > 0):
        raise ValueError(f"moe_fused_gate: argument 'routed_scaling_factor' must be finite and positive with fused "
                         f"shared experts (their weight is 1 / routed_scaling_factor), got {routed_scaling_factor}")
    if input_tensor.dim() != 2:
        raise RuntimeError(f"moe_fused_gate: argument 'input_tensor' must be 2-D [tokens, experts], got shape "
                           f"{list(input_tensor.shape)}")
    tokens, experts = input_tensor.shape
    device = input_tensor.device
    weights = torch.empty(tokens, topk, dtype=torch.float32, device=device)
    ids = torch.empty(tokens, topk, dtype=torch.int32, device=device)
    routed = topk - shared
    # The routed slots straight into the first columns (rows topk apart); then the shared ones.
    _route_into(weights[:, :routed], ids[:, :routed], input_tensor, bias, "sigmoid", num_expert_group, topk_group,
                True, scale)
    weights[:, routed:].fill_(1.0 if apply_routed_scaling_factor_on_output else 1.0 / routed_scaling_factor)
    ids[:, routed:].copy_(torch.arange(experts, experts + shared, dtype=torch.int32, device=device).expand(tokens, shared))
    return weights, ids


def moe_align_block_size(topk_ids, num_experts: int, block_size: int, sorted_token_ids, experts_ids,
                         num_tokens_post_pad, *scratch, pad_sorted_token_ids: bool = False) -> None:
    """sgl-kernel's ``sgl_kernel.moe_align_block_size``, both forms: ``(..., num_tokens_post_pad,
    cumsum_buffer, pad_sorted_token_ids=False)`` and the older ``(..., num_tokens_post_pad,
    token_cnts_buffer, cumsum_buffer)``. The scratch buffers are not needed and are left untouched.

    As sgl-kernel: ``experts_ids`` may be sized ``sorted_token_ids.numel() // block_size`` (its
    callers' ``(numel + (E + 1) * (block - 1)) // block``; the padded total is a multiple of the
    block, so that always suffices), and its elements past the used blocks are left as they were
    (``label_unused_blocks=False`` of the op; :func:`flashhip.moe_align_block_size` writes -1 there).

    Differences that remain: the padding of ``sorted_token_ids`` (``topk_ids.numel()``) is always
    written to the buffer's end, whatever ``pad_sorted_token_ids`` says (sgl-kernel leaves those
    slots unwritten when it is False; nothing reads them). SGLang passes ``num_experts + 1`` and may
    route a pair to expert -1 (expert parallelism), which sgl-kernel gathers into leading blocks
    labelled -1; flashhip leaves such pairs out on a GPU and refuses them on the CPU (ids must be
    ``0..num_experts-1``): the blocks a grouped GEMM computes are the same, their order is not.
    See :func:`flashhip.moe_align_block_size` for the layout."""
    for extra in scratch:
        if not isinstance(extra, (torch.Tensor, bool)) and extra is not None:
            raise TypeError(f"moe_align_block_size(): unexpected argument {extra!r} after 'num_tokens_post_pad'")
    _ops.moe_align_block_size(topk_ids, num_experts, block_size, sorted_token_ids, experts_ids, num_tokens_post_pad,
                              None, False)


def moe_sum(input, output) -> None:
    """sgl-kernel's ``sgl_kernel.moe_sum(input, output)``: ``output [T, H]`` = ``input [T, topk, H]``
    summed over topk, into ``output`` (the same dtype). One difference: flashhip adds in fp32 and
    rounds once for every topk; sgl-kernel's kernel for topk 2 to 4 rounds to fp16/bf16 after each
    addition (the same result for topk 2, within an ulp per addition for 3 and 4), and sums in fp32
    (``torch.sum``) for other topk, as flashhip does. Any strides of the leading dimensions."""
    _ops.moe_sum(output, input)
