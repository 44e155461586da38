// Importance accumulation on the GPU: one block per tile, one thread per pixel, pairs walked front to back in
// lockstep; per pair a warp sums its pixels' weights and counts with shuffles/ballots, one atomic per warp.
#include <cuda_runtime.h>

#include "splatpack_kernels.h"
#include "splatpack_math.h"

__global__ void sp_tile_importance_kernel(const float* coefs, const int64_t* offsets, int tile_size, int tiles_x,
                                          int tiles_y, int width, int height, float* weight,
                                          unsigned long long* covered, unsigned long long* dominant) {
  const int64_t tile = blockIdx.x;
  const int64_t local = tile % ((int64_t)tiles_x * tiles_y);
  const int pixel = threadIdx.x;  // the block is rounded up to whole warps: extra threads sit out as stopped
  const int px = pixel % tile_size, py = pixel / tile_size;
  const int gx = (int)(local % tiles_x) * tile_size + px, gy = (int)(local / tiles_x) * tile_size + py;
  const int inside = pixel < tile_size * tile_size && gx < width && gy < height;
  SpPixel s = sp_pixel_start(inside);
  const float x = sp_pixel_offset(px, tile_size), y = sp_pixel_offset(py, tile_size);
  const int64_t start = offsets[tile], stop = offsets[tile + 1];
  const unsigned lane = threadIdx.x & 31u;
  for (int64_t k = start; k < stop; ++k) {
    // Every 32 pairs: stop the whole block once every pixel has (the condition is uniform over the block).
    if (((k - start) & 31) == 0 && __syncthreads_and(s.done)) break;
    const float w = sp_pixel_step(&s, coefs + 6 * k, x, y, k);
    const unsigned hit = __ballot_sync(0xffffffffu, w > 0.0f);
    if (hit) {
      float sum = w;
      for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
      if (lane == 0) {
        atomicAdd(weight + k, sum);
        atomicAdd(covered + k, (unsigned long long)__popc(hit));
      }
    }
  }
  if (s.best_k >= 0) atomicAdd(dominant + s.best_k, 1ull);
}

const char* sp_tile_importance_cuda(const float* coefs, const int64_t* offsets, int64_t n_tiles, int tile_size,
                                    int tiles_x, int tiles_y, int width, int height, float* weight, int64_t* covered,
                                    int64_t* dominant, void* stream) {
  if (n_tiles == 0) return nullptr;
  const int threads = (tile_size * tile_size + 31) / 32 * 32;
  if (threads > 1024) return "tile_importance: tile_size above 32 is not supported on CUDA";
  sp_tile_importance_kernel<<<(unsigned)n_tiles, threads, 0, (cudaStream_t)stream>>>(
      coefs, offsets, tile_size, tiles_x, tiles_y, width, height, weight, (unsigned long long*)covered,
      (unsigned long long*)dominant);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}
