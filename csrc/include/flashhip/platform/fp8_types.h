// The two fp8 e4m3 storage types and the encoding facts of each flavour; the largest finite
// values are defined here and nowhere else.
#pragma once

#include <cstdint>

namespace flashhip {

struct alignas(1) fp8_e4m3fn_t {
  uint8_t bits;
};
struct alignas(1) fp8_e4m3fnuz_t {
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

}  // namespace flashhip
