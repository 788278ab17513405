"""Loads the compiled op library, which registers ``torch.ops.flashhip.*``.

The library is a plain shared object (no Python API of its own), so one build serves every
Python version that the installed torch serves.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

_LIBRARY_NAME = "libflashhip_ops.so"


def library_path() -> Path:
    """The op library to load: ``$FLASHHIP_LIBRARY`` if set, else the one inside the package."""
    override = os.environ.get("FLASHHIP_LIBRARY")
    path = Path(override) if override else Path(__file__).with_name(_LIBRARY_NAME)
    if not path.exists():
        raise ImportError(
            f"flashhip: op library not found at {path}; build and install the package with "
            "`pip install --no-build-isolation .` (see README)"
        )
    return path


def load() -> None:
    if not hasattr(torch.ops.flashhip, "rmsnorm"):
        torch.ops.load_library(str(library_path()))


load()
