"""Drop-in functions with other kernel libraries' signatures, so an engine can switch by import:

- :mod:`flashhip.compat.flashinfer`: FlashInfer's (``flashinfer.norm``, ``flashinfer.rope``,
  ``flashinfer``'s DeepSeek-V3 routing);
- :mod:`flashhip.compat.sgl_kernel`: sgl-kernel's (MoE routing and alignment, the fp8 GEMM and
  group quant, rope with the fused KV-cache write, and the norms sgl-kernel took over from
  FlashInfer with the same signatures).

``flashhip.flashinfer`` remains as an alias holding both sets of names.
"""

from . import flashinfer, sgl_kernel

__all__ = ["flashinfer", "sgl_kernel"]
