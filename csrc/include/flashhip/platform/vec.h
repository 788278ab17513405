// Fixed-size vectors for wide loads and stores. An aligned Vec<T, N> of 16 bytes becomes one
// 128-bit memory instruction on both NVIDIA and AMD.
#pragma once

#include "flashhip/platform/macros.h"

namespace flashhip {

inline constexpr int kMaxVectorBytes = 16;

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T data[N];

  FH_HOST_DEVICE FH_INLINE T& operator[](int i) { return data[i]; }
  FH_HOST_DEVICE FH_INLINE const T& operator[](int i) const { return data[i]; }

  FH_HOST_DEVICE FH_INLINE static Vec load(const T* ptr) {
    return *reinterpret_cast<const Vec*>(ptr);
  }
  FH_HOST_DEVICE FH_INLINE void store(T* ptr) const { *reinterpret_cast<Vec*>(ptr) = *this; }
};

// Elements of T in the widest vector access.
template <typename T>
inline constexpr int kWideVecElems = kMaxVectorBytes / static_cast<int>(sizeof(T));

}  // namespace flashhip
