// The CDNA3 MFMA traits' lane maps, checked on the host: each map is a bijection between
// (lane, element) and the operand tile, a few positions agree with the ISA guide's tables, and an
// emulated instruction (registers filled through the maps, D computed the way the matrix core
// does, read back through the C map) equals a plain matmul. Torch-free, no GPU.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "flashhip/platform/mma/mfma_cdna3.h"

namespace {

using flashhip::mma::MfmaF32_16x16x16_Bf16;
using flashhip::mma::MfmaF32_16x16x32_Fp8;
using flashhip::mma::MfmaF32_32x32x16_Fp8;
using flashhip::mma::MmaCoord;

enum class Operand { kA, kB, kC };

template <typename Mma>
MmaCoord coord_of(Operand op, int lane, int i) {
  switch (op) {
    case Operand::kA: return Mma::a_coord(lane, i);
    case Operand::kB: return Mma::b_coord(lane, i);
    default: return Mma::c_coord(lane, i);
  }
}

// Every (lane, element) lands inside the tile and every tile position is hit exactly once.
template <typename Mma>
void expect_bijection(Operand op) {
  const int rows = op == Operand::kA ? Mma::kM : op == Operand::kB ? Mma::kK : Mma::kM;
  const int cols = op == Operand::kA ? Mma::kK : Mma::kN;
  const int per_lane = op == Operand::kA ? Mma::kAPerLane : op == Operand::kB ? Mma::kBPerLane : Mma::kCPerLane;
  ASSERT_EQ(Mma::kWave * per_lane, rows * cols) << "registers do not cover the tile exactly";
  std::vector<int> hits(rows * cols, 0);
  for (int lane = 0; lane < Mma::kWave; ++lane) {
    for (int i = 0; i < per_lane; ++i) {
      const MmaCoord c = coord_of<Mma>(op, lane, i);
      ASSERT_GE(c.row, 0);
      ASSERT_LT(c.row, rows);
      ASSERT_GE(c.col, 0);
      ASSERT_LT(c.col, cols);
      ++hits[c.row * cols + c.col];
    }
  }
  for (int p = 0; p < rows * cols; ++p) EXPECT_EQ(hits[p], 1) << "tile position " << p / cols << "," << p % cols;
}

template <typename Mma>
void expect_all_bijections() {
  expect_bijection<Mma>(Operand::kA);
  expect_bijection<Mma>(Operand::kB);
  expect_bijection<Mma>(Operand::kC);
}

// One instruction emulated through the maps: lane registers are filled from A and B with the A
// and B maps; the matrix core pairs, for every output, A's register elements and B's register
// elements that carry the same k (found through the maps, as the hardware wires it); each D
// register is read back through the C map and compared with a plain matmul of A and B.
template <typename Mma>
void expect_emulated_mma_matches_matmul(unsigned seed) {
  constexpr int M = Mma::kM, N = Mma::kN, K = Mma::kK, W = Mma::kWave;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> small(-8, 8);  // exact in fp32, so equality is required
  std::vector<float> a(M * K), b(K * N), c(M * N);
  for (auto& x : a) x = static_cast<float>(small(rng));
  for (auto& x : b) x = static_cast<float>(small(rng));
  for (auto& x : c) x = static_cast<float>(small(rng));

  // Registers as the lanes hold them.
  std::vector<float> a_reg(W * Mma::kAPerLane), b_reg(W * Mma::kBPerLane), c_reg(W * Mma::kCPerLane);
  for (int l = 0; l < W; ++l) {
    for (int i = 0; i < Mma::kAPerLane; ++i) {
      const MmaCoord p = Mma::a_coord(l, i);
      a_reg[l * Mma::kAPerLane + i] = a[p.row * K + p.col];
    }
    for (int i = 0; i < Mma::kBPerLane; ++i) {
      const MmaCoord p = Mma::b_coord(l, i);
      b_reg[l * Mma::kBPerLane + i] = b[p.row * N + p.col];
    }
    for (int r = 0; r < Mma::kCPerLane; ++r) {
      const MmaCoord p = Mma::c_coord(l, r);
      c_reg[l * Mma::kCPerLane + r] = c[p.row * N + p.col];
    }
  }
  // The matrix core's wiring: for row m and k, which register holds A[m, k]; for k and col n,
  // which holds B[k, n]. Built from the maps, then used only through the registers.
  std::vector<int> a_src(M * K, -1), b_src(K * N, -1);
  for (int l = 0; l < W; ++l) {
    for (int i = 0; i < Mma::kAPerLane; ++i) {
      const MmaCoord p = Mma::a_coord(l, i);
      a_src[p.row * K + p.col] = l * Mma::kAPerLane + i;
    }
    for (int i = 0; i < Mma::kBPerLane; ++i) {
      const MmaCoord p = Mma::b_coord(l, i);
      b_src[p.row * N + p.col] = l * Mma::kBPerLane + i;
    }
  }
  std::vector<float> d_reg(c_reg.size());
  for (int l = 0; l < W; ++l) {
    for (int r = 0; r < Mma::kCPerLane; ++r) {
      const MmaCoord p = Mma::c_coord(l, r);
      float acc = c_reg[l * Mma::kCPerLane + r];
      for (int k = 0; k < K; ++k) acc += a_reg[a_src[p.row * K + k]] * b_reg[b_src[k * N + p.col]];
      d_reg[l * Mma::kCPerLane + r] = acc;
    }
  }
  // Read back through the C map; compare with the plain matmul.
  for (int l = 0; l < W; ++l) {
    for (int r = 0; r < Mma::kCPerLane; ++r) {
      const MmaCoord p = Mma::c_coord(l, r);
      float ref = c[p.row * N + p.col];
      for (int k = 0; k < K; ++k) ref += a[p.row * K + k] * b[k * N + p.col];
      EXPECT_EQ(d_reg[l * Mma::kCPerLane + r], ref) << "lane " << l << " register " << r;
    }
  }
}

TEST(MmaLayoutsCdna3, MapsAreBijections) {
  expect_all_bijections<MfmaF32_16x16x32_Fp8>();
  expect_all_bijections<MfmaF32_32x32x16_Fp8>();
  expect_all_bijections<MfmaF32_16x16x16_Bf16>();
}

TEST(MmaLayoutsCdna3, EmulatedMmaMatchesMatmul) {
  for (unsigned seed = 1; seed <= 4; ++seed) {
    expect_emulated_mma_matches_matmul<MfmaF32_16x16x32_Fp8>(seed);
    expect_emulated_mma_matches_matmul<MfmaF32_32x32x16_Fp8>(seed);
    expect_emulated_mma_matches_matmul<MfmaF32_16x16x16_Bf16>(seed);
  }
}

// Positions spelled out from the ISA guide's operand tables (not derived from the formulas).
TEST(MmaLayoutsCdna3, KnownPositions) {
  using S = MfmaF32_16x16x32_Fp8;
  static_assert(S::a_coord(17, 3).row == 1 && S::a_coord(17, 3).col == 11, "16x16x32 A: lane 17 byte 3 = A[1][11]");
  static_assert(S::b_coord(63, 7).row == 31 && S::b_coord(63, 7).col == 15, "16x16x32 B: lane 63 byte 7 = B[31][15]");
  static_assert(S::c_coord(16, 0).row == 4 && S::c_coord(16, 0).col == 0, "16x16 C: lane 16 reg 0 = D[4][0]");
  static_assert(S::c_coord(5, 3).row == 3 && S::c_coord(5, 3).col == 5, "16x16 C: lane 5 reg 3 = D[3][5]");
  using L = MfmaF32_32x32x16_Fp8;
  static_assert(L::a_coord(33, 0).row == 1 && L::a_coord(33, 0).col == 8, "32x32x16 A: lane 33 byte 0 = A[1][8]");
  static_assert(L::c_coord(0, 4).row == 8 && L::c_coord(0, 4).col == 0, "32x32 C: lane 0 reg 4 = D[8][0]");
  static_assert(L::c_coord(32, 0).row == 4 && L::c_coord(32, 0).col == 0, "32x32 C: lane 32 reg 0 = D[4][0]");
  static_assert(L::c_coord(63, 15).row == 31 && L::c_coord(63, 15).col == 31, "32x32 C: lane 63 reg 15 = D[31][31]");
  using H = MfmaF32_16x16x16_Bf16;
  static_assert(H::a_coord(48, 2).row == 0 && H::a_coord(48, 2).col == 14, "16x16x16 A: lane 48 half 2 = A[0][14]");
  SUCCEED();
}

// The fp8 GEMM kernel feeds two consecutive 32x32x16 instructions from one 16-byte LDS read: lane
// l supplies k = 16 * (l / 32) + 8 * h + i (h = 0, 1 the instruction, i the byte) of a 32-wide K
// chunk to both A and B. Because A and B use the same permutation, the two instructions together
// still sum over the chunk's 32 k exactly once each.
TEST(MmaLayoutsCdna3, KernelKPermutationCoversChunk) {
  using L = MfmaF32_32x32x16_Fp8;
  std::vector<int> hits(2 * L::kK, 0);
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < L::kWave; ++l) {
      for (int i = 0; i < L::kAPerLane; ++i) {
        const int instr_k = L::a_coord(l, i).col;
        ASSERT_EQ(instr_k, L::b_coord(l, i).row) << "A and B must carry the same k in one lane/byte";
        const int actual_k = 16 * (instr_k / 8) + 8 * h + instr_k % 8;
        if (L::a_coord(l, i).row == 0) ++hits[actual_k];  // one row of A suffices
      }
    }
  }
  for (int k = 0; k < 2 * L::kK; ++k) EXPECT_EQ(hits[k], 1) << "k " << k;
}

}  // namespace
