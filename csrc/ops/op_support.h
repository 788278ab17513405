// What op wrappers need beside the argument checks: the kernels' dtype tag of a tensor, the
// caller's stream, and the launch check.
#pragma once

#include <ATen/ATen.h>

#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/launch.h"

namespace flashhip::ops {

DType kernel_dtype(at::ScalarType t);

// The caller's current stream on t's device.
StreamHandle current_stream(const at::Tensor& t);

#ifdef FLASHHIP_WITH_GPU
// Throws with the runtime's message if a launch failed (its own message if no kernel variant
// was built for the call).
void check_launch(const char* op, LaunchStatus status);
#endif

}  // namespace flashhip::ops
