// fp8 e4m3 in its two flavours (and OCP e5m2, converted by the hardware on NVIDIA sm_89+ and
// by a portable routine elsewhere). Which e4m3 flavour a device computes in natively is a property of the
// device target (OCP on NVIDIA sm_89+ and gfx950, FNUZ on gfx940/gfx942), so both types exist in
// every build and the conversion uses the hardware instruction only where it matches the target.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/fp8_cdna.h"
#include "flashhip/platform/fp8_types.h"
#include "flashhip/platform/macros.h"

#if FH_PLATFORM_CUDA
#include <cuda_fp8.h>
#endif

namespace flashhip {

// Portable float -> e4m3 with round-to-nearest-even, saturating to the largest finite value;
// NaN stays NaN. Runs on host and device; the reference for the hardware paths.
template <typename T>
FH_HOST_DEVICE FH_INLINE T fp8_e4m3_from_float_software(float f) {
  using Traits = Fp8Traits<T>;
  const uint32_t u = float_to_bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return T{static_cast<uint8_t>(Traits::kNaN | (Traits::kHasNegativeZero ? sign : 0))};
  float a = bits_to_float(u & 0x7fffffffu);
  a = a < Traits::kMaxFinite ? a : Traits::kMaxFinite;  // saturate (inf included)
  // Values below the smallest normal 2^(1-bias) are multiples of 2^(1-bias-3): scale by a power
  // of two (exact) and round the integer count to nearest even.
  const float min_normal = bits_to_float(static_cast<uint32_t>(127 + 1 - Traits::kExponentBias) << 23);
  uint8_t code;
  if (a < min_normal) {
    const float inv_quantum = bits_to_float(static_cast<uint32_t>(127 + Traits::kExponentBias - 1 + 3) << 23);
    code = static_cast<uint8_t>(rintf(a * inv_quantum));  // 0..8; 8 encodes the smallest normal
  } else {
    uint32_t b = float_to_bits(a);
    b += 0x7ffffu + ((b >> 20) & 1u);  // round the 23-bit mantissa to 3 bits, ties to even
    const int exponent = static_cast<int>(b >> 23) - 127 + Traits::kExponentBias;
    code = static_cast<uint8_t>((exponent << 3) | ((b >> 20) & 7u));
  }
  if (code == 0 && !Traits::kHasNegativeZero) return T{0};
  return T{static_cast<uint8_t>(code | sign)};
}

template <typename T>
FH_HOST_DEVICE FH_INLINE float fp8_e4m3_to_float(T x) {
  using Traits = Fp8Traits<T>;
  const uint32_t sign = (x.bits & 0x80u) << 24;
  const uint32_t exponent = (x.bits >> 3) & 0xfu;
  const uint32_t mantissa = x.bits & 7u;
  if (Traits::kHasNegativeZero ? (x.bits & 0x7f) == 0x7f : x.bits == 0x80) return bits_to_float(0x7fc00000u);
  float magnitude;
  if (exponent == 0) {  // subnormal: mantissa * 2^(1 - bias - 3)
    magnitude = static_cast<float>(mantissa) *
                bits_to_float(static_cast<uint32_t>(127 + 1 - Traits::kExponentBias - 3) << 23);
  } else {
    magnitude = bits_to_float(((exponent + 127 - Traits::kExponentBias) << 23) | (mantissa << 20));
  }
  return bits_to_float(float_to_bits(magnitude) | sign);
}

FH_HOST_DEVICE FH_INLINE float to_float(fp8_e4m3fn_t x) { return fp8_e4m3_to_float(x); }
FH_HOST_DEVICE FH_INLINE float to_float(fp8_e4m3fnuz_t x) { return fp8_e4m3_to_float(x); }

// Portable float -> e5m2 with round-to-nearest-even, saturating to 57344 (the largest finite
// value; inf included, as the quantisers saturate); NaN stays NaN.
FH_HOST_DEVICE FH_INLINE fp8_e5m2_t fp8_e5m2_from_float_software(float f) {
  const uint32_t u = float_to_bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return fp8_e5m2_t{static_cast<uint8_t>(Fp8Traits<fp8_e5m2_t>::kNaN | sign)};
  float a = bits_to_float(u & 0x7fffffffu);
  a = a < Fp8Traits<fp8_e5m2_t>::kMaxFinite ? a : Fp8Traits<fp8_e5m2_t>::kMaxFinite;
  uint8_t code;
  if (a < 0x1p-14f) {  // below the smallest normal: multiples of 2^-16, rounded to nearest even
    code = static_cast<uint8_t>(rintf(a * 0x1p16f));  // 0..4; 4 encodes the smallest normal
  } else {
    uint32_t b = float_to_bits(a);
    b += 0xfffffu + ((b >> 21) & 1u);  // round the 23-bit mantissa to 2 bits, ties to even
    const int exponent = static_cast<int>(b >> 23) - 127 + Fp8Traits<fp8_e5m2_t>::kExponentBias;
    code = static_cast<uint8_t>((exponent << 2) | ((b >> 21) & 3u));
  }
  return fp8_e5m2_t{static_cast<uint8_t>(code | sign)};
}

// e5m2 -> float, exact: the byte is the upper half of an IEEE half.
FH_HOST_DEVICE FH_INLINE float to_float(fp8_e5m2_t x) {
  const uint32_t sign = (x.bits & 0x80u) << 24;
  const uint32_t exponent = (x.bits >> 2) & 0x1fu;
  const uint32_t mantissa = x.bits & 3u;
  float magnitude;
  if (exponent == 0x1f) {
    magnitude = mantissa == 0 ? bits_to_float(0x7f800000u) : bits_to_float(0x7fc00000u);
  } else if (exponent == 0) {  // subnormal: mantissa * 2^-16
    magnitude = static_cast<float>(mantissa) * 0x1p-16f;
  } else {
    magnitude = bits_to_float(((exponent + 127 - 15) << 23) | (mantissa << 21));
  }
  return bits_to_float(float_to_bits(magnitude) | sign);
}

// float -> fp8 as kernels call it: the target's conversion instruction where the flavour is the
// target's native one, the portable routine otherwise.
template <>
struct FromFloat<fp8_e4m3fn_t> {
  FH_HOST_DEVICE FH_INLINE static fp8_e4m3fn_t apply(float f) {
#if FH_ARCH_SM89
    return fp8_e4m3fn_t{static_cast<uint8_t>(__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3))};
#elif FH_ARCH_CDNA4
    return fp8_e4m3fn_t{fp8_convert_native_amd<fp8_e4m3fn_t>(f)};
#else
    return fp8_e4m3_from_float_software<fp8_e4m3fn_t>(f);
#endif
  }
};
template <>
struct FromFloat<fp8_e4m3fnuz_t> {
  FH_HOST_DEVICE FH_INLINE static fp8_e4m3fnuz_t apply(float f) {
#if FH_ARCH_CDNA3
    return fp8_e4m3fnuz_t{fp8_convert_native_amd<fp8_e4m3fnuz_t>(f)};
#else
    return fp8_e4m3_from_float_software<fp8_e4m3fnuz_t>(f);
#endif
  }
};

// e5m2: the conversion instruction on NVIDIA sm_89+ (OCP e5m2); elsewhere the portable routine
// (gfx940/gfx942's bf8 is the FNUZ flavour, another encoding).
template <>
struct FromFloat<fp8_e5m2_t> {
  FH_HOST_DEVICE FH_INLINE static fp8_e5m2_t apply(float f) {
#if FH_ARCH_SM89
    return fp8_e5m2_t{static_cast<uint8_t>(__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E5M2))};
#else
    return fp8_e5m2_from_float_software(f);
#endif
  }
};

// Calls f(T{}) with the storage type of an fp8 dtype (e4m3fn, e4m3fnuz, e5m2); returns
// `unsupported` for any other dtype. The quantising launchers and CPU paths instantiate per
// output flavour with it.
template <typename R, typename F>
R dispatch_fp8_dtype(DType dtype, R unsupported, F&& f) {
  switch (dtype) {
    case DType::kFloat8E4M3FN: return f(fp8_e4m3fn_t{});
    case DType::kFloat8E4M3FNUZ: return f(fp8_e4m3fnuz_t{});
    case DType::kFloat8E5M2: return f(fp8_e5m2_t{});
    default: return unsupported;
  }
}

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
// Converts N floats to T, two at a time where the target has a paired conversion instruction
// (bf16x2 / half2 on NVIDIA sm_80+, e4m3x2 on sm_89+): half the conversions of one at a time.
#if FH_ARCH_SM80
#define FH_HAS_PAIRED_16BIT_CONVERSION 1
#else
#define FH_HAS_PAIRED_16BIT_CONVERSION 0
#endif

template <typename T, int N>
FH_DEVICE FH_INLINE void convert_floats(const float (&in)[N], T (&out)[N]) {
  constexpr bool kPaired16 = FH_HAS_PAIRED_16BIT_CONVERSION && N % 2 == 0 &&
                             (std::is_same_v<T, bf16_t> || std::is_same_v<T, half_t>);
  constexpr bool kPairedFp8 = FH_ARCH_SM89 && N % 2 == 0 && std::is_same_v<T, fp8_e4m3fn_t>;
  if constexpr (kPaired16) {
#if FH_HAS_PAIRED_16BIT_CONVERSION
#pragma unroll
    for (int i = 0; i < N; i += 2) {
      uint32_t pair;
      if constexpr (std::is_same_v<T, bf16_t>) {
        const __nv_bfloat162 v = __floats2bfloat162_rn(in[i], in[i + 1]);
        memcpy(&pair, &v, 4);
      } else {
        const __half2 v = __floats2half2_rn(in[i], in[i + 1]);
        memcpy(&pair, &v, 4);
      }
      out[i] = T{static_cast<uint16_t>(pair & 0xffffu)};
      out[i + 1] = T{static_cast<uint16_t>(pair >> 16)};
    }
#endif
  } else if constexpr (kPairedFp8) {
#if FH_ARCH_SM89
#pragma unroll
    for (int i = 0; i < N; i += 2) {
      const uint16_t pair = __nv_cvt_float2_to_fp8x2(make_float2(in[i], in[i + 1]), __NV_SATFINITE, __NV_E4M3);
      out[i] = T{static_cast<uint8_t>(pair & 0xffu)};
      out[i + 1] = T{static_cast<uint8_t>(pair >> 8)};
    }
#endif
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = from_float<T>(in[i]);
  }
}

// N floats (a multiple of 4) to 8-bit T, packed four to a 32-bit word in memory order (element
// 4k + j in byte j of word k): what a store of N fp8 values writes. The same conversions as
// convert_floats, combined into words directly (one merge per pair of pairs on sm_89+) rather
// than split into bytes and shifted back together.
template <typename T, int N>
FH_DEVICE FH_INLINE void convert_floats_to_words(const float (&in)[N], uint32_t (&out)[N / 4]) {
  static_assert(sizeof(T) == 1 && N % 4 == 0, "four 8-bit values a word");
  constexpr bool kPairedFp8 = FH_ARCH_SM89 && std::is_same_v<T, fp8_e4m3fn_t>;
  if constexpr (kPairedFp8) {
#if FH_ARCH_SM89
#pragma unroll
    for (int k = 0; k < N / 4; ++k) {
      const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(in[4 * k], in[4 * k + 1]), __NV_SATFINITE, __NV_E4M3);
      const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(in[4 * k + 2], in[4 * k + 3]), __NV_SATFINITE, __NV_E4M3);
      out[k] = (lo & 0xffffu) | (hi << 16);
    }
#endif
  } else {
#pragma unroll
    for (int k = 0; k < N / 4; ++k) {
      uint32_t word = 0;
#pragma unroll
      for (int j = 0; j < 4; ++j) word |= uint32_t{from_float<T>(in[4 * k + j]).bits} << (8 * j);
      out[k] = word;
    }
  }
}
#endif  // GPU

}  // namespace flashhip
