// Torch wrapper of the rotary embedding: argument checks, then the CPU implementation or the
// GPU launcher on the caller's current stream. One function serves both devices.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "checks.h"
#include "cpu/rope.h"
#include "flashhip/kernels/rope/rope.h"
#include "dev_overrides.h"
#include "kernel_log.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::IndexType;
using kernels::RopeParams;

constexpr const char* kOp = "flashhip.rope";

void check_innermost_contiguous(const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.stride(-1) == 1 || t.size(-1) <= 1, kOp, ": argument '", arg,
              "' must be contiguous in its innermost dimension (stride 1), got stride ", t.stride(-1));
}

// [nnz, heads, head_dim] in a q/k dtype, innermost contiguous.
void check_heads(const char* arg, const at::Tensor& t, const char* heads_name) {
  TORCH_CHECK(t.dim() == 3, kOp, ": argument '", arg, "' must be 3-D [nnz, ", heads_name, ", head_dim], got shape ",
              t.sizes());
  check_innermost_contiguous(arg, t);
}

// An output may be its own input (in place) or separate memory, never a different view of it.
void check_output(const char* arg, const at::Tensor& out, const char* in_arg, const at::Tensor& in) {
  check_same_device(kOp, arg, out, in);
  check_same_dtype(kOp, arg, out, in, in_arg);
  check_same_shape(kOp, arg, out, in, in_arg);
  check_innermost_contiguous(arg, out);
  check_writable(kOp, arg, out);
  check_in_place_or_separate(kOp, arg, out, in_arg, in);
}

// The element stride of dimension d, or 0 where the dimension has one element (any stride is
// valid there, and 0 keeps it from defeating the vector path).
int64_t stride_of(const at::Tensor& t, int64_t d) { return t.size(d) == 1 ? 0 : t.stride(d); }

// Every position must name a row of the cache. Read on the host, so CPU tensors only.
template <typename TPos>
void check_positions_on_host(const at::Tensor& positions, int64_t max_positions) {
  const TPos* data = positions.data_ptr<TPos>();
  const int64_t stride = positions.stride(0);
  for (int64_t i = 0; i < positions.size(0); ++i) {
    const int64_t value = static_cast<int64_t>(data[i * stride]);
    TORCH_CHECK(value >= 0 && value < max_positions, kOp, ": argument 'positions' holds ", value, " at index ", i,
                ", outside the ", max_positions, " rows of 'cos_sin_cache' (positions must be in [0, ",
                max_positions, "))");
  }
}

std::string describe(const kernels::RopeLaunchInfo& info, at::ScalarType dtype, bool interleave) {
  return std::string(info.variant) + " (" + c10::toString(dtype) + (interleave ? ", interleaved" : ", neox") +
         ", vec " + std::to_string(info.vec) + ", " + std::to_string(info.chunks_per_head) + " chunks/head, " +
         std::to_string(info.head_lanes) + " head lanes, <= " + std::to_string(info.heads_per_thread) +
         " heads/thread, wave " + std::to_string(info.wave) + ")";
}

void rope(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
          const at::Tensor& cos_sin_cache, const at::Tensor& positions, bool interleave) {
  check_device(kOp, "q", q);
  check_dtype(kOp, "q", q, {at::kHalf, at::kBFloat16, at::kFloat});
  check_heads("q", q, "num_q_heads");
  check_same_device(kOp, "k", k, q);
  check_same_dtype(kOp, "k", k, q, "q");
  check_heads("k", k, "num_k_heads");
  const int64_t nnz = q.size(0);
  const int64_t head_dim = q.size(2);
  TORCH_CHECK(k.size(0) == nnz, kOp, ": argument 'k' has ", k.size(0), " tokens but 'q' has ", nnz,
              "; both must be [nnz, heads, head_dim] with the same nnz");
  TORCH_CHECK(k.size(2) == head_dim, kOp, ": argument 'k' has head_dim ", k.size(2), " but 'q' has ", head_dim);

  check_same_device(kOp, "cos_sin_cache", cos_sin_cache, q);
  check_dtype(kOp, "cos_sin_cache", cos_sin_cache, {at::kFloat});
  TORCH_CHECK(cos_sin_cache.dim() == 2, kOp, ": argument 'cos_sin_cache' must be 2-D [max_positions, rotary_dim], got shape ",
              cos_sin_cache.sizes());
  check_innermost_contiguous("cos_sin_cache", cos_sin_cache);
  const int64_t rotary_dim = cos_sin_cache.size(1);
  TORCH_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, kOp, ": argument 'cos_sin_cache' has rotary_dim (size(1)) ",
              rotary_dim, "; it must be a positive even number (cos in the first half, sin in the second)");
  TORCH_CHECK(rotary_dim <= head_dim, kOp, ": argument 'cos_sin_cache' has rotary_dim (size(1)) ", rotary_dim,
              ", larger than the head_dim ", head_dim, " of 'q' and 'k'");

  check_same_device(kOp, "positions", positions, q);
  check_dtype(kOp, "positions", positions, {at::kInt, at::kLong});
  TORCH_CHECK(positions.dim() == 1 && positions.size(0) == nnz, kOp, ": argument 'positions' must have shape [", nnz,
              "] (one per token of 'q'), got ", positions.sizes());

  check_output("q_out", q_out, "q", q);
  check_output("k_out", k_out, "k", k);
  check_separate(kOp, "q_out", q_out, "k", k);
  check_separate(kOp, "k_out", k_out, "q", q);
  check_separate(kOp, "q_out", q_out, "k_out", k_out);
  check_separate(kOp, "q_out", q_out, "cos_sin_cache", cos_sin_cache);
  check_separate(kOp, "k_out", k_out, "cos_sin_cache", cos_sin_cache);
  check_separate(kOp, "q_out", q_out, "positions", positions);
  check_separate(kOp, "k_out", k_out, "positions", positions);
  TORCH_CHECK(q.size(1) <= INT32_MAX && k.size(1) <= INT32_MAX && head_dim <= INT32_MAX, kOp,
              ": head counts and head_dim must fit in 32 bits");

  if (nnz == 0) return;
  if (positions.is_cpu()) {
    if (positions.scalar_type() == at::kInt) {
      check_positions_on_host<int32_t>(positions, cos_sin_cache.size(0));
    } else {
      check_positions_on_host<int64_t>(positions, cos_sin_cache.size(0));
    }
  }

  RopeParams p;
  p.q_out = q_out.data_ptr();
  p.k_out = k_out.data_ptr();
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.cos_sin_cache = cos_sin_cache.data_ptr<float>();
  p.positions = positions.data_ptr();
  p.q_token_stride = stride_of(q, 0);
  p.q_head_stride = stride_of(q, 1);
  p.k_token_stride = stride_of(k, 0);
  p.k_head_stride = stride_of(k, 1);
  p.q_out_token_stride = stride_of(q_out, 0);
  p.q_out_head_stride = stride_of(q_out, 1);
  p.k_out_token_stride = stride_of(k_out, 0);
  p.k_out_head_stride = stride_of(k_out, 1);
  p.cache_row_stride = stride_of(cos_sin_cache, 0);
  p.positions_stride = stride_of(positions, 0);
  p.nnz = nnz;
  p.max_positions = cos_sin_cache.size(0);
  p.num_q_heads = static_cast<int>(q.size(1));
  p.num_k_heads = static_cast<int>(k.size(1));
  p.head_dim = static_cast<int>(head_dim);
  p.rotary_dim = static_cast<int>(rotary_dim);
  p.copy_q_tail = q_out.data_ptr() != q.data_ptr();
  p.copy_k_tail = k_out.data_ptr() != k.data_ptr();
  p.interleave = interleave;
  p.dtype = kernel_dtype(q.scalar_type());
  p.positions_type = positions.scalar_type() == at::kInt ? IndexType::kInt32 : IndexType::kInt64;

  apply_dev_overrides(p);
  kernels::RopeLaunchInfo info;
  run_on_device(
      kOp, q,
      [&] {
        cpu::rope(p);
        return [&] { return cpu_variant(q.scalar_type()); };
      },
      [&](auto stream) {
        return std::make_pair(kernels::launch_rope(p, stream, &info),
                              [&] { return describe(info, q.scalar_type(), interleave); });
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) { m.impl("rope", &rope); }

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) { m.impl("rope", &rope); }
#endif

}  // namespace flashhip::ops
