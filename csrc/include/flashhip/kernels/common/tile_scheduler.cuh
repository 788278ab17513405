// The persistent tile scheduler shared by the matrix-core kernels: a grid of at most one CTA per
// multiprocessor, each CTA asking work(cta, ctas, i, &coord) for its i-th piece of work, i = 0, 1,
// ... until it answers false. Vendor-free; the host tests walk it exactly as the kernels do.
//
// Rasterisation: output tiles are numbered in bands of kGroupM tile-rows; inside a band the
// numbering runs down the band's rows first, then across the columns. The CTAs resident at one
// time (consecutive tiles) then cover a few bands of A rows and a few columns of B, which stay in
// L2, instead of one long row of tiles that reads all of B.
//
// Clusters (cluster_work): the tiles handed out above are then pairs (cluster_m x cluster_n
// neighbouring output tiles), the parties are clusters of CTAs, and each CTA of a cluster takes
// its rank's tile of every piece, so the cluster's CTAs walk the same K blocks in lockstep (they
// share an operand's tile). A pair's second tile may lie past the output's edge.
//
// Two ways to give tiles fewer or more than a whole number of waves work for every CTA:
// - split-K (split_k > 1): every tile's K blocks split into split_k units, each written as an
//   fp32 partial that a second kernel sums. The split index is the slowest dimension, so the
//   splits of one tile run in different waves and never contend.
// - stream-K (stream_k_ctas > 0): the first whole_tiles tiles go round robin to the CTAs whole
//   (cta, cta + ctas, ...); the K blocks of all the other tiles, laid end to end in tile order,
//   are cut into one contiguous range per CTA, as even as integers allow. A CTA's range then holds
//   at most one piece that does not start a tile (its first, "helper" piece: the CTA writes it as
//   an fp32 partial and raises its flag) and any number that do (the piece holding a tile's
//   first K block "owns" the tile: its CTA waits for the helpers' flags, adds their partials in
//   CTA order, so the sum is deterministic, and stores the tile). A helper piece is always the
//   first thing its CTA does after the whole tiles, an owner waits only at its end, and helpers
//   have higher CTA indices than their owner and wait for nothing first: with every CTA resident
//   the waits are short, and with some not yet resident the lowest waiting CTAs still finish.
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"

namespace flashhip::kernels {

struct TileCoord {
  int m_tile = 0, n_tile = 0;
  int kb_begin = 0, kb_end = 0;  // this piece's K blocks of the tile
  int split = 0;                 // split-K: the split index (0 otherwise)
  int tile = 0;                  // the tile's number in the rasterised order
};

template <int kGroupM>
struct TileScheduler {
  int tiles_m = 0, tiles_n = 0, k_blocks = 0, split_k = 1;
  int stream_k_ctas = 0;  // > 0: stream-K over that many CTAs (the grid); split_k is then 1
  int whole_tiles = 0;    // stream-K: leading tiles done whole, a multiple of stream_k_ctas

  FH_HOST_DEVICE int tiles() const { return tiles_m * tiles_n; }
  FH_HOST_DEVICE int units() const { return tiles() * split_k; }  // split-K units

  // Tile t's place in the output, by the banded rasterisation.
  FH_HOST_DEVICE TileCoord tile(int t) const {
    const int band_tiles = kGroupM * tiles_n;
    const int band = t / band_tiles;
    const int first_m = band * kGroupM;
    const int band_rows = (tiles_m - first_m) < kGroupM ? (tiles_m - first_m) : kGroupM;
    const int in_band = t - band * band_tiles;
    TileCoord c;
    c.m_tile = first_m + in_band % band_rows;
    c.n_tile = in_band / band_rows;
    c.kb_end = k_blocks;
    c.tile = t;
    return c;
  }

  // Split-K unit `unit` (split_k == 1: tile `unit`, all its K blocks).
  FH_HOST_DEVICE TileCoord coord(int unit) const {
    const int split = unit / tiles();
    TileCoord c = tile(unit - split * tiles());
    c.split = split;
    // K blocks split as evenly as possible: the first (k_blocks % split_k) splits get one more.
    const int base = k_blocks / split_k, extra = k_blocks % split_k;
    c.kb_begin = split * base + (split < extra ? split : extra);
    c.kb_end = c.kb_begin + base + (split < extra ? 1 : 0);
    return c;
  }

  // ---- stream-K's shared range: the K blocks of tiles whole_tiles.. end to end ----
  FH_HOST_DEVICE int shared_blocks() const { return (tiles() - whole_tiles) * k_blocks; }
  // First shared K block of CTA `cta`'s range (cta == stream_k_ctas: the end).
  FH_HOST_DEVICE int range_begin(int cta) const {
    const int base = shared_blocks() / stream_k_ctas, extra = shared_blocks() % stream_k_ctas;
    return cta * base + (cta < extra ? cta : extra);
  }
  // The CTA whose range holds shared K block `block` (needs shared_blocks() >= stream_k_ctas).
  FH_HOST_DEVICE int range_owner(int block) const {
    const int base = shared_blocks() / stream_k_ctas, extra = shared_blocks() % stream_k_ctas;
    const int long_blocks = extra * (base + 1);  // the first `extra` ranges hold base + 1 blocks
    return block < long_blocks ? block / (base + 1) : extra + (block - long_blocks) / base;
  }

  // Piece i of CTA `cta`'s work in a grid of `ctas`; false once there is none.
  FH_HOST_DEVICE bool work(int cta, int ctas, int i, TileCoord* c) const {
    if (stream_k_ctas == 0) {
      const int unit = cta + i * ctas;
      if (unit >= units()) return false;
      *c = coord(unit);
      return true;
    }
    const int rounds = whole_tiles / stream_k_ctas;
    if (i < rounds) {
      *c = tile(cta + i * stream_k_ctas);
      return true;
    }
    const int begin = range_begin(cta), end = range_begin(cta + 1);
    const int piece = i - rounds;  // piece 0 starts at `begin`, the others at a tile's start
    const int start = piece == 0 ? begin : (begin / k_blocks + piece) * k_blocks;
    if (start >= end) return false;
    const int t = start / k_blocks;
    *c = tile(whole_tiles + t);
    c->kb_begin = start - t * k_blocks;
    c->kb_end = (end < (t + 1) * k_blocks ? end : (t + 1) * k_blocks) - t * k_blocks;
    return true;
  }

  // Piece i of CTA `rank` of cluster `cluster` in a grid of `clusters` clusters of
  // cluster_m x cluster_n CTAs (at most one of them above 1), with tiles_m x tiles_n counting
  // pairs: the pair's work, at this CTA's tile of it.
  FH_HOST_DEVICE bool cluster_work(int cluster, int clusters, int rank, int cluster_m, int cluster_n, int i,
                                   TileCoord* c) const {
    if (!work(cluster, clusters, i, c)) return false;
    c->m_tile = c->m_tile * cluster_m + (cluster_m > 1 ? rank : 0);
    c->n_tile = c->n_tile * cluster_n + (cluster_n > 1 ? rank : 0);
    return true;
  }

  // Stream-K roles of a piece of CTA `cta` (the kernels' split-K units are neither).
  FH_HOST_DEVICE bool is_helper(const TileCoord& c) const { return stream_k_ctas > 0 && c.kb_begin > 0; }
  FH_HOST_DEVICE bool waits_for_helpers(const TileCoord& c) const {
    return stream_k_ctas > 0 && c.kb_begin == 0 && c.kb_end < k_blocks;
  }
  // For an owner piece that waits: the last CTA helping it (the helpers are cta + 1 .. that).
  FH_HOST_DEVICE int last_helper(const TileCoord& c) const {
    return range_owner((c.tile - whole_tiles + 1) * k_blocks - 1);
  }
};

}  // namespace flashhip::kernels
