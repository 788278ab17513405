"""Where GPU and CPU rmsnorm_quant codes differ, and why: the fp32 normalised values, or the
float -> fp8 conversion. Prints fractions; a diagnostic, not a test."""

import torch

import flashhip

ops = torch.ops.flashhip
torch.manual_seed(0)
x = torch.randn(33, 5120, dtype=torch.bfloat16)
w = torch.randn(5120, dtype=torch.bfloat16)
scale = torch.tensor([0.02])
y_cpu = flashhip.rmsnorm(x.float(), w.float())
y_gpu = flashhip.rmsnorm(x.float().cuda(), w.float().cuda()).cpu()
print(f"fp32 rmsnorm GPU vs CPU: max rel diff {((y_gpu - y_cpu).abs() / y_cpu.abs().clamp_min(1e-6)).max():.3e}")
for dtype in (torch.float8_e4m3fn, torch.float8_e4m3fnuz):
    cpu = flashhip.rmsnorm_quant(x, w, scale, out_dtype=dtype)
    gpu = flashhip.rmsnorm_quant(x.cuda(), w.cuda(), scale.cuda(), out_dtype=dtype).cpu()
    limit = 448.0 if dtype == torch.float8_e4m3fn else 240.0
    # torch's own conversion of our fp32 result: isolates the conversion from the arithmetic.
    torch_of_gpu_values = (flashhip.rmsnorm(x.float().cuda(), w.float().cuda()) / scale.cuda()).clamp(-limit, limit).to(dtype).cpu()
    differ = (cpu.view(torch.uint8) != gpu.view(torch.uint8))
    print(f"{dtype}: codes differ GPU vs CPU {differ.float().mean():.4%}; GPU op vs torch conversion of GPU fp32 values "
          f"{(gpu.view(torch.uint8) != torch_of_gpu_values.view(torch.uint8)).float().mean():.4%}")
    if differ.any():
        idx = differ.nonzero()[:5]
        for r, c in idx.tolist():
            print(f"   [{r},{c}] y/scale cpu {y_cpu[r, c].item() / 0.02:.6f} gpu {y_gpu[r, c].item() / 0.02:.6f} "
                  f"codes cpu {cpu[r, c].float().item()} gpu {gpu[r, c].float().item()}")
