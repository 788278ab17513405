// The persistent tile scheduler shared by the matrix-core kernels: a grid of at most one CTA per
// multiprocessor walks the work units unit = blockIdx.x, + gridDim.x, ... Vendor-free.
//
// Rasterisation: output tiles are numbered in bands of kGroupM tile-rows; inside a band the
// numbering runs down the band's rows first, then across the columns. The CTAs resident at one
// time (consecutive units) then cover a few bands of A rows and a few columns of B, which stay in
// L2, instead of one long row of tiles that reads all of B. The split-K index is the slowest
// dimension, so the splits of one tile run in different waves and never contend.
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"

namespace flashhip::kernels {

struct TileCoord {
  int m_tile = 0, n_tile = 0;
  int kb_begin = 0, kb_end = 0;  // this unit's K blocks
  int split = 0;
};

template <int kGroupM>
struct TileScheduler {
  int tiles_m = 0, tiles_n = 0, k_blocks = 0, split_k = 1;

  FH_HOST_DEVICE int units() const { return tiles_m * tiles_n * split_k; }

  FH_HOST_DEVICE TileCoord coord(int unit) const {
    const int tiles = tiles_m * tiles_n;
    TileCoord c;
    c.split = unit / tiles;
    const int t = unit - c.split * tiles;
    const int band_tiles = kGroupM * tiles_n;
    const int band = t / band_tiles;
    const int first_m = band * kGroupM;
    const int band_rows = (tiles_m - first_m) < kGroupM ? (tiles_m - first_m) : kGroupM;
    const int in_band = t - band * band_tiles;
    c.m_tile = first_m + in_band % band_rows;
    c.n_tile = in_band / band_rows;
    // K blocks split as evenly as possible: the first (k_blocks % split_k) splits get one more.
    const int base = k_blocks / split_k, extra = k_blocks % split_k;
    c.kb_begin = c.split * base + (c.split < extra ? c.split : extra);
    c.kb_end = c.kb_begin + base + (c.split < extra ? 1 : 0);
    return c;
  }
};

}  // namespace flashhip::kernels
