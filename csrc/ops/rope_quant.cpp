// Torch wrapper of rope_quantize_fp8 (FlashInfer's rope_quantize_fp8 / mla_rope_quantize_fp8):
// argument checks, then the CPU implementation or the GPU launcher on the caller's current
// stream. One op serves MLA (2-D k tensors: one shared k head) and GQA/MHA (3-D k tensors).
#include <ATen/ATen.h>

#include <cmath>
#include <string>

#include <torch/library.h>

#include "checks.h"
#include "cpu/rope_quant.h"
#include "flashhip/kernels/rope/rope_quant.h"
#include "rope_checks.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::IndexType;
using kernels::RopeQuantParams;

constexpr const char* kOp = "flashhip.rope_quantize_fp8";

// A q tensor: 3-D [nnz, num_q_heads, dim] of q_rope's dtype and device, innermost contiguous.
void check_q_part(const char* arg, const at::Tensor& t, const char* dim_name) {
  TORCH_CHECK(t.dim() == 3, kOp, ": argument '", arg, "' must be 3-D [nnz, num_q_heads, ", dim_name,
              "], got shape ", t.sizes());
  check_innermost_contiguous(kOp, arg, t);
}

// A k tensor: [nnz, dim] (MLA) or [nnz, num_k_heads, dim], as k_rope is.
void check_k_part(const char* arg, const at::Tensor& t, const char* dim_name, int64_t dims) {
  TORCH_CHECK(t.dim() == dims, kOp, ": argument '", arg, "' must be ",
              dims == 2 ? std::string("2-D [nnz, ") : std::string("3-D [nnz, num_k_heads, "), dim_name,
              "] like 'k_rope', got shape ", t.sizes());
  check_innermost_contiguous(kOp, arg, t);
}

// The four inputs: one 16-bit dtype on one device, shapes agreeing in nnz, heads and dims.
void check_inputs(const at::Tensor& q_rope, const at::Tensor& k_rope, const at::Tensor& q_nope,
                  const at::Tensor& k_nope) {
  check_device(kOp, "q_rope", q_rope);
  check_dtype(kOp, "q_rope", q_rope, {at::kHalf, at::kBFloat16});
  check_q_part("q_rope", q_rope, "rope_dim");
  const at::Tensor* others[] = {&k_rope, &q_nope, &k_nope};
  const char* names[] = {"k_rope", "q_nope", "k_nope"};
  for (int i = 0; i < 3; ++i) {
    check_same_device(kOp, names[i], *others[i], q_rope);
    check_same_dtype(kOp, names[i], *others[i], q_rope, "q_rope");
  }
  TORCH_CHECK(k_rope.dim() == 2 || k_rope.dim() == 3, kOp,
              ": argument 'k_rope' must be 2-D [nnz, rope_dim] (MLA) or 3-D [nnz, num_k_heads, rope_dim], got shape ",
              k_rope.sizes());
  check_k_part("k_rope", k_rope, "rope_dim", k_rope.dim());
  check_q_part("q_nope", q_nope, "nope_dim");
  check_k_part("k_nope", k_nope, "nope_dim", k_rope.dim());

  const int64_t nnz = q_rope.size(0);
  for (int i = 0; i < 3; ++i) {
    TORCH_CHECK(others[i]->size(0) == nnz, kOp, ": argument '", names[i], "' has ", others[i]->size(0),
                " tokens but 'q_rope' has ", nnz);
  }
  TORCH_CHECK(q_nope.size(1) == q_rope.size(1), kOp, ": argument 'q_nope' has ", q_nope.size(1),
              " heads but 'q_rope' has ", q_rope.size(1));
  if (k_rope.dim() == 3) {
    TORCH_CHECK(k_nope.size(1) == k_rope.size(1), kOp, ": argument 'k_nope' has ", k_nope.size(1),
                " heads but 'k_rope' has ", k_rope.size(1));
  }
  TORCH_CHECK(k_rope.size(-1) == q_rope.size(-1), kOp, ": argument 'k_rope' has rope_dim ", k_rope.size(-1),
              " but 'q_rope' has ", q_rope.size(-1));
  TORCH_CHECK(k_nope.size(-1) == q_nope.size(-1), kOp, ": argument 'k_nope' has nope_dim ", k_nope.size(-1),
              " but 'q_nope' has ", q_nope.size(-1));
  TORCH_CHECK(q_rope.size(1) <= INT32_MAX && k_rope.size(-1) <= INT32_MAX && q_nope.size(-1) <= INT32_MAX &&
                  (k_rope.dim() == 2 || k_rope.size(1) <= INT32_MAX),
              kOp, ": head counts, rope_dim and nope_dim must fit in 32 bits");
}

// An fp8 output shaped like its input, of q_rope_out's dtype, writable.
void check_output(const char* arg, const at::Tensor& out, const char* in_arg, const at::Tensor& in,
                  const at::Tensor& q_rope_out) {
  check_same_device(kOp, arg, out, in);
  check_dtype(kOp, arg, out, kFp8Dtypes);
  if (&out != &q_rope_out) check_same_dtype(kOp, arg, out, q_rope_out, "q_rope_out");
  check_same_shape(kOp, arg, out, in, in_arg);
  check_innermost_contiguous(kOp, arg, out);
  check_writable(kOp, arg, out);
}

void check_scale(const char* arg, double scale) {
  TORCH_CHECK(std::isfinite(scale) && scale > 0, kOp, ": argument '", arg, "' must be finite and positive, got ",
              scale);
}

// One part's pointers and token/head strides (MLA's 2-D k tensors: one head, head stride 0).
kernels::RopeQuantPart part_of(const at::Tensor& q, const at::Tensor& k, at::Tensor& q_out, at::Tensor& k_out) {
  kernels::RopeQuantPart part;
  part.q = q.data_ptr();
  part.k = k.data_ptr();
  part.q_out = q_out.data_ptr();
  part.k_out = k_out.data_ptr();
  const auto strides = [](const at::Tensor& t, int64_t* token_stride, int64_t* head_stride) {
    *token_stride = stride_of(t, 0);
    *head_stride = t.dim() == 3 ? stride_of(t, 1) : 0;
  };
  strides(q, &part.q_token_stride, &part.q_head_stride);
  strides(k, &part.k_token_stride, &part.k_head_stride);
  strides(q_out, &part.q_out_token_stride, &part.q_out_head_stride);
  strides(k_out, &part.k_out_token_stride, &part.k_out_head_stride);
  return part;
}

RopeQuantParams params_of(at::Tensor& q_rope_out, at::Tensor& k_rope_out, at::Tensor& q_nope_out,
                          at::Tensor& k_nope_out, const at::Tensor& q_rope, const at::Tensor& k_rope,
                          const at::Tensor& q_nope, const at::Tensor& k_nope, const at::Tensor& cos_sin_cache,
                          const at::Tensor& pos_ids, bool interleave, double quant_scale_q, double quant_scale_kv) {
  RopeQuantParams p;
  p.rope = part_of(q_rope, k_rope, q_rope_out, k_rope_out);
  p.nope = part_of(q_nope, k_nope, q_nope_out, k_nope_out);
  p.cos_sin_cache = cos_sin_cache.data_ptr<float>();
  p.positions = pos_ids.data_ptr();
  p.cache_row_stride = stride_of(cos_sin_cache, 0);
  p.positions_stride = stride_of(pos_ids, 0);
  p.nnz = q_rope.size(0);
  p.max_positions = cos_sin_cache.size(0);
  p.num_q_heads = static_cast<int>(q_rope.size(1));
  p.num_k_heads = k_rope.dim() == 3 ? static_cast<int>(k_rope.size(1)) : 1;
  p.rope_dim = static_cast<int>(q_rope.size(2));
  p.nope_dim = static_cast<int>(q_nope.size(2));
  p.interleave = interleave;
  p.quant_scale_q = static_cast<float>(quant_scale_q);
  p.quant_scale_kv = static_cast<float>(quant_scale_kv);
  p.dtype = kernel_dtype(q_rope.scalar_type());
  p.out_dtype = kernel_dtype(q_rope_out.scalar_type());
  p.positions_type = pos_ids.scalar_type() == at::kInt ? IndexType::kInt32 : IndexType::kInt64;
  return p;
}

std::string describe(const kernels::RopeQuantLaunchInfo& info, at::ScalarType dtype, at::ScalarType out_dtype,
                     bool interleave) {
  return std::string(info.variant) + " (" + c10::toString(dtype) + " -> " + c10::toString(out_dtype) +
         (interleave ? ", interleaved" : ", neox") + ", vec " + std::to_string(info.vec) + ", " +
         std::to_string(info.chunks_per_head) + " chunks/head)";
}

// q_rope/k_rope rotated by cos_sin_cache[pos_ids], then every part scaled (quant_scale_q for q,
// quant_scale_kv for k) and stored as saturated fp8 into the four outputs.
void rope_quantize_fp8(at::Tensor& q_rope_out, at::Tensor& k_rope_out, at::Tensor& q_nope_out, at::Tensor& k_nope_out,
                       const at::Tensor& q_rope, const at::Tensor& k_rope, const at::Tensor& q_nope,
                       const at::Tensor& k_nope, const at::Tensor& cos_sin_cache, const at::Tensor& pos_ids,
                       bool interleave, double quant_scale_q, double quant_scale_kv) {
  check_inputs(q_rope, k_rope, q_nope, k_nope);
  const int64_t rotary_dim = check_cos_sin_cache(kOp, cos_sin_cache, q_rope);
  TORCH_CHECK(rotary_dim == q_rope.size(2), kOp, ": argument 'cos_sin_cache' has rotary_dim (size(1)) ", rotary_dim,
              " but 'q_rope' has rope_dim ", q_rope.size(2), "; the whole rope part is rotated, so they must be equal");
  check_positions(kOp, "pos_ids", pos_ids, "q_rope", q_rope);
  check_scale("quant_scale_q", quant_scale_q);
  check_scale("quant_scale_kv", quant_scale_kv);

  check_output("q_rope_out", q_rope_out, "q_rope", q_rope, q_rope_out);
  check_output("k_rope_out", k_rope_out, "k_rope", k_rope, q_rope_out);
  check_output("q_nope_out", q_nope_out, "q_nope", q_nope, q_rope_out);
  check_output("k_nope_out", k_nope_out, "k_nope", k_nope, q_rope_out);
  // The outputs are fp8 and the inputs 16-bit, so no output may be its input: all separate.
  check_apart(kOp, {{"q_rope_out", &q_rope_out}, {"k_rope_out", &k_rope_out}, {"q_nope_out", &q_nope_out},
                    {"k_nope_out", &k_nope_out}},
              {{"q_rope", &q_rope}, {"k_rope", &k_rope}, {"q_nope", &q_nope}, {"k_nope", &k_nope},
               {"cos_sin_cache", &cos_sin_cache}, {"pos_ids", &pos_ids}});
  check_apart(kOp, {{"q_rope_out", &q_rope_out}}, {{"k_rope_out", &k_rope_out}, {"q_nope_out", &q_nope_out},
                                                   {"k_nope_out", &k_nope_out}});
  check_apart(kOp, {{"k_rope_out", &k_rope_out}}, {{"q_nope_out", &q_nope_out}, {"k_nope_out", &k_nope_out}});
  check_apart(kOp, {{"q_nope_out", &q_nope_out}}, {{"k_nope_out", &k_nope_out}});

  if (q_rope.size(0) == 0) return;
  check_positions_in_cache(kOp, "pos_ids", pos_ids, cos_sin_cache);

  const RopeQuantParams p = params_of(q_rope_out, k_rope_out, q_nope_out, k_nope_out, q_rope, k_rope, q_nope, k_nope,
                                      cos_sin_cache, pos_ids, interleave, quant_scale_q, quant_scale_kv);
  kernels::RopeQuantLaunchInfo info;
  run_on_device(
      kOp, q_rope,
      [&] {
        cpu::rope_quant(p);
        return [&] { return cpu_variant(q_rope.scalar_type()); };
      },
      [&](auto stream) {
        return std::make_pair(kernels::launch_rope_quant(p, stream, &info), [&] {
          return describe(info, q_rope.scalar_type(), q_rope_out.scalar_type(), interleave);
        });
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) { m.impl("rope_quantize_fp8", &rope_quantize_fp8); }

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) { m.impl("rope_quantize_fp8", &rope_quantize_fp8); }
#endif

}  // namespace flashhip::ops
