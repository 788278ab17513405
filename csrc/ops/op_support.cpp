#include "op_support.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>

namespace flashhip::ops {

DType kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::kFloat32;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kFloat8_e4m3fn: return DType::kFloat8E4M3FN;
    case at::kFloat8_e4m3fnuz: return DType::kFloat8E4M3FNUZ;
    case at::kFloat8_e5m2: return DType::kFloat8E5M2;
    default: TORCH_CHECK(false, "flashhip: no kernel dtype for ", t);
  }
}

StreamHandle current_stream(const at::Tensor& t) {
  const c10::impl::VirtualGuardImpl guard_impl(t.device().type());
  return guard_impl.getStream(t.device()).native_handle();
}

#ifdef FLASHHIP_WITH_GPU
void check_launch(const char* op, LaunchStatus status) {
  TORCH_CHECK(!status.no_variant(), op, ": ", launch_error_string(status));
  TORCH_CHECK(status.ok(), op, ": kernel launch failed: ", launch_error_string(status));
}
#endif

}  // namespace flashhip::ops
