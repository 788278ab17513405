"""Drop-in functions with FlashInfer's / sgl-kernel's signatures, so an engine can switch by
import (``from flashhip import flashinfer as fi``). ``enable_pdl`` is accepted and ignored:
programmatic dependent launch is an NVIDIA-only feature these kernels do not use."""

from __future__ import annotations

from typing import Optional

import torch

from . import norm

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
