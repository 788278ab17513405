"""fp8_gemm (DeepSeek-V3 blockwise scales) against the float64 blockwise reference, on CPU and
(when present) GPU. CPU runs the small-M shapes and the challenge shapes scaled down; the full 29
challenge shapes run on the GPU only."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref

from conftest import DEVICES, requires_gpu

ops = torch.ops.flashhip
FP8 = [torch.float8_e4m3fn, torch.float8_e4m3fnuz]
OUT_DTYPES = [torch.bfloat16, torch.float16, torch.float32]
ALL_CHALLENGE = ref.FP8_CHALLENGE_TEST_SHAPES + ref.FP8_CHALLENGE_BENCH_SHAPES
# (N, K) of the challenge, for the small-M shapes.
CHALLENGE_NK = sorted({(n, k) for _, n, k, _ in ALL_CHALLENGE})


def native(device):
    return flashhip.native_fp8_dtype(device)


def inputs(m, n, k, device, fp8_dtype, mn_major=False, seed=None):
    """Random fp8 operands and N(0,1) scales (negative and near-zero ones included), in the
    challenge's M/N-contiguous layout or K-contiguous."""
    if seed is not None:
        return ref.fp8_challenge_inputs(m, n, k, seed, device=device, fp8_dtype=fp8_dtype, k_contiguous=not mn_major)[:4]
    kb, nb = k // 128, (n + 127) // 128
    if mn_major:
        a = torch.randn(k, m, device=device).to(fp8_dtype).t()
        b = torch.randn(k, n, device=device).to(fp8_dtype).t()
        sa = torch.randn(kb, m, device=device).t()
        sb = torch.randn(kb, nb, device=device).t()
    else:
        a = torch.randn(m, k, device=device).to(fp8_dtype)
        b = torch.randn(n, k, device=device).to(fp8_dtype)
        sa = torch.randn(m, kb, device=device)
        sb = torch.randn(nb, kb, device=device)
    return a, b, sa, sb


def poisoned_out(m, n, device, dtype=torch.bfloat16):
    return torch.full((m, n), float("nan"), device=device, dtype=dtype)


def assert_challenge_close(out, expected, rtol=ref.FP8_CHALLENGE_RTOL, atol=ref.FP8_CHALLENGE_ATOL):
    """The challenge's check: every element within atol + rtol * |ref|, no NaN."""
    got = out.double()
    assert not got.isnan().any(), "NaN in the output (unwritten elements?)"
    bad = (got - expected).abs() > atol + rtol * expected.abs()
    assert not bad.any(), f"{int(bad.sum())} of {bad.numel()} elements outside the tolerance; max err {(got - expected).abs().max():.3e}"


def assert_hopper_close(out, expected):
    """PERFORMANCE.md's bound for fp8 on Hopper's tensor cores (reference.hopper_bound_check, where
    the rule and its constants live): within 2e-2 * |ref| + 1e-3 * rms(ref), bar a tail of at most
    max(4, ref.HOPPER_TAIL_FRACTION * numel) elements, each within twice the bound."""
    check = ref.hopper_bound_check(out, expected)
    assert check["nan"] == 0
    assert check["outside_bound"] <= check["tail_allowed"], (
        f"{check['outside_bound']} of {check['numel']} elements outside the Hopper bound")
    assert not check["beyond_tail_factor"], f"an element is {check['max_ratio']:.2f}x the Hopper bound"


def test_hopper_bound_check_rule():
    # The rule itself, on the CPU: bound 2e-2 * |ref| + 1e-3 * rms(ref); a tail of at most
    # max(4, 1e-6 * numel) elements outside it, each within twice it; NaN fails.
    expected = torch.randn(64, 256, dtype=torch.float64) * 50
    rms = float(expected.pow(2).mean().sqrt())
    bound = 2e-2 * expected.abs() + 1e-3 * rms
    ok = ref.hopper_bound_check(expected + 0.5 * bound, expected)
    assert ok["within"] and ok["outside_bound"] == 0 and ok["max_ratio"] <= 0.5 + 1e-9 and ok["tail_allowed"] == 4
    tail = expected + 0.5 * bound
    tail.view(-1)[:4] = expected.view(-1)[:4] + 1.5 * bound.view(-1)[:4]
    check = ref.hopper_bound_check(tail, expected)
    assert check["within"] and check["outside_bound"] == 4 and 1.4 < check["max_ratio"] < 1.6
    tail.view(-1)[4] = expected.view(-1)[4] + 1.5 * bound.view(-1)[4]  # a fifth: over the tail
    assert not ref.hopper_bound_check(tail, expected)["within"]
    far = expected.clone()
    far[0, 0] += 2.5 * bound[0, 0]  # one element, but beyond twice the bound
    check = ref.hopper_bound_check(far, expected)
    assert not check["within"] and check["beyond_tail_factor"] and check["outside_bound"] == 1
    nan = expected.clone()
    nan[3, 3] = float("nan")
    check = ref.hopper_bound_check(nan, expected)
    assert not check["within"] and check["nan"] == 1 and check["max_ratio"] == float("inf")
    # The challenge's tolerance (absolute atol 1e-3) is tighter near zero than the Hopper bound.
    small = torch.zeros(8, 64, dtype=torch.float64)
    small[0] = 100.0
    check = ref.hopper_bound_check(small + 5e-3, small)
    assert check["within"] and check["outside_challenge_tol"] == 7 * 64


def check_close(out, expected, device, out_dtype=torch.bfloat16):
    if out_dtype == torch.float32 and device == "cpu":
        torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-4)
    elif device == "cpu":
        assert_challenge_close(out, expected)
    else:
        assert_hopper_close(out, expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", [1, 2, 7, 16, 64, 128])
@pytest.mark.parametrize("mn_major", [False, True])
def test_small_m(device, m, mn_major):
    # (N, K) from the challenge shapes with N*K capped on the CPU (CI has 2 cores); all on a GPU.
    nk = CHALLENGE_NK if device == "cuda" else [(n, k) for n, k in CHALLENGE_NK if n * k <= 1536 * 7168][:4]
    for n, k in nk:
        a, b, sa, sb = inputs(m, n, k, device, native(device), mn_major)
        out = poisoned_out(m, n, device)
        ops.fp8_gemm(out, a, b, sa, sb)
        check_close(out, ref.fp8_gemm(a, b, sa, sb), device)


@pytest.mark.parametrize("fp8_dtype", FP8)
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
@pytest.mark.parametrize("mn_major", [False, True])
def test_cpu_both_flavours_and_out_dtypes(fp8_dtype, out_dtype, mn_major):
    a, b, sa, sb = inputs(33, 320, 512, "cpu", fp8_dtype, mn_major)  # N = 2.5 scale blocks
    out = poisoned_out(33, 320, "cpu", out_dtype)
    ops.fp8_gemm(out, a, b, sa, sb)
    check_close(out, ref.fp8_gemm(a, b, sa, sb), "cpu", out_dtype)


# The challenge shapes scaled down for the CPU: M / 8 and N, K / 4 kept to their multiples,
# each with its seed, in the challenge's own e4m3fnuz.
def _scaled(m, n, k):
    return max(1, m // 8), max(64, n // 4 // 64 * 64), max(128, k // 4 // 128 * 128)


@pytest.mark.parametrize("shape", ALL_CHALLENGE[::3], ids=lambda s: "x".join(map(str, s[:3])))
@pytest.mark.parametrize("mn_major", [False, True])
def test_cpu_challenge_shapes_scaled_down(shape, mn_major):
    m, n, k = _scaled(*shape[:3])
    a, b, sa, sb = inputs(m, n, k, "cpu", torch.float8_e4m3fnuz, mn_major, seed=shape[3])
    out = poisoned_out(m, n, "cpu")
    ops.fp8_gemm(out, a, b, sa, sb)
    assert_challenge_close(out, ref.fp8_gemm(a, b, sa, sb))


# m = 24 takes the decode kernel on Hopper, 100 the main one; an out row pad of 64 elements keeps
# rows 16-byte aligned (the staged epilogue's vector stores), 4 and 1 do not (direct stores).
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m,out_pad", [(24, 64), (100, 64), (100, 4), (100, 1), (24, 1)])
def test_odd_scale_strides_and_padded_rows(device, m, out_pad):
    n, k = 192, 384
    f8 = native(device)
    # K-contiguous a with an M-major a_scale (what per_token_group_quant_fp8(scale_m_major) makes),
    # b_scale with a padded leading dimension, a with padded rows, out with padded rows.
    a = torch.randn(m, k + 128, device=device).to(f8)[:, :k]
    b = torch.randn(n, k, device=device).to(f8)
    sa = torch.randn(k // 128, m, device=device).t()
    sb = torch.randn(2, 7, device=device)[:, 1 : 1 + k // 128]
    out_base = torch.full((m, n + out_pad), float("nan"), device=device, dtype=torch.bfloat16)
    out = out_base[:, :n]
    ops.fp8_gemm(out, a, b, sa, sb)
    check_close(out, ref.fp8_gemm(a, b, sa, sb), device)
    assert out_base[:, n:].isnan().all(), "wrote outside out"
    # Scales broadcast along M (stride 0) are valid inputs too.
    sa0 = torch.randn(1, k // 128, device=device).expand(m, k // 128)
    ops.fp8_gemm(out, a, b, sa0, sb)
    check_close(out, ref.fp8_gemm(a, b, sa0, sb), device)


@pytest.mark.parametrize("device", DEVICES)
def test_m_zero_writes_nothing(device):
    a = torch.empty(0, 256, device=device, dtype=native(device))
    b = torch.randn(64, 256, device=device).to(native(device))
    out = torch.empty(0, 64, device=device, dtype=torch.bfloat16)
    ops.fp8_gemm(out, a, b, torch.empty(0, 2, device=device), torch.ones(1, 2, device=device))
    assert flashhip.fp8_gemm(a, b, torch.empty(0, 2, device=device), torch.ones(1, 2, device=device)).shape == (0, 64)


def test_functional_and_sgl_kernel_forms():
    a, b, sa, sb = inputs(9, 256, 384, "cpu", torch.float8_e4m3fn)
    expected = ref.fp8_gemm(a, b, sa, sb)
    for out_dtype in OUT_DTYPES:
        got = flashhip.fp8_gemm(a, b, sa, sb, out_dtype)
        assert got.dtype == out_dtype and got.shape == (9, 256)
        check_close(got, expected, "cpu", out_dtype)
    # sgl-kernel: mat_b [K, N] column-major (the weight's transpose), scales_b [K/128, N/128].
    sa_m_major = sa.t().contiguous().t()
    got = flashhip.flashinfer.fp8_blockwise_scaled_mm(a, b.t(), sa_m_major, sb.t(), torch.bfloat16)
    assert_challenge_close(got, expected)


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    f8 = torch.float8_e4m3fn
    a = torch.randn(4, 256).to(f8)
    b = torch.randn(64, 256).to(f8)
    sa, sb = torch.ones(4, 2), torch.ones(1, 2)
    out = lambda **kw: torch.full((4, 64), 7.0, dtype=kw.pop("dtype", torch.bfloat16), **kw)  # noqa: E731
    return [
        ((out(), torch.randn(4, 256), b, sa, sb), "'a' must have dtype Float8_e4m3fn, Float8_e4m3fnuz"),
        ((out(), a, b.float().to(torch.float8_e4m3fnuz), sa, sb), "'b' must have the fp8 flavour of 'a'"),
        ((out(), torch.randn(4, 200).to(f8), torch.randn(64, 200).to(f8), sa, sb), "K .* multiple of 128, got 200"),
        ((torch.full((4, 96), 7.0, dtype=torch.bfloat16), a, torch.randn(96, 256).to(f8), sa, sb), "N .* multiple of 64, got 96"),
        ((out(), a, torch.randn(64, 384).to(f8), sa, sb), "'b' must be \\[N, K\\] with the K of 'a'"),
        ((out(), torch.randn(4, 512).to(f8)[:, ::2], b, sa, sb), "'a' must have stride 1 along K"),
        ((out(), a, torch.randn(64, 512).to(f8)[:, ::2], sa, sb), "'b' must have stride 1 along K"),
        ((out(), a, b, torch.ones(4, 3), sb), "'a_scale' must have shape \\[4, 2\\]"),
        ((out(), a, b, sa, torch.ones(2, 2)), "'b_scale' must have shape \\[1, 2\\]"),
        ((out(), a, b, sa.double(), sb), "'a_scale' must have dtype Float"),
        ((out(), a, b, sa, sb.half()), "'b_scale' must have dtype Float"),
        ((out(dtype=torch.float8_e4m3fn), a, b, sa, sb), "'out' must have dtype BFloat16, Half, Float"),
        ((torch.full((4, 128), 7.0, dtype=torch.bfloat16), a, b, sa, sb), "'out' must have shape \\[4, 64\\]"),
        ((torch.full((64, 4), 7.0, dtype=torch.bfloat16).t(), a, b, sa, sb), "'out' must have stride 1 along N"),
        ((torch.full((1, 64), 7.0, dtype=torch.bfloat16).expand(4, 64), a, b, sa, sb), "'out' has elements that share memory"),
        ((out(), a.unsqueeze(0), b, sa, sb), "'a' must be 2-D"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    args, message = _bad_cases()[case]
    snapshots = [a.float().clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        ops.fp8_gemm(*args)
    for a, snap in zip(args, snapshots):
        torch.testing.assert_close(a.float(), snap, equal_nan=True)


def test_out_overlapping_a_scale_is_refused():
    a = torch.randn(4, 256).to(torch.float8_e4m3fn)
    b = torch.randn(64, 256).to(torch.float8_e4m3fn)
    buf = torch.ones(4 * 64 + 8)
    out = buf[: 4 * 64].view(4, 64)
    sa = buf[:8].view(4, 2)
    with pytest.raises(RuntimeError, match="output 'out' shares memory with 'a_scale'"):
        ops.fp8_gemm(out, a, b, sa, torch.ones(1, 2))
    assert (buf == 1).all()


@requires_gpu
def test_wrong_device_and_non_native_flavour_are_named():
    a = torch.randn(4, 256, device="cuda").to(native("cuda"))
    b = torch.randn(64, 256, device="cuda").to(native("cuda"))
    out = torch.empty(4, 64, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="'a_scale' must be on cuda"):
        ops.fp8_gemm(out, a, b, torch.ones(4, 2), torch.ones(1, 2, device="cuda"))
    other = torch.float8_e4m3fnuz if native("cuda") == torch.float8_e4m3fn else torch.float8_e4m3fn
    with pytest.raises(RuntimeError, match="matrix cores take"):
        ops.fp8_gemm(out, a.float().to(other), b.float().to(other), torch.ones(4, 2, device="cuda"),
                     torch.ones(1, 2, device="cuda"))


# ---- The op's registration: opcheck, torch.compile ----

@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    a, b, sa, sb = inputs(8, 128, 256, device, native(device))
    # torch's schema check compares every argument before and after with arithmetic that has no
    # fp8 kernel, so the checks that need it are skipped (as for the norms' fp8 outputs).
    opcheck(ops.fp8_gemm.default, (torch.empty(8, 128, device=device, dtype=torch.bfloat16), a, b, sa, sb),
            test_utils=("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def linear(x, w, sw):
        q, sx = flashhip.per_token_group_quant_fp8(x, 128, fp8_dtype=w.dtype, scale_m_major=True)
        return flashhip.fp8_gemm(q, w, sx, sw) * 2

    compiled = torch.compile(linear, fullgraph=True)
    x = torch.randn(6, 256, device=device, dtype=torch.bfloat16)
    w = torch.randn(128, 256, device=device).to(native(device))
    sw = torch.rand(1, 2, device=device) + 0.5
    torch.testing.assert_close(compiled(x, w, sw), linear(x, w, sw))


# ---- GPU only: the 29 challenge shapes, CUDA graphs, non-default streams ----

@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("shape", ALL_CHALLENGE, ids=lambda s: "x".join(map(str, s[:3])))
def test_gpu_challenge_shapes(shape):
    # The challenge's generator and seed; both layouts hold the same values, so one float64
    # reference serves both.
    m, n, k, seed = shape
    expected = None
    for mn_major in (True, False):
        a, b, sa, sb = inputs(m, n, k, "cuda", native("cuda"), mn_major, seed=seed)
        if expected is None:
            expected = ref.fp8_gemm(a, b, sa, sb)
        out = poisoned_out(m, n, "cuda")
        ops.fp8_gemm(out, a, b, sa, sb)
        assert_hopper_close(out, expected)


@requires_gpu
@pytest.mark.gpu
def test_cuda_graph_capture_and_replay():
    a, b, sa, sb = inputs(64, 1536, 7168, "cuda", native("cuda"))  # split-K territory: workspace in the graph
    out = poisoned_out(64, 1536, "cuda")
    x = torch.randn(64, 7168, device="cuda", dtype=torch.bfloat16)
    q = torch.empty(64, 7168, device="cuda", dtype=native("cuda"))
    sq = torch.empty(7168 // 128, 64, device="cuda").t()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture
        ops.fp8_gemm(out, a, b, sa, sb)
        ops.per_token_group_quant_fp8(q, sq, x, 128, 1e-10, True)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.per_token_group_quant_fp8(q, sq, x, 128, 1e-10, True)
        ops.fp8_gemm(out, q, b, sq, sb)
    for _ in range(2):
        x.copy_(torch.randn_like(x))
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert_hopper_close(out, ref.fp8_gemm(q, b, sq, sb))


@requires_gpu
@pytest.mark.gpu
def test_non_default_stream_orders_with_its_work():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        a, b, sa, sb = inputs(1024, 4608, 7168, "cuda", native("cuda"))
        out = poisoned_out(1024, 4608, "cuda")
        # Queued behind a long matmul on the same stream: launching on the default stream
        # instead would read sa before the matmul wrote it.
        big = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        sa.copy_((big @ big)[:1024, : sa.shape[1]].float() * 0 + sa)
        ops.fp8_gemm(out, a, b, sa, sb)
    stream.synchronize()
    assert_hopper_close(out, ref.fp8_gemm(a, b, sa, sb))


@requires_gpu
@pytest.mark.gpu
def test_gpu_matches_cpu():
    a, b, sa, sb = inputs(100, 512, 1024, "cpu", native("cuda"))
    cpu = flashhip.fp8_gemm(a, b, sa, sb, torch.float32)
    gpu = flashhip.fp8_gemm(a.cuda(), b.cuda(), sa.cuda(), sb.cuda(), torch.float32).cpu()
    assert_hopper_close(gpu, cpu.double())
