// Fixed-size vectors for wide loads and stores of global memory (the NVIDIA stores are spelled
// st.global: never hand them a shared-memory pointer). A Vec<T, N> of 16 bytes moves as one
// 128-bit memory instruction on NVIDIA and AMD: the bytes go through a native vector word,
// because compilers may split an aggregate of small elements into narrow stores.
#pragma once

#include <cstdint>
#include <cstring>

#include "flashhip/platform/macros.h"

namespace flashhip {

inline constexpr int kMaxVectorBytes = 16;

// Whether `ptr` sits on a `bytes` boundary (a null pointer does), as a vector access needs.
// Launchers ask it before picking a wide variant.
inline bool is_aligned(const void* ptr, int bytes) {
  return reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(bytes) == 0;
}

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
// The native word of each access width (uint4 & co. exist in both runtimes).
template <int BYTES>
struct MemoryWord;
// 32 bytes (e.g. 8 fp32 weights beside 8 bf16 activations) move as two 16-byte halves.
struct alignas(32) Uint4x2 {
  uint4 lo, hi;
};
template <>
struct MemoryWord<32> { using type = Uint4x2; };
template <>
struct MemoryWord<16> { using type = uint4; };
template <>
struct MemoryWord<8> { using type = uint2; };
template <>
struct MemoryWord<4> { using type = uint32_t; };
template <>
struct MemoryWord<2> { using type = uint16_t; };
template <>
struct MemoryWord<1> { using type = uint8_t; };

// Cache policy of an access. kStreaming marks data touched once (evict first), so a kernel that
// streams a large tensor leaves the L2 to data that is reused, such as weights.
enum class CachePolicy { kDefault, kStreaming };

template <CachePolicy POLICY, typename Word>
FH_DEVICE FH_INLINE Word load_word(const Word* ptr) {
#if FH_PLATFORM_CUDA
  if constexpr (POLICY == CachePolicy::kStreaming && sizeof(Word) >= 4 && sizeof(Word) <= 16) return __ldcs(ptr);
#endif
  return *ptr;
}

template <CachePolicy POLICY, typename Word>
FH_DEVICE FH_INLINE void store_word(Word* ptr, const Word& value) {
#if FH_PLATFORM_CUDA
  // nvcc was seen splitting 16-byte stores of computed values into 4-byte ones in unrolled
  // loops; the instruction is spelled out for the 16- and 8-byte words.
  if constexpr (sizeof(Word) == 16) {
    if constexpr (POLICY == CachePolicy::kStreaming) {
      asm volatile("st.global.cs.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(ptr), "r"(value.x), "r"(value.y), "r"(value.z), "r"(value.w) : "memory");
    } else {
      asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(ptr), "r"(value.x), "r"(value.y), "r"(value.z), "r"(value.w) : "memory");
    }
    return;
  } else if constexpr (sizeof(Word) == 8) {
    if constexpr (POLICY == CachePolicy::kStreaming) {
      asm volatile("st.global.cs.v2.b32 [%0], {%1, %2};" ::"l"(ptr), "r"(value.x), "r"(value.y) : "memory");
    } else {
      asm volatile("st.global.v2.b32 [%0], {%1, %2};" ::"l"(ptr), "r"(value.x), "r"(value.y) : "memory");
    }
    return;
  } else if constexpr (POLICY == CachePolicy::kStreaming && sizeof(Word) == 4) {
    __stcs(ptr, value);
    return;
  }
#endif
  *ptr = value;
}
#endif

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
// The same pointer, opaque to the compiler: it stays in a register until its use instead of
// being derived again there from thread and block indices. nvcc re-derives such cheap values at a
// kernel's last stores, which lengthens the tail of a latency-bound kernel. (A pointer through
// the asm reads as generic, so its stores are generic ones: same cost on global memory.)
template <typename T>
FH_DEVICE FH_INLINE T* kept_in_register(T* ptr) {
#if FH_PLATFORM_CUDA
  asm volatile("" : "+l"(ptr));
#endif
  return ptr;
}
#endif

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T data[N];

  FH_HOST_DEVICE FH_INLINE T& operator[](int i) { return data[i]; }
  FH_HOST_DEVICE FH_INLINE const T& operator[](int i) const { return data[i]; }

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
  using Word = typename MemoryWord<sizeof(T) * N>::type;

  template <CachePolicy POLICY = CachePolicy::kDefault>
  FH_DEVICE FH_INLINE static Vec load(const T* ptr) {
    const Word word = load_word<POLICY>(reinterpret_cast<const Word*>(ptr));
    Vec v;
    memcpy(&v, &word, sizeof(Word));
    return v;
  }
  // Global memory only (spelled st.global on NVIDIA).
  template <CachePolicy POLICY = CachePolicy::kDefault>
  FH_DEVICE FH_INLINE void store_global(T* ptr) const {
    store_word<POLICY>(reinterpret_cast<Word*>(ptr), pack());
  }

 private:
  // The elements packed into the native word with shifts: nvcc keeps the 16-byte alignment of
  // such a value, where a memcpy'd aggregate was seen split into 4-byte stores.
  FH_DEVICE FH_INLINE Word pack() const {
    constexpr int kBytes = static_cast<int>(sizeof(T)) * N;
    static_assert(kBytes <= 16, "stores are at most 16 bytes wide");
    if constexpr (kBytes < 4) {
      Word w;
      memcpy(&w, data, kBytes);
      return w;
    } else {
      constexpr int kPerWord = 4 / static_cast<int>(sizeof(T));
      uint32_t words[kBytes / 4];
#pragma unroll
      for (int k = 0; k < kBytes / 4; ++k) {
        uint32_t acc = 0;
#pragma unroll
        for (int e = 0; e < kPerWord; ++e) acc |= element_bits(data[k * kPerWord + e]) << (8 * sizeof(T) * e);
        words[k] = acc;
      }
      if constexpr (kBytes == 16) return make_uint4(words[0], words[1], words[2], words[3]);
      else if constexpr (kBytes == 8) return make_uint2(words[0], words[1]);
      else return words[0];
    }
  }

  template <typename E>
  FH_DEVICE FH_INLINE static uint32_t element_bits(const E& e) {
    if constexpr (sizeof(E) == 4) {
      uint32_t u;
      memcpy(&u, &e, 4);
      return u;
    } else {
      return static_cast<uint32_t>(e.bits);  // the 16-bit and 8-bit storage types
    }
  }
#endif
};

// Elements of T in the widest vector access.
template <typename T>
inline constexpr int kWideVecElems = kMaxVectorBytes / static_cast<int>(sizeof(T));

}  // namespace flashhip
