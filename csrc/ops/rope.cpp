// Torch wrappers of the rotary embedding: rope (cos|sin cache), rope_pos_ids (angles computed
// from the positions) and rope_set_kv_buffer (rope that also writes the KV cache). Argument
// checks, then the CPU implementation or the GPU launcher on the caller's current stream. One
// function per op serves both devices.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "checks.h"
#include "cpu/rope.h"
#include "flashhip/kernels/rope/rope.h"
#include "dev_overrides.h"
#include "kernel_log.h"
#include "rope_checks.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::IndexType;
using kernels::RopeParams;

constexpr const char* kOp = "flashhip.rope";
constexpr const char* kPosIdsOp = "flashhip.rope_pos_ids";
constexpr const char* kKvOp = "flashhip.rope_set_kv_buffer";

// [nnz, heads, head_dim] in a q/k dtype, innermost contiguous.
void check_heads(const char* op, const char* arg, const at::Tensor& t, const char* heads_name) {
  TORCH_CHECK(t.dim() == 3, op, ": argument '", arg, "' must be 3-D [nnz, ", heads_name, ", head_dim], got shape ",
              t.sizes());
  check_innermost_contiguous(op, arg, t);
}

// An output may be its own input (in place) or separate memory, never a different view of it.
void check_output(const char* op, const char* arg, const at::Tensor& out, const char* in_arg, const at::Tensor& in) {
  check_same_device(op, arg, out, in);
  check_same_dtype(op, arg, out, in, in_arg);
  check_same_shape(op, arg, out, in, in_arg);
  check_innermost_contiguous(op, arg, out);
  check_writable(op, arg, out);
  check_in_place_or_separate(op, arg, out, in_arg, in);
}

// q [nnz, Hq, head_dim] and k [nnz, Hk, head_dim] of one activation dtype on one device.
void check_q_and_k(const char* op, const at::Tensor& q, const at::Tensor& k) {
  check_device(op, "q", q);
  check_dtype(op, "q", q, {at::kHalf, at::kBFloat16, at::kFloat});
  check_heads(op, "q", q, "num_q_heads");
  check_same_device(op, "k", k, q);
  check_same_dtype(op, "k", k, q, "q");
  check_heads(op, "k", k, "num_k_heads");
  TORCH_CHECK(k.size(0) == q.size(0), op, ": argument 'k' has ", k.size(0), " tokens but 'q' has ", q.size(0),
              "; both must be [nnz, heads, head_dim] with the same nnz");
  TORCH_CHECK(k.size(2) == q.size(2), op, ": argument 'k' has head_dim ", k.size(2), " but 'q' has ", q.size(2));
  TORCH_CHECK(q.size(1) <= INT32_MAX && k.size(1) <= INT32_MAX && q.size(2) <= INT32_MAX, op,
              ": head counts and head_dim must fit in 32 bits");
}

// Outputs shaped like their inputs, each its own input or separate from every other argument.
void check_outputs(const char* op, const at::Tensor& q_out, const at::Tensor& k_out, const at::Tensor& q,
                   const at::Tensor& k, const char* positions_arg, const at::Tensor& positions) {
  check_output(op, "q_out", q_out, "q", q);
  check_output(op, "k_out", k_out, "k", k);
  check_separate(op, "q_out", q_out, "k", k);
  check_separate(op, "k_out", k_out, "q", q);
  check_separate(op, "q_out", q_out, "k_out", k_out);
  check_separate(op, "q_out", q_out, positions_arg, positions);
  check_separate(op, "k_out", k_out, positions_arg, positions);
}

// The cos|sin cache (rope_checks.h) with rotary_dim no larger than q's head_dim.
void check_cache_for_heads(const char* op, const at::Tensor& cos_sin_cache, const at::Tensor& q) {
  const int64_t head_dim = q.size(2);
  const int64_t rotary_dim = check_cos_sin_cache(op, cos_sin_cache, q);
  TORCH_CHECK(rotary_dim <= head_dim, op, ": argument 'cos_sin_cache' has rotary_dim (size(1)) ", rotary_dim,
              ", larger than the head_dim ", head_dim, " of 'q' and 'k'");
}

std::string describe(const kernels::RopeLaunchInfo& info, at::ScalarType dtype, bool interleave, bool computed,
                     bool kv_write) {
  return std::string(info.variant) + " (" + c10::toString(dtype) + (interleave ? ", interleaved" : ", neox") +
         (computed ? ", computed angles" : ", cos|sin cache") + (kv_write ? ", kv cache write" : "") +
         ", vec " + std::to_string(info.vec) + ", " + std::to_string(info.chunks_per_head) + " chunks/head, " +
         std::to_string(info.head_lanes) + " head lanes, <= " + std::to_string(info.heads_per_thread) +
         " heads/thread, wave " + std::to_string(info.wave) + ")";
}

// The parameters both ops share: pointers, strides, sizes, style, dtypes (no cos/sin source).
RopeParams params_of(const at::Tensor& q_out, const at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
                     const at::Tensor& positions, int rotary_dim, bool interleave) {
  RopeParams p;
  p.q_out = q_out.data_ptr();
  p.k_out = k_out.data_ptr();
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.positions = positions.data_ptr();
  p.q_token_stride = stride_of(q, 0);
  p.q_head_stride = stride_of(q, 1);
  p.k_token_stride = stride_of(k, 0);
  p.k_head_stride = stride_of(k, 1);
  p.q_out_token_stride = stride_of(q_out, 0);
  p.q_out_head_stride = stride_of(q_out, 1);
  p.k_out_token_stride = stride_of(k_out, 0);
  p.k_out_head_stride = stride_of(k_out, 1);
  p.positions_stride = stride_of(positions, 0);
  p.nnz = q.size(0);
  p.num_q_heads = static_cast<int>(q.size(1));
  p.num_k_heads = static_cast<int>(k.size(1));
  p.head_dim = static_cast<int>(q.size(2));
  p.rotary_dim = rotary_dim;
  p.copy_q_tail = q_out.data_ptr() != q.data_ptr();
  p.copy_k_tail = k_out.data_ptr() != k.data_ptr();
  p.interleave = interleave;
  p.dtype = kernel_dtype(q.scalar_type());
  p.positions_type = positions.scalar_type() == at::kInt ? IndexType::kInt32 : IndexType::kInt64;
  return p;
}

void run(const char* op, RopeParams& p, const at::Tensor& q) {
  apply_dev_overrides(p);
  const bool interleave = p.interleave;
  const bool computed = p.cos_sin_cache == nullptr;
  const bool kv_write = p.kv.k_cache != nullptr;
  kernels::RopeLaunchInfo info;
  run_on_device(
      op, q,
      [&] {
        cpu::rope(p);
        return [&] { return cpu_variant(q.scalar_type()); };
      },
      [&](auto stream) {
        return std::make_pair(kernels::launch_rope(p, stream, &info),
                              [&] { return describe(info, q.scalar_type(), interleave, computed, kv_write); });
      });
}

// The cache-reading parameters: rope's, plus the cos|sin source.
RopeParams cached_params_of(const at::Tensor& q_out, const at::Tensor& k_out, const at::Tensor& q,
                            const at::Tensor& k, const at::Tensor& cos_sin_cache, const at::Tensor& positions,
                            bool interleave) {
  RopeParams p = params_of(q_out, k_out, q, k, positions, static_cast<int>(cos_sin_cache.size(1)), interleave);
  p.cos_sin_cache = cos_sin_cache.data_ptr<float>();
  p.cache_row_stride = stride_of(cos_sin_cache, 0);
  p.max_positions = cos_sin_cache.size(0);
  return p;
}

void rope(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
          const at::Tensor& cos_sin_cache, const at::Tensor& positions, bool interleave) {
  check_q_and_k(kOp, q, k);
  check_cache_for_heads(kOp, cos_sin_cache, q);
  check_positions(kOp, "positions", positions, "q", q);

  check_outputs(kOp, q_out, k_out, q, k, "positions", positions);
  check_separate(kOp, "q_out", q_out, "cos_sin_cache", cos_sin_cache);
  check_separate(kOp, "k_out", k_out, "cos_sin_cache", cos_sin_cache);

  if (q.size(0) == 0) return;
  check_positions_in_cache(kOp, "positions", positions, cos_sin_cache);

  RopeParams p = cached_params_of(q_out, k_out, q, k, cos_sin_cache, positions, interleave);
  run(kOp, p, q);
}

// ---- rope_set_kv_buffer ----

// A KV-cache tensor [cache_slots, num_k_heads, head_dim] of k's dtype on q's device, writable.
void check_kv_cache(const char* arg, const at::Tensor& cache, const at::Tensor& k) {
  check_same_device(kKvOp, arg, cache, k);
  TORCH_CHECK(cache.scalar_type() == k.scalar_type(), kKvOp, ": argument '", arg, "' must have the dtype of 'k' (",
              k.scalar_type(), "), got ", cache.scalar_type(),
              "; a cache of another dtype (fp8 with k_scale/v_scale, say) is not supported, as in sgl-kernel");
  TORCH_CHECK(cache.dim() == 3 && cache.size(1) == k.size(1) && cache.size(2) == k.size(2), kKvOp, ": argument '",
              arg, "' must be 3-D [cache_slots, num_k_heads = ", k.size(1), ", head_dim = ", k.size(2), "], got shape ",
              cache.sizes());
  check_innermost_contiguous(kKvOp, arg, cache);
  check_writable(kKvOp, arg, cache);
}

// Every row of cache_loc names a cache row, and no row twice (tokens are written in parallel).
// Read on the host, so CPU tensors only.
void check_cache_loc_on_host(const at::Tensor& cache_loc, int64_t cache_slots) {
  if (!cache_loc.is_cpu()) return;  // on a GPU the kernel skips tokens whose row is outside (rope.h)
  const int64_t* data = cache_loc.data_ptr<int64_t>();
  const int64_t stride = cache_loc.stride(0);
  std::vector<std::pair<int64_t, int64_t>> rows(cache_loc.size(0));  // (row, token)
  for (int64_t i = 0; i < cache_loc.size(0); ++i) {
    const int64_t value = data[i * stride];
    TORCH_CHECK(value >= 0 && value < cache_slots, kKvOp, ": argument 'cache_loc' holds ", value, " at index ", i,
                ", outside the ", cache_slots, " rows of 'k_cache' and 'v_cache' (rows must be in [0, ", cache_slots,
                "))");
    rows[i] = {value, i};
  }
  std::sort(rows.begin(), rows.end());
  for (size_t i = 1; i < rows.size(); ++i) {
    TORCH_CHECK(rows[i].first != rows[i - 1].first, kKvOp, ": argument 'cache_loc' holds row ", rows[i].first,
                " at indices ", rows[i - 1].second, " and ", rows[i].second, "; each token needs a row of its own");
  }
}

// rope, and token t's rotated k heads and its v heads stored into row cache_loc[t] of k_cache
// and v_cache (sgl-kernel's apply_rope_with_cos_sin_cache_inplace with a FusedSetKVBufferArg).
void rope_set_kv_buffer(at::Tensor& q_out, at::Tensor& k_out, at::Tensor& k_cache, at::Tensor& v_cache,
                        const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos_sin_cache,
                        const at::Tensor& positions, const at::Tensor& cache_loc, bool interleave) {
  check_q_and_k(kKvOp, q, k);
  check_cache_for_heads(kKvOp, cos_sin_cache, q);
  check_positions(kKvOp, "positions", positions, "q", q);
  check_same_device(kKvOp, "v", v, q);
  check_same_dtype(kKvOp, "v", v, k, "k");
  check_same_shape(kKvOp, "v", v, k, "k");
  check_innermost_contiguous(kKvOp, "v", v);
  check_kv_cache("k_cache", k_cache, k);
  check_kv_cache("v_cache", v_cache, k);
  check_same_shape(kKvOp, "v_cache", v_cache, k_cache, "k_cache");
  TORCH_CHECK(k_cache.size(0) <= INT32_MAX, kKvOp, ": argument 'k_cache' has ", k_cache.size(0),
              " rows; at most 2^31 - 1 are supported");
  check_same_device(kKvOp, "cache_loc", cache_loc, q);
  check_dtype(kKvOp, "cache_loc", cache_loc, {at::kLong});
  TORCH_CHECK(cache_loc.dim() == 1 && cache_loc.size(0) == q.size(0), kKvOp, ": argument 'cache_loc' must have shape [",
              q.size(0), "] (one cache row per token of 'q'), got ", cache_loc.sizes());

  // Aliasing: q_out/k_out may be q/k themselves; the caches are separate from everything.
  check_outputs(kKvOp, q_out, k_out, q, k, "positions", positions);
  const std::pair<const char*, const at::Tensor*> inputs[] = {
      {"q", &q}, {"k", &k}, {"v", &v}, {"cos_sin_cache", &cos_sin_cache}, {"positions", &positions},
      {"cache_loc", &cache_loc}};
  for (const auto& [name, t] : inputs) {
    if (t != &q && t != &k && t != &positions) {  // those checked by check_outputs
      check_separate(kKvOp, "q_out", q_out, name, *t);
      check_separate(kKvOp, "k_out", k_out, name, *t);
    }
    check_separate(kKvOp, "k_cache", k_cache, name, *t);
    check_separate(kKvOp, "v_cache", v_cache, name, *t);
  }
  check_separate(kKvOp, "k_cache", k_cache, "q_out", q_out);
  check_separate(kKvOp, "k_cache", k_cache, "k_out", k_out);
  check_separate(kKvOp, "v_cache", v_cache, "q_out", q_out);
  check_separate(kKvOp, "v_cache", v_cache, "k_out", k_out);
  check_separate(kKvOp, "k_cache", k_cache, "v_cache", v_cache);

  if (q.size(0) == 0) return;
  check_positions_in_cache(kKvOp, "positions", positions, cos_sin_cache);
  check_cache_loc_on_host(cache_loc, k_cache.size(0));

  RopeParams p = cached_params_of(q_out, k_out, q, k, cos_sin_cache, positions, interleave);
  auto& kv = p.kv;
  kv.k_cache = k_cache.data_ptr();
  kv.v_cache = v_cache.data_ptr();
  kv.v = v.data_ptr();
  kv.cache_loc = cache_loc.data_ptr<int64_t>();
  kv.v_token_stride = stride_of(v, 0);
  kv.v_head_stride = stride_of(v, 1);
  kv.k_cache_slot_stride = stride_of(k_cache, 0);
  kv.k_cache_head_stride = stride_of(k_cache, 1);
  kv.v_cache_slot_stride = stride_of(v_cache, 0);
  kv.v_cache_head_stride = stride_of(v_cache, 1);
  kv.cache_loc_stride = stride_of(cache_loc, 0);
  kv.cache_slots = k_cache.size(0);
  run(kKvOp, p, q);
}

// rope_pos_ids: as rope, with pair i of a token at position p turned by p * inv_freq(i) computed
// in fp32 (rope_frequencies.h) instead of read from a cache.
void rope_pos_ids(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& pos_ids, int64_t rotary_dim, bool interleave, double rope_scale, double rope_theta,
                  bool llama31, double low_freq_factor, double high_freq_factor, double old_context_len) {
  check_q_and_k(kPosIdsOp, q, k);
  const int64_t head_dim = q.size(2);
  TORCH_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= head_dim, kPosIdsOp,
              ": argument 'rotary_dim' must be a positive even number no larger than the head_dim ", head_dim,
              " of 'q' and 'k', got ", rotary_dim);
  TORCH_CHECK(std::isfinite(rope_scale) && rope_scale > 0, kPosIdsOp,
              ": argument 'rope_scale' must be finite and positive, got ", rope_scale);
  TORCH_CHECK(std::isfinite(rope_theta) && rope_theta > 0, kPosIdsOp,
              ": argument 'rope_theta' must be finite and positive, got ", rope_theta);
  if (llama31) {
    TORCH_CHECK(std::isfinite(low_freq_factor) && low_freq_factor > 0, kPosIdsOp,
                ": argument 'low_freq_factor' must be finite and positive, got ", low_freq_factor);
    TORCH_CHECK(std::isfinite(high_freq_factor) && high_freq_factor > low_freq_factor, kPosIdsOp,
                ": argument 'high_freq_factor' (", high_freq_factor, ") must be finite and exceed 'low_freq_factor' (",
                low_freq_factor, ")");
    TORCH_CHECK(std::isfinite(old_context_len) && old_context_len > 0, kPosIdsOp,
                ": argument 'old_context_len' must be finite and positive, got ", old_context_len);
  }
  check_positions(kPosIdsOp, "pos_ids", pos_ids, "q", q);
  check_outputs(kPosIdsOp, q_out, k_out, q, k, "pos_ids", pos_ids);
  if (q.size(0) == 0) return;

  RopeParams p = params_of(q_out, k_out, q, k, pos_ids, static_cast<int>(rotary_dim), interleave);
  p.frequencies.rope_theta = static_cast<float>(rope_theta);
  p.frequencies.rcp_scale = static_cast<float>(1.0 / rope_scale);
  p.frequencies.llama31 = llama31;
  if (llama31) {
    const double band = high_freq_factor - low_freq_factor;
    p.frequencies.smooth_a = static_cast<float>(old_context_len / (2.0 * M_PI * band));
    p.frequencies.smooth_b = static_cast<float>(-low_freq_factor / band);
  }
  run(kPosIdsOp, p, q);
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) {
  m.impl("rope", &rope);
  m.impl("rope_pos_ids", &rope_pos_ids);
  m.impl("rope_set_kv_buffer", &rope_set_kv_buffer);
}

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) {
  m.impl("rope", &rope);
  m.impl("rope_pos_ids", &rope_pos_ids);
  m.impl("rope_set_kv_buffer", &rope_set_kv_buffer);
}
#endif

}  // namespace flashhip::ops
