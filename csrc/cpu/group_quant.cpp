// Rows in parallel; each group's amax in fp32, then
//   scale = max(amax, eps) / fp8_max,   out = rne(clamp(x / scale, -fp8_max, fp8_max)),
// the same arithmetic as the GPU kernel (a true division, not a multiply by the reciprocal). A NaN
// input stays NaN in out; the group's scale ignores it.
#include "group_quant.h"

#include <cmath>

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include "flashhip/platform/fp8.h"

namespace flashhip::cpu {
namespace {

using kernels::GroupQuantParams;

template <typename TIn, typename Flavour>
void quant_rows(const GroupQuantParams& p) {
  constexpr float kMax = Fp8Traits<Flavour>::kMaxFinite;
  const int64_t g = p.group_size;
  const int64_t groups = p.k / g;
  at::parallel_for(0, p.m, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const auto* in = static_cast<const TIn*>(p.input) + r * p.input_stride_m;
      auto* out = static_cast<Flavour*>(p.out) + r * p.out_stride_m;
      for (int64_t gi = 0; gi < groups; ++gi) {
        const TIn* x = in + gi * g;
        float amax = 0.0f;
        for (int64_t j = 0; j < g; ++j) amax = std::fmax(amax, std::fabs(static_cast<float>(x[j])));
        const float scale = std::fmax(amax, p.eps) / kMax;
        p.scale[r * p.scale_stride_m + gi * p.scale_stride_g] = scale;
        for (int64_t j = 0; j < g; ++j) {
          // The conversion saturates to +-fp8_max (the clamp) and keeps NaN a NaN.
          out[gi * g + j] = fp8_e4m3_from_float_software<Flavour>(static_cast<float>(x[j]) / scale);
        }
      }
    }
  });
}

template <typename TIn>
void dispatch_flavour(const GroupQuantParams& p) {
  switch (p.fp8_dtype) {
    case DType::kFloat8E4M3FN: return quant_rows<TIn, fp8_e4m3fn_t>(p);
    case DType::kFloat8E4M3FNUZ: return quant_rows<TIn, fp8_e4m3fnuz_t>(p);
    default: TORCH_INTERNAL_ASSERT(false, "per_token_group_quant_fp8: unsupported fp8 dtype");
  }
}

}  // namespace

void group_quant_fp8(const GroupQuantParams& p) {
  if (p.m == 0 || p.k == 0) return;
  switch (p.in_dtype) {
    case DType::kFloat32: return dispatch_flavour<float>(p);
    case DType::kFloat16: return dispatch_flavour<c10::Half>(p);
    case DType::kBFloat16: return dispatch_flavour<c10::BFloat16>(p);
    default: TORCH_INTERNAL_ASSERT(false, "per_token_group_quant_fp8: unsupported input dtype");
  }
}

}  // namespace flashhip::cpu
