# Temporary: isolates a crash seen when a CUDA call is rejected by an argument check.
import sys
import torch
import flashhip  # noqa
ops = torch.ops.flashhip
dev = sys.argv[1]
w = torch.randn(128, device=dev)
print("bad weight shape:", flush=True)
try:
    ops.rmsnorm(torch.empty(4, 128, device=dev), torch.randn(4, 128, device=dev), torch.randn(7, device=dev), 1e-6, False)
except RuntimeError as e:
    print("  caught:", str(e).splitlines()[0], flush=True)
x_gaps = torch.randn(4, 6, 128, device=dev)[:, :5]
print("non-collapsible:", flush=True)
try:
    ops.rmsnorm(torch.empty(4, 5, 128, device=dev), x_gaps, w, 1e-6, False)
except RuntimeError as e:
    print("  caught:", str(e).splitlines()[0], flush=True)
