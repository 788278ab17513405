"""Backwards-compatible alias: the FlashInfer-named functions now live in
:mod:`flashhip.compat.flashinfer` and the sgl-kernel-named ones in :mod:`flashhip.compat.sgl_kernel`.
This module re-exports every name in either module's ``__all__`` (built from those lists, so a
name added there appears here too), so ``from flashhip import flashinfer as fi`` keeps working.
Where both modules have a name, FlashInfer's function is the one given (today the shared norms
are one function in both)."""

from __future__ import annotations

from typing import Optional  # noqa: F401  (names the module had before the split)

import torch  # noqa: F401

from . import moe, norm  # noqa: F401
from .compat import flashinfer as _flashinfer
from .compat import sgl_kernel as _sgl_kernel
from .compat._moe import _route_into  # noqa: F401
from .compat.flashinfer import _heads, _ops, _rope_flat  # noqa: F401

__all__ = list(dict.fromkeys([*_flashinfer.__all__, *_sgl_kernel.__all__]))

# sgl-kernel's first, then FlashInfer's over them: FlashInfer's win a shared name.
for _module in (_sgl_kernel, _flashinfer):
    globals().update({_name: getattr(_module, _name) for _name in _module.__all__})
del _module
