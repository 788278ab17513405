"""Loads the compiled op library, which registers ``torch.ops.flashhip.*``, and reports what was
built (:func:`info`).

The library is a plain shared object (no Python API of its own), so one build serves every
Python version that the installed torch serves, but only the torch it was built against: torch's
C++ ABI changes between releases. The build records that torch's version next to the library
(``_build_info.json``), and the import checks it before loading, so a mismatch is a clear error
instead of an undefined-symbol crash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ._version import __version__

_LIBRARY_NAME = "libflashhip_ops.so"
_BUILD_INFO_NAME = "_build_info.json"


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


def build_info() -> dict:
    """What the build recorded: ``{"torch": ..., "backend": "cpu"|"cuda"|"hip", "archs": [...]}``;
    empty when the library came without it (``$FLASHHIP_LIBRARY`` pointing at a bare build)."""
    override = os.environ.get("FLASHHIP_LIBRARY")
    candidates = [Path(__file__).with_name(_BUILD_INFO_NAME)]
    if override:  # a CMake build directory holds flashhip_build_info.json beside the library
        candidates = [Path(override).with_name("flashhip_build_info.json"), Path(override).with_name(_BUILD_INFO_NAME)]
    for path in candidates:
        if path.exists():
            with open(path) as f:
                return json.load(f)
    return {}


def _check_torch(recorded: dict) -> None:
    built = recorded.get("torch")
    if built and built != torch.__version__ and os.environ.get("FLASHHIP_IGNORE_TORCH_VERSION") != "1":
        raise ImportError(
            f"flashhip {__version__} was built against torch {built}, but torch {torch.__version__} "
            f"is installed ({torch.__file__}). torch's C++ ABI changes between releases, so the op "
            f"library would fail to load or crash. Install torch=={built.split('+')[0]}, or rebuild "
            "flashhip against this torch: `pip install --no-build-isolation --no-deps .` "
            "(FLASHHIP_IGNORE_TORCH_VERSION=1 skips this check at your own risk)."
        )


def _fp8_flavour(backend: str, arch: str) -> str:
    """The fp8 format an arch's matrix cores compute in (see gemm.native_fp8_dtype)."""
    if backend == "hip":
        if arch.startswith("gfx950"):
            return "float8_e4m3fn (OCP)"
        if arch.startswith(("gfx940", "gfx941", "gfx942")):
            return "float8_e4m3fnuz"
        return "none (no fp8 matrix cores; fp8_gemm is refused)"
    if backend == "cuda":
        digits = "".join(c for c in arch if c.isdigit())
        if digits and int(digits) >= 89:
            return "float8_e4m3fn (OCP)"
        return "none (no fp8 tensor cores; fp8_gemm is refused)"
    return "float8_e4m3fn (OCP, CPU reference kernels)"


def info() -> dict:
    """The package version, the backend the library was built for (cpu, cuda or hip), its arch
    list with the fp8 flavour of each, the torch it was built against, the torch now imported,
    and the library's path."""
    recorded = build_info()
    backend = recorded.get("backend", "unknown")
    archs = list(recorded.get("archs", []))
    fp8 = {arch: _fp8_flavour(backend, arch) for arch in archs} or {"cpu": _fp8_flavour("cpu", "cpu")}
    return {
        "version": __version__,
        "backend": backend,
        "archs": archs,
        "fp8": fp8,
        "built_with_torch": recorded.get("torch", "unknown"),
        "torch": torch.__version__,
        "library": str(library_path()),
    }


def format_info(facts: dict | None = None) -> str:
    facts = facts if facts is not None else info()
    lines = [
        f"flashhip {facts['version']}",
        f"  backend:    {facts['backend']}",
        f"  archs:      {', '.join(facts['archs']) or '(none: CPU build)'}",
        "  fp8:        " + "; ".join(f"{arch}: {flavour}" for arch, flavour in facts["fp8"].items()),
        f"  torch:      built against {facts['built_with_torch']}, running {facts['torch']}",
        f"  library:    {facts['library']}",
    ]
    return "\n".join(lines)


def load() -> None:
    if not hasattr(torch.ops.flashhip, "rmsnorm"):
        _check_torch(build_info())
        torch.ops.load_library(str(library_path()))


load()
