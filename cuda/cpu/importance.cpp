// CPU twin of kernels/importance.cu: one thread walks whole tiles (a pair belongs to one tile, so its sums
// need no atomics). Pairs go front to back and each visits only the pixels it can reach (sp_pair_box), which
// keeps every pixel's sequence of sp_pixel_step calls, and so every result, what a per-pixel walk gives.
#include <ATen/Parallel.h>

#include <vector>

#include "splatpack_kernels.h"
#include "splatpack_math.h"

void sp_tile_importance_cpu(const float* coefs, const int64_t* offsets, int64_t n_tiles, int tile_size, int tiles_x,
                            int tiles_y, int width, int height, float* weight, int64_t* covered, int64_t* dominant) {
  const int64_t tiles_per_cam = (int64_t)tiles_x * tiles_y;
  const int64_t parts = at::get_num_threads();
  const int pixels = tile_size * tile_size;
  // Tiles dealt round-robin: their costs vary a lot across the image, contiguous ranges would not balance.
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    std::vector<SpPixel> state(pixels);
    for (int64_t part = begin; part < end; ++part) {
      for (int64_t tile = part; tile < n_tiles; tile += parts) {
        const int64_t start = offsets[tile], stop = offsets[tile + 1];
        if (stop == start) continue;
        const int64_t local = tile % tiles_per_cam;
        const int x0 = (int)(local % tiles_x) * tile_size, y0 = (int)(local / tiles_x) * tile_size;
        // Pixels past the image's right or bottom edge never composite.
        const int cols = width - x0 < tile_size ? width - x0 : tile_size;
        const int rows = height - y0 < tile_size ? height - y0 : tile_size;
        for (int p = 0; p < pixels; ++p) state[p] = sp_pixel_start(p / tile_size < rows && p % tile_size < cols);
        int live = rows * cols;
        for (int64_t k = start; k < stop && live > 0; ++k) {
          const float* c = coefs + 6 * k;
          const SpBox box = sp_pair_box(c, tile_size);
          const int bx1 = box.x1 < cols - 1 ? box.x1 : cols - 1, by1 = box.y1 < rows - 1 ? box.y1 : rows - 1;
          double sum = 0.0;
          int64_t count = 0;
          for (int py = box.y0; py <= by1; ++py) {
            const float y = sp_pixel_offset(py, tile_size);
            SpPixel* row = state.data() + py * tile_size;
            for (int px = box.x0; px <= bx1; ++px) {
              SpPixel* s = row + px;
              if (s->done) continue;
              const float w = sp_pixel_step(s, c, sp_pixel_offset(px, tile_size), y, k);
              if (w > 0.0f) sum += w, ++count;
              live -= s->done;
            }
          }
          weight[k] = (float)sum;
          covered[k] = count;
        }
        for (int p = 0; p < pixels; ++p)
          if (state[p].best_k >= 0) dominant[state[p].best_k] += 1;
      }
    }
  });
}
