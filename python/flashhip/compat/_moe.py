"""The routing tail shared by FlashInfer's and sgl-kernel's MoE gate functions."""

from __future__ import annotations

import torch

_ops = torch.ops.flashhip


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
