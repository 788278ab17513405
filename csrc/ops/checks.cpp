#include "checks.h"

#include <ATen/MemoryOverlap.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

namespace flashhip::ops {

void check_device(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.defined(), op, ": argument '", arg, "' is undefined");
  TORCH_CHECK(t.device().is_cpu() || t.device().is_cuda(), op, ": argument '", arg,
              "' must be on the CPU or a GPU, got ", t.device());
}

void check_same_device(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref) {
  check_device(op, arg, t);
  TORCH_CHECK(t.device() == ref.device(), op, ": argument '", arg, "' must be on ", ref.device(),
              " like the input, got ", t.device());
}

void check_dtype(const char* op, const char* arg, const at::Tensor& t, std::initializer_list<at::ScalarType> allowed) {
  for (const auto dtype : allowed) {
    if (t.scalar_type() == dtype) return;
  }
  std::string names;
  for (const auto dtype : allowed) names += std::string(names.empty() ? "" : ", ") + c10::toString(dtype);
  TORCH_CHECK(false, op, ": argument '", arg, "' must have dtype ", names, "; got ", t.scalar_type());
}

void check_same_dtype(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref, const char* ref_arg) {
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": argument '", arg, "' must have the dtype of '", ref_arg,
              "' (", ref.scalar_type(), "), got ", t.scalar_type());
}

void check_same_shape(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref, const char* ref_arg) {
  TORCH_CHECK(t.sizes() == ref.sizes(), op, ": argument '", arg, "' must have the shape of '", ref_arg, "' ",
              ref.sizes(), ", got ", t.sizes());
}

void check_shape(const char* op, const char* arg, const at::Tensor& t, at::IntArrayRef expected) {
  TORCH_CHECK(t.sizes() == expected, op, ": argument '", arg, "' must have shape ", expected, ", got ", t.sizes());
}

void check_writable(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(at::has_internal_overlap(t) != at::MemOverlap::Yes, op, ": output '", arg,
              "' has elements that share memory (an expanded or overlapping view); pass a tensor it can write");
}

void check_no_partial_overlap(const char* op, const char* arg, const at::Tensor& out, const at::Tensor& in) {
  const auto overlap = at::get_overlap_status(out, in);
  TORCH_CHECK(overlap != at::MemOverlapStatus::Partial, op, ": output '", arg,
              "' partially overlaps an input; it may be the same tensor (in place) or separate memory");
}

RowView row_view(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.dim() >= 1, op, ": argument '", arg, "' must have at least one dimension [..., hidden], got a scalar");
  RowView view;
  view.hidden = t.size(-1);
  TORCH_CHECK(t.stride(-1) == 1 || view.hidden <= 1, op, ": argument '", arg,
              "' must be contiguous in its innermost dimension (stride 1), got stride ", t.stride(-1));
  view.rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) view.rows *= t.size(d);
  // Collapse the leading dimensions, innermost first: each must step over whole blocks of the
  // ones inside it.
  int64_t collapsed = 1;
  view.row_stride = -1;
  for (int64_t d = t.dim() - 2; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (view.row_stride < 0) {
      view.row_stride = t.stride(d);
    } else {
      TORCH_CHECK(t.stride(d) == view.row_stride * collapsed, op, ": argument '", arg,
                  "' has leading dimensions that cannot be viewed as one row dimension (sizes ", t.sizes(),
                  ", strides ", t.strides(), ")");
    }
    collapsed *= t.size(d);
  }
  if (view.row_stride < 0) view.row_stride = view.hidden;
  return view;
}

void check_contiguous(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.is_contiguous(), op, ": argument '", arg, "' must be contiguous");
}

}  // namespace flashhip::ops
