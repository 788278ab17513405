"""Mixture-of-experts routing and combine: functional forms of ``torch.ops.flashhip.moe_topk``,
``torch.ops.flashhip.moe_align_block_size`` and ``torch.ops.flashhip.moe_sum`` that allocate
their outputs."""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import _library  # noqa: F401  (registers the ops)

_ops = torch.ops.flashhip


def moe_topk(
    gating: torch.Tensor,
    k: int,
    correction_bias: Optional[torch.Tensor] = None,
    scoring_func: str = "softmax",
    num_expert_group: int = 1,
    topk_group: int = 1,
    renormalize: bool = False,
    routed_scaling_factor: float = 1.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Routes each token of ``gating`` ``[T, E]`` (fp32/fp16/bf16 logits) to ``k`` experts.

    ``scoring_func="softmax"`` (Mixtral, Qwen) or ``"sigmoid"``; with ``correction_bias``
    (fp32 ``[E]``; other dtypes are converted here) experts are chosen by ``score + bias`` and
    weighted by the unbiased score (DeepSeek-V3). ``num_expert_group``/``topk_group`` keep only the
    best groups (scored by their top-two sum with a bias, their best expert without).
    ``renormalize`` divides the k weights by their sum; ``routed_scaling_factor`` multiplies them
    in every case. Returns ``(weights fp32 [T, k], ids int32 [T, k])``, best first; ties go to
    the lower expert index on every device.

    DeepSeek-V3: ``moe_topk(logits, 8, bias, "sigmoid", 8, 4, True, 2.5)``.
    """
    tokens = gating.shape[0]
    weights = torch.empty(tokens, k, dtype=torch.float32, device=gating.device)
    ids = torch.empty(tokens, k, dtype=torch.int32, device=gating.device)
    if correction_bias is not None and correction_bias.dtype != torch.float32:
        correction_bias = correction_bias.float()
    _ops.moe_topk(weights, ids, gating, correction_bias, scoring_func, num_expert_group, topk_group, renormalize,
                  routed_scaling_factor)
    return weights, ids


def moe_align_block_size(
    topk_ids: torch.Tensor, num_experts: int, block_size: int, expert_map: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Groups the ``T*k`` (token, slot) pairs of ``topk_ids`` (int32/int64 ``[T, k]``) by expert for
    a block-wise grouped GEMM.

    Returns ``(sorted_token_ids, expert_ids, num_tokens_post_pad)``: ``sorted_token_ids`` (int32,
    ``T*k + E*(block_size-1)`` long) holds each expert's flat pair indices in ascending order,
    padded with ``T*k`` to a multiple of ``block_size``, experts in order, then ``T*k`` to the
    end; ``expert_ids`` (int32, one per block of the worst case) labels each block with its
    expert and unused blocks with -1; ``num_tokens_post_pad`` (int32 ``[1]``) is the padded total.
    ``expert_map`` (int32 ``[num_experts]``, expert parallelism) maps global to local expert ids;
    pairs of experts mapped to -1 (on other ranks) are left out.
    """
    max_padded = topk_ids.numel() + num_experts * (block_size - 1)
    device = topk_ids.device
    sorted_token_ids = torch.empty(max_padded, dtype=torch.int32, device=device)
    expert_ids = torch.empty((max_padded + block_size - 1) // block_size, dtype=torch.int32, device=device)
    num_tokens_post_pad = torch.empty(1, dtype=torch.int32, device=device)
    _ops.moe_align_block_size(topk_ids, num_experts, block_size, sorted_token_ids, expert_ids, num_tokens_post_pad,
                              expert_map)
    return sorted_token_ids, expert_ids, num_tokens_post_pad


def moe_sum(input: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The combine after the experts: ``out [T, H] = input [T, topk, H]`` summed over the topk
    slots (fp32/fp16/bf16; the innermost dimension contiguous, the others any stride). The slots
    are added in fp32 in slot order and rounded once to the dtype, the same bits on every device.
    Writes into ``out`` when given (same dtype and device), else allocates it; returns it."""
    if out is None:
        if input.dim() != 3:
            raise RuntimeError(f"flashhip.moe_sum: argument 'input' must be 3-D [tokens, topk, hidden], got shape "
                               f"{list(input.shape)}")
        out = torch.empty(input.shape[0], input.shape[2], dtype=input.dtype, device=input.device)
    _ops.moe_sum(out, input)
    return out
