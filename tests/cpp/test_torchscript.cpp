// A TorchScript module that calls torch.ops.flashhip.* (saved by tests/fixtures/make_scripted.py)
// loads and runs from C++ with torch::jit::load.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cstdlib>

TEST(TorchScript, ScriptedModuleCallingFlashhipOpsRuns) {
  const char* path = std::getenv("FLASHHIP_SCRIPTED_MODULE");
  if (path == nullptr) {
    GTEST_SKIP() << "FLASHHIP_SCRIPTED_MODULE is not set: run tests/fixtures/make_scripted.py and point it at the "
                    "saved module (scripts/test.sh does both)";
  }
  torch::jit::Module module = torch::jit::load(path);
  const auto x = torch::randn({6, 128});
  const auto w = torch::randn({128});
  const auto out = module.forward({x, w}).toTensor();
  const auto ref = x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6) * w;
  EXPECT_TRUE(torch::allclose(out, ref, 1e-5, 1e-5));
}
