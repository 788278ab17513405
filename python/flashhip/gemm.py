"""FP8 GEMM with DeepSeek-V3 blockwise scaling and the activation quantiser that feeds it
(OPS.md §4): functional forms of ``torch.ops.flashhip.fp8_gemm`` and
``torch.ops.flashhip.per_token_group_quant_fp8`` that allocate their outputs, and sgl-kernel's
names and argument orders for the same work."""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import _library  # noqa: F401  (registers the ops)

_ops = torch.ops.flashhip

FP8_MAX = {torch.float8_e4m3fn: 448.0, torch.float8_e4m3fnuz: 240.0}


def native_fp8_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """The fp8 flavour a device's matrix cores compute in: ``float8_e4m3fn`` (OCP) on the CPU,
    NVIDIA GPUs and gfx950; ``float8_e4m3fnuz`` on gfx940/gfx942 (MI300)."""
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" or torch.version.hip is None:
        return torch.float8_e4m3fn
    arch = torch.cuda.get_device_properties(device).gcnArchName
    return torch.float8_e4m3fn if arch.startswith("gfx950") else torch.float8_e4m3fnuz


def fp8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype = torch.bfloat16,
    *,
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``out[m, n] = sum_kb a_scale[m, kb] * b_scale[n // 128, kb] * sum_{k in kb} a[m, k] * b[n, k]``.

    ``a`` ``[M, K]`` and ``b`` ``[N, K]`` are fp8 of one flavour (on a GPU its native one, see
    :func:`native_fp8_dtype`), each K-contiguous or M/N-contiguous (a transposed view, as the
    AMD challenge hands them); K a multiple of 128, N of 64. ``a_scale`` fp32 ``[M, K/128]``,
    ``b_scale`` fp32 ``[ceil(N/128), K/128]``, any strides (e.g. M-major). Accumulates in fp32 and
    rounds once to ``out_dtype`` (bf16, fp16 or fp32). Returns ``out`` (allocated when None).
    """
    if out is None:
        out = torch.empty(a.shape[0], b.shape[0], dtype=out_dtype, device=a.device)
    _ops.fp8_gemm(out, a, b, a_scale, b_scale)
    return out


def per_token_group_quant_fp8(
    x: torch.Tensor,
    group_size: int = 128,
    eps: float = 1e-10,
    fp8_dtype: Optional[torch.dtype] = None,
    scale_m_major: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Quantises ``x`` ``[M, K]`` (fp16/bf16/fp32, rows may be strided) per 1 x ``group_size``
    group: ``scale = max(max|x_group|, eps) / fp8_max``, ``q = saturate(x / scale)`` rounded to
    nearest even. Returns ``(q [M, K] fp8_dtype, scale fp32 [M, K/group_size])``; with
    ``scale_m_major`` the scale has strides ``(1, M)`` (DeepGEMM's layout, what ``fp8_gemm``'s
    ``a_scale`` takes from the challenge). ``fp8_dtype`` defaults to the device's native flavour.
    """
    if fp8_dtype is None:
        fp8_dtype = native_fp8_dtype(x.device)
    m, k = x.shape
    groups = k // group_size if group_size > 0 else 0
    out = torch.empty(m, k, dtype=fp8_dtype, device=x.device)
    if scale_m_major:
        scale = torch.empty(groups, m, dtype=torch.float32, device=x.device).t()
    else:
        scale = torch.empty(m, groups, dtype=torch.float32, device=x.device)
    _ops.per_token_group_quant_fp8(out, scale, x, group_size, eps, scale_m_major)
    return out, scale


# ---- sgl-kernel's names and argument orders ----

def fp8_blockwise_scaled_mm(
    mat_a: torch.Tensor,
    mat_b: torch.Tensor,
    scales_a: torch.Tensor,
    scales_b: torch.Tensor,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """sgl-kernel's ``sgl_kernel.fp8_blockwise_scaled_mm``: ``mat_a`` ``[M, K]`` fp8, ``mat_b``
    ``[K, N]`` fp8 (column-major in sgl-kernel: the transpose of an ``[N, K]`` weight, which is
    how it is passed here too), ``scales_a`` fp32 ``[M, K/128]``, ``scales_b`` fp32
    ``[K/128, N/128]`` (the transpose of the weight's ``[N/128, K/128]`` scales); returns a new
    ``[M, N]`` tensor of ``out_dtype``.

    Differences: sgl-kernel requires ``scales_a`` M-major and ``mat_b`` column-major; here any
    layout :func:`fp8_gemm` takes works (``mat_b`` row-major ``[K, N]`` too), and N need only be a
    multiple of 64 with K a multiple of 128.
    """
    return fp8_gemm(mat_a, mat_b.t(), scales_a, scales_b.t(), out_dtype)


def sgl_per_token_group_quant_fp8(
    input: torch.Tensor,
    output_q: torch.Tensor,
    output_s: torch.Tensor,
    group_size: int,
    eps: float,
    fp8_min: float,
    fp8_max: float,
    scale_ue8m0: bool = False,
) -> None:
    """sgl-kernel's ``sgl_kernel.sgl_per_token_group_quant_fp8``: writes ``output_q`` ``[M, K]``
    fp8 and ``output_s`` fp32 ``[M, K/group_size]``, row-major or column-major (M-major; told
    apart by ``output_s``'s strides, as sgl-kernel does).

    Differences: ``fp8_min``/``fp8_max`` must be the flavour's own ``-max``/``max`` (448 for
    e4m3fn, 240 for e4m3fnuz; other bounds are refused rather than silently ignored), and
    ``scale_ue8m0=True`` (power-of-two scales packed as UE8M0 for DeepGEMM on Blackwell) is not
    supported: it raises.
    """
    if scale_ue8m0:
        raise RuntimeError("flashhip.sgl_per_token_group_quant_fp8: scale_ue8m0=True (UE8M0 power-of-two scales) "
                           "is not supported; pass scale_ue8m0=False")
    limit = FP8_MAX.get(output_q.dtype)
    if limit is not None and (fp8_max != limit or fp8_min != -limit):
        raise RuntimeError(f"flashhip.sgl_per_token_group_quant_fp8: fp8_min/fp8_max must be -{limit}/{limit} for "
                           f"{output_q.dtype}, got {fp8_min}/{fp8_max}")
    m_major = output_s.dim() == 2 and output_s.shape[0] > 1 and output_s.stride(0) == 1 and output_s.stride(1) != 1
    _ops.per_token_group_quant_fp8(output_q, output_s, input, group_size, eps, m_major)
