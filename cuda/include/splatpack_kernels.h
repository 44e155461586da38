// Raw-pointer launchers of splatpack's kernels: the CPU twins (cpu/*.cpp) and the CUDA kernels (kernels/*.cu).
// No torch types here, so the .cu files compile with a plain `nvcc -c`; binding.cpp checks the tensors and
// calls these. The CUDA launchers take the stream as void* and return nullptr or the CUDA error text.
#ifndef SPLATPACK_KERNELS_H
#define SPLATPACK_KERNELS_H

#include <stdint.h>

// PLAS group assignment. values / target: (tiles, cells, channels) float32; order: (tiles, cells) int64;
// perm: (cells,) a permutation of range(cells), consecutive quadruples being the groups; gains:
// (tiles * cells / 4,) best minus identity score per group. values and order are permuted in place.
void sp_plas_assign_cpu(float* values, const float* target, int64_t* order, const int64_t* perm, float* gains,
                        int64_t tiles, int64_t cells, int64_t channels);
const char* sp_plas_assign_cuda(float* values, const float* target, int64_t* order, const int64_t* perm,
                                float* gains, int64_t tiles, int64_t cells, int64_t channels, void* stream);

// Importance accumulation over the (tile, Gaussian) pairs of a tile plan: pairs of tile t are
// offsets[t] .. offsets[t + 1] - 1, front to back; coefs (pairs, 6) as _torch_impl.pair_coefficients. Per pair:
// weight += sum of alpha * T, covered += pixels composited into, dominant += pixels where it has the largest
// weight. Outputs must be zeroed by the caller. Tiles t of camera c are c * tiles_x * tiles_y + ty * tiles_x + tx.
void sp_tile_importance_cpu(const float* coefs, const int64_t* offsets, int64_t n_tiles, int tile_size, int tiles_x,
                            int tiles_y, int width, int height, float* weight, int64_t* covered, int64_t* dominant);
const char* sp_tile_importance_cuda(const float* coefs, const int64_t* offsets, int64_t n_tiles, int tile_size,
                                    int tiles_x, int tiles_y, int width, int height, float* weight, int64_t* covered,
                                    int64_t* dominant, void* stream);

#endif  // SPLATPACK_KERNELS_H
