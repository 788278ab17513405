// Loads the TorchScript module that make_module.py saved (it calls torch.ops.flashhip.rmsnorm and
// torch.ops.flashhip.moe_topk), runs it on random CPU inputs and checks its outputs against the
// same computation written in plain libtorch.
//
// Usage: flashhip_torchscript_example MODULE.pt
//
// Nothing here names a flashhip symbol: the module reaches the ops through torch's dispatcher,
// which knows them once libflashhip_ops.so's static registrations (TORCH_LIBRARY) have run. That
// is why the program links the library with --no-as-needed (see CMakeLists.txt).
#include <torch/script.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODULE.pt\n", argv[0]);
    return 2;
  }
  try {
    torch::jit::Module module = torch::jit::load(argv[1]);
    module.eval();

    torch::manual_seed(0);
    const int64_t tokens = 16, hidden = 256, experts = 8, topk = 2;
    const auto x = torch::randn({tokens, hidden});
    const auto weight = torch::randn({hidden});
    const auto router = torch::randn({experts, hidden});

    const auto outputs = module.forward({x, weight, router}).toTuple()->elements();
    const auto normed = outputs[0].toTensor();
    const auto topk_weights = outputs[1].toTensor();
    const auto topk_ids = outputs[2].toTensor();

    // rmsnorm: x / sqrt(mean(x^2) + eps) * weight
    const auto ref_normed = x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + 1e-6) * weight;
    const double norm_err = (normed - ref_normed).abs().max().item<double>();
    const bool norm_ok = norm_err <= 1e-4;
    std::printf("torchscript_cpp: rmsnorm %s (max err %.3g)\n", norm_ok ? "ok" : "MISMATCH", norm_err);

    // moe_topk with softmax scoring, one group, no renormalisation: the k best softmax scores.
    // Routed from the module's own normed output, so an rmsnorm error cannot flip an expert here.
    const auto scores = torch::softmax(torch::matmul(normed, router.t()), -1);
    const auto ref = scores.topk(topk, -1);
    const auto ref_weights = std::get<0>(ref);
    const auto ref_ids = std::get<1>(ref).to(torch::kInt32);
    const double topk_err = (topk_weights - ref_weights).abs().max().item<double>();
    const bool ids_ok = torch::equal(topk_ids, ref_ids);
    const bool topk_ok = ids_ok && topk_err <= 1e-5;
    std::printf("torchscript_cpp: moe_topk %s (ids %s, max weight err %.3g)\n", topk_ok ? "ok" : "MISMATCH",
                ids_ok ? "equal" : "DIFFER", topk_err);

    return norm_ok && topk_ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torchscript_cpp: FAILED: %s\n", e.what());
    return 1;
  }
}
