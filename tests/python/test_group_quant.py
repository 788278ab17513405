"""per_token_group_quant_fp8 against the pure-torch reference, on CPU and (when present) GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref

from conftest import DEVICES, requires_gpu, strided_rows

ops = torch.ops.flashhip
FP8 = [torch.float8_e4m3fn, torch.float8_e4m3fnuz]
IN_DTYPES = [torch.bfloat16, torch.float16, torch.float32]


def scale_buffer(m, groups, device, m_major, pad=0):
    if m_major:
        return torch.full((groups, m + pad), float("nan"), device=device)[:, :m].t()
    return torch.full((m, groups + pad), float("nan"), device=device)[:, :groups]


def poisoned_fp8(m, k, device, dtype):
    return torch.full((m, k), float("nan"), device=device).to(dtype)


def assert_quant_matches(q, scale, x, group_size, eps, fp8_dtype):
    """The scales agree to fp32 rounding (one division), the codes exactly; where the GPU's amax
    or division could differ in the last bit a code may move by one step: allowed rarely."""
    want_q, want_s = ref.group_quant_fp8(x, group_size, eps, fp8_dtype)
    torch.testing.assert_close(scale.cpu(), want_s.cpu(), rtol=1e-6, atol=0)
    got, want = q.float().cpu(), want_q.float().cpu()
    assert not got.isnan().any()
    differ = got != want
    assert differ.float().mean() <= 1e-4, f"{int(differ.sum())} codes differ"
    ulp = torch.maximum(got.abs(), want.abs()) * 2.0**-3 + 2.0**-9
    assert ((got - want).abs() <= ulp).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", IN_DTYPES)
@pytest.mark.parametrize("fp8_dtype", FP8)
@pytest.mark.parametrize("m_major", [False, True])
@pytest.mark.parametrize("group_size", [128, 64, 32, 16])
def test_group_quant(device, dtype, fp8_dtype, m_major, group_size):
    m, k = 37, 1024
    x = (torch.randn(m, k, device=device) * torch.rand(m, 1, device=device) * 30).to(dtype)
    q = poisoned_fp8(m, k, device, fp8_dtype)
    s = scale_buffer(m, k // group_size, device, m_major)
    ops.per_token_group_quant_fp8(q, s, x, group_size, 1e-10, m_major)
    assert_quant_matches(q, s, x, group_size, 1e-10, fp8_dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", [1, 2, 7, 64, 129])
@pytest.mark.parametrize("k", [128, 384, 7168])
def test_shapes_strided_rows_and_padded_scales(device, m, k):
    x = strided_rows(m, k, torch.bfloat16, device, pad=64)
    f8 = flashhip.native_fp8_dtype(device)
    for m_major in (False, True):
        q = poisoned_fp8(m, k, device, f8)
        s = scale_buffer(m, k // 128, device, m_major, pad=3)
        ops.per_token_group_quant_fp8(q, s, x, 128, 1e-10, m_major)
        assert_quant_matches(q, s, x, 128, 1e-10, f8)


@pytest.mark.parametrize("device", DEVICES)
def test_odd_group_sizes_and_eps(device):
    # Group sizes that are no power of two, all-zero groups (scale = eps / fp8_max), a large eps.
    x = torch.randn(5, 960, device=device, dtype=torch.bfloat16)
    x[2, :96] = 0
    for g, eps in [(96, 1e-10), (192, 1e-10), (8, 1e-10), (960, 1e-10), (64, 0.5)]:
        q = poisoned_fp8(5, 960, device, torch.float8_e4m3fn)
        s = scale_buffer(5, 960 // g, device, False)
        ops.per_token_group_quant_fp8(q, s, x, g, eps, False)
        assert_quant_matches(q, s, x, g, eps, torch.float8_e4m3fn)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("eps", [1e-10, 1e-30])  # 1e-30: scales too small for the bracket, divided
def test_tiny_eps_and_infinite_input(device, eps):
    x = torch.randn(4, 512, device=device, dtype=torch.bfloat16)
    x[1, :128] = 0  # scale eps / fp8_max
    x[2, 130] = float("inf")  # scale inf: the group's codes 0, the inf's NaN
    x[3, 300] = -float("inf")
    q = poisoned_fp8(4, 512, device, torch.float8_e4m3fn)
    s = scale_buffer(4, 4, device, False)
    ops.per_token_group_quant_fp8(q, s, x, 128, eps, False)
    want_q, want_s = ref.group_quant_fp8(x, 128, eps, torch.float8_e4m3fn)
    assert s[2, 1].isinf() and q.float()[2, 130].isnan() and (q.float()[2, 131:256] == 0).all()
    torch.testing.assert_close(s.cpu(), want_s.cpu(), rtol=1e-6, atol=0)
    torch.testing.assert_close(q.float().cpu(), want_q.float().cpu(), rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("device", DEVICES)
def test_saturates_and_keeps_nan(device):
    x = torch.randn(2, 256, device=device)
    x[0, 5] = float("nan")
    q = torch.empty(2, 256, device=device, dtype=torch.float8_e4m3fn)
    s = torch.empty(2, 2, device=device)
    ops.per_token_group_quant_fp8(q, s, x, 128, 1e-10, False)
    assert q.float()[0, 5].isnan()
    assert q.float()[1].abs().max() == 448.0  # the group's amax lands on fp8_max
    assert not s.isnan().any()


@pytest.mark.parametrize("device", DEVICES)
def test_m_zero_writes_nothing(device):
    x = torch.empty(0, 256, device=device, dtype=torch.bfloat16)
    q, s = flashhip.per_token_group_quant_fp8(x, 128)
    assert q.shape == (0, 256) and s.shape == (0, 2)
    q, s = flashhip.per_token_group_quant_fp8(x, 128, scale_m_major=True)
    assert s.shape == (0, 2)


def test_functional_and_sgl_kernel_forms():
    x = torch.randn(9, 512, dtype=torch.bfloat16)
    for m_major in (False, True):
        q, s = flashhip.per_token_group_quant_fp8(x, 128, scale_m_major=m_major)
        assert q.dtype == torch.float8_e4m3fn and s.shape == (9, 4)
        assert (s.stride(0) == 1) == m_major
        assert_quant_matches(q, s, x, 128, 1e-10, torch.float8_e4m3fn)
    q = torch.empty(9, 512, dtype=torch.float8_e4m3fnuz)
    for s in (torch.empty(9, 4), torch.empty(4, 9).t()):  # sgl-kernel tells the layouts apart by stride
        flashhip.flashinfer.sgl_per_token_group_quant_fp8(x, q, s, 128, 1e-10, -240.0, 240.0)
        assert_quant_matches(q, s, x, 128, 1e-10, torch.float8_e4m3fnuz)
    with pytest.raises(RuntimeError, match="scale_ue8m0"):
        flashhip.flashinfer.sgl_per_token_group_quant_fp8(x, q, s, 128, 1e-10, -240.0, 240.0, scale_ue8m0=True)
    with pytest.raises(RuntimeError, match="fp8_min/fp8_max"):
        flashhip.flashinfer.sgl_per_token_group_quant_fp8(x, q, s, 128, 1e-10, -448.0, 448.0)


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    x = torch.randn(4, 256, dtype=torch.bfloat16)
    q = lambda dtype=torch.float8_e4m3fn, shape=(4, 256): torch.zeros(shape, dtype=dtype)  # noqa: E731
    s = lambda shape=(4, 2): torch.full(shape, 7.0)  # noqa: E731
    return [
        ((q(), s(), x.to(torch.int32), 128, 1e-10, False), "'input' must have dtype"),
        ((q(), s(), x.unsqueeze(0), 128, 1e-10, False), "'input' must be 2-D"),
        ((q(), s(), torch.randn(256, 4).t(), 128, 1e-10, False), "'input' must be contiguous in its innermost"),
        ((q(), s(), x, 0, 1e-10, False), "'group_size' must be positive"),
        ((q(), s((4, 3)), x, 96, 1e-10, False), "'group_size' \\(96\\) must divide K"),
        ((q(), s(), x, 128, 0.0, False), "'eps' must be finite and > 0"),
        ((q(), s(), x, 128, float("inf"), False), "'eps' must be finite and > 0"),
        ((q(torch.bfloat16), s(), x, 128, 1e-10, False), "'out' must have dtype Float8_e4m3fn, Float8_e4m3fnuz"),
        ((q(shape=(4, 128)), s(), x, 128, 1e-10, False), "'out' must have the shape of 'input'"),
        ((q(), s((4, 4)), x, 128, 1e-10, False), "'scale' must have shape \\[4, 2\\]"),
        ((q(), s().double(), x, 128, 1e-10, False), "'scale' must have dtype Float"),
        ((q(), s(), x, 128, 1e-10, True), "'scale_m_major' is true but argument 'scale' has strides"),
        ((q(), s((2, 4)).t(), x, 128, 1e-10, False), "'scale_m_major' is false but argument 'scale' has strides"),
        ((q(), s((4, 1)).expand(4, 2), x, 128, 1e-10, False), "output 'scale' has elements that share memory"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    args, message = _bad_cases()[case]
    snapshots = [a.float().clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        ops.per_token_group_quant_fp8(*args)
    for a, snap in zip(args, snapshots):
        if snap is not None:
            torch.testing.assert_close(a.float(), snap, equal_nan=True)


def test_scale_overlapping_input_is_refused():
    buf = torch.randn(4 * 256 + 8)
    x = buf[: 4 * 256].view(4, 256)
    s = buf[:8].view(4, 2)
    before = buf.clone()
    with pytest.raises(RuntimeError, match="output 'scale' shares memory with 'input'"):
        ops.per_token_group_quant_fp8(torch.empty(4, 256, dtype=torch.float8_e4m3fn), s, x, 128, 1e-10, False)
    assert torch.equal(buf, before)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    x = torch.randn(6, 256, device=device, dtype=torch.bfloat16)
    q = torch.empty(6, 256, device=device, dtype=torch.float8_e4m3fn)
    for m_major, s in ((False, torch.empty(6, 2, device=device)), (True, torch.empty(2, 6, device=device).t())):
        opcheck(ops.per_token_group_quant_fp8.default, (q, s, x, 128, 1e-10, m_major),
                test_utils=("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def quant(x):
        q, s = flashhip.per_token_group_quant_fp8(x * 2, 128, fp8_dtype=torch.float8_e4m3fn, scale_m_major=True)
        return q.float() * s.repeat_interleave(128, 1)

    x = torch.randn(5, 512, device=device, dtype=torch.bfloat16)
    torch.testing.assert_close(torch.compile(quant, fullgraph=True)(x), quant(x))


@requires_gpu
@pytest.mark.gpu
def test_gpu_large_and_matches_cpu():
    x = torch.randn(8192, 7168, dtype=torch.bfloat16)
    for m_major in (False, True):
        f8 = flashhip.native_fp8_dtype("cuda")
        q, s = flashhip.per_token_group_quant_fp8(x.cuda(), 128, fp8_dtype=f8, scale_m_major=m_major)
        assert_quant_matches(q, s, x, 128, 1e-10, f8)


@requires_gpu
@pytest.mark.gpu
def test_gpu_misaligned_rows_take_the_fallback():
    base = torch.randn(33, 1024 + 3, device="cuda", dtype=torch.bfloat16)
    x = base[:, 3:]  # rows 2-byte aligned only: no 16-byte loads
    q, s = flashhip.per_token_group_quant_fp8(x, 128, fp8_dtype=torch.float8_e4m3fn)
    assert_quant_matches(q, s, x, 128, 1e-10, torch.float8_e4m3fn)


_VARIANT_SCRIPT = """
import sys, torch, flashhip
torch.manual_seed(0)
x = (torch.randn(4096, 7168) * torch.rand(4096, 1) * 30).to(getattr(torch, sys.argv[1])).cuda()
x[7, 5] = float("nan"); x[9, :128] = 0; x[11, 3] = -0.0; x[13, 300] = 1e-40
out = {}
for m_major in (False, True):
    q, s = flashhip.per_token_group_quant_fp8(x, 128, fp8_dtype=torch.float8_e4m3fn, scale_m_major=m_major)
    out[m_major] = (q.view(torch.uint8).cpu(), s.cpu())
torch.save(out, sys.argv[2])
"""


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_groups_in_flight_variants_agree(tmp_path, dtype):
    # GroupQuantParams::force_groups_in_flight, set through its development override
    # FLASHHIP_DEV_QUANT_GROUPS_IN_FLIGHT (read once per process: one process each), forces the
    # vector kernel's 4- or 8-slot variant; unset, the launcher's heuristic picks. Same float ops
    # in every variant: codes and scales bit-identical.
    results = {}
    for groups in (None, "4", "8"):
        env = {k: v for k, v in os.environ.items() if k != "FLASHHIP_DEV_QUANT_GROUPS_IN_FLIGHT"}
        env["FLASHHIP_LOG_KERNEL"] = "1"
        if groups is not None:
            env["FLASHHIP_DEV_QUANT_GROUPS_IN_FLIGHT"] = groups
        out = tmp_path / f"{groups}.pt"
        proc = subprocess.run([sys.executable, "-c", _VARIANT_SCRIPT, dtype, str(out)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        logged = [line for line in proc.stderr.splitlines() if "flashhip.per_token_group_quant_fp8" in line]
        assert logged and "group_quant vector" in logged[0], proc.stderr
        if groups is not None:
            assert f"{groups} groups in flight" in logged[0], logged[0]
        results[groups] = torch.load(out)
    for groups in ("4", "8"):
        for m_major in (False, True):
            assert torch.equal(results[None][m_major][0], results[groups][m_major][0]), (groups, m_major)
            assert torch.equal(results[None][m_major][1], results[groups][m_major][1]), (groups, m_major)
