"""flashhip.__version__, flashhip.info() / `python -m flashhip info`, and the import-time check
of the torch the library was built against."""

import json

import pytest
import torch

import flashhip
from flashhip import _library, cli


def test_version_is_the_one_in_version_py():
    from flashhip._version import __version__

    assert flashhip.__version__ == __version__ and __version__.count(".") == 2


def test_info_reports_the_build():
    facts = flashhip.info()
    assert facts["version"] == flashhip.__version__
    assert facts["backend"] in ("cpu", "cuda", "hip")
    assert facts["built_with_torch"] == torch.__version__ == facts["torch"]
    assert facts["library"].endswith("libflashhip_ops.so")
    assert facts["fp8"] and all(facts["fp8"].values())
    assert set(facts["fp8"]) == (set(facts["archs"]) or {"cpu"})


def test_cli_info(capsys):
    assert cli.main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == flashhip.__version__
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend:" in out and "library:" in out and f"built against {torch.__version__}" in out


def test_fp8_flavours():
    assert "e4m3fnuz" in _library._fp8_flavour("hip", "gfx942")
    assert "e4m3fn (OCP)" in _library._fp8_flavour("hip", "gfx950")
    assert _library._fp8_flavour("hip", "gfx90a").startswith("none")
    assert "e4m3fn (OCP)" in _library._fp8_flavour("cuda", "90a")
    assert _library._fp8_flavour("cuda", "80").startswith("none")


def test_another_torch_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    with pytest.raises(ImportError, match=r"built against torch .* but torch 9\.9\.9"):
        _library._check_torch({"torch": "2.13.0+cpu"})
    monkeypatch.setenv("FLASHHIP_IGNORE_TORCH_VERSION", "1")
    _library._check_torch({"torch": "2.13.0+cpu"})
