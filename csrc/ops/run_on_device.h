// The tail every op wrapper shares: run on the CPU or on the tensor's GPU (device guard, the
// caller's current stream, the launch check), log the variant once (FLASHHIP_LOG_KERNEL), and
// the error of a build without GPU kernels.
#pragma once

#include <string>
#include <utility>

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "kernel_log.h"
#include "op_support.h"

namespace flashhip::ops {

// "cpu (BFloat16)": how the CPU implementations are logged.
inline std::string cpu_variant(at::ScalarType dtype) { return std::string("cpu (") + c10::toString(dtype) + ")"; }

// cpu() runs the CPU implementation and returns a callable naming its variant for the log;
// gpu(stream) launches and returns the LaunchStatus and a callable naming the variant, as a
// std::pair. The callables run only when the log is on.
template <typename Cpu, typename Gpu>
void run_on_device(const char* op, const at::Tensor& on, Cpu&& cpu, Gpu&& gpu) {
  if (on.is_cpu()) {
    auto describe = cpu();
    if (kernel_log_enabled()) log_kernel_once(op, describe(), "cpu");
    return;
  }
#ifdef FLASHHIP_WITH_GPU
  const c10::DeviceGuard guard(on.device());
  auto [status, describe] = gpu(current_stream(on));
  check_launch(op, status);
  if (kernel_log_enabled()) log_kernel_once(op, describe(), on.device().str());
#else
  (void)gpu;
  TORCH_CHECK(false, op, ": this flashhip build has no GPU kernels (built with FLASHHIP_GPU=OFF)");
#endif
}

}  // namespace flashhip::ops
