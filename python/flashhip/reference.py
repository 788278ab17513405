"""Pure-torch oracles for every op, computed in float32 (the tests' ground truth)."""

from __future__ import annotations

import torch

FP8_MAX = {torch.float8_e4m3fn: 448.0, torch.float8_e4m3fnuz: 240.0}


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, gemma: bool = False) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps) * w`` (or ``* (1 + w)``) in float32."""
    xf = x.float()
    w = weight.float() + 1.0 if gemma else weight.float()
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w


def fused_add_rmsnorm(x, residual, weight, eps=1e-6, gemma=False):
    """Returns ``(normalised, new_residual)``; the residual sum is rounded to its dtype first."""
    new_residual = (x.float() + residual.float()).to(residual.dtype)
    return rmsnorm(new_residual, weight, eps, gemma), new_residual


def layernorm(x, weight, bias=None, eps=1e-5):
    xf = x.float()
    mean = xf.mean(-1, keepdim=True)
    var = (xf - mean).pow(2).mean(-1, keepdim=True)
    y = (xf - mean) * torch.rsqrt(var + eps) * weight.float()
    return y + bias.float() if bias is not None else y


def quantize_fp8(y: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``y / scale`` clamped to the flavour's largest finite value, rounded to ``dtype``."""
    limit = FP8_MAX[dtype]
    return (y.float() / scale.float()).clamp(-limit, limit).to(dtype)


def rmsnorm_quant(x, weight, scale, out_dtype=torch.float8_e4m3fn, eps=1e-6, gemma=False):
    return quantize_fp8(rmsnorm(x, weight, eps, gemma), scale, out_dtype)


def fused_add_rmsnorm_quant(x, residual, weight, scale, out_dtype=torch.float8_e4m3fn, eps=1e-6, gemma=False):
    y, new_residual = fused_add_rmsnorm(x, residual, weight, eps, gemma)
    return quantize_fp8(y, scale, out_dtype), new_residual


def rope(q, k, cos_sin_cache, positions, interleave=False):
    """Returns float32 ``(q_rotated, k_rotated)``: the first ``rotary_dim`` elements of each head
    turned pairwise by ``cos_sin_cache[positions]`` (NeoX pairs ``(i, i + rotary_dim/2)`` or,
    with ``interleave``, GPT-J pairs ``(2i, 2i+1)``); the rest of each head unchanged."""
    rotary_dim = cos_sin_cache.shape[1]
    cos, sin = cos_sin_cache[positions.long()].float().unsqueeze(1).chunk(2, dim=-1)  # [nnz, 1, rotary_dim/2]

    def rotate(x):
        xf = x.float()
        r, rest = xf[..., :rotary_dim], xf[..., rotary_dim:]
        if interleave:
            x1, x2 = r[..., 0::2], r[..., 1::2]
            rotated = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)
        else:
            x1, x2 = r.chunk(2, dim=-1)
            rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        return torch.cat((rotated, rest), dim=-1)

    return rotate(q), rotate(k)
