// Helpers shared by the C++ op tests.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/cuda.h>

namespace flashhip::testing {

// The CPU, and the first GPU when torch sees one.
inline std::vector<c10::Device> devices() {
  std::vector<c10::Device> out = {c10::Device(c10::kCPU)};
  if (torch::cuda::is_available()) out.emplace_back(c10::kCUDA, 0);
  return out;
}

// The message of the c10::Error f throws, or "" when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

}  // namespace flashhip::testing
