// Normalisation kernels. Each row of `hidden` elements is handled by `blockDim.x` threads;
// `blockDim.y` rows share a block when a row needs fewer threads than a wave.
//
// Two variants:
// - norm_rows_in_registers: each thread keeps VECS_PER_THREAD vectors of VEC elements in
//   registers, so the input is read once and the output written once (the memory-bound
//   optimum). Used while a row fits in VECS_PER_THREAD * VEC * 1024 elements.
// - norm_rows_streaming: re-reads the row (from L1/L2) for each pass; any hidden size and
//   alignment, no shared memory beyond the reduction scratch, so 64 KiB-LDS devices are fine.
#pragma once

#include "flashhip/kernels/norm/norm.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/fp8.h"
#include "flashhip/platform/fp8_quotient.h"
#include "flashhip/platform/vec.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels::norm_detail {

inline constexpr int kMaxThreadsPerBlock = 1024;
// Threads per row of the register variant, at most: leaves each thread up to 128 registers.
inline constexpr int kMaxRegisterThreads = 512;

// The element offset of row `row` (see NormParams): one multiply for plain rows; for strided
// heads a 32-bit division (the launcher splits calls of more than 2^31 rows with heads > 1 into
// chunks of tokens). A 64-bit division here is a call into a runtime routine whose saved
// registers made the prefetching kernels spill under their 64-register cap (rmsnorm 8192x4096 on
// the H200: 41 us before strided heads, 69 us with the 64-bit path).
FH_DEVICE FH_INLINE int64_t row_offset(const NormParams& p, int64_t row, int64_t row_stride, int64_t head_stride) {
  if (p.heads == 1) return row * row_stride;
  const uint32_t r = static_cast<uint32_t>(row), h = static_cast<uint32_t>(p.heads);
  const uint32_t token = r / h;
  return static_cast<int64_t>(token) * row_stride + static_cast<int64_t>(r - token * h) * head_stride;
}

template <NormKind KIND>
struct KindTraits {
  static constexpr bool kFusedAdd = KIND == NormKind::kFusedAddRms || KIND == NormKind::kFusedAddRmsQuant;
  static constexpr bool kQuant =
      KIND == NormKind::kRmsQuant || KIND == NormKind::kFusedAddRmsQuant || KIND == NormKind::kLayerQuant;
  static constexpr bool kLayer = KIND == NormKind::kLayer || KIND == NormKind::kLayerQuant;
};

// The sum (or, with kMax, the largest of values >= 0) of `value` over the blockDim.x threads of
// one row. Rows of at most a wave reduce with shuffles alone; wider rows (then one row per block)
// also go through shared memory.
template <int WAVE, bool kMax>
FH_DEVICE FH_INLINE float row_reduce(float value, float* scratch /* [kMaxThreadsPerBlock / WAVE] */) {
  auto reduce = [](float v, int group) {
    return kMax ? group_reduce_max<WAVE>(v, group) : group_reduce_sum<WAVE>(v, group);
  };
  const int threads_per_row = static_cast<int>(blockDim.x);
  if (threads_per_row <= WAVE) return reduce(value, threads_per_row);
  value = reduce(value, WAVE);
  const int wave_id = static_cast<int>(threadIdx.x) / WAVE;
  const int lane = lane_id<WAVE>();
  if (lane == 0) scratch[wave_id] = value;
  __syncthreads();
  value = lane < threads_per_row / WAVE ? scratch[lane] : 0.0f;
  value = reduce(value, WAVE);
  __syncthreads();  // the scratch is reused by the next reduction
  return value;
}
template <int WAVE>
FH_DEVICE FH_INLINE float row_sum(float value, float* scratch) { return row_reduce<WAVE, false>(value, scratch); }
template <int WAVE>
FH_DEVICE FH_INLINE float row_max(float value, float* scratch) { return row_reduce<WAVE, true>(value, scratch); }

// The RMS kinds' row factor: y = (x * pre_scale) * row_scale * w, with pre_scale = 1 (then not
// applied) unless the row was rescaled.
struct RmsFactor {
  float row_scale;  // 1 / sqrt(mean square + eps), or its rescaled part
  float pre_scale;  // a power of two, 2^-126..2^126
  bool rescaled;
};

// The mean square in fp32 is out of range for rows whose squares overflow (|x| past ~1.8e19) or
// whose mean square + eps is tiny (all |x| below ~1e-18 with eps ~0: underflowed squares,
// an infinite factor). Such a row (rare; every row of a wave joins its reductions) is computed
// again from x * 2^-e, with 2^e the power of two at or below max(max |x|, sqrt(eps)):
//   y = x * rsqrt(ms + eps) = (x 2^-e) * rsqrt(ms 4^-e + eps 4^-e),
// where every term is within [2^-34, 2] (hidden < 2^31). Rows whose max is 0, inf or NaN keep the
// plain factor (0 / 0 is NaN, inf / inf is NaN, and NaN stays NaN, as the CPU's).
// `for_each(f)` calls f(float) for each of this thread's values of the row.
template <int WAVE, typename ForEach>
FH_DEVICE FH_INLINE RmsFactor rms_factor(float square_sum, float inv_hidden, float eps, float* scratch,
                                         ForEach&& for_each) {
  const float d = square_sum * inv_hidden + eps;
  RmsFactor f{rsqrtf(d), 1.0f, false};
  const bool out_of_range = !(d >= 0x1p-60f && d <= 0x1.fffffep127f);  // NaN too
  if (ballot<WAVE>(out_of_range) == 0) return f;
  float m = 0.0f;
  for_each([&](float v) { m = fmaxf(m, fabsf(v)); });
  const float g = fmaxf(row_max<WAVE>(m, scratch), sqrtf(eps));
  const bool rescale = out_of_range && g > 0.0f && g <= 0x1.fffffep127f;
  int e = 0;
  if (rescale) frexpf(g, &e);  // g = f * 2^e, f in [0.5, 1)
  // 2^-e (e in -148..128) as pre_scale 2^a, a in -126..126, times the rest 2^k, |k| <= 23.
  const int a = -e < -126 ? -126 : (-e > 126 ? 126 : -e);
  const float pre = ldexpf(1.0f, a), rest = ldexpf(1.0f, -e - a);
  float acc = 0.0f;
  for_each([&](float v) {
    const float t = v * pre * rest;
    acc += t * t;
  });
  const float scaled_eps = eps * pre * pre * rest * rest;
  const float scaled = row_sum<WAVE>(acc, scratch) * inv_hidden + scaled_eps;
  if (rescale) f = RmsFactor{rsqrtf(scaled) * rest, pre, true};
  return f;
}

// The row's factor from this thread's part of the sum of squares (reduced here): for layernorm
// kinds the sum is the variance; RMS kinds go through rms_factor, which may replay the row's
// values (for_each) when its mean square leaves fp32's range.
template <NormKind KIND, int WAVE, typename ForEach>
FH_DEVICE FH_INLINE RmsFactor row_factor(float partial_square_sum, float inv_hidden, float eps, float* scratch,
                                         ForEach&& for_each) {
  const float square_sum = row_sum<WAVE>(partial_square_sum, scratch);
  if constexpr (KindTraits<KIND>::kLayer) {
    return RmsFactor{rsqrtf(square_sum + eps), 1.0f, false};
  } else {
    return rms_factor<WAVE>(square_sum, inv_hidden, eps, scratch, for_each);
  }
}

// The per-element epilogue shared by both variants: x is the (residual-added) input value,
// w the weight, b the bias (layernorm kinds only); y as OPS.md §1 writes it. The quantising forms,
// RMS and layer alike, then store saturate(y / scale) exactly, through Fp8Quotient (write_outputs);
// PRESCALED and BY_BRACKET are decided once per row and per kernel, outside the element loops.
template <NormKind KIND>
struct Epilogue {
  float mean;           // layernorm kinds only
  float row_scale;      // 1 / sqrt(mean square or variance + eps) (or its rescaled part)
  float pre_scale;      // rescaled RMS rows only
  float weight_offset;  // 1 for gemma's (1 + w), else 0
  Fp8Quotient quotient;

  template <bool PRESCALED>
  FH_DEVICE FH_INLINE float apply(float x, float w, float b) const {
    if constexpr (KindTraits<KIND>::kLayer) {
      return (x - mean) * row_scale * w + b;
    } else {
      return (PRESCALED ? x * pre_scale : x) * row_scale * (w + weight_offset);
    }
  }
};

// The fp8 scale's quotient, built once per kernel (a 1 for the other kinds).
template <NormKind KIND>
FH_DEVICE FH_INLINE Fp8Quotient quant_quotient(const NormParams& p) {
  return Fp8Quotient(KindTraits<KIND>::kQuant ? *p.scale : 1.0f);
}

// Call f with the mode as a compile-time constant (std::bool_constant), so that each element loop
// is instantiated without a branch inside; kinds that cannot take a mode get one instantiation.
// The quotient's mode is kernel-uniform: the prefetching kernels take it outside their row loop,
// so that the division's instantiation (a call, with saved registers) is not in the loop the
// bracket runs. The row's prescale is decided per row.
template <NormKind KIND, typename F>
FH_DEVICE FH_INLINE void with_quotient_mode(bool by_bracket, F&& f) {
  if constexpr (KindTraits<KIND>::kQuant) {
    if (by_bracket) {
      f(std::true_type{});
    } else {
      f(std::false_type{});
    }
  } else {
    f(std::true_type{});
  }
}
template <NormKind KIND, typename F>
FH_DEVICE FH_INLINE void with_row_mode(bool prescaled, F&& f) {
  if constexpr (KindTraits<KIND>::kLayer) {
    f(std::false_type{});
  } else if (prescaled) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// x <- x + residual, rounded to the storage dtype (the new residual).
template <typename T, int VEC>
FH_DEVICE FH_INLINE void add_rounded(Vec<T, VEC>& x, const Vec<T, VEC>& residual) {
  float sum[VEC];
#pragma unroll
  for (int j = 0; j < VEC; ++j) sum[j] = to_float(x[j]) + to_float(residual[j]);
  convert_floats(sum, x.data);
}

// The weight (and layernorm's bias; zeros without one) of VEC consecutive elements.
template <NormKind KIND, typename TW, int VEC>
struct Affine {
  Vec<TW, VEC> w;
  Vec<TW, VEC> b;

  FH_DEVICE FH_INLINE static Affine load(const TW* weight, const TW* bias, int64_t offset) {
    Affine a;
    a.w = Vec<TW, VEC>::load(weight + offset);
    if constexpr (KindTraits<KIND>::kLayer) {
      a.b = bias != nullptr ? Vec<TW, VEC>::load(bias + offset) : Vec<TW, VEC>{};
    }
    return a;
  }
};

// Writes VEC outputs from x (values already in registers) and their weight/bias.
template <NormKind KIND, int VEC, bool PRESCALED, bool BY_BRACKET, typename TOut, typename TW, typename XVec>
FH_DEVICE FH_INLINE void write_outputs(const Epilogue<KIND>& epilogue, const XVec& x, const Affine<KIND, TW, VEC>& a,
                                       TOut* out /* [VEC] */) {
  auto value = [&](int j) {
    const float bj = KindTraits<KIND>::kLayer ? to_float(a.b[j]) : 0.0f;
    return epilogue.template apply<PRESCALED>(to_float(x[j]), to_float(a.w[j]), bj);
  };
  Vec<TOut, VEC> converted;
  if constexpr (KindTraits<KIND>::kQuant) {
    epilogue.quotient.template codes<TOut, BY_BRACKET, VEC>(value, converted.data);
  } else {
    float y[VEC];
#pragma unroll
    for (int j = 0; j < VEC; ++j) y[j] = value(j);
    convert_floats(y, converted.data);
  }
  converted.store_global(out);
}

// Whether the register variant walks rows with the next row's loads in flight: a gain for the
// single-input forms, a loss for the fused forms, whose two inputs double
// the registers (those run one row group per block instead).
FH_HOST_DEVICE constexpr bool prefetches_next_row(NormKind kind, int vecs_per_thread) {
  return vecs_per_thread <= 4 && kind != NormKind::kFusedAddRms && kind != NormKind::kFusedAddRmsQuant;
}

// Blocks of kMaxRegisterThreads that must fit on a multiprocessor, which caps registers per
// thread: prefetching kernels with few vectors per thread hold two rows in up to 64 registers;
// the others take what they need (up to 128), as a cap below that was seen to spill. The fused
// forms at two vectors a thread spill under their 40 (three blocks), yet run faster so than with
// 64 and two blocks (H200, 16384x8192: fused_add_rmsnorm 282 us at 40, 326 at 64).
FH_HOST_DEVICE constexpr int min_resident_blocks(NormKind kind, int vecs_per_thread) {
  return vecs_per_thread > 2 ? 1 : prefetches_next_row(kind, vecs_per_thread) ? 2 : 3;
}

// One row's loads, held in the storage dtype (half the registers of fp32 for 16-bit types).
// The residual is kept apart only while a prefetched row waits; otherwise it is added at once.
template <int VECS_PER_THREAD, typename ActVec, bool KEEP_RESIDUAL>
struct RowInRegisters {
  ActVec x[VECS_PER_THREAD];
  ActVec residual[KEEP_RESIDUAL ? VECS_PER_THREAD : 1];
};

// FP32_SUM (fused forms only, NormParams::fp32_sum): the row normalised is the fp32 sum
// input + residual, not the residual rounded to its dtype; both inputs stay in registers and the
// sum is formed again where it is used (the same fp32 addition each time).
template <NormKind KIND, int WAVE, int VEC, int VECS_PER_THREAD, typename TAct, typename TW, typename TOut,
          bool FP32_SUM = false>
__global__ void FH_LAUNCH_BOUNDS(kMaxRegisterThreads, min_resident_blocks(KIND, VECS_PER_THREAD))
    norm_rows_in_registers(const NormParams p) {
  using Kind = KindTraits<KIND>;
  using ActVec = Vec<TAct, VEC>;
  static_assert(!FP32_SUM || Kind::kFusedAdd, "fp32 sums are the fused forms'");
  constexpr bool kPrefetch = prefetches_next_row(KIND, VECS_PER_THREAD);
  constexpr bool kAddOnLoad = Kind::kFusedAdd && !kPrefetch && !FP32_SUM;
  using Row = RowInRegisters<VECS_PER_THREAD, ActVec, Kind::kFusedAdd && (kPrefetch || FP32_SUM)>;
  __shared__ float scratch[kMaxThreadsPerBlock / WAVE];

  const int64_t n_vec = p.hidden / VEC;
  const int64_t n_groups = (p.rows + blockDim.y - 1) / blockDim.y;  // blockDim.y rows per group
  const TW* weight = static_cast<const TW*>(p.weight);               // [hidden]
  const TW* bias = static_cast<const TW*>(p.bias);                   // [hidden] or null
  const float inv_hidden = 1.0f / static_cast<float>(p.hidden);
  const Fp8Quotient quotient = quant_quotient<KIND>(p);
  with_quotient_mode<KIND>(quotient.by_bracket(), [&](auto by_bracket) {
    auto vector_index = [&](int i) { return static_cast<int64_t>(i) * blockDim.x + threadIdx.x; };
    auto row_of = [&](int64_t group) { return group * blockDim.y + threadIdx.y; };
    auto load_row = [&](int64_t row, Row& r) {
      const TAct* in_row = static_cast<const TAct*>(p.input) + row_offset(p, row, p.input_row_stride, p.input_head_stride);
#pragma unroll
      for (int i = 0; i < VECS_PER_THREAD; ++i) {
        if (row < p.rows && vector_index(i) < n_vec) {
          r.x[i] = ActVec::template load<CachePolicy::kStreaming>(in_row + vector_index(i) * VEC);
          if constexpr (Kind::kFusedAdd) {
            const TAct* res_row =
                static_cast<const TAct*>(p.residual) + row_offset(p, row, p.residual_row_stride, p.residual_head_stride);
            const ActVec res = ActVec::template load<CachePolicy::kStreaming>(res_row + vector_index(i) * VEC);
            if constexpr (kAddOnLoad) {
              add_rounded(r.x[i], res);
            } else {
              r.residual[i] = res;
            }
          }
        }
      }
    };

    // A grid smaller than the row count walks the rows. Where registers allow, the next row's
    // loads are issued before the current row's reductions, so memory stays busy while a row is
    // reduced and written; wide rows (many vectors per thread) load each row in turn instead of
    // spilling.
    // Walking threads keep their columns' weights in registers rather than reload them per row;
    // not layernorm's weight and bias, whose extra registers cost more than the reloads.
    using RowAffine = Affine<KIND, TW, VEC>;
    constexpr bool kKeepAffine = kPrefetch && !Kind::kLayer;
    [[maybe_unused]] RowAffine kept_affine[kKeepAffine ? VECS_PER_THREAD : 1];
    if constexpr (kKeepAffine) {
#pragma unroll
      for (int i = 0; i < VECS_PER_THREAD; ++i) {
        if (vector_index(i) < n_vec) kept_affine[i] = RowAffine::load(weight, bias, vector_index(i) * VEC);
      }
    }
    int64_t group = blockIdx.x;
    Row current;
    if constexpr (kPrefetch) load_row(row_of(group), current);
    for (; group < n_groups; group += gridDim.x) {
      [[maybe_unused]] Row next;
      if constexpr (kPrefetch) {
        if (group + gridDim.x < n_groups) load_row(row_of(group + gridDim.x), next);
      } else {
        load_row(row_of(group), current);
      }

      const int64_t row = row_of(group);
      bool valid[VECS_PER_THREAD];
#pragma unroll
      for (int i = 0; i < VECS_PER_THREAD; ++i) valid[i] = row < p.rows && vector_index(i) < n_vec;
      [[maybe_unused]] TAct* res_row = Kind::kFusedAdd ? static_cast<TAct*>(p.residual) +
                                            row_offset(p, row, p.residual_row_stride, p.residual_head_stride)
                                      : nullptr;
      TOut* out_row = static_cast<TOut*>(p.out) + row_offset(p, row, p.out_row_stride, p.out_head_stride);

      // The values normalised: x (the rounded residual for the fused forms), or the fp32 sums.
      auto values = [&](int i) {
        Vec<float, VEC> v;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          if constexpr (FP32_SUM) {
            v[j] = to_float(current.x[i][j]) + to_float(current.residual[i][j]);
          } else {
            v[j] = to_float(current.x[i][j]);
          }
        }
        return v;
      };
      float acc = 0.0f;
#pragma unroll
      for (int i = 0; i < VECS_PER_THREAD; ++i) {
        if (!valid[i]) continue;
        if constexpr (FP32_SUM) {
          ActVec rounded = current.x[i];
          add_rounded(rounded, current.residual[i]);
          rounded.store_global(res_row + vector_index(i) * VEC);
        } else if constexpr (Kind::kFusedAdd) {
          if constexpr (!kAddOnLoad) add_rounded(current.x[i], current.residual[i]);
          current.x[i].store_global(res_row + vector_index(i) * VEC);
        }
        const Vec<float, VEC> v = values(i);
#pragma unroll
        for (int j = 0; j < VEC; ++j) acc += Kind::kLayer ? v[j] : v[j] * v[j];
      }

      float mean = 0.0f;
      if constexpr (Kind::kLayer) {
        mean = row_sum<WAVE>(acc, scratch) * inv_hidden;
        // The squares are summed divided by hidden (each deviation times 1/sqrt(hidden)): a row
        // whose variance fp32 holds cannot overflow the sum (the CPU sums in double).
        const float root_inv_hidden = sqrtf(inv_hidden);
        acc = 0.0f;
#pragma unroll
        for (int i = 0; i < VECS_PER_THREAD; ++i) {
          if (!valid[i]) continue;
#pragma unroll
          for (int j = 0; j < VEC; ++j) {
            const float d = (to_float(current.x[i][j]) - mean) * root_inv_hidden;
            acc += d * d;
          }
        }
      }
      const RmsFactor factor = row_factor<KIND, WAVE>(acc, inv_hidden, p.eps, scratch, [&](auto&& f) {
#pragma unroll
        for (int i = 0; i < VECS_PER_THREAD; ++i) {
          if (!valid[i]) continue;
          const Vec<float, VEC> v = values(i);
#pragma unroll
          for (int j = 0; j < VEC; ++j) f(v[j]);
        }
      });
      const Epilogue<KIND> epilogue{mean, factor.row_scale, factor.pre_scale, p.gemma ? 1.0f : 0.0f, quotient};
      with_row_mode<KIND>(factor.rescaled, [&](auto prescaled) {
#pragma unroll
        for (int i = 0; i < VECS_PER_THREAD; ++i) {
          if (!valid[i]) continue;
          RowAffine a;
          if constexpr (kKeepAffine) {
            a = kept_affine[i];
          } else {
            a = RowAffine::load(weight, bias, vector_index(i) * VEC);
          }
          if constexpr (FP32_SUM) {
            write_outputs<KIND, VEC, decltype(prescaled)::value, decltype(by_bracket)::value>(
                epilogue, values(i), a, out_row + vector_index(i) * VEC);
          } else {
            write_outputs<KIND, VEC, decltype(prescaled)::value, decltype(by_bracket)::value>(
                epilogue, current.x[i], a, out_row + vector_index(i) * VEC);
          }
        }
      });
      if constexpr (kPrefetch) current = next;
    }
  });
}

// FP32_SUM as norm_rows_in_registers: every pass reads input and residual and forms their fp32
// sums, and the last pass writes the rounded residual (each thread reads and writes only its
// own elements).
template <NormKind KIND, int WAVE, int VEC, typename TAct, typename TW, typename TOut, bool FP32_SUM = false>
__global__ void FH_LAUNCH_BOUNDS(kMaxThreadsPerBlock) norm_rows_streaming(const NormParams p) {
  using Kind = KindTraits<KIND>;
  using ActVec = Vec<TAct, VEC>;
  __shared__ float scratch[kMaxThreadsPerBlock / WAVE];

  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool row_valid = row < p.rows;
  const int64_t n_vec = row_valid ? p.hidden / VEC : 0;
  const TAct* in_row = static_cast<const TAct*>(p.input) + row_offset(p, row, p.input_row_stride, p.input_head_stride);
  TAct* res_row = Kind::kFusedAdd ? static_cast<TAct*>(p.residual) +
                                        row_offset(p, row, p.residual_row_stride, p.residual_head_stride)
                                  : nullptr;
  TOut* out_row = static_cast<TOut*>(p.out) + row_offset(p, row, p.out_row_stride, p.out_head_stride);
  const TW* weight = static_cast<const TW*>(p.weight);                 // [hidden]
  const TW* bias = static_cast<const TW*>(p.bias);                     // [hidden] or null
  // After the first pass the normalised value is read back from the residual (fused forms:
  // this thread wrote it) or the input.
  const TAct* x_row = Kind::kFusedAdd ? res_row : in_row;
  auto sums = [&](int64_t v) {  // FP32_SUM: input + residual in fp32
    const ActVec in = ActVec::load(in_row + v * VEC);
    const ActVec res = ActVec::load(res_row + v * VEC);
    Vec<float, VEC> s;
#pragma unroll
    for (int j = 0; j < VEC; ++j) s[j] = to_float(in[j]) + to_float(res[j]);
    return s;
  };

  float acc = 0.0f;
  for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
    if constexpr (FP32_SUM) {
      const Vec<float, VEC> s = sums(v);
#pragma unroll
      for (int j = 0; j < VEC; ++j) acc += s[j] * s[j];
      continue;
    }
    const ActVec in = ActVec::template load<CachePolicy::kStreaming>(in_row + v * VEC);
    ActVec x = in;
    if constexpr (Kind::kFusedAdd) {
      add_rounded(x, ActVec::template load<CachePolicy::kStreaming>(res_row + v * VEC));
      x.store_global(res_row + v * VEC);
    }
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float f = to_float(x[j]);
      acc += Kind::kLayer ? f : f * f;
    }
  }

  const float inv_hidden = 1.0f / static_cast<float>(p.hidden);
  float mean = 0.0f;
  if constexpr (Kind::kLayer) {
    mean = row_sum<WAVE>(acc, scratch) * inv_hidden;
    const float root_inv_hidden = sqrtf(inv_hidden);  // as in the register-resident variant above
    acc = 0.0f;
    for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
      const ActVec x = ActVec::load(x_row + v * VEC);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float d = (to_float(x[j]) - mean) * root_inv_hidden;
        acc += d * d;
      }
    }
  }
  const RmsFactor factor = row_factor<KIND, WAVE>(acc, inv_hidden, p.eps, scratch, [&](auto&& f) {
    for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
      if constexpr (FP32_SUM) {
        const Vec<float, VEC> s = sums(v);
#pragma unroll
        for (int j = 0; j < VEC; ++j) f(s[j]);
      } else {
        const ActVec x = ActVec::load(x_row + v * VEC);
#pragma unroll
        for (int j = 0; j < VEC; ++j) f(to_float(x[j]));
      }
    }
  });
  const Fp8Quotient quotient = quant_quotient<KIND>(p);
  const Epilogue<KIND> epilogue{mean, factor.row_scale, factor.pre_scale, p.gemma ? 1.0f : 0.0f, quotient};
  with_quotient_mode<KIND>(quotient.by_bracket(), [&](auto by_bracket) {
    with_row_mode<KIND>(factor.rescaled, [&](auto prescaled) {
      for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
        if constexpr (FP32_SUM) {
          const ActVec in = ActVec::load(in_row + v * VEC);
          ActVec rounded = ActVec::load(res_row + v * VEC);
          Vec<float, VEC> s;
#pragma unroll
          for (int j = 0; j < VEC; ++j) s[j] = to_float(in[j]) + to_float(rounded[j]);
          add_rounded(rounded, in);
          rounded.store_global(res_row + v * VEC);
          write_outputs<KIND, VEC, decltype(prescaled)::value, decltype(by_bracket)::value>(
              epilogue, s, Affine<KIND, TW, VEC>::load(weight, bias, v * VEC), out_row + v * VEC);
        } else {
          const ActVec x = ActVec::load(x_row + v * VEC);
          write_outputs<KIND, VEC, decltype(prescaled)::value, decltype(by_bracket)::value>(
              epilogue, x, Affine<KIND, TW, VEC>::load(weight, bias, v * VEC), out_row + v * VEC);
        }
      }
    });
  });
}

}  // namespace flashhip::kernels::norm_detail
