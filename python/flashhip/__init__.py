"""flashhip: LLM-inference kernels for AMD Instinct and NVIDIA GPUs, as ``torch.ops.flashhip.*``.

Importing the package loads the op library. The typed functions below allocate their output
when none is given; ``torch.ops.flashhip.<op>`` is the destination-passing form engines call
inside CUDA graphs and torch.compile.
"""

from ._version import __version__
from . import _library  # noqa: F401  (registers torch.ops.flashhip.*)
from ._library import info
from . import compat, flashinfer, reference
from .gemm import fp8_gemm, native_fp8_dtype, per_token_group_quant_fp8
from .moe import moe_align_block_size, moe_sum, moe_topk
from .norm import fused_add_rmsnorm, fused_add_rmsnorm_quant, layernorm, layernorm_quant, rmsnorm, rmsnorm_quant
from .rope import (
    cos_sin_cache,
    linear_scaling_cos_sin_cache,
    llama3_cos_sin_cache,
    ragged_pos_ids,
    rope,
    rope_pos_ids,
    rope_quantize_fp8,
    rope_set_kv_buffer,
    yarn_cos_sin_cache,
)

__all__ = [
    "__version__",
    "info",
    "rmsnorm",
    "fused_add_rmsnorm",
    "layernorm",
    "rmsnorm_quant",
    "fused_add_rmsnorm_quant",
    "layernorm_quant",
    "fp8_gemm",
    "per_token_group_quant_fp8",
    "native_fp8_dtype",
    "moe_topk",
    "moe_align_block_size",
    "moe_sum",
    "rope",
    "rope_pos_ids",
    "rope_set_kv_buffer",
    "rope_quantize_fp8",
    "ragged_pos_ids",
    "cos_sin_cache",
    "linear_scaling_cos_sin_cache",
    "llama3_cos_sin_cache",
    "yarn_cos_sin_cache",
    "reference",
    "compat",
    "flashinfer",
]
