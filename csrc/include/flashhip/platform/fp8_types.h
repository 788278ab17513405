// The fp8 storage types (e4m3 in its two flavours, and OCP e5m2) and the encoding facts of each;
// the largest finite values are defined here and nowhere else.
#pragma once

#include <cstdint>

namespace flashhip {

struct alignas(1) fp8_e4m3fn_t {
  uint8_t bits;
};
struct alignas(1) fp8_e4m3fnuz_t {
  uint8_t bits;
};
// OCP e5m2 (torch.float8_e5m2): the upper byte of an IEEE half, with inf and NaN.
struct alignas(1) fp8_e5m2_t {
  uint8_t bits;
};

// Encoding facts of each flavour.
template <typename T>
struct Fp8Traits;
template <>
struct Fp8Traits<fp8_e4m3fn_t> {
  static constexpr float kMaxFinite = 448.0f;
  static constexpr int kExponentBias = 7;
  static constexpr uint8_t kNaN = 0x7f;  // sign bit may be set too
  static constexpr bool kHasNegativeZero = true;
};
template <>
struct Fp8Traits<fp8_e4m3fnuz_t> {
  static constexpr float kMaxFinite = 240.0f;
  static constexpr int kExponentBias = 8;
  static constexpr uint8_t kNaN = 0x80;  // the only NaN; no negative zero
  static constexpr bool kHasNegativeZero = false;
};
template <>
struct Fp8Traits<fp8_e5m2_t> {
  static constexpr float kMaxFinite = 57344.0f;
  static constexpr int kExponentBias = 15;
  static constexpr uint8_t kNaN = 0x7f;  // 0x7d..0x7f (sign bit may be set); 0x7c is inf
  static constexpr bool kHasNegativeZero = true;
};

}  // namespace flashhip
