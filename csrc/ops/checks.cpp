#include "checks.h"

#include <algorithm>
#include <utility>

#include <ATen/MemoryOverlap.h>
#include <c10/util/SmallVector.h>
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

namespace {

// A view's bytes as runs: `count` runs of `run_bytes` contiguous bytes, `stride_bytes` apart,
// the first at `start`. Dimensions of one element or of stride 0 (broadcast) add no bytes. Not
// every view is such a lattice (two outer strides, say): `exact` is then false and only the
// span [lo, hi) is known.
struct ByteRuns {
  int64_t start = 0, run_bytes = 0, count = 1, stride_bytes = 0;
  int64_t lo = 0, hi = 0;
  bool exact = false;
};

ByteRuns byte_runs(const at::Tensor& t) {
  const int64_t elem = static_cast<int64_t>(t.element_size());
  ByteRuns r;
  r.start = static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.data_ptr()));
  r.lo = r.start, r.hi = r.start + elem;
  c10::SmallVector<std::pair<int64_t, int64_t>, 8> dims;  // (stride bytes, size), moving dimensions only
  bool negative = false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) <= 1 || t.stride(d) == 0) continue;
    const int64_t extent = (t.size(d) - 1) * t.stride(d) * elem;
    (extent < 0 ? r.lo : r.hi) += extent;
    negative |= t.stride(d) < 0;
    dims.emplace_back(t.stride(d) * elem, t.size(d));
  }
  if (negative) return r;  // torch makes no such views; the span alone decides
  std::sort(dims.begin(), dims.end());
  // Innermost dimensions that continue one another form the run; at most one stride is left.
  r.run_bytes = elem;
  size_t d = 0;
  while (d < dims.size() && dims[d].first == r.run_bytes) r.run_bytes *= dims[d++].second;
  // Outer dimensions that continue one another (a [tokens, heads] grid of rows out of a fused
  // buffer) step as one stride.
  c10::SmallVector<std::pair<int64_t, int64_t>, 8> outer(dims.begin() + d, dims.end());
  for (size_t i = 1; i < outer.size();) {
    if (outer[i].first == outer[i - 1].first * outer[i - 1].second) {
      outer[i - 1].second *= outer[i].second;
      outer.erase(outer.begin() + i);
    } else {
      ++i;
    }
  }
  if (outer.size() > 1) return r;
  if (outer.size() == 1) r.stride_bytes = outer[0].first, r.count = outer[0].second;
  r.exact = true;
  return r;
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Runs i of a and j of b share a byte iff (i - j) * S lies strictly between delta - run_a and
// delta + run_b (delta = b's start - a's start): the smallest such k in range decides.
bool runs_meet(const ByteRuns& a, const ByteRuns& b, int64_t stride) {
  const int64_t delta = b.start - a.start;
  const int64_t k_lo = -(b.count - 1), k_hi = a.count - 1;
  const int64_t k = std::max(k_lo, floor_div(delta - a.run_bytes, stride) + 1);  // first k*S above the low end
  return k <= k_hi && k * stride < delta + b.run_bytes;
}

}  // namespace

MemoryRelation memory_relation(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return MemoryRelation::kSeparate;
  const ByteRuns ra = byte_runs(a), rb = byte_runs(b);
  if (ra.hi <= rb.lo || rb.hi <= ra.lo) return MemoryRelation::kSeparate;
  bool same = a.data_ptr() == b.data_ptr() && a.sizes() == b.sizes() && a.element_size() == b.element_size();
  for (int64_t d = 0; same && d < a.dim(); ++d) same = a.size(d) <= 1 || a.stride(d) == b.stride(d);
  if (same) return MemoryRelation::kSame;
  // Interleaved views of one buffer (q and k of a fused qkv, say): exact when both are lattices
  // of one stride (or one of them a single run).
  if (ra.exact && rb.exact) {
    const int64_t stride = ra.count > 1 ? ra.stride_bytes : rb.stride_bytes;
    const bool one_stride = ra.count == 1 || rb.count == 1 || ra.stride_bytes == rb.stride_bytes;
    if (one_stride && (stride == 0 ? false : !runs_meet(ra, rb, stride))) return MemoryRelation::kSeparate;
  }
  return MemoryRelation::kOverlap;
}

void check_separate(const char* op, const char* arg, const at::Tensor& out, const char* other_arg,
                    const at::Tensor& other) {
  TORCH_CHECK(memory_relation(out, other) == MemoryRelation::kSeparate, op, ": output '", arg,
              "' shares memory with '", other_arg, "' (or could not be shown not to); pass separate memory");
}

void check_in_place_or_separate(const char* op, const char* arg, const at::Tensor& out, const char* in_arg,
                                const at::Tensor& in) {
  TORCH_CHECK(memory_relation(out, in) != MemoryRelation::kOverlap, op, ": output '", arg, "' overlaps '", in_arg,
              "' without being it; pass '", in_arg, "' itself (in place) or separate memory");
}

RowView rows_and_hidden(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.dim() >= 1, op, ": argument '", arg, "' must have at least one dimension [..., hidden], got a scalar");
  RowView view;
  view.hidden = t.size(-1);
  TORCH_CHECK(t.stride(-1) == 1 || view.hidden <= 1, op, ": argument '", arg,
              "' must be contiguous in its innermost dimension (stride 1), got stride ", t.stride(-1));
  view.rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) view.rows *= t.size(d);
  return view;
}

RowView row_view(const char* op, const char* arg, const at::Tensor& t) {
  RowView view = rows_and_hidden(op, arg, t);
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

void check_apart(const char* op, NamedTensors outputs, NamedTensors others) {
  for (const auto& [out_name, out] : outputs)
    for (const auto& [other_name, other] : others) check_separate(op, out_name, *out, other_name, *other);
}

}  // namespace flashhip::ops
