// Dequantise, then one fp32 matmul:
//   A'[m, k] = a[m, k] * a_scale[m, k / 128],   B'[n, k] = b[n, k] * b_scale[n / 128, k / 128],
//   out = round_once(A' B'^T).
// Equal in exact arithmetic to the contract's per-block form (the scales factor out of each
// block's sum) and to the AMD challenge's own reference; the products of two fp8 values and a
// scale are exact in fp32 up to the scale's rounding, and the sum runs in fp32 (BLAS).
// Any strides of a, b and the scales: decoding reads them element by element through a 256-entry
// table, in parallel over rows.
#include "fp8_gemm.h"

#include <array>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "flashhip/platform/fp8.h"

namespace flashhip::cpu {
namespace {

using kernels::Fp8GemmParams;
using kernels::kFp8ScaleBlock;

template <typename Flavour>
std::array<float, 256> make_decode_table() {
  std::array<float, 256> table{};
  for (int code = 0; code < 256; ++code) table[code] = fp8_e4m3_to_float(Flavour{static_cast<uint8_t>(code)});
  return table;
}

const std::array<float, 256>& decode_table(DType flavour) {
  static const auto fn = make_decode_table<fp8_e4m3fn_t>();
  static const auto fnuz = make_decode_table<fp8_e4m3fnuz_t>();
  TORCH_INTERNAL_ASSERT(flavour == DType::kFloat8E4M3FN || flavour == DType::kFloat8E4M3FNUZ, "fp8_gemm: not an fp8 dtype");
  return flavour == DType::kFloat8E4M3FN ? fn : fnuz;
}

// dst[r, k] = table[src[r, k]] * scale[r / scale_rows_per, k / 128], dst row-major [rows, k].
void dequantise(float* dst, const uint8_t* src, int64_t rows, int64_t k, int64_t stride_r, int64_t stride_k,
                const float* scale, int64_t scale_rows_per, int64_t scale_stride_r, int64_t scale_stride_kb,
                const std::array<float, 256>& table) {
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* out = dst + r * k;
      const uint8_t* in = src + r * stride_r;
      const float* s = scale + (r / scale_rows_per) * scale_stride_r;
      for (int64_t kb = 0; kb < k / kFp8ScaleBlock; ++kb) {
        const float block_scale = s[kb * scale_stride_kb];
        const int64_t k0 = kb * kFp8ScaleBlock;
        if (stride_k == 1) {
          for (int64_t j = 0; j < kFp8ScaleBlock; ++j) out[k0 + j] = table[in[k0 + j]] * block_scale;
        } else {
          for (int64_t j = 0; j < kFp8ScaleBlock; ++j) out[k0 + j] = table[in[(k0 + j) * stride_k]] * block_scale;
        }
      }
    }
  });
}

at::ScalarType out_scalar_type(DType d) {
  switch (d) {
    case DType::kFloat32: return at::kFloat;
    case DType::kFloat16: return at::kHalf;
    case DType::kBFloat16: return at::kBFloat16;
    default: TORCH_INTERNAL_ASSERT(false, "fp8_gemm: unsupported output dtype");
  }
}

}  // namespace

void fp8_gemm(const Fp8GemmParams& p) {
  if (p.m == 0 || p.n == 0) return;
  const auto& table = decode_table(p.fp8_dtype);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor a_deq = at::empty({p.m, p.k}, f32);
  at::Tensor b_deq = at::empty({p.n, p.k}, f32);
  // a_scale has one row per row of a; b_scale one row per 128 rows of b.
  dequantise(a_deq.data_ptr<float>(), static_cast<const uint8_t*>(p.a), p.m, p.k, p.a_stride_m, p.a_stride_k,
             p.a_scale, 1, p.a_scale_stride_m, p.a_scale_stride_kb, table);
  dequantise(b_deq.data_ptr<float>(), static_cast<const uint8_t*>(p.b), p.n, p.k, p.b_stride_n, p.b_stride_k,
             p.b_scale, kFp8ScaleBlock, p.b_scale_stride_nb, p.b_scale_stride_kb, table);
  const at::ScalarType out_type = out_scalar_type(p.out_dtype);
  at::Tensor out = at::from_blob(p.out, {p.m, p.n}, {p.out_stride_m, 1}, at::TensorOptions().dtype(out_type));
  if (out_type == at::kFloat) {
    at::mm_out(out, a_deq, b_deq.t());
  } else {
    out.copy_(at::mm(a_deq, b_deq.t()));  // one rounding, to nearest even
  }
}

}  // namespace flashhip::cpu
