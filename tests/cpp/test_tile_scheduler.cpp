// The matrix-core kernels' persistent tile scheduler (kernels/common/tile_scheduler.cuh), on the
// host: every (tile, split) is one unit, the splits of a tile partition its K blocks, and the
// rasterisation runs down a band of kGroupM tile-rows before moving to the next column.
#include <gtest/gtest.h>

#include <set>
#include <tuple>
#include <vector>

#include "flashhip/kernels/common/tile_scheduler.cuh"

namespace {

using flashhip::kernels::TileCoord;
using Scheduler = flashhip::kernels::TileScheduler<8>;

TEST(TileScheduler, EveryTileAndSplitOnceAndTheSplitsPartitionK) {
  for (const auto& [tm, tn, kb, splits] : std::vector<std::tuple<int, int, int, int>>{
           {1, 1, 1, 1}, {3, 5, 7, 1}, {8, 12, 56, 1}, {17, 9, 56, 3}, {4, 36, 18, 7}, {24, 56, 16, 1}, {2, 3, 5, 5}}) {
    const Scheduler s{tm, tn, kb, splits};
    ASSERT_EQ(s.units(), tm * tn * splits);
    std::set<std::tuple<int, int, int>> seen;
    std::vector<std::vector<int>> k_owner(tm * tn, std::vector<int>(kb, -1));
    for (int u = 0; u < s.units(); ++u) {
      const TileCoord c = s.coord(u);
      ASSERT_GE(c.m_tile, 0);
      ASSERT_LT(c.m_tile, tm);
      ASSERT_GE(c.n_tile, 0);
      ASSERT_LT(c.n_tile, tn);
      ASSERT_TRUE(seen.insert({c.m_tile, c.n_tile, c.split}).second) << "unit " << u << " repeats a tile";
      ASSERT_LE(c.kb_end - c.kb_begin, (kb + splits - 1) / splits);
      ASSERT_GE(c.kb_end - c.kb_begin, kb / splits);
      for (int k = c.kb_begin; k < c.kb_end; ++k) {
        int& owner = k_owner[c.m_tile * tn + c.n_tile][k];
        ASSERT_EQ(owner, -1) << "K block " << k << " of a tile in two splits";
        owner = c.split;
      }
    }
    for (const auto& tile : k_owner)
      for (int owner : tile) ASSERT_NE(owner, -1) << "a K block of a tile in no split";
  }
}

TEST(TileScheduler, RasterisesDownBandsOfEightTileRowsThenAcross) {
  const Scheduler s{20, 6, 4, 2};  // two full bands of 8 rows and a last band of 4
  int u = 0;
  for (int split = 0; split < 2; ++split) {  // the split index is the slowest
    for (int band = 0; band < 3; ++band) {
      const int rows = band < 2 ? 8 : 4;
      for (int n = 0; n < 6; ++n) {
        for (int r = 0; r < rows; ++r, ++u) {
          const TileCoord c = s.coord(u);
          EXPECT_EQ(c.split, split) << "unit " << u;
          EXPECT_EQ(c.m_tile, band * 8 + r) << "unit " << u;
          EXPECT_EQ(c.n_tile, n) << "unit " << u;
        }
      }
    }
  }
  EXPECT_EQ(u, s.units());
}

}  // namespace
