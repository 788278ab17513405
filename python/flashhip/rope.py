"""Rotary position embedding: the functional forms of ``torch.ops.flashhip.rope`` (cos|sin cache),
``torch.ops.flashhip.rope_pos_ids`` (angles computed from the positions) and
``torch.ops.flashhip.rope_set_kv_buffer`` (rope that also writes the KV cache),
``torch.ops.flashhip.rope_quantize_fp8`` (rope then fp8 quantisation), the positions of a
ragged batch, and builders of the fp32 cos|sin cache (plain, linear scaling, Llama-3.1, YaRN).

A cache is ``[max_position, rotary_dim]`` float32: row ``p`` holds ``cos(p * inv_freq)`` in its
first half and ``sin(p * inv_freq)`` in its second half (YaRN multiplies both by its attention
factor). Angles are computed in float64 and rounded to float32 once, so long-context rows
(position 1e5 and beyond) stay accurate to fp32 rounding.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from . import _library  # noqa: F401  (registers the ops)

_ops = torch.ops.flashhip


def rope(
    q: torch.Tensor,
    k: torch.Tensor,
    cos_sin_cache: torch.Tensor,
    positions: torch.Tensor,
    interleave: bool = False,
    q_out: Optional[torch.Tensor] = None,
    k_out: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rotates the first ``rotary_dim = cos_sin_cache.size(1)`` elements of every head of ``q``
    ``[nnz, Hq, head_dim]`` and ``k`` ``[nnz, Hk, head_dim]`` by the angles of each token's
    position; elements past ``rotary_dim`` are copied unchanged (partial rotary).

    ``interleave=False`` is the NeoX / rotate-half style (pairs ``(i, i + rotary_dim/2)``),
    ``True`` the GPT-J style (pairs ``(2i, 2i+1)``). Pair ``i`` uses ``cos = cache[pos, i]`` and
    ``sin = cache[pos, rotary_dim/2 + i]``; the arithmetic is fp32 with one rounding to the
    dtype of q/k (fp16, bf16 or fp32). q and k may be strided views of one fused qkv buffer
    (innermost dimension contiguous); ``positions`` is int32 or int64 ``[nnz]``.

    Writes ``q_out``/``k_out`` (allocated when None; pass ``q_out=q, k_out=k`` for in place) and
    returns them.

    Positions outside ``[0, cos_sin_cache.size(0))``: on the CPU the call raises a RuntimeError
    naming ``'positions'`` and writes nothing. On a GPU they are not checked on the host (that
    would need a device-to-host sync, and breaks CUDA-graph capture); the kernel skips such a
    token instead, leaving its rows of ``q_out``/``k_out`` as they were (in place: unrotated).
    """
    if q_out is None:
        q_out = torch.empty_like(q)
    if k_out is None:
        k_out = torch.empty_like(k)
    _ops.rope(q_out, k_out, q, k, cos_sin_cache, positions, interleave)
    return q_out, k_out


def rope_set_kv_buffer(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cos_sin_cache: torch.Tensor,
    positions: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    cache_loc: torch.Tensor,
    interleave: bool = False,
    q_out: Optional[torch.Tensor] = None,
    k_out: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`rope`, and in the same kernel the KV-cache write an engine does next (SGLang's
    ``set_kv_buffer``): row ``cache_loc[t]`` of ``k_cache`` receives token ``t``'s rotated k heads
    (whole heads, the part past ``rotary_dim`` included, exactly the values written to ``k_out``)
    and the same row of ``v_cache`` its ``v`` heads unchanged (``torch.ops.flashhip.rope_set_kv_buffer``).

    ``v`` is ``[nnz, Hk, head_dim]`` like ``k`` (a strided view of the fused qkv buffer works);
    ``k_cache`` and ``v_cache`` are ``[cache_slots, Hk, head_dim]`` of k's dtype (innermost
    dimension contiguous, other strides free); ``cache_loc`` is int64 ``[nnz]``. Rows no token
    names are left as they were. Writes ``q_out``/``k_out`` (allocated when None; pass
    ``q_out=q, k_out=k`` for in place, as SGLang does) and returns them.

    On the CPU, a position outside the cos|sin cache, a ``cache_loc`` outside ``[0, cache_slots)``
    or two tokens naming one row raise a RuntimeError naming the argument, and nothing is
    written. On a GPU they are not checked on the host (a sync; it breaks graph capture): a token
    whose position is outside the cache is skipped entirely (its q/k rows and cache rows left as
    they were), one whose row is outside the cache is rotated but writes no row, and two tokens
    naming one row leave it holding elements of either.
    """
    if q_out is None:
        q_out = torch.empty_like(q)
    if k_out is None:
        k_out = torch.empty_like(k)
    _ops.rope_set_kv_buffer(q_out, k_out, k_cache, v_cache, q, k, v, cos_sin_cache, positions, cache_loc, interleave)
    return q_out, k_out


def rope_quantize_fp8(
    q_rope: torch.Tensor,
    k_rope: torch.Tensor,
    q_nope: Optional[torch.Tensor],
    k_nope: Optional[torch.Tensor],
    cos_sin_cache: torch.Tensor,
    pos_ids: torch.Tensor,
    interleave: bool = False,
    quant_scale_q: float = 1.0,
    quant_scale_kv: float = 1.0,
    *,
    out_dtype: Optional[torch.dtype] = None,
    q_rope_out: Optional[torch.Tensor] = None,
    k_rope_out: Optional[torch.Tensor] = None,
    q_nope_out: Optional[torch.Tensor] = None,
    k_nope_out: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RoPE then fp8 quantisation, the producer side of an fp8 KV cache
    (``torch.ops.flashhip.rope_quantize_fp8``): the rotary parts ``q_rope`` ``[nnz, Hq, rope_dim]``
    and ``k_rope`` (MLA: ``[nnz, rope_dim]``, one k head shared by every q head; GQA/MHA:
    ``[nnz, Hk, rope_dim]``) are turned by ``cos_sin_cache[pos_ids]`` (``[max_positions,
    rope_dim]`` fp32, as :func:`rope`'s, NeoX pairs or with ``interleave`` GPT-J pairs); then each
    element of the rotated parts and of the pass-through parts ``q_nope`` ``[nnz, Hq, nope_dim]`` /
    ``k_nope`` (shaped like ``k_rope``) is multiplied by ``quant_scale_q`` (q) or
    ``quant_scale_kv`` (k) in fp32 and stored in the outputs' fp8 dtype (``float8_e4m3fn``,
    ``float8_e4m3fnuz`` or ``float8_e5m2``), rounded to nearest even and saturated to the
    flavour's largest finite value. The rotation is not rounded to the input dtype first.

    Inputs are fp16 or bf16 and may be strided views of a fused buffer (innermost dimension
    contiguous); ``pos_ids`` is int32/int64 ``[nnz]``. ``q_nope``/``k_nope`` None mean a zero-size
    nope part. Outputs are allocated when None, in ``out_dtype`` (when None: the dtype of the
    first output given, else ``float8_e4m3fn``); all four must be of one fp8 dtype. Returns
    ``(q_rope_out, k_rope_out, q_nope_out, k_nope_out)``.

    Positions outside the cache: on the CPU a RuntimeError naming ``'pos_ids'``, nothing written;
    on a GPU (no host check: a sync, and it breaks graph capture) the token is skipped, its output
    rows left as they were."""
    nnz, q_heads = q_rope.shape[0], q_rope.shape[1]
    if q_nope is None:
        q_nope = q_rope.new_empty((nnz, q_heads, 0))
    if k_nope is None:
        k_nope = k_rope.new_empty((*k_rope.shape[:-1], 0))
    if out_dtype is None:
        given = [t for t in (q_rope_out, k_rope_out, q_nope_out, k_nope_out) if t is not None]
        out_dtype = given[0].dtype if given else torch.float8_e4m3fn

    def allocated(out, like):
        return out if out is not None else torch.empty(like.shape, dtype=out_dtype, device=like.device)

    q_rope_out, k_rope_out = allocated(q_rope_out, q_rope), allocated(k_rope_out, k_rope)
    q_nope_out, k_nope_out = allocated(q_nope_out, q_nope), allocated(k_nope_out, k_nope)
    _ops.rope_quantize_fp8(q_rope_out, k_rope_out, q_nope_out, k_nope_out, q_rope, k_rope, q_nope, k_nope,
                           cos_sin_cache, pos_ids, interleave, quant_scale_q, quant_scale_kv)
    return q_rope_out, k_rope_out, q_nope_out, k_nope_out


def rope_pos_ids(
    q: torch.Tensor,
    k: torch.Tensor,
    pos_ids: torch.Tensor,
    rotary_dim: Optional[int] = None,
    interleave: bool = False,
    rope_scale: float = 1.0,
    rope_theta: float = 1e4,
    *,
    llama31: bool = False,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
    old_context_len: float = 8192.0,
    q_out: Optional[torch.Tensor] = None,
    k_out: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`rope` with the angles computed from ``pos_ids`` (int32/int64 ``[nnz]``, any value)
    instead of read from a cache: pair ``i`` of a token at position ``p`` turns by
    ``p * rope_theta ** (-2i / rotary_dim) / rope_scale`` (``torch.ops.flashhip.rope_pos_ids``).
    With ``llama31`` the frequencies are Llama-3.1's (:func:`inv_freq_llama3` with
    ``factor=rope_scale``). ``rotary_dim=None`` rotates the whole head.

    The angle and its cos/sin are computed in fp32 on both devices, as FlashInfer's kernels do,
    so at position ``p`` the angle carries an error of about ``p * 2**-24`` rad (1e-2 at 1e5):
    a cos|sin cache built in float64 (:func:`rope`) is the more accurate choice at long context.
    """
    if rotary_dim is None:
        rotary_dim = q.shape[-1]
    if q_out is None:
        q_out = torch.empty_like(q)
    if k_out is None:
        k_out = torch.empty_like(k)
    _ops.rope_pos_ids(q_out, k_out, q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, llama31,
                      low_freq_factor, high_freq_factor, old_context_len)
    return q_out, k_out


def ragged_pos_ids(indptr: torch.Tensor, offsets: torch.Tensor, nnz: int) -> torch.Tensor:
    """The per-token positions of a ragged batch: token ``t`` of request ``b`` (``indptr[b] <= t <
    indptr[b + 1]``) is at ``offsets[b] + t - indptr[b]``. int32 ``[nnz]`` (int64 when
    ``offsets`` is), on the device of ``indptr``, computed with tensor ops (no host sync, so it
    captures and compiles).

    ``indptr`` (int ``[batch + 1]``) must start at 0, not decrease and end at ``nnz``: checked
    when it lives on the CPU (a RuntimeError naming ``'indptr'``); on a GPU that check would need
    a sync, and a token outside ``[0, indptr[-1])`` gets request ``batch - 1``'s positions."""
    if indptr.dim() != 1 or indptr.numel() < 1 or indptr.dtype not in (torch.int32, torch.int64):
        raise RuntimeError(f"argument 'indptr' must be int32/int64 [batch + 1], got {indptr.dtype} {tuple(indptr.shape)}")
    batch = indptr.numel() - 1
    if offsets.shape != (batch,) or offsets.dtype not in (torch.int32, torch.int64):
        raise RuntimeError(f"argument 'offsets' must be int32/int64 [{batch}] (one per request of 'indptr'), got "
                           f"{offsets.dtype} {tuple(offsets.shape)}")
    if offsets.device != indptr.device:
        raise RuntimeError(f"argument 'offsets' must be on {indptr.device}, got {offsets.device}")
    if indptr.device.type == "cpu" and not torch.compiler.is_compiling():
        if int(indptr[0]) != 0 or int(indptr[-1]) != nnz or bool((indptr[1:] < indptr[:-1]).any()):
            raise RuntimeError(f"argument 'indptr' must start at 0, not decrease and end at nnz = {nnz}, got "
                               f"{indptr.tolist()}")
    tokens = torch.arange(nnz, device=indptr.device, dtype=torch.int64)
    if batch == 0:
        return tokens.to(offsets.dtype)
    # The request of each token: how many request ends lie at or before it.
    request = torch.searchsorted(indptr[1:].to(torch.int64), tokens, right=True).clamp_(max=batch - 1)
    return (offsets.to(torch.int64)[request] + tokens - indptr.to(torch.int64)[request]).to(offsets.dtype)


# ---- Inverse frequencies (float64, one per rotary pair) ----

def _check_rotary_dim(rotary_dim: int) -> None:
    if rotary_dim <= 0 or rotary_dim % 2:
        raise ValueError(f"rotary_dim must be a positive even number, got {rotary_dim}")


def inv_freq_plain(rotary_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """``theta ** (-2i / rotary_dim)`` for ``i < rotary_dim / 2``."""
    _check_rotary_dim(rotary_dim)
    exponent = torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim
    return 1.0 / (theta**exponent)


def inv_freq_linear(rotary_dim: int, theta: float, factor: float) -> torch.Tensor:
    """Linear position interpolation: every frequency divided by ``factor``."""
    return inv_freq_plain(rotary_dim, theta) / factor


def inv_freq_llama3(
    rotary_dim: int,
    theta: float,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position: int,
) -> torch.Tensor:
    """Llama-3.1 scaling: wavelengths longer than ``original_max_position / low_freq_factor``
    are slowed by ``factor``, those shorter than ``original_max_position / high_freq_factor``
    are kept, and the band between blends the two linearly in ``original_max_position / wavelength``."""
    if high_freq_factor <= low_freq_factor:
        raise ValueError(f"high_freq_factor ({high_freq_factor}) must exceed low_freq_factor ({low_freq_factor})")
    inv_freq = inv_freq_plain(rotary_dim, theta)
    wavelength = 2 * math.pi / inv_freq
    low_freq_wavelength = original_max_position / low_freq_factor
    high_freq_wavelength = original_max_position / high_freq_factor
    # 0 at the low-frequency edge, 1 at the high-frequency edge.
    smooth = (original_max_position / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    scaled = torch.where(wavelength > low_freq_wavelength, inv_freq / factor, inv_freq)
    in_band = (wavelength >= high_freq_wavelength) & (wavelength <= low_freq_wavelength)
    return torch.where(in_band, blended, scaled)


def _yarn_dim_for_rotations(rotations: float, rotary_dim: int, theta: float, original_max_position: int) -> float:
    """The (fractional) pair index whose wavelength fits `rotations` times into the original context."""
    return rotary_dim * math.log(original_max_position / (rotations * 2 * math.pi)) / (2 * math.log(theta))


def inv_freq_yarn(
    rotary_dim: int,
    theta: float,
    factor: float,
    original_max_position: int,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
    truncate: bool = True,
) -> torch.Tensor:
    """YaRN frequencies: pairs that turn more than ``beta_fast`` times over the original context
    keep their frequency (extrapolate), those turning fewer than ``beta_slow`` times are divided
    by ``factor`` (interpolate), with a linear ramp over the pair index between them. The ramp's
    ends are floored/ceiled to whole pairs when ``truncate`` (transformers' default)."""
    inv_freq = inv_freq_plain(rotary_dim, theta)
    low = _yarn_dim_for_rotations(beta_fast, rotary_dim, theta, original_max_position)
    high = _yarn_dim_for_rotations(beta_slow, rotary_dim, theta, original_max_position)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, rotary_dim - 1)
    if low == high:
        high += 0.001  # a zero-width ramp would divide by zero
    ramp = ((torch.arange(rotary_dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    # ramp 0: keep the frequency; ramp 1: interpolate (divide by factor).
    return inv_freq / factor * ramp + inv_freq * (1 - ramp)


def yarn_attention_factor(
    factor: float,
    mscale: Optional[float] = None,
    mscale_all_dim: Optional[float] = None,
    attention_factor: Optional[float] = None,
) -> float:
    """The scale YaRN puts on cos and sin: ``attention_factor`` when given; else
    ``m(factor, mscale) / m(factor, mscale_all_dim)`` when both are given (DeepSeek); else
    ``m(factor, 1)``, where ``m(s, c) = 0.1 * c * ln(s) + 1`` for ``s > 1`` and 1 otherwise."""
    if attention_factor is not None:
        return float(attention_factor)

    def m(scale: float, coefficient: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * coefficient * math.log(scale) + 1.0

    if mscale and mscale_all_dim:
        return float(m(factor, mscale) / m(factor, mscale_all_dim))
    return m(factor)


# ---- Caches ----

def cos_sin_cache_from_inv_freq(
    inv_freq: torch.Tensor,
    max_position: int,
    attention_factor: float = 1.0,
    device: Optional[torch.device | str] = None,
) -> torch.Tensor:
    """``[max_position, 2 * len(inv_freq)]`` float32: ``cos | sin`` of ``position * inv_freq``,
    both multiplied by ``attention_factor``."""
    positions = torch.arange(max_position, dtype=torch.float64)
    angles = torch.outer(positions, inv_freq.to(torch.float64).cpu())
    cache = torch.cat((angles.cos(), angles.sin()), dim=-1) * attention_factor
    return cache.to(device=device, dtype=torch.float32).contiguous()


def cos_sin_cache(
    max_position: int, rotary_dim: int, theta: float = 10000.0, *, device: Optional[torch.device | str] = None
) -> torch.Tensor:
    """The plain RoPE cache (``rope_theta = theta``)."""
    return cos_sin_cache_from_inv_freq(inv_freq_plain(rotary_dim, theta), max_position, device=device)


def linear_scaling_cos_sin_cache(
    max_position: int, rotary_dim: int, theta: float, factor: float, *, device: Optional[torch.device | str] = None
) -> torch.Tensor:
    """Linear scaling (position interpolation): position ``p`` turns like ``p / factor``."""
    return cos_sin_cache_from_inv_freq(inv_freq_linear(rotary_dim, theta, factor), max_position, device=device)


def llama3_cos_sin_cache(
    max_position: int,
    rotary_dim: int,
    theta: float = 500000.0,
    factor: float = 8.0,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
    original_max_position: int = 8192,
    *,
    device: Optional[torch.device | str] = None,
) -> torch.Tensor:
    """Llama-3.1 scaling (``rope_type="llama3"``); defaults are Llama-3.1's."""
    inv_freq = inv_freq_llama3(rotary_dim, theta, factor, low_freq_factor, high_freq_factor, original_max_position)
    return cos_sin_cache_from_inv_freq(inv_freq, max_position, device=device)


def yarn_cos_sin_cache(
    max_position: int,
    rotary_dim: int,
    theta: float,
    factor: float,
    original_max_position: int,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
    mscale: Optional[float] = None,
    mscale_all_dim: Optional[float] = None,
    attention_factor: Optional[float] = None,
    truncate: bool = True,
    *,
    device: Optional[torch.device | str] = None,
) -> torch.Tensor:
    """YaRN (``rope_type="yarn"``): :func:`inv_freq_yarn` frequencies, cos and sin scaled by
    :func:`yarn_attention_factor`. Same parameters as transformers' ``rope_parameters``."""
    inv_freq = inv_freq_yarn(rotary_dim, theta, factor, original_max_position, beta_fast, beta_slow, truncate)
    scale = yarn_attention_factor(factor, mscale, mscale_all_dim, attention_factor)
    return cos_sin_cache_from_inv_freq(inv_freq, max_position, scale, device=device)
