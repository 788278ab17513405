"""The compatible surfaces as modules: the old ``flashhip.flashinfer`` alias holds every name of
``flashhip.compat.flashinfer`` and ``flashhip.compat.sgl_kernel``, each module's ``__all__`` lists
what it defines, and the README's compatibility section names every function offered."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import flashhip
import flashhip.flashinfer as alias
from flashhip.compat import flashinfer as fi
from flashhip.compat import sgl_kernel as sgl

README = Path(__file__).resolve().parents[2] / "README.md"


def _public_functions(module):
    """The public functions and argument classes (sgl-kernel's ``FusedSetKVBufferArg``) a module
    defines or re-exports from flashhip (not ``torch`` or ``Optional``, which it merely imports)."""
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__.startswith("flashhip.")}


@pytest.mark.parametrize("module", [fi, sgl], ids=["flashinfer", "sgl_kernel"])
def test_all_lists_every_public_function(module):
    assert set(module.__all__) == _public_functions(module)
    assert len(module.__all__) == len(set(module.__all__))


def test_alias_has_every_name_of_both_surfaces():
    assert set(alias.__all__) == set(fi.__all__) | set(sgl.__all__)
    assert _public_functions(alias) == set(alias.__all__)
    for name in fi.__all__:  # FlashInfer's function where both have the name
        assert getattr(alias, name) is getattr(fi, name), name
    for name in set(sgl.__all__) - set(fi.__all__):
        assert getattr(alias, name) is getattr(sgl, name), name
    assert flashhip.flashinfer is alias


def test_alias_has_the_names_engines_asked_for():
    # Issue 16: the cache-free rope forms and layernorm_quant, missing from the hand-kept list.
    for name in ("apply_rope", "apply_rope_inplace", "apply_rope_pos_ids", "apply_rope_pos_ids_inplace",
                 "apply_llama31_rope", "apply_llama31_rope_inplace", "apply_llama31_rope_pos_ids",
                 "apply_llama31_rope_pos_ids_inplace", "layernorm_quant", "fused_add_rmsnorm_quant", "moe_sum"):
        assert callable(getattr(alias, name)), name
    # And the private helpers the module had before the split.
    for name in ("_heads", "_ops", "_rope_flat", "_route_into", "norm", "moe", "torch"):
        assert hasattr(alias, name), name


def test_every_function_has_an_upstream_docstring():
    for module, upstream in ((fi, "FlashInfer's"), (sgl, "sgl-kernel's")):
        for name in module.__all__:
            doc = getattr(module, name).__doc__ or ""
            assert doc.startswith(upstream) or "FlashInfer's" in doc, f"{module.__name__}.{name}: {doc[:60]!r}"


def test_readme_compatibility_section_names_every_function():
    text = README.read_text()
    match = re.search(r"^## Compatibility with FlashInfer and sgl-kernel$(.*?)^## ", text, re.M | re.S)
    assert match, "README: no '## Compatibility with FlashInfer and sgl-kernel' section"
    section = match.group(1)
    for module, prefix in ((fi, "flashinfer"), (sgl, "sgl_kernel")):
        for name in module.__all__:
            assert f"`{name}`" in section, f"README compatibility section: {prefix}.{name} missing"
