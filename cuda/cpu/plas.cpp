// CPU twin of kernels/plas.cu: every group of every tile solved independently (groups are disjoint).
#include <ATen/Parallel.h>

#include "splatpack_kernels.h"
#include "splatpack_math.h"

namespace {
// Groups ahead whose rows are prefetched: at large radii a tile spans the whole grid and the 4 members of a
// group sit at random places in it, so each group is a dozen cache misses that would otherwise be serial.
constexpr int64_t kPrefetchAhead = 8;

void group_rows(const int64_t* perm, int64_t i, int64_t groups, int64_t cells, int64_t rows[4]) {
  const int64_t base = i / groups * cells, group = i % groups;
  for (int a = 0; a < 4; ++a) rows[a] = base + perm[4 * group + a];
}
}  // namespace

void sp_plas_assign_cpu(float* values, const float* target, int64_t* order, const int64_t* perm, float* gains,
                        int64_t tiles, int64_t cells, int64_t channels) {
  const int64_t groups = cells / 4;
  at::parallel_for(0, tiles * groups, 4096, [&](int64_t begin, int64_t end) {
    int64_t rows[4];
    for (int64_t i = begin; i < end; ++i) {
      if (i + kPrefetchAhead < end) {
        group_rows(perm, i + kPrefetchAhead, groups, cells, rows);
        for (int a = 0; a < 4; ++a) {
          __builtin_prefetch(values + rows[a] * channels, 1);
          __builtin_prefetch(values + (rows[a] + 1) * channels - 1, 1);
          __builtin_prefetch(target + rows[a] * channels, 0);
          __builtin_prefetch(target + (rows[a] + 1) * channels - 1, 0);
          __builtin_prefetch(order + rows[a], 1);
        }
      }
      group_rows(perm, i, groups, cells, rows);
      gains[i] = sp_plas_group(values, target, order, rows, channels);
    }
  });
}
