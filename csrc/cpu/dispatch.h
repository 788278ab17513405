// The CPU implementations' dtype switch: calls f(T{}) with the c10 element type of an
// activation dtype. The ops have checked the dtype, so any other is an internal error, reported
// the same way by every op.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include "flashhip/platform/dtypes.h"

namespace flashhip::cpu {

template <typename F>
void dispatch_activation(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat16: return f(c10::Half{});
    case DType::kBFloat16: return f(c10::BFloat16{});
    default: TORCH_INTERNAL_ASSERT(false, op, ": no CPU implementation for dtype ", static_cast<int>(dtype));
  }
}

}  // namespace flashhip::cpu
