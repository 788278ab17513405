"""Backwards-compatible alias: the FlashInfer-named functions now live in
:mod:`flashhip.compat.flashinfer` and the sgl-kernel-named ones in :mod:`flashhip.compat.sgl_kernel`.
Every name this module had before the split is re-exported here, so
``from flashhip import flashinfer as fi`` keeps working."""

from __future__ import annotations

from typing import Optional  # noqa: F401  (names the module had before the split)

import torch  # noqa: F401

from . import moe, norm  # noqa: F401
from .compat._moe import _route_into  # noqa: F401
from .compat.flashinfer import (  # noqa: F401
    _heads,
    _ops,
    _rope_flat,
    apply_rope_with_cos_sin_cache,
    apply_rope_with_cos_sin_cache_inplace,
    fused_add_rmsnorm,
    fused_add_rmsnorm_quant,
    fused_topk_deepseek,
    gemma_fused_add_rmsnorm,
    gemma_rmsnorm,
    layernorm,
    layernorm_quant,
    rmsnorm,
    rmsnorm_quant,
)
from .compat.sgl_kernel import (  # noqa: F401
    fp8_blockwise_scaled_mm,
    moe_align_block_size,
    moe_fused_gate,
    sgl_per_token_group_quant_fp8,
    topk_softmax,
)
