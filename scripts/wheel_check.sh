#!/usr/bin/env bash
# CI's check of the wheel as an engine's `pip install` meets it: builds the wheel with
# `pip wheel --no-build-isolation`, installs it into a fresh virtual environment that holds only
# the same torch, and smoke-tests it there (import, __version__, an op on the CPU against the
# reference, the op schemas, `python -m flashhip info`, the clear error under another torch).
#   WHEEL_BUILD_DIR  CMake build directory the wheel builds in (default: build.sh's, so CI's
#                    test build is reused)   WHEEL_VENV (default build/wheel_venv; kept between
#                    runs, its flashhip replaced each time)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export FLASHHIP_GPU=${FLASHHIP_GPU:-AUTO}
build_dir=${WHEEL_BUILD_DIR:-build/$(echo "$FLASHHIP_GPU" | tr 'A-Z' 'a-z')}
venv=${WHEEL_VENV:-build/wheel_venv}
torch_version=$("$PY" -c "import torch; print(torch.__version__)")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "wheel_check: FAILED: $*" >&2; exit 1; }
# logged LOG WHAT CMD...: CMD's output to LOG; on failure, the log's path and its last lines.
logged() {
  local log=$1 what=$2; shift 2
  local rc=0; "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "wheel_check: FAILED: $what (exit $rc): $*" >&2
    tail -n 40 "$log" | sed 's/^/  | /' >&2
    cp "$log" "build/wheel_check.$(basename "$log")" 2>/dev/null && echo "wheel_check: full log: build/wheel_check.$(basename "$log")" >&2
    exit "$rc"
  fi
}
mkdir -p build

echo "wheel_check: pip wheel --no-build-isolation --no-deps -w $tmp/dist . (FLASHHIP_BUILD_DIR=$build_dir, torch $torch_version; a first build takes a few minutes)"
FLASHHIP_BUILD_DIR="$PWD/$build_dir" logged "$tmp/wheel.log" "pip wheel" \
  "$PY" -m pip wheel --no-build-isolation --no-deps -w "$tmp/dist" .
wheel=$(ls "$tmp"/dist/flashhip-*.whl 2>/dev/null | head -n 1)
[ -n "$wheel" ] || fail "pip wheel made no flashhip-*.whl in $tmp/dist"
echo "wheel_check: built $(basename "$wheel")"
"$PY" - "$wheel" <<'PYEOF' || fail "the wheel lacks files it must hold (above)"
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["flashhip/__init__.py", "flashhip/_version.py", "flashhip/libflashhip_ops.so", "flashhip/_build_info.json",
        "flashhip/compat/__init__.py", "flashhip/compat/sgl_kernel.py", "flashhip/compat/flashinfer.py"]
missing = [n for n in need if n not in names]
if missing:
    print("missing from the wheel:", *missing, file=sys.stderr)
    sys.exit(1)
PYEOF

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__ != '$torch_version')" 2>/dev/null; then
  echo "wheel_check: reusing the virtual environment $venv (torch $torch_version)"
else
  echo "wheel_check: creating a fresh virtual environment $venv with torch==${torch_version%%+*} only"
  rm -rf "$venv"
  logged "$tmp/venv.log" "python3 -m venv" "$PY" -m venv "$venv"
  logged "$tmp/torch.log" "pip install torch" "$venv/bin/python" -m pip install -q "torch==${torch_version%%+*}"
fi
vpy=$PWD/$venv/bin/python
export PYTHONWARNINGS="ignore:Failed to initialize NumPy"  # torch alone, without numpy, warns on import
"$vpy" -c "import torch, sys; sys.exit(torch.__version__ != '$torch_version')" \
  || fail "the venv's torch is $("$vpy" -c 'import torch; print(torch.__version__)'), not $torch_version"
echo "wheel_check: pip install --no-deps $(basename "$wheel") into $venv"
logged "$tmp/install.log" "pip install the wheel" "$vpy" -m pip install --no-deps --force-reinstall "$wheel"

echo "wheel_check: smoke test in $venv (import, __version__, rmsnorm on the CPU vs the reference, the schemas)"
( cd "$tmp" && "$vpy" - ) <<'PYEOF' || fail "the smoke test (above)"
import torch
import flashhip
from flashhip import reference
assert flashhip.__file__.startswith(__import__("sys").prefix), f"imported {flashhip.__file__}, not the venv's"
print(f"  flashhip {flashhip.__version__} from {flashhip.__file__}")
x = torch.randn(8, 512, dtype=torch.bfloat16)
w = torch.randn(512, dtype=torch.bfloat16)
got, want = flashhip.rmsnorm(x, w), reference.rmsnorm(x, w)
err = ((got.double() - want.double()).norm() / want.double().norm()).item()
assert err < 1e-2, f"rmsnorm rel. error {err}"
print(f"  rmsnorm on the CPU: rel. error {err:.2e} vs the reference")
for op in ["rmsnorm", "fused_add_rmsnorm", "layernorm", "rmsnorm_quant", "fused_add_rmsnorm_quant", "layernorm_quant", "rope",
           "moe_topk", "moe_align_block_size", "fp8_gemm", "per_token_group_quant_fp8"]:
    schema = getattr(torch.ops.flashhip, op).default._schema
    assert str(schema).startswith(f"flashhip::{op}("), schema
print("  schemas present: torch.ops.flashhip.{rmsnorm, ..., fp8_gemm, per_token_group_quant_fp8}")
facts = flashhip.info()
assert facts["version"] == flashhip.__version__ and facts["built_with_torch"] == torch.__version__, facts
PYEOF
echo "wheel_check: python -m flashhip info"
( cd "$tmp" && "$vpy" -m flashhip info ) | tee "$tmp/info.txt" | sed 's/^/  /'
grep -q "backend:" "$tmp/info.txt" || fail "python -m flashhip info printed no backend"

echo "wheel_check: under another torch (version faked), the import says both versions"
( cd "$tmp" && "$vpy" - ) <<'PYEOF' || fail "the import under another torch (above)"
import torch
built = torch.__version__
torch.__version__ = "9.9.9"
try:
    import flashhip  # noqa: F401
except ImportError as e:
    assert built in str(e) and "9.9.9" in str(e), e
    print(f"  ImportError: {str(e)[:110]}...")
else:
    raise SystemExit("imported flashhip under a torch it was not built against, without an error")
PYEOF
echo "wheel_check: ok"
