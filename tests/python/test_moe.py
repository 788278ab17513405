"""MoE routing (moe_topk) and block alignment (moe_align_block_size) against the pure-torch
references, on CPU and (when present) GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch.library import opcheck

import flashhip
from flashhip import reference as ref

from conftest import DEVICES, requires_gpu

ops = torch.ops.flashhip
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Weights are fp32 scores computed from the same fp32 logits; the exp implementation and the
# order of the softmax / renormalisation sums differ between devices and torch: a few ulps.
WEIGHT_TOL = dict(rtol=2e-5, atol=1e-6)
# Selection values closer than this may be ordered differently by two correct fp32
# implementations of exp; exact ties are not: they break to the lower index everywhere.
MARGIN = 1e-5

DEEPSEEK = dict(scoring_func="sigmoid", num_expert_group=8, topk_group=4, renormalize=True, routed_scaling_factor=2.5)


def gating(tokens, experts, dtype, device, strided=False):
    """Fresh random logits; with `strided`, rows padded apart (a non-contiguous leading dim)."""
    x = torch.randn(tokens, experts + (8 if strided else 0), device=device) * 2
    return x.to(dtype)[:, :experts]


def call_topk(g, k, bias=None, scoring_func="softmax", num_expert_group=1, topk_group=1, renormalize=False,
              routed_scaling_factor=1.0):
    """The destination-passing op into poisoned outputs (unwritten elements fail)."""
    weights = torch.full((g.shape[0], k), float("nan"), device=g.device)
    ids = torch.full((g.shape[0], k), -7, dtype=torch.int32, device=g.device)
    ops.moe_topk(weights, ids, g, bias, scoring_func, num_expert_group, topk_group, renormalize, routed_scaling_factor)
    return weights, ids


def decided(g, k, bias, scoring_func, num_expert_group, topk_group):
    """Tokens whose choice (the k experts, their order and the kept groups) is decided by more
    than MARGIN in every comparison that matters, so any correct fp32 implementation agrees."""
    logits = g.double().cpu()
    scores = torch.softmax(logits, -1) if scoring_func == "softmax" else torch.sigmoid(logits)
    sel = logits if bias is None else scores + bias.double().cpu()
    ok = torch.ones(g.shape[0], dtype=torch.bool)
    if num_expert_group > 1 and topk_group < num_expert_group:
        grouped = sel.view(g.shape[0], num_expert_group, -1)
        group_scores = grouped.topk(2, -1).values.sum(-1) if bias is not None and grouped.shape[-1] > 1 else grouped.amax(-1)
        gs = group_scores.sort(-1, descending=True).values
        ok &= (gs[:, topk_group - 1] - gs[:, topk_group]) > MARGIN
        kept = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, group_scores.topk(topk_group, -1).indices, True)
        sel = sel.masked_fill(~kept.repeat_interleave(grouped.shape[-1], 1), float("-inf"))
    top = sel.sort(-1, descending=True).values[:, : k + 1]
    gaps = top[:, :-1] - top[:, 1:]
    if top.shape[1] == k:  # k == experts: no boundary below the last
        gaps = gaps[:, : k - 1]
    ok &= (gaps > MARGIN).all(-1) if gaps.numel() else ok
    return ok.to(g.device)


def assert_routing_matches(weights, ids, ref_weights, ref_ids, mask=None, min_decided=0.9):
    """ids exactly equal and weights close, on every token (or those in `mask`)."""
    if mask is not None:
        if mask.numel() >= 20:  # a fraction means something only over enough tokens
            assert mask.float().mean() >= min_decided, f"only {mask.float().mean():.1%} of tokens clearly decided"
        weights, ids, ref_weights, ref_ids = weights[mask], ids[mask], ref_weights[mask], ref_ids[mask]
    assert ids.dtype == torch.int32 and weights.dtype == torch.float32
    mismatch = (ids != ref_ids).any(-1)
    assert not mismatch.any(), f"{int(mismatch.sum())} tokens differ, first: {ids[mismatch][0]} vs {ref_ids[mismatch][0]}"
    torch.testing.assert_close(weights, ref_weights, **WEIGHT_TOL)


# ---- moe_topk ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("experts,k", [(8, 2), (60, 4), (128, 1), (160, 6), (256, 8), (384, 16), (1024, 32)])
@pytest.mark.parametrize("renormalize", [False, True])
def test_softmax_topk(device, dtype, experts, k, renormalize):
    # No bias: experts are chosen by their logits, exactly the same on every device.
    g = gating(41, experts, dtype, device, strided=experts % 2 == 0)
    weights, ids = call_topk(g, k, renormalize=renormalize)
    assert_routing_matches(weights, ids, *ref.moe_topk(g, k, renormalize=renormalize))
    if renormalize:
        torch.testing.assert_close(weights.sum(-1), torch.ones(41, device=device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scoring_func", ["softmax", "sigmoid"])
# On the GPU, groups whose size divides the wave (and at most a wave of groups) are reduced
# across lanes: a whole wave per group, or runs of lanes; any other layout goes through shared
# memory. Each way appears below for a 32-lane warp (and for a 64-lane wave). Calls with
# experts == wave x (2, 4 or 8) whose groups are whole lanes run the contiguous kernel instead:
# (256, 8), (128, 8), (64, 32) (a lane per group) and (128, 2) on a 32-lane warp.
@pytest.mark.parametrize("experts,groups,keep,k", [
    (256, 8, 4, 8),     # DeepSeek-V3 (32 per group: a whole warp; runs of lanes on wave 64)
    (192, 6, 2, 8),     # 32 per group, fewer groups than a lane holds experts
    (128, 8, 3, 8),     # 16 per group: runs of lanes
    (64, 32, 5, 6),     # 2 per group, 32 groups: one lane ranks each group
    (32, 32, 4, 4),     # 1 per group
    (160, 8, 3, 6),     # DeepSeek-V2: 160 experts, 20 per group (shared memory)
    (60, 4, 2, 4),      # 15 per group, not a power of two
    (384, 8, 4, 16),    # 48 per group (more than a 32-lane warp)
    (128, 2, 1, 16),    # 64 per group
    (384, 3, 2, 12),    # 128 per group, odd group count
    (64, 64, 8, 4),     # one expert per group
    (512, 128, 5, 8),   # more groups than a 32-lane warp
])
@pytest.mark.parametrize("with_bias", [False, True])
def test_grouped_topk(device, dtype, scoring_func, experts, groups, keep, k, with_bias):
    g = gating(67, experts, dtype, device)
    bias = torch.randn(experts, device=device) * 0.2 if with_bias else None
    args = (g, k, bias, scoring_func, groups, keep, True, 2.5)
    weights, ids = call_topk(*args)
    ref_weights, ref_ids = ref.moe_topk(*args)
    mask = decided(g, k, bias, scoring_func, groups, keep) if with_bias else None
    assert_routing_matches(weights, ids, ref_weights, ref_ids, mask)
    # The chosen experts come from at most `keep` groups.
    for t in range(g.shape[0]):
        assert ids[t].div(experts // groups, rounding_mode="floor").unique().numel() <= keep


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens", [1, 64, 333])
def test_deepseek_v3_matches_its_gate(device, dtype, tokens):
    g = gating(tokens, 256, dtype, device)
    bias = torch.randn(256, device=device) * 0.05
    weights, ids = flashhip.moe_topk(g, 8, bias, **DEEPSEEK)
    mask = decided(g, 8, bias, "sigmoid", 8, 4)
    assert_routing_matches(weights, ids, *ref.deepseek_v3_routing(g, bias), mask)
    torch.testing.assert_close(weights.sum(-1), torch.full((tokens,), 2.5, device=device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_deepseek_v3_on_unaligned_rows(device, dtype):
    # Rows one element into the buffer and an odd row stride: no 16-byte alignment, so the GPU's
    # contiguous kernel reads a lane's experts one at a time.
    g = gating(45, 259, dtype, device)[:, 1:257]
    bias = torch.randn(256, device=device) * 0.05
    weights, ids = flashhip.moe_topk(g, 8, bias, **DEEPSEEK)
    assert_routing_matches(weights, ids, *ref.deepseek_v3_routing(g.contiguous(), bias), decided(g, 8, bias, "sigmoid", 8, 4))


@pytest.mark.parametrize("device", DEVICES)
def test_negative_bias_never_picks_a_dropped_group(device):
    # Biased scores below 0 everywhere: masking dropped groups with 0 instead of -inf would
    # choose from them.
    g = gating(50, 256, torch.float32, device)
    bias = torch.full((256,), -3.0, device=device)
    weights, ids = flashhip.moe_topk(g, 8, bias, **DEEPSEEK)
    assert_routing_matches(weights, ids, *ref.moe_topk(g, 8, bias, **DEEPSEEK), decided(g, 8, bias, "sigmoid", 8, 4))
    for t in range(50):
        assert ids[t].div(32, rounding_mode="floor").unique().numel() <= 4


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_without_groups_and_scaling_without_renormalisation(device, dtype):
    g = gating(29, 96, dtype, device)
    for renormalize in (False, True):
        args = (g, 6, None, "sigmoid", 1, 1, renormalize, 1.7)
        weights, ids = call_topk(*args)
        assert_routing_matches(weights, ids, *ref.moe_topk(*args))
    # The AMD challenge: softmax, no renormalisation, no scaling: weights are the probabilities.
    weights, ids = call_topk(g, 4)
    torch.testing.assert_close(weights, torch.softmax(g.float(), -1).gather(1, ids.long()), **WEIGHT_TOL)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_break_to_the_lower_index(device, dtype):
    # All equal: the first k experts, in order.
    g = torch.zeros(3, 256, device=device, dtype=dtype)
    _, ids = call_topk(g, 8)
    assert ids.tolist() == [list(range(8))] * 3
    _, ids = call_topk(g, 8, torch.zeros(256, device=device), "sigmoid", 8, 4, True, 2.5)
    assert ids.tolist() == [list(range(8))] * 3  # groups tie too: the first groups are kept
    # Few distinct values: many exact ties among experts and among groups, broken the same way
    # as a stable sort (identical inputs give identical scores in any implementation).
    g = torch.randint(-2, 3, (200, 256), device=device).to(dtype)
    bias = torch.randint(0, 2, (256,), device=device).float() * 0.5
    for args in [(g, 8), (g, 8, None, "softmax", 8, 4, True), (g, 8, bias, "sigmoid", 8, 4, True, 2.5),
                 (g, 16, bias, "softmax", 4, 1, False), (g[:, :60], 5, bias[:60], "sigmoid", 6, 2, True)]:
        weights, ids = call_topk(*args)
        assert_routing_matches(weights, ids, *ref.moe_topk(*args))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_renormalisation_of_tiny_scores(device, dtype):
    # Every chosen logit far below 0: the fp32 sigmoid scores are subnormal or 0 (below -88.7 on
    # every device), but their ratios are not: renormalised from the rescaled logits.
    g = torch.tensor([[-95.0, -100.0, -120.0, -130.0], [-50.0, -60.0, -45.0, -44.0], [-87.0, -88.0, -200.0, -89.0]],
                     device=device).to(dtype)
    for scale in (1.0, 2.5):
        weights, ids = call_topk(g, 2, None, "sigmoid", 1, 1, True, scale)
        assert ids.tolist() == [[0, 1], [3, 2], [0, 1]]
        chosen = torch.sigmoid(g.double()).gather(1, ids.long())
        torch.testing.assert_close(weights.double(), chosen / chosen.sum(-1, keepdim=True) * scale, rtol=1e-5, atol=0)
        # The pure-torch reference follows the same contract (it underflowed to [0, 0] before).
        want_w, want_ids = ref.moe_topk(g, 2, None, "sigmoid", 1, 1, True, scale)
        assert torch.equal(ids.cpu(), want_ids.cpu())
        torch.testing.assert_close(weights.cpu(), want_w.cpu(), rtol=1e-5, atol=0)
    weights, _ = call_topk(g[:1], 2, None, "sigmoid", 1, 1, True, 1.0)
    torch.testing.assert_close(weights.cpu(), torch.tensor([[0.99330715, 0.00669285]]), rtol=1e-5, atol=0)
    # Without renormalisation the weights are the fp32 scores: 0 below the smallest normal float.
    weights, _ = call_topk(g[:1], 2, None, "sigmoid", 1, 1, False, 1.0)
    assert (weights == 0).all()
    # With a bias, experts are chosen by score + bias: scores below the smallest normal float are
    # 0 on every device, so [-95, -90] with a zero bias tie and break to the lower index ...
    _, ids = call_topk(torch.tensor([[-95.0, -90.0]], device=device).to(dtype), 1, torch.zeros(2, device=device),
                       "sigmoid", 1, 1, True, 1.0)
    assert ids.tolist() == [[0]]
    # ... and a bias decides; the weights still come from the rescaled logits.
    g = torch.tensor([[-95.0, -90.0, -99.0, -120.0]], device=device).to(dtype)
    bias = torch.tensor([0.0, 1e-3, 2e-3, 0.0], device=device)
    weights, ids = call_topk(g, 2, bias, "sigmoid", 1, 1, True, 2.5)
    assert ids.tolist() == [[2, 1]]
    chosen = torch.sigmoid(g.double()).gather(1, ids.long())
    torch.testing.assert_close(weights.double(), chosen / chosen.sum(-1, keepdim=True) * 2.5, rtol=1e-5, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_deepseek_v3_with_tiny_scores(device, dtype):
    # DeepSeek-V3's shape with every logit in [-110, -90]: selection by the bias (every score is
    # 0 in fp32 next to it), weights renormalised from the logits, summing to the scale.
    g = (torch.rand(64, 256, device=device) * -20 - 90).to(dtype)
    bias = torch.randn(256, device=device) * 0.05
    weights, ids = flashhip.moe_topk(g, 8, bias, **DEEPSEEK)
    _, want_ids = ref.deepseek_v3_routing(torch.full_like(g, -1000.0), bias)  # the bias alone decides
    assert torch.equal(ids.sort(-1).values, want_ids.sort(-1).values)
    chosen = torch.sigmoid(g.double()).gather(1, ids.long())
    torch.testing.assert_close(weights.double(), chosen / chosen.sum(-1, keepdim=True) * 2.5, rtol=1e-5, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_tokens(device):
    g = torch.empty(0, 256, device=device)
    weights, ids = flashhip.moe_topk(g, 8, torch.zeros(256, device=device), **DEEPSEEK)
    assert weights.shape == (0, 8) and ids.shape == (0, 8)
    sorted_ids, expert_ids, total = flashhip.moe_align_block_size(ids, 256, 16)
    assert total.item() == 0
    assert (sorted_ids == 0).all() and (expert_ids == -1).all()


# ---- moe_align_block_size ----

def check_alignment(topk_ids, num_experts, block_size, sorted_ids, expert_ids, total, expert_map=None):
    """The contract, checked directly (not through the reference)."""
    flat = topk_ids.reshape(-1).long().cpu()
    pairs = flat.numel()
    local = expert_map.long().cpu()[flat] if expert_map is not None else flat
    sorted_ids, expert_ids, total = sorted_ids.cpu().long(), expert_ids.cpu().long(), int(total.item())
    assert total % block_size == 0
    assert (sorted_ids[total:] == pairs).all(), "slots past the padded total hold the padding index"
    assert (expert_ids[total // block_size:] == -1).all(), "unused blocks are labelled -1"
    body = sorted_ids[:total]
    real = body[body != pairs]
    # Every pair of a local expert exactly once; none of the others.
    assert torch.equal(real.sort().values, torch.nonzero(local >= 0).flatten())
    # Each block holds one expert's pairs (or padding), labelled with that expert; runs ascend.
    blocks = body.view(-1, block_size)
    labels = expert_ids[: total // block_size]
    prev_expert, prev_pair = -1, -1
    for b in range(blocks.shape[0]):
        members = blocks[b][blocks[b] != pairs]
        assert labels[b] >= prev_expert and 0 <= labels[b] < num_experts
        if labels[b] != prev_expert:
            prev_pair = -1
            assert members.numel() > 0, "an expert's run starts with a pair"
        assert (local[members] == labels[b]).all()
        assert (members > prev_pair).all() and (members[1:] > members[:-1]).all(), "stable: ascending pairs"
        if members.numel():
            prev_pair = int(members[-1])
        prev_expert = int(labels[b])
    counts = torch.bincount(local[local >= 0], minlength=num_experts)
    assert total == int(((counts + block_size - 1) // block_size * block_size).sum())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("experts", [1, 8, 60, 256, 512])
@pytest.mark.parametrize("tokens,k", [(1, 1), (7, 2), (64, 8), (1000, 6), (4096, 8)])
@pytest.mark.parametrize("block_size", [1, 16, 64, 128])
@pytest.mark.parametrize("id_dtype", [torch.int32, torch.int64])
def test_align(device, experts, tokens, k, block_size, id_dtype):
    if block_size == 1 and tokens == 4096:
        pytest.skip("covered by the other block sizes")
    # Skewed: a few hot experts (long runs) and many cold ones.
    hot = torch.randint(0, experts, (tokens, k), device=device)
    ids = torch.where(torch.rand(tokens, k, device=device) < 0.3, hot % max(1, experts // 8), hot).to(id_dtype)
    out = flashhip.moe_align_block_size(ids, experts, block_size)
    expected = ref.moe_align_block_size(ids, experts, block_size)
    for got, want in zip(out, expected):
        assert torch.equal(got, want)
    if tokens * k <= 8000:
        check_alignment(ids, experts, block_size, *out)


@pytest.mark.parametrize("device", DEVICES)
def test_align_large(device):
    ids = torch.randint(0, 256, (65536, 8), device=device, dtype=torch.int32)
    for got, want in zip(flashhip.moe_align_block_size(ids, 256, 64), ref.moe_align_block_size(ids, 256, 64)):
        assert torch.equal(got, want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("experts,rank,ranks", [(256, 0, 8), (256, 5, 8), (60, 1, 3), (16, 0, 1)])
def test_align_expert_map_leaves_out_other_ranks(device, experts, rank, ranks):
    ids = torch.randint(0, experts, (333, 8), device=device, dtype=torch.int32)
    per_rank = experts // ranks
    owner = torch.arange(experts, device=device) // per_rank
    expert_map = torch.where(owner == rank, torch.arange(experts, device=device) - rank * per_rank, -1).to(torch.int32)
    out = flashhip.moe_align_block_size(ids, experts, 16, expert_map)
    for got, want in zip(out, ref.moe_align_block_size(ids, experts, 16, expert_map)):
        assert torch.equal(got, want)
    check_alignment(ids, experts, 16, *out, expert_map=expert_map)
    kept = set((owner[ids.long()] == rank).flatten().nonzero().flatten().tolist())
    assert set(out[0][: int(out[2])].tolist()) - {ids.numel()} == kept


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("label_unused_blocks", [True, False])
def test_align_expert_ids_sized_by_the_floor(device, label_unused_blocks):
    # 7 pairs, 5 experts, block 8: at most 7 + 5 * 7 = 42 slots, and the padded total is a
    # multiple of 8 no larger, so 42 // 8 = 5 blocks always hold the labels (ceil would be 6).
    ids = torch.tensor([[0, 4, 4, 1, 2, 3, 0]], dtype=torch.int32, device=device)
    sorted_ids = torch.full((42,), -5, dtype=torch.int32, device=device)
    expert_ids = torch.full((5,), -5, dtype=torch.int32, device=device)
    total = torch.full((1,), -5, dtype=torch.int32, device=device)
    ops.moe_align_block_size(ids, 5, 8, sorted_ids, expert_ids, total, None, label_unused_blocks)
    assert expert_ids.tolist() == [0, 1, 2, 3, 4] and total.item() == 40
    # Fewer experts used: the blocks past them are -1, or left as they were.
    ids = torch.tensor([[3, 3, 3, 3, 3, 3, 3]], dtype=torch.int32, device=device)
    expert_ids.fill_(-5)
    ops.moe_align_block_size(ids, 5, 8, sorted_ids, expert_ids, total, None, label_unused_blocks)
    assert expert_ids.tolist() == [3] + [-1 if label_unused_blocks else -5] * 4 and total.item() == 8
    assert sorted_ids.tolist() == list(range(7)) + [7] * 35
    with pytest.raises(RuntimeError, match="'expert_ids' must hold at least 5 elements"):
        ops.moe_align_block_size(ids, 5, 8, sorted_ids, expert_ids[:4], total, None, label_unused_blocks)


@pytest.mark.parametrize("device", DEVICES)
def test_align_strided_ids_and_larger_buffers(device):
    base = torch.randint(0, 32, (50, 12), device=device, dtype=torch.int32)
    ids = base[:, :8]  # rows 12 apart
    max_padded = ids.numel() + 32 * 15
    sorted_ids = torch.full((max_padded + 100,), -5, dtype=torch.int32, device=device)
    expert_ids = torch.full((max_padded // 16 + 10,), -5, dtype=torch.int32, device=device)
    total = torch.full((1,), -5, dtype=torch.int32, device=device)
    ops.moe_align_block_size(ids, 32, 16, sorted_ids, expert_ids, total)
    want_sorted, want_experts, want_total = ref.moe_align_block_size(ids.contiguous(), 32, 16)
    # Every element written: the reference's, then padding / -1 to the end of each buffer.
    assert torch.equal(sorted_ids[:max_padded], want_sorted) and (sorted_ids[max_padded:] == ids.numel()).all()
    assert torch.equal(expert_ids[: want_experts.numel()], want_experts) and (expert_ids[want_experts.numel():] == -1).all()
    assert torch.equal(total, want_total)


# ---- moe_sum ----

def moe_sum_reference(x):
    """fp32 sum over the slots in slot order, rounded once: the contract, bit for bit."""
    acc = torch.zeros(x.shape[0], x.shape[2], dtype=torch.float32, device=x.device)
    for j in range(x.shape[1]):
        acc = acc + x[:, j].float()
    return acc.to(x.dtype)


def moe_sum_inputs(tokens, topk, hidden, dtype, device, layout):
    """Fresh random [tokens, topk, hidden] in one of several memory layouts."""
    if layout == "contiguous":
        return torch.randn(tokens, topk, hidden, device=device).to(dtype)
    if layout == "padded":  # rows padded apart: strided tokens and slots
        return torch.randn(tokens, topk, hidden + 8, device=device).to(dtype)[:, :, :hidden]
    if layout == "slot_major":  # [topk, tokens, hidden] in memory
        return torch.randn(topk, tokens, hidden, device=device).to(dtype).transpose(0, 1)
    assert layout == "unaligned"  # one element into the buffer: no 16-byte vectors on a GPU
    flat = torch.randn(tokens * topk * hidden + 1, device=device).to(dtype)
    return flat[1:].view(tokens, topk, hidden)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,topk,hidden", [(1, 1, 8), (7, 2, 64), (33, 3, 200), (65, 4, 7168), (5, 8, 1000),
                                                (3, 9, 24), (0, 8, 64), (4, 8, 0)])
@pytest.mark.parametrize("layout", ["contiguous", "padded", "slot_major", "unaligned"])
def test_moe_sum(device, dtype, tokens, topk, hidden, layout):
    x = moe_sum_inputs(tokens, topk, hidden, dtype, device, layout)
    out = torch.full((tokens, hidden), float("nan"), dtype=dtype, device=device)
    ops.moe_sum(out, x)
    assert torch.equal(out, moe_sum_reference(x))
    # The functional form, and a strided output (rows padded apart).
    assert torch.equal(flashhip.moe_sum(x), out)
    wide = torch.full((tokens, hidden + 3), float("nan"), dtype=dtype, device=device)
    flashhip.moe_sum(x, out=wide[:, :hidden])
    assert torch.equal(wide[:, :hidden], out) and wide[:, hidden:].isnan().all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgl_moe_sum(device, dtype):
    # sgl-kernel's call: moe_sum(input, output), output preallocated.
    x = torch.randn(37, 8, 512, device=device).to(dtype)
    output = torch.full((37, 512), float("nan"), dtype=dtype, device=device)
    flashhip.compat.sgl_kernel.moe_sum(x, output)
    assert torch.equal(output, moe_sum_reference(x))
    torch.testing.assert_close(output.float(), x.float().sum(1), rtol=1e-2 if dtype != torch.float32 else 1e-5, atol=1e-2)


# ---- sgl-kernel's and FlashInfer's signatures (flashhip.flashinfer) ----

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgl_topk_softmax_both_signatures(device, dtype):
    g = gating(37, 60, dtype, device)
    for renormalize in (False, True):
        weights = torch.full((37, 4), float("nan"), device=device)
        ids = torch.full((37, 4), -7, dtype=torch.int32, device=device)
        flashhip.flashinfer.topk_softmax(weights, ids, g, renormalize)
        assert_routing_matches(weights, ids, *ref.moe_topk(g, 4, renormalize=renormalize))
    # vLLM's form: int64 ids, and the (slot, token) index table.
    weights = torch.full((37, 4), float("nan"), device=device)
    ids = torch.full((37, 4), -7, dtype=torch.int64, device=device)
    token_expert_indices = torch.full((37, 4), -7, dtype=torch.int32, device=device)
    flashhip.flashinfer.topk_softmax(weights, ids, token_expert_indices, g, True)
    want_weights, want_ids = ref.moe_topk(g, 4, renormalize=True)
    assert_routing_matches(weights, ids.int(), want_weights, want_ids)
    assert ids.dtype == torch.int64
    assert token_expert_indices[5, 3].item() == 3 * 37 + 5
    assert torch.equal(token_expert_indices.cpu(), (torch.arange(4) * 37 + torch.arange(37)[:, None]).int())


@pytest.mark.parametrize("device", DEVICES)
def test_sgl_topk_softmax_softcapping_and_bias(device):
    g = gating(29, 64, torch.float32, device) * 10
    bias = torch.randn(64, device=device) * 0.01
    weights = torch.full((29, 6), float("nan"), device=device)
    ids = torch.full((29, 6), -7, dtype=torch.int32, device=device)
    flashhip.flashinfer.topk_softmax(weights, ids, g, renormalize=True, moe_softcapping=30.0, correction_bias=bias)
    capped = 30.0 * torch.tanh(g / 30.0)
    assert_routing_matches(weights, ids, *ref.moe_topk(capped, 6, bias, "softmax", 1, 1, True),
                           decided(capped, 6, bias, "softmax", 1, 1))
    with pytest.raises(TypeError, match="gating_output"):
        flashhip.flashinfer.topk_softmax(weights, ids)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgl_moe_fused_gate_and_flashinfer_fused_topk_deepseek(device, dtype):
    g = gating(70, 256, dtype, device)
    bias = (torch.randn(256, device=device) * 0.05).to(dtype)  # FlashInfer: the scores' dtype
    mask = decided(g, 8, bias.float(), "sigmoid", 8, 4)
    want_weights, want_ids = ref.deepseek_v3_routing(g, bias.float())
    # sgl-kernel scales only when asked to.
    weights, ids = flashhip.flashinfer.moe_fused_gate(g, bias, 8, 4, 8, 0, 2.5)
    assert_routing_matches(weights, ids, want_weights / 2.5, want_ids, mask)
    weights, ids = flashhip.flashinfer.moe_fused_gate(g, bias, 8, 4, 8, 0, 2.5, True)
    assert_routing_matches(weights, ids, want_weights, want_ids, mask)
    # FlashInfer writes the caller's buffers, int64 indices included.
    values = torch.full((70, 8), float("nan"), device=device)
    indices = torch.full((70, 8), -7, dtype=torch.int64, device=device)
    flashhip.flashinfer.fused_topk_deepseek(g, bias, 8, 4, 8, 2.5, values, indices)
    assert_routing_matches(values, indices.int(), want_weights, want_ids, mask)
    with pytest.raises(ValueError, match="topk_values"):
        flashhip.flashinfer.fused_topk_deepseek(g, bias, 8, 4, 6, 2.5, values, indices)


def fused_shared_gate_reference(g, bias, groups, keep, topk, shared, scale, apply):
    """sgl-kernel's GPU moe_fused_gate with fused shared experts, in pure torch: the routed
    DeepSeek-V3 choice in the first topk - shared slots; expert E + i in the others, weighted by
    the routed sum over the factor; every weight divided by the routed sum, then times the factor
    when `apply`."""
    routed = topk - shared
    sig = g.float().sigmoid()
    _, ids = ref.deepseek_v3_routing(g, bias.float(), groups, keep, routed, 1.0)
    raw = sig.gather(1, ids.long())
    total = raw.sum(-1, keepdim=True)
    weights = torch.cat([raw, (total / scale).expand(-1, shared)], 1) / total
    if apply:
        weights = weights * scale
    experts = g.shape[1]
    ids = torch.cat([ids, torch.arange(experts, experts + shared, dtype=torch.int32, device=g.device).expand(g.shape[0], -1)], 1)
    return weights, ids


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("experts,groups,keep,topk,shared", [(256, 8, 4, 9, 1), (256, 8, 4, 10, 2), (64, 4, 2, 5, 1)])
@pytest.mark.parametrize("apply", [False, True])
def test_sgl_moe_fused_gate_with_fused_shared_experts(device, dtype, experts, groups, keep, topk, shared, apply):
    g = gating(53, experts, dtype, device)
    bias = (torch.randn(experts, device=device) * 0.05).to(dtype)
    weights, ids = flashhip.compat.sgl_kernel.moe_fused_gate(g, bias, groups, keep, topk, shared, 2.5, apply)
    assert weights.shape == (53, topk) and ids.shape == (53, topk)
    mask = decided(g, topk - shared, bias.float(), "sigmoid", groups, keep)
    assert_routing_matches(weights, ids, *fused_shared_gate_reference(g, bias, groups, keep, topk, shared, 2.5, apply), mask)
    # The shared slots on every token, decided or not.
    assert (ids[:, topk - shared:] == torch.arange(experts, experts + shared, device=device)).all()
    torch.testing.assert_close(weights[:, topk - shared:], torch.full((53, shared), 1.0 if apply else 0.4, device=device))
    torch.testing.assert_close(weights[:, : topk - shared].sum(-1), torch.full((53,), 2.5 if apply else 1.0, device=device))


def test_sgl_moe_fused_gate_fused_shared_experts_bad_arguments():
    g, bias = torch.randn(4, 64), torch.zeros(64)
    gate = flashhip.compat.sgl_kernel.moe_fused_gate
    with pytest.raises(ValueError, match="'num_fused_shared_experts' must be 0 to topk - 1 = 4"):
        gate(g, bias, 4, 2, 5, 5, 2.5)
    with pytest.raises(ValueError, match="'routed_scaling_factor' must be finite and positive"):
        gate(g, bias, 4, 2, 5, 1, 0.0)
    with pytest.raises(RuntimeError, match="'topk_group' keeps 1 groups of 16 experts \\(16\\), fewer than k = 20"):
        gate(g, bias, 4, 1, 21, 1, 2.5)


@pytest.mark.parametrize("device", DEVICES)
def test_flashinfer_fused_topk_deepseek_backend_and_routing_replay(device):
    g = gating(70, 256, torch.bfloat16, device)
    bias = (torch.randn(256, device=device) * 0.05).to(torch.bfloat16)
    mask = decided(g, 8, bias.float(), "sigmoid", 8, 4)
    want_weights, want_ids = ref.deepseek_v3_routing(g, bias.float())
    fi = flashhip.compat.flashinfer
    values = torch.full((70, 8), float("nan"), device=device, dtype=torch.bfloat16)
    indices = torch.full((70, 8), -7, dtype=torch.int32, device=device)
    # A replay buffer sized for a larger batch: rows past the tokens are left as they were.
    replay = torch.full((96, 8), -3, dtype=torch.int16, device=device)
    fi.fused_topk_deepseek(g, bias, 8, 4, 8, 2.5, values, indices, True, replay, backend="default")
    assert torch.equal(indices[mask], want_ids[mask])
    torch.testing.assert_close(values[mask].float(), want_weights[mask], rtol=8e-3, atol=1e-5)  # bf16 values
    assert torch.equal(replay[:70], indices.to(torch.int16)) and (replay[70:] == -3).all()
    for kwargs, message in [(dict(backend="cake"), "'backend' must be 'default'"),
                            (dict(routing_replay_out=replay.int()), "'routing_replay_out' must be int16"),
                            (dict(routing_replay_out=replay[:69]), "'routing_replay_out' must be \\[>= 70, 8\\]"),
                            (dict(routing_replay_out=replay[:, :6]), "'routing_replay_out' must be \\[>= 70, 8\\]")]:
        before = (values.clone(), indices.clone(), replay.clone())
        with pytest.raises(ValueError, match=message):
            fi.fused_topk_deepseek(g, bias, 8, 4, 8, 2.5, values, indices, **kwargs)
        assert all(torch.equal(a, b) for a, b in zip((values, indices, replay), before)), "nothing written"


@pytest.mark.parametrize("device", DEVICES)
def test_sgl_moe_align_block_size_both_signatures(device):
    ids = torch.randint(0, 64, (300, 6), device=device, dtype=torch.int32)
    want = ref.moe_align_block_size(ids, 64, 16)
    used = int(want[2]) // 16
    # sglang sizes its buffers for one expert more than it routes to; sgl-kernel's own test sizes
    # expert_ids by the floor (ceil is one more here: 1800 + 975 = 2775 is not a multiple of 16).
    max_padded = ids.numel() + 65 * 15
    for blocks in (max_padded // 16, (max_padded + 15) // 16):
        for scratch in [(torch.empty(65, dtype=torch.int32, device=device), True),  # cumsum_buffer, pad flag
                        (torch.empty(65 * 64, dtype=torch.int32, device=device), torch.empty(65, dtype=torch.int32, device=device))]:
            sorted_ids = torch.full((max_padded,), -5, dtype=torch.int32, device=device)
            expert_ids = torch.full((blocks,), -5, dtype=torch.int32, device=device)
            total = torch.full((1,), -5, dtype=torch.int32, device=device)
            flashhip.compat.sgl_kernel.moe_align_block_size(ids, 64, 16, sorted_ids, expert_ids, total, *scratch)
            assert torch.equal(sorted_ids[: want[0].numel()], want[0]) and (sorted_ids[want[0].numel():] == ids.numel()).all()
            # As sgl-kernel: the blocks past the used ones are left as they were.
            assert torch.equal(expert_ids[:used], want[1][:used]) and (expert_ids[used:] == -5).all()
            assert torch.equal(total, want[2])
    with pytest.raises(TypeError, match="unexpected argument"):
        flashhip.flashinfer.moe_align_block_size(ids, 64, 16, sorted_ids, expert_ids, total, "cumsum")


# ---- opcheck, torch.compile ----

def _samples(device):
    g = torch.randn(9, 64, device=device, dtype=torch.bfloat16)
    bias = torch.randn(64, device=device)
    w = torch.empty(9, 4, device=device)
    i = torch.empty(9, 4, dtype=torch.int32, device=device)
    ids = torch.randint(0, 16, (9, 4), device=device, dtype=torch.int32)
    emap = torch.tensor([0, -1] * 8, dtype=torch.int32, device=device)
    n = ids.numel() + 16 * 7

    def align_outputs():
        return (torch.empty(n, dtype=torch.int32, device=device), torch.empty((n + 7) // 8, dtype=torch.int32, device=device),
                torch.empty(1, dtype=torch.int32, device=device))

    return [
        (ops.moe_topk.default, (w, i, g, None, "softmax", 1, 1, False, 1.0)),
        (ops.moe_topk.default, (w.clone(), i.clone(), g.float(), bias, "sigmoid", 4, 2, True, 2.5)),
        (ops.moe_align_block_size.default, (ids, 16, 8, *align_outputs())),
        (ops.moe_align_block_size.default, (ids.long(), 16, 8, *align_outputs(), emap)),
        (ops.moe_align_block_size.default, (ids, 16, 8, *align_outputs(), None, False)),
        (ops.moe_sum.default, (torch.empty(9, 96, device=device, dtype=torch.bfloat16),
                               torch.randn(9, 8, 96, device=device, dtype=torch.bfloat16))),
        (ops.moe_sum.default, (torch.empty(9, 40, device=device), torch.randn(8, 9, 40, device=device).transpose(0, 1))),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    for op, args in _samples(device):
        opcheck(op, args)  # every default check: schema, autograd registration, fake, aot dispatch


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    def route(g, bias):
        weights, ids = flashhip.moe_topk(g, 8, bias, **DEEPSEEK)
        sorted_ids, expert_ids, total = flashhip.moe_align_block_size(ids, 256, 64)
        combined = flashhip.moe_sum(expert_out * weights[:, :, None])  # fp32: no downcast for inductor to elide
        return weights * 2, ids, sorted_ids, expert_ids, total, combined

    compiled = torch.compile(route, fullgraph=True)
    g = torch.randn(33, 256, device=device, dtype=torch.bfloat16)
    bias = torch.randn(256, device=device) * 0.05
    expert_out = torch.randn(33, 8, 128, device=device)
    for got, want in zip(compiled(g, bias), route(g, bias)):
        torch.testing.assert_close(got, want)


# ---- Bad inputs: a RuntimeError naming the argument, and nothing written ----

def _bad_cases():
    g = torch.randn(4, 64)
    w = torch.empty(4, 8)
    i = torch.empty(4, 8, dtype=torch.int32)
    b = torch.zeros(64)
    ids = torch.randint(0, 16, (4, 8), dtype=torch.int32)
    ids[0, 0] = 0  # so that ids - 1 below surely holds an out-of-range id
    n = 32 + 16 * 15

    def align(ids=ids, experts=16, block=16, sorted_n=n, blocks_n=(n + 15) // 16, emap=None, **dtypes):
        return ("moe_align_block_size", (ids, experts, block, torch.zeros(sorted_n, dtype=dtypes.get("s", torch.int32)),
                                         torch.zeros(blocks_n, dtype=torch.int32),
                                         torch.zeros(dtypes.get("t", 1), dtype=torch.int32), emap))

    return [
        ("moe_topk", (torch.empty(4, 20), torch.empty(4, 20, dtype=torch.int32), torch.randn(4, 16), None, "softmax", 1, 1,
                      False, 1.0), "k = 20 experts per token but 'gating_output' has 16"),
        ("moe_topk", (torch.empty(4, 33), torch.empty(4, 33, dtype=torch.int32), g, None, "softmax", 1, 1, False, 1.0),
         "k = 33 experts per token; k must be 1 to 32"),
        ("moe_topk", (w, i, g, None, "softmax", 3, 1, False, 1.0), "'num_expert_group' \\(3\\) must be >= 1 and divide"),
        ("moe_topk", (w, i, g, None, "softmax", 8, 9, False, 1.0), "'topk_group' \\(9\\) must be 1 to num_expert_group"),
        ("moe_topk", (w, i, g, None, "softmax", 8, 0, False, 1.0), "'topk_group' \\(0\\) must be 1 to"),
        ("moe_topk", (w, i, g, b, "sigmoid", 16, 1, True, 2.5), "'topk_group' keeps 1 groups of 4 experts \\(4\\), fewer than k = 8"),
        ("moe_topk", (w, i, g, torch.zeros(63), "sigmoid", 1, 1, True, 1.0), "'correction_bias' must have shape \\[64\\]"),
        ("moe_topk", (w, i, g, b.half(), "sigmoid", 1, 1, True, 1.0), "'correction_bias' must have dtype Float"),
        ("moe_topk", (w, i, g, None, "relu", 1, 1, False, 1.0), "'scoring_func' must be 'softmax' or 'sigmoid'"),
        ("moe_topk", (w.half(), i, g, None, "softmax", 1, 1, False, 1.0), "'topk_weights' must have dtype Float"),
        ("moe_topk", (w, i.long(), g, None, "softmax", 1, 1, False, 1.0), "'topk_ids' must have dtype Int"),
        ("moe_topk", (torch.empty(5, 8), i, g, None, "softmax", 1, 1, False, 1.0), "'topk_weights' must have shape \\[4, k\\]"),
        ("moe_topk", (w, torch.empty(4, 6, dtype=torch.int32), g, None, "softmax", 1, 1, False, 1.0), "'topk_ids' must have the shape of 'topk_weights'"),
        ("moe_topk", (w, i, g.double(), None, "softmax", 1, 1, False, 1.0), "'gating_output' must have dtype"),
        ("moe_topk", (w, i, torch.randn(64, 4).t(), None, "softmax", 1, 1, False, 1.0), "'gating_output' must be contiguous in its innermost"),
        ("moe_topk", (w, i, g[None], None, "softmax", 1, 1, False, 1.0), "'gating_output' must be 2-D"),
        ("moe_topk", (w, i, g, None, "softmax", 1, 1, False, float("inf")), "'routed_scaling_factor' must be finite"),
        align(sorted_n=n - 1) + ("'sorted_token_ids' must hold at least 272 elements",),
        align(blocks_n=16) + ("'expert_ids' must hold at least 17 elements",),
        align(s=torch.int64) + ("'sorted_token_ids' must have dtype Int",),
        align(t=2) + ("'num_tokens_post_pad' must hold one int32",),
        align(ids=ids.float()) + ("'topk_ids' must have dtype Int, Long",),
        align(ids=ids + 16) + ("'topk_ids' holds ids outside 0..15",),
        align(ids=ids - 1) + ("'topk_ids' holds ids outside 0..15",),
        align(experts=0) + ("'num_experts' must be 1 to 1024",),
        align(block=0) + ("'block_size' must be 1 to",),
        align(emap=torch.zeros(15, dtype=torch.int32)) + ("'expert_map' must have shape \\[16\\]",),
        align(emap=torch.full((16,), 16, dtype=torch.int32)) + ("'expert_map' holds values outside -1..15",),
        align(emap=torch.full((16,), -2, dtype=torch.int32)) + ("'expert_map' holds values outside -1..15",),
        ("moe_sum", (torch.empty(4, 64), torch.randn(4, 8, 64).half()), "'output' must have the dtype of 'input'"),
        ("moe_sum", (torch.empty(4, 64), torch.randn(4, 64)), "'input' must be 3-D \\[tokens, topk, hidden\\]"),
        ("moe_sum", (torch.empty(4, 63), torch.randn(4, 8, 64)), "'output' must have shape \\[4, 64\\]"),
        ("moe_sum", (torch.empty(5, 64), torch.randn(4, 8, 64)), "'output' must have shape \\[4, 64\\]"),
        ("moe_sum", (torch.empty(4, 64), torch.randn(4, 64, 8).transpose(1, 2)), "'input' must be contiguous in its innermost"),
        ("moe_sum", (torch.empty(64, 4).t(), torch.randn(4, 8, 64)), "'output' must be contiguous in its innermost"),
        ("moe_sum", (torch.empty(4, 64, dtype=torch.float64), torch.randn(4, 8, 64).double()), "'input' must have dtype"),
        ("moe_sum", (torch.empty(4, 64, dtype=torch.int32), torch.randn(4, 8, 64)), "'output' must have the dtype of 'input'"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_is_named_and_nothing_is_written(case):
    name, args, message = _bad_cases()[case]
    snapshots = [a.clone() if isinstance(a, torch.Tensor) else None for a in args]
    with pytest.raises(RuntimeError, match=message):
        getattr(ops, name)(*args)
    for a, snap in zip(args, snapshots):
        if snap is not None:
            # Bytes, not values: the poisoned / uninitialised outputs may hold NaN.
            assert torch.equal(a.contiguous().view(torch.uint8), snap.contiguous().view(torch.uint8))


def test_moe_sum_output_must_not_share_memory_with_input():
    x = torch.randn(4, 2, 16)
    snapshot = x.clone()
    with pytest.raises(RuntimeError, match="'output' shares memory with 'input'"):
        ops.moe_sum(x[:, 0], x)  # slot 0's rows as the output
    with pytest.raises(RuntimeError, match="'output' shares memory with 'input'"):
        ops.moe_sum(x.view(-1)[8:72].view(4, 16), x)
    assert torch.equal(x, snapshot)


def test_align_outputs_must_not_share_memory():
    ids = torch.randint(0, 4, (2, 2), dtype=torch.int32)
    buf = torch.zeros(64, dtype=torch.int32)
    with pytest.raises(RuntimeError, match="output 'sorted_token_ids' shares memory with 'expert_ids'"):
        ops.moe_align_block_size(ids, 4, 4, buf[:20], buf[16:24], torch.zeros(1, dtype=torch.int32))


# ---- GPU only: agreement with the CPU, CUDA graphs, non-default streams ----

@requires_gpu
@pytest.mark.parametrize("tokens", [1, 64, 4096, 16384])
def test_gpu_matches_cpu(tokens):
    g = torch.randn(tokens, 256, dtype=torch.bfloat16)
    bias = torch.randn(256) * 0.05
    cpu_w, cpu_i = flashhip.moe_topk(g, 8, bias, **DEEPSEEK)
    gpu_w, gpu_i = flashhip.moe_topk(g.cuda(), 8, bias.cuda(), **DEEPSEEK)
    mask = decided(g, 8, bias, "sigmoid", 8, 4)
    assert_routing_matches(gpu_w.cpu(), gpu_i.cpu(), cpu_w, cpu_i, mask)
    # No bias: chosen by logits, bit-identical choices on both devices.
    assert torch.equal(flashhip.moe_topk(g.cuda(), 8)[1].cpu(), flashhip.moe_topk(g, 8)[1])
    for got, want in zip(flashhip.moe_align_block_size(cpu_i.cuda(), 256, 64), flashhip.moe_align_block_size(cpu_i, 256, 64)):
        assert torch.equal(got.cpu(), want)


@requires_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_moe_sum_matches_cpu(dtype):
    # The same additions in the same order: the same bits, on the vector and the scalar path.
    for layout in ("contiguous", "unaligned"):
        x = moe_sum_inputs(4097, 8, 7168, dtype, "cpu", layout)
        got = flashhip.moe_sum(x.cuda()).cpu()
        assert torch.equal(got, flashhip.moe_sum(x)), layout


_LAYOUT_SCRIPT = """
import sys, torch, flashhip
torch.manual_seed(0)
g = torch.randn(333, 256).to(getattr(torch, sys.argv[1])).cuda()
bias = (torch.randn(256) * 0.05).cuda()
w, i = flashhip.moe_topk(g, 8, bias, scoring_func="sigmoid", num_expert_group=8, topk_group=4, renormalize=True,
                         routed_scaling_factor=2.5)
torch.save((w.cpu(), i.cpu()), sys.argv[2])
"""


@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_deepseek_v3_layouts_agree(tmp_path, dtype):
    # DeepSeek-V3 runs the contiguous kernel with its shape compiled in; MoeTopkParams::layout,
    # set here through its development override FLASHHIP_DEV_MOE_TOPK_LAYOUT (read once per
    # process: one process each), forces the contiguous kernel with the shape read
    # at run time ("contiguous") or the strided kernel ("strided"). Sigmoid routing takes the same
    # float ops on all three, so weights and ids are bit-identical.
    variants = {  # env value -> what the kernel log must say
        None: "DeepSeek-V3 shape compiled in",
        "contiguous": " contiguous, wide loads,",
        "strided": " strided",
    }
    results = {}
    for layout, logged_as in variants.items():
        env = {k: v for k, v in os.environ.items() if k != "FLASHHIP_DEV_MOE_TOPK_LAYOUT"}
        env["FLASHHIP_LOG_KERNEL"] = "1"
        if layout is not None:
            env["FLASHHIP_DEV_MOE_TOPK_LAYOUT"] = layout
        out = tmp_path / f"{layout}.pt"
        proc = subprocess.run([sys.executable, "-c", _LAYOUT_SCRIPT, dtype, str(out)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        logged = [line for line in proc.stderr.splitlines() if "flashhip.moe_topk" in line]
        assert logged and logged_as in logged[0], proc.stderr
        if layout == "contiguous":
            assert "compiled in" not in logged[0], logged[0]
        results[layout] = torch.load(out)
    for layout in ("contiguous", "strided"):
        assert torch.equal(results[None][1], results[layout][1]), layout
        assert torch.equal(results[None][0], results[layout][0]), layout


@requires_gpu
def test_cuda_graph_capture_and_replay():
    g = torch.randn(512, 256, device="cuda", dtype=torch.bfloat16)
    bias = torch.randn(256, device="cuda") * 0.05
    weights = torch.empty(512, 8, device="cuda")
    ids = torch.empty(512, 8, dtype=torch.int32, device="cuda")
    n = ids.numel() + 256 * 63
    sorted_ids = torch.empty(n, dtype=torch.int32, device="cuda")
    expert_ids = torch.empty((n + 63) // 64, dtype=torch.int32, device="cuda")
    total = torch.empty(1, dtype=torch.int32, device="cuda")

    def step():
        ops.moe_topk(weights, ids, g, bias, "sigmoid", 8, 4, True, 2.5)
        ops.moe_align_block_size(ids, 256, 64, sorted_ids, expert_ids, total)

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture
        step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for _ in range(2):
        g.copy_(torch.randn_like(g))
        weights.fill_(float("nan"))
        sorted_ids.fill_(-5)
        graph.replay()
        torch.cuda.synchronize()
        assert_routing_matches(weights, ids, *ref.moe_topk(g, 8, bias, **DEEPSEEK), decided(g, 8, bias, "sigmoid", 8, 4))
        for got, want in zip((sorted_ids, expert_ids, total), ref.moe_align_block_size(ids, 256, 64)):
            assert torch.equal(got, want)


@requires_gpu
def test_non_default_stream_orders_with_its_work():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        a = torch.randn(4096, 4096, device="cuda")
        g = torch.zeros(4096, 256, device="cuda")
        # Queued behind a long matmul on the same stream: launching on the default stream
        # instead would read g before it is written.
        g.copy_((a @ torch.eye(4096, device="cuda"))[:, :256])
        weights, ids = flashhip.moe_topk(g, 8)
        sorted_ids, expert_ids, total = flashhip.moe_align_block_size(ids, 256, 64)
    stream.synchronize()
    assert_routing_matches(weights, ids, *ref.moe_topk(g, 8))
    for got, want in zip((sorted_ids, expert_ids, total), ref.moe_align_block_size(ids, 256, 64)):
        assert torch.equal(got, want)
