// Compile-time integer helpers and sort networks shared by kernels.
#pragma once

#include "flashhip/platform/macros.h"

namespace flashhip::kernels {

// The smallest x with 2^x >= n (log2 of a power of two).
FH_HOST_DEVICE constexpr int log2_at_least(int n) { return n <= 1 ? 0 : 1 + log2_at_least((n + 1) / 2); }

// Batcher's odd-even merge sort network for N (a power of two) elements, built at compile
// time: compare-exchange c orders elements first[c] and second[c] (19 of them for N = 8).
template <int N>
struct SortNetwork {
  // At most N/4 * log2(N) * (log2(N) + 1) compare-exchanges.
  static constexpr int kMaxSize = N * log2_at_least(N) * (log2_at_least(N) + 1) / 4 + 1;
  int size = 0;
  int first[kMaxSize] = {};
  int second[kMaxSize] = {};
  constexpr SortNetwork() {
    for (int run = 1; run < N; run *= 2) {
      for (int gap = run; gap >= 1; gap /= 2) {
        for (int j = gap % run; j + gap < N; j += 2 * gap) {
          for (int i = 0; i < gap && i + j + gap < N; ++i) {
            if ((i + j) / (2 * run) == (i + j + gap) / (2 * run)) {
              first[size] = i + j;
              second[size] = i + j + gap;
              ++size;
            }
          }
        }
      }
    }
  }
};

}  // namespace flashhip::kernels
