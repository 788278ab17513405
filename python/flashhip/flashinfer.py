"""Drop-in functions with FlashInfer's / sgl-kernel's signatures, so an engine can switch by
import (``from flashhip import flashinfer as fi``). ``enable_pdl`` is accepted and ignored:
programmatic dependent launch is an NVIDIA-only feature these kernels do not use."""

from __future__ import annotations

from typing import Optional

import torch

from . import norm


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
