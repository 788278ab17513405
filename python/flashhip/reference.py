"""Pure-torch oracles for every op, computed in float32 (the tests' ground truth)."""

from __future__ import annotations

import math

import torch

FP8_MAX = {torch.float8_e4m3fn: 448.0, torch.float8_e4m3fnuz: 240.0, torch.float8_e5m2: 57344.0}


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, gemma: bool = False) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps) * w`` (or ``* (1 + w)``) in float32."""
    xf = x.float()
    w = weight.float() + 1.0 if gemma else weight.float()
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w


def fused_add_rmsnorm(x, residual, weight, eps=1e-6, gemma=False, fp32_sum=False):
    """Returns ``(normalised, new_residual)``; the residual sum is rounded to its dtype, and the
    rounded residual normalised (with ``fp32_sum``, the fp32 sum: FlashInfer's arithmetic)."""
    total = x.float() + residual.float()
    new_residual = total.to(residual.dtype)
    return rmsnorm(total if fp32_sum else new_residual, weight, eps, gemma), new_residual


def layernorm(x, weight, bias=None, eps=1e-5):
    xf = x.float()
    mean = xf.mean(-1, keepdim=True)
    var = (xf - mean).pow(2).mean(-1, keepdim=True)
    y = (xf - mean) * torch.rsqrt(var + eps) * weight.float()
    return y + bias.float() if bias is not None else y


def quantize_fp8(y: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``y / scale`` (a true fp32 division, as the norm ops' contract says) clamped to the
    flavour's largest finite value (NaN stays NaN), rounded to ``dtype``."""
    limit = FP8_MAX[dtype]
    return (y.float() / scale.float()).clamp(-limit, limit).to(dtype)


def rmsnorm_float64(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, gemma: bool = False) -> torch.Tensor:
    """rmsnorm in float64, where no mean square of fp32/bf16/fp16 values leaves the range: the
    oracle for rows whose fp32 mean square would overflow or underflow."""
    xd = x.double()
    w = weight.float() + 1.0 if gemma else weight.float()
    return xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + eps) * w.double()


def rmsnorm_quant(x, weight, scale, out_dtype=torch.float8_e4m3fn, eps=1e-6, gemma=False):
    return quantize_fp8(rmsnorm(x, weight, eps, gemma), scale, out_dtype)


def layernorm_quant(x, weight, bias, scale, out_dtype=torch.float8_e4m3fn, eps=1e-5):
    return quantize_fp8(layernorm(x, weight, bias, eps), scale, out_dtype)


def fused_add_rmsnorm_quant(x, residual, weight, scale, out_dtype=torch.float8_e4m3fn, eps=1e-6, gemma=False,
                            fp32_sum=False):
    """Returns ``(fp8 out, new_residual)``: :func:`fused_add_rmsnorm`'s normalised value (of the
    rounded residual, or with ``fp32_sum`` of the fp32 sum: FlashInfer's arithmetic) quantised."""
    y, new_residual = fused_add_rmsnorm(x, residual, weight, eps, gemma, fp32_sum)
    return quantize_fp8(y, scale, out_dtype), new_residual


# ---- Mixture of experts (OPS.md §5) ----

def _descending_order(values: torch.Tensor) -> torch.Tensor:
    """Indices that sort the last dimension by value, largest first, ties to the lower index."""
    return torch.sort(values, dim=-1, descending=True, stable=True).indices


def moe_topk(gating, k, correction_bias=None, scoring_func="softmax", num_expert_group=1, topk_group=1,
             renormalize=False, routed_scaling_factor=1.0):
    """flashhip's routing semantics in float32, as ``(weights fp32 [T, k], ids int32 [T, k])``.

    Experts are chosen by the logit without a correction bias (the same order as the scores) and
    by ``score + bias`` with one; groups are scored by their top-two sum with a bias and by their
    best value without, the ``topk_group`` best kept; ties go to the lower index, NaN ranks below
    every number and masked experts below NaN. Sigmoid scores below the smallest normal float32
    are 0 (as on every device), and renormalised sigmoid weights whose chosen scores sum to less
    than 2^-64 come from the logits rescaled by the largest chosen one (the README's notes).
    """
    logits = gating.float()
    tokens, experts = logits.shape
    if scoring_func == "softmax":
        scores = torch.softmax(logits, dim=-1)
    else:
        scores = torch.sigmoid(logits)
        scores = torch.where(scores < torch.finfo(torch.float32).tiny, torch.zeros_like(scores), scores)
    sel = logits if correction_bias is None else scores + correction_bias.float()
    if num_expert_group > 1 and topk_group < num_expert_group:
        grouped = torch.nan_to_num(sel, nan=float("-inf")).view(tokens, num_expert_group, -1)
        if correction_bias is not None and grouped.shape[-1] >= 2:
            top2 = grouped.topk(2, dim=-1).values
            group_scores = top2[..., 0] + top2[..., 1]
        else:
            group_scores = grouped.amax(dim=-1)
        kept_groups = _descending_order(group_scores)[:, :topk_group]
        kept = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, kept_groups, True)
        kept = kept.repeat_interleave(experts // num_expert_group, dim=1)
    else:
        kept = torch.ones_like(sel, dtype=torch.bool)
    # One float64 key per expert keeps the order of every float32 value and adds the levels below
    # them: real -inf > NaN > masked.
    key = sel.double()
    key = torch.where(key == float("-inf"), torch.full_like(key, -1e308), key)
    key = torch.where(key.isnan(), torch.full_like(key, -1.5e308), key)
    key = torch.where(kept, key, torch.full_like(key, float("-inf")))
    ids = _descending_order(key)[:, :k]
    weights = scores.gather(1, ids)
    if renormalize:
        total = weights.sum(-1, keepdim=True)
        weights = torch.where(total > 0, weights / total, weights)
        if scoring_func != "softmax":
            # sigmoid(x) * e^-m = 1 / (e^m + e^(m - x)), m the largest chosen logit: no underflow.
            chosen = logits.gather(1, ids).double()
            top = chosen.amax(-1, keepdim=True)
            rescaled = 1.0 / (top.exp() + (top - chosen).exp())
            tiny_rows = total < 2.0 ** -64
            weights = torch.where(tiny_rows, (rescaled / rescaled.sum(-1, keepdim=True)).float(), weights)
    return weights * routed_scaling_factor, ids.to(torch.int32)


def deepseek_v3_routing(logits, bias, n_groups=8, topk_groups=4, topk=8, route_scale=2.5):
    """DeepSeek-V3's own gate, transcribed step by step from how its model code routes a token:
    sigmoid scores; the bias added for the choice only; groups scored by the sum of their two
    best biased scores; all but the topk_groups best groups filled with -inf; the topk best
    experts; their unbiased scores, normalised to sum 1 and multiplied by route_scale.
    torch.topk's order among exact ties is its own: compare ids only where the choice is clear."""
    scores = logits.float().sigmoid()
    original_scores = scores
    scores = scores + bias.float()
    scores = scores.view(logits.size(0), n_groups, -1)
    group_scores = scores.topk(2, dim=-1)[0].sum(dim=-1)
    indices = group_scores.topk(topk_groups, dim=-1)[1]
    mask = torch.ones(logits.size(0), n_groups, dtype=torch.bool, device=logits.device).scatter_(1, indices, False)
    scores = scores.masked_fill(mask.unsqueeze(-1), float("-inf")).flatten(1)
    indices = torch.topk(scores, topk, dim=-1)[1]
    weights = original_scores.gather(1, indices)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights * route_scale, indices.to(torch.int32)


def moe_align_block_size(topk_ids, num_experts, block_size, expert_map=None):
    """Sort-based alignment: ``(sorted_token_ids [max_padded], expert_ids [ceil(max_padded /
    block_size)], num_tokens_post_pad [1])`` with the padding index ``topk_ids.numel()`` in every
    slot not holding a pair and -1 for unused blocks."""
    flat = topk_ids.reshape(-1).long()
    pairs = flat.numel()
    device = topk_ids.device
    local = expert_map.long()[flat] if expert_map is not None else flat
    max_padded = pairs + num_experts * (block_size - 1)
    counts = torch.bincount(local[local >= 0], minlength=num_experts)
    padded = (counts + block_size - 1) // block_size * block_size
    starts = torch.cumsum(padded, 0) - padded
    # Pairs left out sort after every expert; a stable sort keeps each expert's pairs in order.
    order = torch.sort(torch.where(local >= 0, local, num_experts), stable=True).indices
    order = order[: int(counts.sum())]
    experts_in_order = local[order]
    first_of_run = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel(), device=device) - first_of_run[experts_in_order]
    sorted_ids = torch.full((max_padded,), pairs, dtype=torch.int32, device=device)
    sorted_ids[starts[experts_in_order] + rank] = order.to(torch.int32)
    expert_ids = torch.full(((max_padded + block_size - 1) // block_size,), -1, dtype=torch.int32, device=device)
    labels = torch.repeat_interleave(torch.arange(num_experts, device=device), padded // block_size)
    expert_ids[: labels.numel()] = labels.to(torch.int32)
    return sorted_ids, expert_ids, padded.sum().reshape(1).to(torch.int32)


def rope(q, k, cos_sin_cache, positions, interleave=False):
    """Returns float32 ``(q_rotated, k_rotated)``: the first ``rotary_dim`` elements of each head
    turned pairwise by ``cos_sin_cache[positions]`` (NeoX pairs ``(i, i + rotary_dim/2)`` or,
    with ``interleave``, GPT-J pairs ``(2i, 2i+1)``); the rest of each head unchanged."""
    rotary_dim = cos_sin_cache.shape[1]
    cos, sin = cos_sin_cache[positions.long()].float().unsqueeze(1).chunk(2, dim=-1)  # [nnz, 1, rotary_dim/2]

    return (_rotate_pairs(q.float(), cos, sin, rotary_dim, interleave),
            _rotate_pairs(k.float(), cos, sin, rotary_dim, interleave))


def rope_set_kv_buffer(q, k, v, cos_sin_cache, positions, k_cache, v_cache, cache_loc, interleave=False):
    """``(q_rotated, k_rotated, k_cache_after, v_cache_after)``: :func:`rope`'s float32 rotations,
    and copies of the caches ``[cache_slots, heads, head_dim]`` with row ``cache_loc[t]`` set to
    token ``t``'s rotated k heads rounded to the cache dtype and to its v heads (rope, then the
    two index writes an engine does)."""
    q_rot, k_rot = rope(q, k, cos_sin_cache, positions, interleave)
    k_after, v_after = k_cache.clone(), v_cache.clone()
    rows = cache_loc.long()
    k_after[rows] = k_rot.to(k_cache.dtype)
    v_after[rows] = v.to(v_cache.dtype)
    return q_rot, k_rot, k_after, v_after


def rope_quantize_fp8(q_rope, k_rope, q_nope, k_nope, cos_sin_cache, positions, interleave=False, quant_scale_q=1.0,
                      quant_scale_kv=1.0, out_dtype=torch.float8_e4m3fn):
    """``(q_rope_out, k_rope_out, q_nope_out, k_nope_out)`` in ``out_dtype``: the rope parts turned
    by :func:`rope`'s float32 rotation (k_rope 2-D for MLA, one head), then every part multiplied
    by its scale in float32 (``quant_scale_q`` for q, ``quant_scale_kv`` for k), clamped to the
    flavour's largest finite value and rounded to ``out_dtype`` (no rounding to the input dtype
    between)."""
    limit = FP8_MAX[out_dtype]

    def quantised(x, scale):
        return (x.float() * torch.tensor(scale, dtype=torch.float32)).clamp(-limit, limit).to(out_dtype)

    k_heads = k_rope if k_rope.dim() == 3 else k_rope.unsqueeze(1)
    q_rot, k_rot = rope(q_rope, k_heads, cos_sin_cache, positions, interleave)
    return (quantised(q_rot, quant_scale_q), quantised(k_rot.reshape(k_rope.shape), quant_scale_kv),
            quantised(q_nope, quant_scale_q), quantised(k_nope, quant_scale_kv))


def _rotate_pairs(x, cos, sin, rotary_dim, interleave):
    """x [..., head_dim] with its first rotary_dim turned by (cos, sin) [..., rotary_dim / 2] in
    x's dtype: GPT-J pairs (2i, 2i + 1) when interleave, else NeoX halves (i, i + rotary_dim / 2);
    the rest passed through."""
    r, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    if interleave:
        x1, x2 = r[..., 0::2], r[..., 1::2]
        rotated = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)
    else:
        x1, x2 = r.chunk(2, dim=-1)
        rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return torch.cat((rotated, rest), dim=-1)


def rope_inv_freq(rotary_dim, rope_scale=1.0, rope_theta=1e4, llama31=False, low_freq_factor=1.0,
                  high_freq_factor=4.0, old_context_len=8192.0):
    """float64 ``[rotary_dim / 2]`` frequencies of the computed-angle rope, written out from the
    definitions: ``theta^(-2i/d) / scale``, or for Llama-3.1 by wavelength band: longer than
    ``old_context_len / low_freq_factor`` slowed by ``scale``, shorter than
    ``old_context_len / high_freq_factor`` kept, between them a linear blend in
    ``old_context_len / wavelength``."""
    pairs = torch.arange(rotary_dim // 2, dtype=torch.float64)
    base = torch.tensor(float(rope_theta), dtype=torch.float64) ** (-2.0 * pairs / rotary_dim)
    if not llama31:
        return base / rope_scale
    wavelength = 2 * math.pi / base
    weight = ((old_context_len / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)).clamp(0, 1)
    return weight * base + (1 - weight) * base / rope_scale


def rope_pos_ids(q, k, pos_ids, rotary_dim=None, interleave=False, **freq_args):
    """float64 ``(q_rotated, k_rotated)`` with cos/sin of ``pos_ids * rope_inv_freq(...)`` in float64."""
    rotary_dim = q.shape[-1] if rotary_dim is None else rotary_dim
    inv_freq = rope_inv_freq(rotary_dim, **freq_args)
    angles = pos_ids.detach().cpu().to(torch.float64)[:, None] * inv_freq[None, :]  # [nnz, rotary_dim/2]
    cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]

    def rotate(x):
        return _rotate_pairs(x.detach().cpu().to(torch.float64), cos, sin, rotary_dim, interleave)

    return rotate(q), rotate(k)


# ---- FP8 GEMM with DeepSeek-V3 blockwise scales (OPS.md §4) ----

def fp8_gemm(a, b, a_scale, b_scale):
    """float64 ``[M, N]``: ``sum_kb a_scale[m, kb] * b_scale[n // 128, kb] * sum_{k in kb} a[m, k] * b[n, k]``,
    block by block as the contract states it (the fp8 products and their block sums are exact in
    float64). Any layout of the inputs."""
    m, k = a.shape
    n = b.shape[0]
    af, bf = a.double(), b.double()
    sa = a_scale.double()
    sb = b_scale.double().repeat_interleave(128, 0)[:n]  # [N, K/128]: each weight row's scales
    out = torch.zeros(m, n, dtype=torch.float64, device=a.device)
    for kb in range(k // 128):
        block = af[:, kb * 128 : (kb + 1) * 128] @ bf[:, kb * 128 : (kb + 1) * 128].T
        out += block * sa[:, kb : kb + 1] * sb[:, kb].unsqueeze(0)
    return out


def group_quant_fp8(x, group_size=128, eps=1e-10, fp8_dtype=torch.float8_e4m3fn):
    """``(q, scale)``: per 1 x group_size group ``scale = max(max|x|, eps) / fp8_max`` in float32 and
    ``q = clamp(x / scale, -fp8_max, fp8_max)`` rounded to nearest even in ``fp8_dtype``; scale
    row-major ``[M, K / group_size]``."""
    # Computed on the CPU: torch's CUDA division by a broadcast scale is not correctly rounded
    # and its CUDA cast to fp8 does not round to nearest even (seen on an H200, torch 2.11:
    # 15.5 -> 15 in e4m3fn), so a GPU-side reference disagrees with an exact kernel.
    limit = FP8_MAX[fp8_dtype]
    m, k = x.shape
    g = x.detach().cpu().float().reshape(m, k // group_size, group_size)
    amax = g.abs().amax(-1)
    scale = torch.maximum(amax, torch.tensor(eps, dtype=torch.float32)) / limit
    q = (g / scale.unsqueeze(-1)).clamp(-limit, limit).to(fp8_dtype).reshape(m, k)
    return q.to(x.device), scale.to(x.device)


def fp8_challenge_inputs(m, n, k, seed, device="cuda", fp8_dtype=torch.float8_e4m3fnuz, k_contiguous=False):
    """The AMD challenge's ``generate_input(m, n, k, seed)`` (amd-fp8-mm): ``(a, b, a_scale, b_scale, c)``
    drawn in that order from one generator seeded with ``seed`` on ``device``: a ``[M, K]`` and
    b ``[N, K]`` N(0,1) rounded to fp8 (through bf16) as transposed views of ``[K, M]``/``[K, N]``
    memory, the scales N(0,1) fp32 as views of ``[K/128, M]`` and ``[K/128, ceil(N/128)]``, c a zero
    bf16 ``[M, N]``. ``k_contiguous`` returns the same values with a, b (and the scales) made
    K-contiguous (row-major) copies. ``fp8_dtype`` is the challenge's e4m3fnuz unless told."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    a = torch.randn((k, m), dtype=torch.bfloat16, device=device, generator=gen).to(fp8_dtype).T
    b = torch.randn((k, n), dtype=torch.bfloat16, device=device, generator=gen).to(fp8_dtype).T
    a_scale = torch.randn((k // 128, m), dtype=torch.float32, device=device, generator=gen).T
    b_scale = torch.randn((k // 128, (n + 127) // 128), dtype=torch.float32, device=device, generator=gen).T
    c = torch.zeros((m, n), dtype=torch.bfloat16, device=device)
    if k_contiguous:
        a, b, a_scale, b_scale = a.contiguous(), b.contiguous(), a_scale.contiguous(), b_scale.contiguous()
    return a, b, a_scale, b_scale, c


# (M, N, K, seed) of the challenge: 11 test shapes, then the 18 benchmark (ranking) shapes.
FP8_CHALLENGE_TEST_SHAPES = [
    (64, 64, 128, 6635), (64, 1536, 7168, 6635), (64, 3072, 1536, 1236), (64, 576, 7168, 542),
    (96, 7168, 256, 1234), (96, 7168, 2048, 4153), (96, 4608, 7168, 412), (128, 7168, 2304, 624),
    (128, 512, 7168, 2514), (512, 4096, 512, 543), (512, 1536, 7168, 12341),
]
FP8_CHALLENGE_BENCH_SHAPES = [
    (1024, 1536, 7168, 8135), (1024, 3072, 1536, 6251), (1024, 576, 7168, 12346), (1024, 7168, 256, 5364),
    (1024, 7168, 2048, 6132), (1024, 4608, 7168, 7531), (1024, 7168, 2304, 12345), (1024, 512, 7168, 6563),
    (1024, 4096, 512, 17512), (6144, 1536, 7168, 6543), (6144, 3072, 1536, 234), (6144, 576, 7168, 9863),
    (6144, 7168, 256, 764243), (6144, 7168, 2048, 76547), (6144, 4608, 7168, 65436), (6144, 7168, 2304, 452345),
    (6144, 512, 7168, 12341), (6144, 4096, 512, 45245),
]
FP8_CHALLENGE_RTOL, FP8_CHALLENGE_ATOL = 2e-2, 1e-3


# ---- Judging fp8 GEMM results on Hopper's tensor cores (PERFORMANCE.md) ----
#
# Hopper's fp8 wgmma adds products with less than fp32 precision inside each instruction. Even
# with the accumulators promoted into fp32 every 128-wide K block (as we do, and DeepGEMM), 0.1-0.3%
# of the elements on the challenge's inputs miss the challenge's elementwise tolerance (atol 1e-3
# absolute), and so do cuBLASLt's. On Hopper a result is judged instead by a bound whose absolute
# part scales with the output's RMS: |err| <= 2e-2 * |ref| + 1e-3 * rms(ref), against the float64
# reference. A rare tail outside it is allowed (measured on the H200: up to 17 of 25M elements of
# ours at 6144x4096x512; cuBLASLt leaves 1-9 of 4-44M there too): at most HOPPER_TAIL_FRACTION of
# the elements, and at least HOPPER_TAIL_MIN for small outputs, each within HOPPER_TAIL_FACTOR
# times the bound. A wrong tile or index puts thousands of elements far outside. On the CPU and on
# AMD's MFMA (fp32 accumulation) the challenge's own tolerance applies.
HOPPER_RTOL, HOPPER_ATOL_OF_RMS = 2e-2, 1e-3
HOPPER_TAIL_FRACTION, HOPPER_TAIL_MIN, HOPPER_TAIL_FACTOR = 1e-6, 4, 2.0


def hopper_bound_check(out: torch.Tensor, expected: torch.Tensor) -> dict:
    """Judges an fp8 GEMM result ``out`` against its float64 reference ``expected`` (same shape
    and device) by the Hopper rule above. Returns a dict:

    - ``numel``, ``nan``: the element count and how many of ``out`` are NaN;
    - ``outside_bound``: elements with ``|err| > 2e-2 * |ref| + 1e-3 * rms(ref)`` (NaN included);
    - ``tail_allowed``: how many may be: ``max(HOPPER_TAIL_MIN, HOPPER_TAIL_FRACTION * numel)``;
    - ``max_ratio``: the largest ``|err| / bound`` (inf for NaN, or an error where the bound is 0);
    - ``beyond_tail_factor``: whether any element is more than HOPPER_TAIL_FACTOR times the bound;
    - ``within``: the rule passes: no NaN, ``outside_bound <= tail_allowed`` and no element beyond
      HOPPER_TAIL_FACTOR times the bound;
    - ``outside_challenge_tol``: elements outside the challenge's own tolerance
      ``FP8_CHALLENGE_ATOL + FP8_CHALLENGE_RTOL * |ref|`` (NaN included), for comparison with a peer.
    """
    got = out.double()
    expected = expected.double()
    numel = got.numel()
    tail_allowed = max(HOPPER_TAIL_MIN, HOPPER_TAIL_FRACTION * numel)
    if numel == 0:
        return {"numel": 0, "nan": 0, "outside_bound": 0, "tail_allowed": tail_allowed, "max_ratio": 0.0,
                "beyond_tail_factor": False, "within": True, "outside_challenge_tol": 0}
    nan = got.isnan()
    err = (got - expected).abs()
    del got
    abs_ref = expected.abs()
    rms = expected.pow(2).mean().sqrt()
    bound = HOPPER_RTOL * abs_ref + HOPPER_ATOL_OF_RMS * rms
    outside = (err > bound) | nan
    outside_bound = int(outside.sum())
    beyond = bool(((err > HOPPER_TAIL_FACTOR * bound) | nan).any())
    ratio = torch.where(bound > 0, err / bound, torch.where(err > 0, math.inf, 0.0))
    max_ratio = math.inf if bool(nan.any()) else float(ratio.max())
    challenge_bad = (err > FP8_CHALLENGE_ATOL + FP8_CHALLENGE_RTOL * abs_ref) | nan
    n_nan = int(nan.sum())
    return {
        "numel": numel,
        "nan": n_nan,
        "outside_bound": outside_bound,
        "tail_allowed": tail_allowed,
        "max_ratio": max_ratio,
        "beyond_tail_factor": beyond,
        "within": n_nan == 0 and outside_bound <= tail_allowed and not beyond,
        "outside_challenge_tol": int(challenge_bad.sum()),
    }
