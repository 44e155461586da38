// CPU twin of kernels/importance.cu: one thread walks whole tiles (a pair belongs to one tile, so its sums
// need no atomics), each pixel front to back until it stops.
#include <ATen/Parallel.h>

#include <vector>

#include "splatpack_kernels.h"
#include "splatpack_math.h"

void sp_tile_importance_cpu(const float* coefs, const int64_t* offsets, int64_t n_tiles, int tile_size, int tiles_x,
                            int tiles_y, int width, int height, float* weight, int64_t* covered, int64_t* dominant) {
  const int64_t tiles_per_cam = (int64_t)tiles_x * tiles_y;
  const int64_t parts = at::get_num_threads();
  // Tiles dealt round-robin: their costs vary a lot across the image, contiguous ranges would not balance.
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> sums;
    for (int64_t part = begin; part < end; ++part) {
      for (int64_t tile = part; tile < n_tiles; tile += parts) {
        const int64_t start = offsets[tile], stop = offsets[tile + 1];
        if (stop == start) continue;
        const int64_t local = tile % tiles_per_cam;
        const int x0 = (int)(local % tiles_x) * tile_size, y0 = (int)(local / tiles_x) * tile_size;
        sums.assign(stop - start, 0.0);
        for (int py = 0; py < tile_size && y0 + py < height; ++py) {
          const float y = sp_pixel_offset(py, tile_size);
          for (int px = 0; px < tile_size && x0 + px < width; ++px) {
            const float x = sp_pixel_offset(px, tile_size);
            SpPixel s = sp_pixel_start(1);
            for (int64_t k = start; k < stop && !s.done; ++k) {
              const float w = sp_pixel_step(&s, coefs + 6 * k, x, y, k);
              if (w > 0.0f) sums[k - start] += w, covered[k] += 1;
            }
            if (s.best_k >= 0) dominant[s.best_k] += 1;
          }
        }
        for (int64_t k = start; k < stop; ++k) weight[k] = (float)sums[k - start];
      }
    }
  });
}
