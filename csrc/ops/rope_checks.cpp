#include "rope_checks.h"

#include "checks.h"

namespace flashhip::ops {
namespace {

template <typename TPos>
void check_positions_on_host(const char* op, const char* arg, const at::Tensor& positions, int64_t max_positions) {
  const TPos* data = positions.data_ptr<TPos>();
  const int64_t stride = positions.stride(0);
  for (int64_t i = 0; i < positions.size(0); ++i) {
    const int64_t value = static_cast<int64_t>(data[i * stride]);
    TORCH_CHECK(value >= 0 && value < max_positions, op, ": argument '", arg, "' holds ", value, " at index ", i,
                ", outside the ", max_positions, " rows of 'cos_sin_cache' (positions must be in [0, ",
                max_positions, "))");
  }
}

}  // namespace

void check_innermost_contiguous(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.stride(-1) == 1 || t.size(-1) <= 1, op, ": argument '", arg,
              "' must be contiguous in its innermost dimension (stride 1), got stride ", t.stride(-1));
}

void check_positions(const char* op, const char* arg, const at::Tensor& positions, const char* ref_arg,
                     const at::Tensor& ref) {
  check_same_device(op, arg, positions, ref);
  check_dtype(op, arg, positions, {at::kInt, at::kLong});
  TORCH_CHECK(positions.dim() == 1 && positions.size(0) == ref.size(0), op, ": argument '", arg,
              "' must have shape [", ref.size(0), "] (one per token of '", ref_arg, "'), got ", positions.sizes());
}

int64_t check_cos_sin_cache(const char* op, const at::Tensor& cos_sin_cache, const at::Tensor& ref) {
  check_same_device(op, "cos_sin_cache", cos_sin_cache, ref);
  check_dtype(op, "cos_sin_cache", cos_sin_cache, {at::kFloat});
  TORCH_CHECK(cos_sin_cache.dim() == 2, op,
              ": argument 'cos_sin_cache' must be 2-D [max_positions, rotary_dim], got shape ", cos_sin_cache.sizes());
  check_innermost_contiguous(op, "cos_sin_cache", cos_sin_cache);
  const int64_t rotary_dim = cos_sin_cache.size(1);
  TORCH_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, op, ": argument 'cos_sin_cache' has rotary_dim (size(1)) ",
              rotary_dim, "; it must be a positive even number (cos in the first half, sin in the second)");
  return rotary_dim;
}

void check_positions_in_cache(const char* op, const char* arg, const at::Tensor& positions,
                              const at::Tensor& cos_sin_cache) {
  if (!positions.is_cpu()) return;
  if (positions.scalar_type() == at::kInt) {
    check_positions_on_host<int32_t>(op, arg, positions, cos_sin_cache.size(0));
  } else {
    check_positions_on_host<int64_t>(op, arg, positions, cos_sin_cache.size(0));
  }
}

}  // namespace flashhip::ops
