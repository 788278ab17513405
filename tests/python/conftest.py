"""Shared test fixtures: the devices to run on, fresh random inputs, poisoned outputs."""

from __future__ import annotations

import os
import zlib

import pytest
import torch

import flashhip  # noqa: F401  (registers the ops)

HAS_GPU = torch.cuda.is_available()
NO_GPU_REASON = "no GPU visible to torch (torch.cuda.is_available() is False); GPU tests run on the lent H100 via scripts/gpu_run.sh"

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)])]

requires_gpu = pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)


@pytest.fixture(autouse=True)
def _fresh_seed(request):
    # A different seed per test, derived from its name (crc32: the same in every process, unlike
    # hash()), so inputs are fresh per test and failures reproduce. FLASHHIP_TEST_SEED shifts all.
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()) + int(os.environ.get("FLASHHIP_TEST_SEED", "0")))


def poison_like(t: torch.Tensor) -> torch.Tensor:
    """A tensor shaped like ``t`` filled with NaN (or 0x7f-ish fp8 NaN), so unwritten elements fail."""
    if t.dtype in (torch.float8_e4m3fn, torch.float8_e4m3fnuz):
        return torch.full(t.shape, float("nan"), device=t.device).to(t.dtype)
    return torch.full_like(t, float("nan"))


def strided_rows(rows: int, hidden: int, dtype, device, pad: int = 24) -> torch.Tensor:
    """[rows, hidden] view whose rows are `hidden + pad` apart (a non-contiguous leading dim)."""
    base = torch.randn(rows, hidden + pad, dtype=torch.float32, device=device).to(dtype)
    return base[:, :hidden]
