"""Writes the TorchScript module that main.cpp loads: one forward that normalises hidden states
with torch.ops.flashhip.rmsnorm and routes them to experts with torch.ops.flashhip.moe_topk.

Usage: python make_module.py OUT.pt

flashhip's ops write into outputs the caller allocates and return nothing, so the module
allocates them and returns them.
"""

import sys
from typing import Tuple

import torch

import flashhip  # noqa: F401  (loads libflashhip_ops.so, whose schemas torch.jit.script resolves)


class NormAndRoute(torch.nn.Module):
    def __init__(self, topk: int = 2):
        super().__init__()
        self.topk = topk

    def forward(self, x: torch.Tensor, weight: torch.Tensor, router: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        normed = torch.empty_like(x)
        torch.ops.flashhip.rmsnorm(normed, x, weight, 1e-6, False)
        logits = normed @ router.t()  # [tokens, experts]
        topk_weights = torch.empty(x.shape[0], self.topk, dtype=torch.float32, device=x.device)
        topk_ids = torch.empty(x.shape[0], self.topk, dtype=torch.int32, device=x.device)
        torch.ops.flashhip.moe_topk(topk_weights, topk_ids, logits, None, "softmax", 1, 1, False, 1.0)
        return normed, topk_weights, topk_ids


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python make_module.py OUT.pt")
    module = torch.jit.script(NormAndRoute())
    module.save(sys.argv[1])
    print(f"make_module: saved {sys.argv[1]}")
