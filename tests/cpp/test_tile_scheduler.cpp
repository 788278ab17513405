// The matrix-core kernels' persistent tile scheduler (kernels/common/tile_scheduler.cuh), on the
// host: every (tile, split) is one unit, the splits of a tile partition its K blocks, and the
// rasterisation runs down a band of kGroupM tile-rows before moving to the next column.
#include <gtest/gtest.h>

#include <algorithm>
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

// Stream-K: walking work() for every CTA as the kernels do covers each (tile, K block) once; the
// whole tiles come first and whole; a CTA has at most one helper piece, its first shared one; each
// split tile has one owner, whose CTA is below its helpers, and last_helper() names exactly them.
TEST(TileScheduler, StreamKCoversEveryKBlockOnceWithOneOwnerPerTile) {
  for (const auto& [tm, tn, kb, ctas, whole] : std::vector<std::tuple<int, int, int, int, int>>{
           {8, 36, 56, 132, 132},  // 1024x4608x7168, 128-row tiles: one whole wave, 1.2 waves shared
           {8, 12, 56, 132, 0},    // 1024x1536x7168: fewer tiles than CTAs
           {4, 36, 56, 132, 0},    // the same with 256-row tiles
           {3, 6, 9, 132, 0},      // 1-2 K blocks a CTA: a tile spread over ~8 CTAs
           {48, 12, 56, 132, 396}, {17, 9, 7, 10, 130}, {1, 1, 5, 5, 0}, {2, 3, 4, 24, 0}, {5, 5, 3, 4, 20}}) {
    Scheduler s{tm, tn, kb, 1, ctas, whole};
    ASSERT_GE(s.shared_blocks(), ctas);
    std::vector<std::vector<int>> k_cta(tm * tn, std::vector<int>(kb, -1));
    std::vector<int> owner(tm * tn, -1);
    std::vector<std::set<int>> helpers(tm * tn);
    int largest = 0, smallest = 1 << 30;
    for (int cta = 0; cta < ctas; ++cta) {
      TileCoord c;
      int helper_pieces = 0, shared = 0;
      for (int i = 0; s.work(cta, ctas, i, &c); ++i) {
        ASSERT_LT(i, 1000) << "a CTA's work never ends";
        ASSERT_EQ(c.tile, cta + i * ctas < whole ? cta + i * ctas : c.tile);
        const TileCoord at = s.tile(c.tile);
        ASSERT_EQ(at.m_tile, c.m_tile);
        ASSERT_EQ(at.n_tile, c.n_tile);
        ASSERT_LT(c.kb_begin, c.kb_end);
        if (i < whole / ctas) {
          ASSERT_EQ(c.tile, cta + i * ctas) << "the whole tiles go round robin";
          ASSERT_TRUE(c.kb_begin == 0 && c.kb_end == kb) << "a whole tile in pieces";
        } else {
          ASSERT_GE(c.tile, whole);
          shared += c.kb_end - c.kb_begin;
        }
        for (int k = c.kb_begin; k < c.kb_end; ++k) {
          ASSERT_EQ(k_cta[c.tile][k], -1) << "K block " << k << " of tile " << c.tile << " twice";
          k_cta[c.tile][k] = cta;
        }
        if (s.is_helper(c)) {
          ++helper_pieces;
          ASSERT_EQ(i, whole / ctas) << "a helper piece that is not the CTA's first shared one";
          helpers[c.tile].insert(cta);
        } else if (c.tile >= whole) {
          ASSERT_EQ(c.kb_begin, 0);
          ASSERT_EQ(owner[c.tile], -1);
          owner[c.tile] = cta;
          ASSERT_EQ(s.waits_for_helpers(c), c.kb_end < kb);
        }
      }
      ASSERT_LE(helper_pieces, 1);
      largest = std::max(largest, shared), smallest = std::min(smallest, shared);
    }
    EXPECT_LE(largest - smallest, 1) << "the shared range is not cut evenly";
    for (int t = 0; t < tm * tn; ++t) {
      for (int k = 0; k < kb; ++k) ASSERT_NE(k_cta[t][k], -1) << "K block " << k << " of tile " << t << " in no piece";
      if (t < whole) continue;
      ASSERT_NE(owner[t], -1) << "tile " << t << " has no owner";
      TileCoord c = s.tile(t);
      c.kb_end = k_cta[t][kb - 1] == owner[t] ? kb : 1;  // the owner's piece ends before kb when helped
      std::set<int> want;
      if (!helpers[t].empty())
        for (int h = owner[t] + 1; h <= s.last_helper(c); ++h) want.insert(h);
      EXPECT_EQ(helpers[t], want) << "tile " << t;
    }
  }
}

// Clusters: pairs of tiles handed out as above, each CTA of a cluster at its rank's tile; every
// real (tile, K block) is done once (split-K and stream-K alike), both CTAs of a cluster walk the
// same K blocks, and only a pair's second tile may lie past the edge (odd tile counts).
TEST(TileScheduler, ClustersCoverEveryTileOnceInLockstep) {
  for (const auto& [tm, tn, kb, splits, clusters, stream_k] : std::vector<std::tuple<int, int, int, int, int, bool>>{
           {8, 36, 56, 1, 66, false}, {3, 5, 7, 1, 4, false}, {9, 12, 16, 3, 66, false}, {8, 36, 56, 1, 66, true},
           {5, 7, 9, 1, 8, true}, {1, 1, 4, 1, 2, true}}) {
    for (const auto& [cm, cn] : std::vector<std::pair<int, int>>{{2, 1}, {1, 2}}) {
      const int pm = (tm + cm - 1) / cm, pn = (tn + cn - 1) / cn;
      Scheduler s{pm, pn, kb, splits};
      if (stream_k) {
        s.stream_k_ctas = std::min(clusters, pm * pn * kb);
        s.whole_tiles = pm * pn >= 2 * s.stream_k_ctas ? (pm * pn / s.stream_k_ctas - 1) * s.stream_k_ctas : 0;
      }
      const int parties = stream_k ? s.stream_k_ctas : std::min(clusters, pm * pn * splits);
      std::vector<std::vector<int>> done(tm * tn, std::vector<int>(kb, 0));  // of the splits together
      for (int cluster = 0; cluster < parties; ++cluster) {
        std::vector<TileCoord> first;
        for (int rank = 0; rank < cm * cn; ++rank) {
          TileCoord c;
          int i = 0;
          for (; s.cluster_work(cluster, parties, rank, cm, cn, i, &c); ++i) {
            ASSERT_LT(i, 1000);
            if (rank == 0) {
              first.push_back(c);
            } else {
              ASSERT_LT(i, int(first.size())) << "the cluster's CTAs have different work";
              ASSERT_EQ(c.kb_begin, first[i].kb_begin);
              ASSERT_EQ(c.kb_end, first[i].kb_end);
              ASSERT_EQ(c.split, first[i].split);
              ASSERT_EQ(c.m_tile, first[i].m_tile + (cm > 1 ? rank : 0));
              ASSERT_EQ(c.n_tile, first[i].n_tile + (cn > 1 ? rank : 0));
            }
            ASSERT_LT(c.m_tile, pm * cm);
            ASSERT_LT(c.n_tile, pn * cn);
            if (c.m_tile >= tm || c.n_tile >= tn) {
              ASSERT_EQ(rank, 1) << "only a pair's second tile lies past the edge";
              continue;
            }
            for (int k = c.kb_begin; k < c.kb_end; ++k) ++done[c.m_tile * tn + c.n_tile][k];
          }
          if (rank > 0) {
            ASSERT_EQ(i, int(first.size()));
          }
        }
      }
      for (const auto& tile : done)
        for (int k = 0; k < kb; ++k)
          ASSERT_EQ(tile[k], 1) << "a K block done " << tile[k] << " times: " << tm << "x" << tn << "x" << kb
                                << " split " << splits << " cluster " << cm << "x" << cn << (stream_k ? " stream-K" : "");
    }
  }
}

}  // namespace
