// Rows in parallel (at::parallel_for); each row is converted to fp32 once, reduced in fp32 and
// written with one rounding, the same arithmetic as the GPU kernels.
#include "norm.h"

#include <cmath>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e4m3fnuz.h>
#include <c10/util/Half.h>

#include "dispatch.h"
#include "flashhip/platform/fp8.h"

namespace flashhip::cpu {
namespace {

using kernels::NormKind;
using kernels::NormParams;

template <typename T>
float load(const T* p, int64_t i) {
  return static_cast<float>(p[i]);
}

// fp8 outputs saturate to the flavour's largest finite value; NaN stays NaN.
template <typename TOut, typename Flavour>
TOut store_saturated(float y) {
  if (!std::isnan(y)) y = std::fmax(-Fp8Traits<Flavour>::kMaxFinite, std::fmin(y, Fp8Traits<Flavour>::kMaxFinite));
  return TOut(y);
}

template <typename TOut>
TOut store(float y) {
  if constexpr (std::is_same_v<TOut, c10::Float8_e4m3fn>) {
    return store_saturated<TOut, fp8_e4m3fn_t>(y);
  } else if constexpr (std::is_same_v<TOut, c10::Float8_e4m3fnuz>) {
    return store_saturated<TOut, fp8_e4m3fnuz_t>(y);
  } else {
    return static_cast<TOut>(y);
  }
}

template <typename TAct, typename TW, typename TOut>
void norm_rows(const NormParams& p) {
  const bool fused = p.kind == NormKind::kFusedAddRms || p.kind == NormKind::kFusedAddRmsQuant;
  const bool quant = p.kind == NormKind::kRmsQuant || p.kind == NormKind::kFusedAddRmsQuant;
  const bool layer = p.kind == NormKind::kLayer;
  const float inv_quant_scale = quant ? 1.0f / *p.scale : 1.0f;  // as the GPU kernels
  const auto* weight = static_cast<const TW*>(p.weight);
  const auto* bias = static_cast<const TW*>(p.bias);
  const int64_t h = p.hidden;

  at::parallel_for(0, p.rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> x(static_cast<size_t>(h));
    for (int64_t r = begin; r < end; ++r) {
      const auto* in = static_cast<const TAct*>(p.input) + r * p.input_row_stride;
      auto* out = static_cast<TOut*>(p.out) + r * p.out_row_stride;
      if (fused) {
        auto* res = static_cast<TAct*>(p.residual) + r * p.residual_row_stride;
        for (int64_t i = 0; i < h; ++i) {
          res[i] = static_cast<TAct>(load(in, i) + load(res, i));
          x[i] = load(res, i);
        }
      } else {
        for (int64_t i = 0; i < h; ++i) x[i] = load(in, i);
      }
      float mean = 0.0f;
      if (layer) {
        double sum = 0.0;
        for (int64_t i = 0; i < h; ++i) sum += x[i];
        mean = static_cast<float>(sum / static_cast<double>(h));
      }
      double square_sum = 0.0;
      for (int64_t i = 0; i < h; ++i) square_sum += static_cast<double>(x[i] - mean) * (x[i] - mean);
      // The fp8 scale folds into the row's factor (one multiply fewer per element), as on the GPU.
      const float inv = 1.0f / std::sqrt(static_cast<float>(square_sum / static_cast<double>(h)) + p.eps) *
                        (quant ? inv_quant_scale : 1.0f);
      for (int64_t i = 0; i < h; ++i) {
        float w = load(weight, i);
        if (p.gemma) w += 1.0f;
        out[i] = store<TOut>((x[i] - mean) * inv * w + (bias != nullptr ? load(bias, i) : 0.0f));
      }
    }
  });
}

}  // namespace

void norm(const NormParams& p) {
  if (p.rows == 0) return;
  dispatch_activation("flashhip norm", p.act_dtype, [&](auto act) {
    using T = decltype(act);
    switch (p.kind) {
      case NormKind::kRms:
      case NormKind::kFusedAddRms: return norm_rows<T, T, T>(p);
      case NormKind::kLayer:
        return p.weight_dtype == DType::kFloat32 ? norm_rows<T, float, T>(p) : norm_rows<T, T, T>(p);
      case NormKind::kRmsQuant:
      case NormKind::kFusedAddRmsQuant:
        return p.out_dtype == DType::kFloat8E4M3FN ? norm_rows<T, T, c10::Float8_e4m3fn>(p)
                                                   : norm_rows<T, T, c10::Float8_e4m3fnuz>(p);
    }
  });
}

}  // namespace flashhip::cpu
