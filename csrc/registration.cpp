// Every schema of the flashhip library, and nothing else. Engine-facing ops write into arguments
// marked (a!) and return nothing, so they capture into CUDA graphs and trace under torch.compile
// without allocating.
#include <torch/library.h>

TORCH_LIBRARY(flashhip, m) {
  // ---- Normalisation (OPS.md §1) ----
  m.def("rmsnorm(Tensor(a!) out, Tensor input, Tensor weight, float eps, bool gemma) -> ()");
  m.def("fused_add_rmsnorm(Tensor(a!) input, Tensor(b!) residual, Tensor weight, float eps, bool gemma) -> ()");
  m.def("layernorm(Tensor(a!) out, Tensor input, Tensor weight, Tensor? bias, float eps) -> ()");
  m.def("rmsnorm_quant(Tensor(a!) out, Tensor input, Tensor weight, Tensor scale, float eps, bool gemma) -> ()");
  m.def(
      "fused_add_rmsnorm_quant(Tensor(a!) out, Tensor input, Tensor(b!) residual, Tensor weight, Tensor scale, "
      "float eps, bool gemma) -> ()");

  // ---- Rotary embedding (OPS.md §2) ----
  m.def(
      "rope(Tensor(a!) q_out, Tensor(b!) k_out, Tensor q, Tensor k, Tensor cos_sin_cache, Tensor positions, "
      "bool interleave) -> ()");
}
