"""Normalisation ops: destination-passing wrappers of ``torch.ops.flashhip.*`` and functional
forms that allocate their output."""

from __future__ import annotations

from typing import Optional

import torch

from . import _library  # noqa: F401  (registers the ops)

_ops = torch.ops.flashhip


def rmsnorm(
    input: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    *,
    gemma: bool = False,
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Root-mean-square norm over the last dimension.

    ``out = input / sqrt(mean(input**2) + eps) * weight`` (``* (1 + weight)`` with ``gemma``),
    computed in fp32 and rounded once. ``input`` is ``[..., hidden]`` (fp16/bf16/fp32, leading
    dimensions may be strided: one row stride, or ``[tokens, heads]`` with a stride each, such as
    q or k viewed ``[tokens, heads, head_dim]`` out of a fused qkv buffer for a per-head qk-norm),
    ``weight`` is ``[hidden]`` of the same dtype. Writes ``out`` (allocated when None; may be
    ``input`` itself, in place inside the fused buffer) and returns it.
    """
    if out is None:
        out = torch.empty_like(input)
    _ops.rmsnorm(out, input, weight, eps, gemma)
    return out


def fused_add_rmsnorm(
    input: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    *,
    gemma: bool = False,
    fp32_sum: bool = False,
) -> None:
    """In place: ``residual <- input + residual`` (rounded to its dtype), then
    ``input <- rmsnorm(residual)``, normalising the rounded residual; with ``fp32_sum`` the fp32
    sum ``input + residual`` is normalised instead (FlashInfer's arithmetic; the residual written
    is the rounded sum either way). The two agree for fp32 and differ by about an ulp of a 16-bit
    dtype in some elements."""
    _ops.fused_add_rmsnorm(input, residual, weight, eps, gemma, fp32_sum)


def layernorm(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    eps: float = 1e-5,
    *,
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Layer norm over the last dimension; ``weight``/``bias`` in the input's dtype or fp32."""
    if out is None:
        out = torch.empty_like(input)
    _ops.layernorm(out, input, weight, bias, eps)
    return out


def rmsnorm_quant(
    input: torch.Tensor,
    weight: torch.Tensor,
    scale: torch.Tensor,
    eps: float = 1e-6,
    *,
    gemma: bool = False,
    out: Optional[torch.Tensor] = None,
    out_dtype: torch.dtype = torch.float8_e4m3fn,
) -> torch.Tensor:
    """rmsnorm followed by fp8 quantisation: ``clamp(rmsnorm(input) / scale)`` in ``out_dtype``
    (``float8_e4m3fn``, max 448, ``float8_e4m3fnuz``, max 240, or ``float8_e5m2``, max 57344),
    the normalised value ``y`` in fp32 divided by ``scale`` (fp32 ``[1]``, ``[]`` or ``[1, 1]``)
    exactly, saturating; NaN stays NaN."""
    if out is None:
        out = torch.empty(input.shape, dtype=out_dtype, device=input.device)
    _ops.rmsnorm_quant(out, input, weight, scale, eps, gemma)
    return out


def layernorm_quant(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    scale: torch.Tensor,
    eps: float = 1e-5,
    *,
    out: Optional[torch.Tensor] = None,
    out_dtype: torch.dtype = torch.float8_e4m3fn,
) -> torch.Tensor:
    """layernorm followed by fp8 quantisation, as ``rmsnorm_quant`` quantises:
    ``clamp(layernorm(input, weight, bias) / scale)`` in ``out_dtype`` (``float8_e4m3fn``,
    ``float8_e4m3fnuz`` or ``float8_e5m2``). Mean and variance are taken over the last dimension in
    fp32, ``y = (x - mean) * rsqrt(var + eps) * weight + bias`` in fp32 is divided by ``scale``
    (fp32, one element) exactly and saturated; NaN stays NaN. ``weight``/``bias`` are in the
    input's dtype or fp32. FlashInfer's form is ``compat.flashinfer.layernorm_quant``."""
    if out is None:
        out = torch.empty(input.shape, dtype=out_dtype, device=input.device)
    _ops.layernorm_quant(out, input, weight, bias, scale, eps)
    return out


def fused_add_rmsnorm_quant(
    input: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    scale: torch.Tensor,
    eps: float = 1e-6,
    *,
    gemma: bool = False,
    fp32_sum: bool = False,
    out: Optional[torch.Tensor] = None,
    out_dtype: torch.dtype = torch.float8_e4m3fn,
) -> torch.Tensor:
    """``residual <- input + residual`` (rounded to its dtype); returns fp8
    ``clamp(rmsnorm(residual) / scale)``, quantised as ``rmsnorm_quant`` does. With ``fp32_sum``
    the fp32 sum ``input + residual`` is normalised instead of the rounded residual (FlashInfer's
    ``fused_add_rmsnorm_quant``; the residual written is the rounded sum either way), as
    :func:`fused_add_rmsnorm`'s ``fp32_sum``. ``input`` is left as it is."""
    if out is None:
        out = torch.empty(input.shape, dtype=out_dtype, device=input.device)
    _ops.fused_add_rmsnorm_quant(out, input, residual, weight, scale, eps, gemma, fp32_sum)
    return out
