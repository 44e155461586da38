// PLAS group assignment on the GPU: one thread per group of 4 cells (groups are disjoint, so in place is safe).
#include <cuda_runtime.h>

#include "splatpack_kernels.h"
#include "splatpack_math.h"

__global__ void sp_plas_assign_kernel(float* values, const float* target, int64_t* order, const int64_t* perm,
                                      float* gains, int64_t tiles, int64_t cells, int64_t channels) {
  const int64_t groups = cells / 4;
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= tiles * groups) return;
  const int64_t tile = i / groups, group = i % groups;
  const int64_t rows[4] = {tile * cells + perm[4 * group], tile * cells + perm[4 * group + 1],
                           tile * cells + perm[4 * group + 2], tile * cells + perm[4 * group + 3]};
  gains[i] = sp_plas_group(values, target, order, rows, channels);
}

const char* sp_plas_assign_cuda(float* values, const float* target, int64_t* order, const int64_t* perm,
                                float* gains, int64_t tiles, int64_t cells, int64_t channels, void* stream) {
  const int64_t n = tiles * (cells / 4);
  if (n == 0) return nullptr;
  const int threads = 256;
  const unsigned blocks = (unsigned)((n + threads - 1) / threads);
  sp_plas_assign_kernel<<<blocks, threads, 0, (cudaStream_t)stream>>>(values, target, order, perm, gains, tiles,
                                                                        cells, channels);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}
