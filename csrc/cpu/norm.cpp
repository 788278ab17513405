// Rows in parallel (at::parallel_for); each row is converted to fp32 once, reduced in fp32 and
// written with one rounding, the same arithmetic as the GPU kernels.
#include "norm.h"

#include <cmath>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e4m3fnuz.h>
#include <c10/util/Float8_e5m2.h>
#include <c10/util/Half.h>

#include "dispatch.h"
#include "flashhip/platform/fp8.h"

namespace flashhip::cpu {
namespace {

using kernels::NormKind;
using kernels::NormParams;

// Row r's first element (NormParams: plain rows, or tokens of strided heads).
int64_t row_offset(const NormParams& p, int64_t r, int64_t row_stride, int64_t head_stride) {
  return p.heads == 1 ? r * row_stride : (r / p.heads) * row_stride + (r % p.heads) * head_stride;
}

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
  } else if constexpr (std::is_same_v<TOut, c10::Float8_e5m2>) {
    return store_saturated<TOut, fp8_e5m2_t>(y);
  } else {
    return static_cast<TOut>(y);
  }
}

template <typename TAct, typename TW, typename TOut>
void norm_rows(const NormParams& p) {
  const bool fused = p.kind == NormKind::kFusedAddRms || p.kind == NormKind::kFusedAddRmsQuant;
  const bool quant =
      p.kind == NormKind::kRmsQuant || p.kind == NormKind::kFusedAddRmsQuant || p.kind == NormKind::kLayerQuant;
  const bool layer = p.kind == NormKind::kLayer || p.kind == NormKind::kLayerQuant;
  const float scale = quant ? *p.scale : 1.0f;
  // The one rounding of the fp32 result y; the quantising forms divide it by the scale (a true
  // division) and saturate.
  auto rounded = [&](float y) { return store<TOut>(quant ? y / scale : y); };
  const auto* weight = static_cast<const TW*>(p.weight);
  const auto* bias = static_cast<const TW*>(p.bias);
  const int64_t h = p.hidden;

  at::parallel_for(0, p.rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> x(static_cast<size_t>(h));
    for (int64_t r = begin; r < end; ++r) {
      const auto* in = static_cast<const TAct*>(p.input) + row_offset(p, r, p.input_row_stride, p.input_head_stride);
      auto* out = static_cast<TOut*>(p.out) + row_offset(p, r, p.out_row_stride, p.out_head_stride);
      if (fused) {
        auto* res = static_cast<TAct*>(p.residual) + row_offset(p, r, p.residual_row_stride, p.residual_head_stride);
        for (int64_t i = 0; i < h; ++i) {
          const float sum = load(in, i) + load(res, i);
          res[i] = static_cast<TAct>(sum);
          x[i] = p.fp32_sum ? sum : load(res, i);  // the fp32 sum, or the rounded residual
        }
      } else {
        for (int64_t i = 0; i < h; ++i) x[i] = load(in, i);
      }
      if (layer) {
        double sum = 0.0;
        for (int64_t i = 0; i < h; ++i) sum += x[i];
        const float mean = static_cast<float>(sum / static_cast<double>(h));
        double square_sum = 0.0;
        for (int64_t i = 0; i < h; ++i) square_sum += static_cast<double>(x[i] - mean) * (x[i] - mean);
        const float inv = 1.0f / std::sqrt(static_cast<float>(square_sum / static_cast<double>(h)) + p.eps);
        for (int64_t i = 0; i < h; ++i) {
          out[i] = rounded((x[i] - mean) * inv * load(weight, i) + (bias != nullptr ? load(bias, i) : 0.0f));
        }
        continue;
      }
      // RMS: the mean square and the factor in double, where neither can leave the range (squares
      // of fp32 values lie within 1e-90..1.2e77), so rows whose fp32 mean square would overflow
      // or underflow normalise as the arithmetic says (the GPU rescales those rows by a power of
      // two to the same effect). y = x * rstd * w is rounded once to fp32 before `rounded`.
      double square_sum = 0.0;
      for (int64_t i = 0; i < h; ++i) square_sum += static_cast<double>(x[i]) * x[i];
      const double rstd = 1.0 / std::sqrt(square_sum / static_cast<double>(h) + static_cast<double>(p.eps));
      for (int64_t i = 0; i < h; ++i) {
        float w = load(weight, i);
        if (p.gemma) w += 1.0f;
        const float y = static_cast<float>(static_cast<double>(x[i]) * rstd * static_cast<double>(w));
        out[i] = rounded(y);
      }
    }
  });
}

// The quantising forms: the fp8 flavour of the output.
template <typename TAct, typename TW>
void norm_rows_fp8(const NormParams& p) {
  switch (p.out_dtype) {
    case DType::kFloat8E4M3FN: return norm_rows<TAct, TW, c10::Float8_e4m3fn>(p);
    case DType::kFloat8E4M3FNUZ: return norm_rows<TAct, TW, c10::Float8_e4m3fnuz>(p);
    default: return norm_rows<TAct, TW, c10::Float8_e5m2>(p);
  }
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
      case NormKind::kFusedAddRmsQuant: return norm_rows_fp8<T, T>(p);
      case NormKind::kLayerQuant:
        return p.weight_dtype == DType::kFloat32 ? norm_rows_fp8<T, float>(p) : norm_rows_fp8<T, T>(p);
    }
  });
}

}  // namespace flashhip::cpu
