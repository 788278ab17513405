"""The machinery of the property-based tests (test_properties.py): hypothesis profiles, value and
layout strategies, comparisons, and the registry (``OpSpec``, ``Breaker``, ``SPECS``) each op's
spec is registered in."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps a cache (.hypothesis/) beside the working directory even without an example
# database: kept out of the checkout.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "flashhip-hypothesis"))

import flashhip  # noqa: F401  (registers the ops)

ops = torch.ops.flashhip
F8 = [torch.float8_e4m3fn, torch.float8_e4m3fnuz]
ACT = [torch.float32, torch.float16, torch.bfloat16]

# ---- Profiles ----

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("quick", derandomize=True, **_COMMON)
settings.register_profile("long", derandomize=False, **_COMMON)
PROFILE = os.environ.get("FLASHHIP_HYPOTHESIS_PROFILE", "ci")
_FACTOR = {"ci": 1.0, "quick": 0.25, "long": 20.0}[PROFILE]


def examples(n: int) -> settings:
    return settings(settings.get_profile(PROFILE), max_examples=max(1, int(n * _FACTOR)))


# ---- Values ----

FLOAT_KINDS = ("normal", "normal", "wide", "huge", "tiny", "denormal", "zeros", "ties", "special")
FINITE_KINDS = ("normal", "normal", "wide", "huge", "tiny", "denormal", "zeros", "ties")


def generator(draw) -> torch.Generator:
    return torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))


def float_values(draw, shape, dtype, kinds=FLOAT_KINDS, limit=None) -> torch.Tensor:
    """A float tensor of `dtype` whose values are of one drawn kind: normal, a wide spread of
    exponents, near the dtype's largest, near its smallest normal, denormal, zeros, few distinct
    values (exact ties), or normal values with inf/-inf/NaN sprinkled in. `limit` caps |x|."""
    kind = draw(st.sampled_from(kinds))
    g = generator(draw)
    fi = torch.finfo(dtype)
    top = min(fi.max, limit) if limit else fi.max
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
    if kind == "normal":
        v = torch.randn(shape, generator=g) * draw(st.sampled_from([1.0, 3.0, 0.1]))
    elif kind == "wide":
        lo, hi = math.log2(fi.smallest_normal), math.log2(top) - 1
        v = sign * torch.exp2(lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)).float()
    elif kind == "huge":
        v = sign * (0.5 + 0.49 * torch.rand(shape, generator=g)) * top
    elif kind == "tiny":
        v = sign * fi.smallest_normal * (1 + 15 * torch.rand(shape, generator=g))
    elif kind == "denormal":
        v = sign * fi.smallest_normal * torch.rand(shape, generator=g)
    elif kind == "zeros":
        v = torch.zeros(shape)
    elif kind == "ties":
        v = torch.randint(-2, 3, shape, generator=g).float()
    else:  # special
        v = torch.randn(shape, generator=g)
        pick = torch.rand(shape, generator=g)
        v = torch.where(pick < 0.04, float("nan"), v)
        v = torch.where((pick >= 0.04) & (pick < 0.07), float("inf"), v)
        v = torch.where((pick >= 0.07) & (pick < 0.10), float("-inf"), v)
    if dtype in F8:
        v = v.clamp(-fi.max, fi.max)  # keep NaN; torch's fp8 cast saturates
    return v.to(dtype)


def leading(draw, shape, dtype, values: torch.Tensor | None = None, pad_max=9) -> torch.Tensor:
    """`values` (or zeros) in a view of `shape` out of a bigger buffer: rows padded apart and the
    view starting past the buffer's start, the innermost dimension contiguous; the leading
    dimensions still collapse to one row stride (what every row-wise op takes)."""
    shape = tuple(shape)
    if values is None:
        values = torch.zeros(shape, dtype=dtype)
    layout = draw(st.sampled_from(["contiguous", "padded", "padded", "offset"]))
    if layout == "contiguous" or len(shape) == 0:
        return values.clone().contiguous()
    pad = draw(st.integers(1, pad_max)) if layout == "padded" else 0
    offset = draw(st.integers(1, 7))
    inner = shape[-1] + pad
    rows = math.prod(shape[:-1])
    buf = torch.full((offset + rows * inner + 3,), 0, dtype=torch.float32).to(dtype)
    strides, acc = [], 1
    for d in reversed(range(len(shape))):
        strides.append(acc)
        acc *= inner if d == len(shape) - 1 else shape[d]
    view = buf.as_strided(shape, tuple(reversed(strides)), offset)
    view.copy_(values)
    return view


def token_count(draw, nonempty, most: int) -> int:
    """The leading size of a valid call: 0 to `most`, 1 to `most` when `nonempty`, 0 when "zero"."""
    if nonempty == "zero":
        return 0
    return draw(st.integers(1 if nonempty else 0, most))


def poison(t: torch.Tensor) -> torch.Tensor:
    """Fills `t` with NaN (floats, fp8) or -5 (integers) so that unwritten elements fail."""
    if t.dtype.is_floating_point:
        t.copy_(torch.full(t.shape, float("nan")).to(t.dtype))
    else:
        t.fill_(-5)
    return t


def as_bytes(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype).copy_(t).reshape(-1).view(torch.uint8)


# ---- Comparison ----

def close_mask(actual, expected, dtype, tol, slack=0.0) -> torch.Tensor:
    """Elementwise: both NaN; or within tol + tol * |expected| (+ `slack`, an elementwise bound of
    fp32's own error where the computation is ill-conditioned); or, where `expected` is at the edge
    of `dtype`'s range (or beyond it), `actual` of the same sign and at that edge or infinite."""
    a, e = actual.double(), expected.double()
    lim = torch.finfo(dtype).max
    nan_ok = a.isnan() & e.isnan()
    finite_ok = e.isfinite() & a.isfinite() & ((a - e).abs() <= tol + tol * e.abs() + slack)
    edge = (e.abs() >= lim * (1 - 4 * tol)) & ~e.isnan()
    edge_ok = edge & (a.sign() == e.sign()) & (a.abs() >= lim * (1 - 8 * tol))
    return nan_ok | finite_ok | edge_ok


def assert_close_rows(actual, candidates, dtype, tol, what, slack=0.0):
    """Each row of `actual` ([rows, n]) matches one of `candidates` (a list of [rows, n] tensors:
    the reference, and where the contract leaves an edge open, another admissible result)."""
    ok_rows = torch.zeros(actual.shape[0], dtype=torch.bool)
    for cand in candidates:
        ok_rows |= close_mask(actual, cand, dtype, tol, slack).all(-1)
    if not ok_rows.all():
        r = int((~ok_rows).nonzero()[0])
        raise AssertionError(f"{what}: {int((~ok_rows).sum())} of {actual.shape[0]} rows differ; first row {r}:\n"
                             f"got      {actual[r][:8].tolist()}\nexpected {candidates[0][r][:8].tolist()}")


def assert_same_bytes(a: torch.Tensor, b: torch.Tensor, what: str):
    assert torch.equal(as_bytes(a), as_bytes(b)), f"{what} changed"


def fp8_step(q, a):
    """One fp8 step at the larger of two magnitudes (the norm tests' tolerance)."""
    return torch.maximum(q.abs(), a.abs()) * 2.0**-3 + 2.0**-9


# ---- The registry ----

@dataclass
class Case:
    args: dict                      # schema argument name -> value
    meta: dict = field(default_factory=dict)


@dataclass
class Breaker:
    """One way to make a valid call invalid: `apply(draw, case)` edits the case (or returns
    False where it does not apply) and the error must match `message`."""
    name: str
    apply: Callable
    message: str


@dataclass
class OpSpec:
    name: str
    valid: Callable                  # valid(draw, nonempty: bool or "zero" tokens) -> Case, outputs poisoned
    check: Callable                  # check(before: dict, after: dict, meta) -> None (asserts)
    in_place: tuple = ()             # (output, input) pairs the schema allows to be the same view
    breakers: tuple = ()
    examples: int = 40
    arg_names: list = field(default_factory=list)
    outputs: list = field(default_factory=list)

    def __post_init__(self):
        schema = getattr(ops, self.name).default._schema
        self.arg_names = [a.name for a in schema.arguments]
        self.outputs = [a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]

    def call(self, args):
        getattr(ops, self.name)(*[args[n] for n in self.arg_names])

    def tensors(self, args):
        return {n: v for n, v in args.items() if isinstance(v, torch.Tensor)}

    def alias_pairs(self, args):
        names = list(self.tensors(args))
        pairs = []
        for o in self.outputs:
            for x in names:
                if x != o and not (x in self.outputs and (x, o) in pairs):
                    pairs.append((o, x))
        return pairs


SPECS: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    SPECS[spec.name] = spec
    return spec


def names_both(a: str, b: str) -> str:
    return f"'{a}'.*'{b}'|'{b}'.*'{a}'"


# Generic breakers, given a tensor argument.
def wrong_dtype(arg, bad=torch.float64, message=None):
    def apply(draw, case):
        t = case.args.get(arg)
        if not isinstance(t, torch.Tensor):
            return False
        case.args[arg] = t.to(torch.float32).to(bad) if t.dtype in F8 else t.to(bad)
        return True
    return Breaker(f"{arg} dtype {bad}", apply, message or f"'{arg}'.*dtype")


def innermost_strided(arg, message=None):
    def apply(draw, case):
        t = case.args[arg]
        if t.dim() == 0 or t.shape[-1] < 2:
            return False
        wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)[..., ::2]
        wide.copy_(t)
        case.args[arg] = wide
        return True
    return Breaker(f"{arg} innermost stride 2", apply, message or f"'{arg}'.*(contiguous|stride)")


def resized(arg, message, dim=-1, delta=1):
    def apply(draw, case):
        t = case.args[arg]
        if t.dim() == 0:
            return False
        shape = list(t.shape)
        shape[dim] += delta
        if shape[dim] < 0:
            return False
        case.args[arg] = torch.zeros(shape, dtype=torch.float32).to(t.dtype) if t.dtype.is_floating_point \
            else torch.zeros(shape, dtype=t.dtype)
        return True
    return Breaker(f"{arg} size {dim}{delta:+d}", apply, message)


def set_scalar(arg, values, message):
    def apply(draw, case):
        case.args[arg] = draw(st.sampled_from(values))
        return True
    return Breaker(f"{arg} in {values}", apply, message)


def apply_fn(name, fn, message):
    return Breaker(name, fn, message)
