// CDNA3 (MI300, gfx940/941/942) matrix-core instruction traits, one struct per instruction.
//
// Each trait gives the instruction's tile (kM x kN x kK), the per-lane register types of its
// operands, where every register element sits in the tile, and a static mma(c, a, b) that issues
// the instruction. The lane maps are plain constexpr functions, usable on the host (the layout
// tests emulate one instruction with them) and in kernels (to compute LDS/global addresses).
//
// Conventions, for all traits (wave of 64 lanes, lane = 0..63):
//   a_coord(lane, i) -> {row = m, col = k} of element i (0..kAPerLane-1) of lane's A register
//   b_coord(lane, i) -> {row = k, col = n} of element i of lane's B register
//   c_coord(lane, r) -> {row = m, col = n} of accumulator register r (0..kCPerLane-1)
//   D = A (kM x kK) * B (kK x kN) + C, in fp32.
// Element i of an operand is byte i (fp8) or half-word i (bf16) of the packed register, lowest
// first, i.e. element i of the array the register is loaded from.
//
// The maps are those of the CDNA3 ISA guide's MFMA operand tables (and AMD's matrix instruction
// calculator): A and B are read "column of lanes per row": lane % kM picks the row of A (column
// of B), lane / kM picks a group of consecutive k. For the 4-register (16x16) outputs a lane
// holds 4 consecutive rows of one column; for the 16-register (32x32) outputs a lane holds four
// groups of 4 consecutive rows, the groups 8 rows apart.
//
// mma() compiles to the instruction only in a device pass for a target that has it (fp8: gfx940+,
// where gfx94x reads FNUZ e4m3 and gfx950 reads OCP e4m3 — the flavour is the target's; bf16_1k:
// gfx90a and gfx94x/gfx950). Instantiating it in a device pass for any other target is a compile
// error naming the instruction; in a host pass it is an empty body (never run: device-only).
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"

#if defined(__gfx90a__) || FH_ARCH_CDNA3 || FH_ARCH_CDNA4
#define FH_HAS_MFMA_BF16_1K 1
#else
#define FH_HAS_MFMA_BF16_1K 0
#endif
#if FH_ARCH_CDNA3 || FH_ARCH_CDNA4
#define FH_HAS_MFMA_FP8 1
#else
#define FH_HAS_MFMA_FP8 0
#endif

namespace flashhip::mma {

// A position in an operand or result tile: (row, col) as documented per operand above.
struct MmaCoord {
  int row = 0;
  int col = 0;
};

namespace cdna_detail {
inline constexpr int kWave = 64;  // every CDNA MFMA is issued by one wave64

#if FH_PLATFORM_HIP
using F32x4 = float __attribute__((ext_vector_type(4)));
using F32x16 = float __attribute__((ext_vector_type(16)));
using I16x4 = short __attribute__((ext_vector_type(4)));
using Fp8x8 = long;  // 8 fp8 bytes in one 64-bit register pair, element i = byte i
#else
// Host stand-ins of the same size, so that the traits can be named (and their sizes checked) in
// plain C++; only the lane maps are meant for host use.
template <typename T, int N>
struct HostArray {
  T v[N];
};
using F32x4 = HostArray<float, 4>;
using F32x16 = HostArray<float, 16>;
using I16x4 = HostArray<short, 4>;
using Fp8x8 = int64_t;
#endif

template <bool kAvailable>
struct Check {
  // Dependent on the template argument, so it fires only when a device pass instantiates mma()
  // for a target without the instruction.
  static constexpr bool value = kAvailable || !FH_DEVICE_PASS;
};
}  // namespace cdna_detail

// v_mfma_f32_16x16x32_fp8_fp8: D[16x16] f32 += A[16x32] fp8 * B[32x16] fp8. gfx940+.
struct MfmaF32_16x16x32_Fp8 {
  static constexpr int kM = 16, kN = 16, kK = 32;
  static constexpr int kWave = cdna_detail::kWave;
  static constexpr int kAPerLane = 8, kBPerLane = 8, kCPerLane = 4;
  using FragA = cdna_detail::Fp8x8;
  using FragB = cdna_detail::Fp8x8;
  using FragC = cdna_detail::F32x4;

  FH_HOST_DEVICE static constexpr MmaCoord a_coord(int lane, int i) {
    return MmaCoord{lane % kM, (lane / kM) * kAPerLane + i};
  }
  FH_HOST_DEVICE static constexpr MmaCoord b_coord(int lane, int i) {
    return MmaCoord{(lane / kN) * kBPerLane + i, lane % kN};
  }
  FH_HOST_DEVICE static constexpr MmaCoord c_coord(int lane, int r) {
    return MmaCoord{(lane / kN) * kCPerLane + r, lane % kN};
  }

  template <bool kAvailable = FH_HAS_MFMA_FP8>
  FH_DEVICE FH_INLINE static void mma(FragC& c, const FragA& a, const FragB& b) {
    static_assert(cdna_detail::Check<kAvailable>::value,
                  "v_mfma_f32_16x16x32_fp8_fp8 needs gfx940+ (CDNA3/CDNA4); this target has no fp8 MFMA");
#if FH_HAS_MFMA_FP8
    c = __builtin_amdgcn_mfma_f32_16x16x32_fp8_fp8(a, b, c, 0, 0, 0);
#else
    (void)c, (void)a, (void)b;
#endif
  }
};

// v_mfma_f32_32x32x16_fp8_fp8: D[32x32] f32 += A[32x16] fp8 * B[16x32] fp8. gfx940+.
struct MfmaF32_32x32x16_Fp8 {
  static constexpr int kM = 32, kN = 32, kK = 16;
  static constexpr int kWave = cdna_detail::kWave;
  static constexpr int kAPerLane = 8, kBPerLane = 8, kCPerLane = 16;
  using FragA = cdna_detail::Fp8x8;
  using FragB = cdna_detail::Fp8x8;
  using FragC = cdna_detail::F32x16;

  FH_HOST_DEVICE static constexpr MmaCoord a_coord(int lane, int i) {
    return MmaCoord{lane % kM, (lane / kM) * kAPerLane + i};
  }
  FH_HOST_DEVICE static constexpr MmaCoord b_coord(int lane, int i) {
    return MmaCoord{(lane / kN) * kBPerLane + i, lane % kN};
  }
  // Register r = 4 * g + j: rows 8 * g + 4 * (lane / 32) + j, g = 0..3, j = 0..3.
  FH_HOST_DEVICE static constexpr MmaCoord c_coord(int lane, int r) {
    return MmaCoord{(r / 4) * 8 + (lane / kN) * 4 + r % 4, lane % kN};
  }

  template <bool kAvailable = FH_HAS_MFMA_FP8>
  FH_DEVICE FH_INLINE static void mma(FragC& c, const FragA& a, const FragB& b) {
    static_assert(cdna_detail::Check<kAvailable>::value,
                  "v_mfma_f32_32x32x16_fp8_fp8 needs gfx940+ (CDNA3/CDNA4); this target has no fp8 MFMA");
#if FH_HAS_MFMA_FP8
    c = __builtin_amdgcn_mfma_f32_32x32x16_fp8_fp8(a, b, c, 0, 0, 0);
#else
    (void)c, (void)a, (void)b;
#endif
  }
};

// v_mfma_f32_16x16x16bf16_1k: D[16x16] f32 += A[16x16] bf16 * B[16x16] bf16. gfx90a+.
// The bf16 values travel as their 16-bit patterns (element i = half-word i).
struct MfmaF32_16x16x16_Bf16 {
  static constexpr int kM = 16, kN = 16, kK = 16;
  static constexpr int kWave = cdna_detail::kWave;
  static constexpr int kAPerLane = 4, kBPerLane = 4, kCPerLane = 4;
  using FragA = cdna_detail::I16x4;
  using FragB = cdna_detail::I16x4;
  using FragC = cdna_detail::F32x4;

  FH_HOST_DEVICE static constexpr MmaCoord a_coord(int lane, int i) {
    return MmaCoord{lane % kM, (lane / kM) * kAPerLane + i};
  }
  FH_HOST_DEVICE static constexpr MmaCoord b_coord(int lane, int i) {
    return MmaCoord{(lane / kN) * kBPerLane + i, lane % kN};
  }
  FH_HOST_DEVICE static constexpr MmaCoord c_coord(int lane, int r) {
    return MmaCoord{(lane / kN) * kCPerLane + r, lane % kN};
  }

  template <bool kAvailable = FH_HAS_MFMA_BF16_1K>
  FH_DEVICE FH_INLINE static void mma(FragC& c, const FragA& a, const FragB& b) {
    static_assert(cdna_detail::Check<kAvailable>::value,
                  "v_mfma_f32_16x16x16bf16_1k needs gfx90a+ (CDNA2/CDNA3/CDNA4)");
#if FH_HAS_MFMA_BF16_1K
    c = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(a, b, c, 0, 0, 0);
#else
    (void)c, (void)a, (void)b;
#endif
  }
};

}  // namespace flashhip::mma
