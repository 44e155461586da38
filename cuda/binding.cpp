// The one torch binding of splatpack's kernels: TORCH_LIBRARY ops (torch.ops.splatpack.*) that check their
// tensors and call the CPU twin or, in a CUDA build (SPLATPACK_WITH_CUDA), the CUDA launcher on the current
// stream. Only light ATen headers: the full torch/extension.h takes far longer to compile.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <tuple>

#include "splatpack_kernels.h"

#if defined(SPLATPACK_WITH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

void check_contiguous(const at::Tensor& t, at::ScalarType dtype, const char* what) {
  TORCH_CHECK(t.scalar_type() == dtype && t.is_contiguous(), what, " must be a contiguous ", dtype, " tensor");
}

void check_plas(const at::Tensor& values, const at::Tensor& target, const at::Tensor& order, const at::Tensor& perm) {
  TORCH_CHECK(values.dim() == 3 && values.size(1) % 4 == 0, "plas_assign: values must be (tiles, cells, C), cells % 4 == 0");
  TORCH_CHECK(target.sizes() == values.sizes(), "plas_assign: target must have the shape of values");
  TORCH_CHECK(order.dim() == 2 && order.size(0) == values.size(0) && order.size(1) == values.size(1),
              "plas_assign: order must be (tiles, cells)");
  TORCH_CHECK(perm.dim() == 1 && perm.size(0) == values.size(1), "plas_assign: perm must be (cells,)");
  check_contiguous(values, at::kFloat, "plas_assign: values");
  check_contiguous(target, at::kFloat, "plas_assign: target");
  check_contiguous(order, at::kLong, "plas_assign: order");
  check_contiguous(perm, at::kLong, "plas_assign: perm");
  for (const at::Tensor* t : {&target, &order, &perm})
    TORCH_CHECK(t->device() == values.device(), "plas_assign: all tensors must be on one device");
}

at::Tensor plas_gains(const at::Tensor& values) {
  return at::empty({values.size(0) * (values.size(1) / 4)}, values.options());
}

at::Tensor plas_assign_cpu(const at::Tensor& values, const at::Tensor& target, const at::Tensor& order,
                           const at::Tensor& perm) {
  check_plas(values, target, order, perm);
  at::Tensor gains = plas_gains(values);
  sp_plas_assign_cpu(values.data_ptr<float>(), target.data_ptr<float>(), order.data_ptr<int64_t>(),
                     perm.data_ptr<int64_t>(), gains.data_ptr<float>(), values.size(0), values.size(1),
                     values.size(2));
  return gains;
}

// Returns the number of tiles.
int64_t check_importance(const at::Tensor& coefs, const at::Tensor& offsets, int64_t tile_size,
                                 int64_t tiles_x, int64_t tiles_y, int64_t width, int64_t height) {
  TORCH_CHECK(coefs.dim() == 2 && coefs.size(1) == 6, "tile_importance: coefs must be (pairs, 6)");
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1, "tile_importance: tile_offsets must be (tiles + 1,)");
  check_contiguous(coefs, at::kFloat, "tile_importance: coefs");
  check_contiguous(offsets, at::kLong, "tile_importance: tile_offsets");
  TORCH_CHECK(offsets.device() == coefs.device(), "tile_importance: all tensors must be on one device");
  TORCH_CHECK(tile_size > 0 && tiles_x > 0 && tiles_y > 0 && width > 0 && height > 0,
              "tile_importance: sizes must be positive");
  TORCH_CHECK(tiles_x * tile_size >= width && tiles_y * tile_size >= height,
              "tile_importance: the tiles must cover the image");
  const int64_t n_tiles = offsets.size(0) - 1;
  TORCH_CHECK(n_tiles % (tiles_x * tiles_y) == 0, "tile_importance: tiles must be whole cameras");
  return n_tiles;
}

using Contributions = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Contributions importance_outputs(const at::Tensor& coefs) {
  const int64_t m = coefs.size(0);
  return {at::zeros({m}, coefs.options()), at::zeros({m}, coefs.options().dtype(at::kLong)),
          at::zeros({m}, coefs.options().dtype(at::kLong))};
}

Contributions tile_importance_cpu(const at::Tensor& coefs, const at::Tensor& offsets, int64_t tile_size,
                                  int64_t tiles_x, int64_t tiles_y, int64_t width, int64_t height) {
  const int64_t n_tiles = check_importance(coefs, offsets, tile_size, tiles_x, tiles_y, width, height);
  Contributions out = importance_outputs(coefs);
  sp_tile_importance_cpu(coefs.data_ptr<float>(), offsets.data_ptr<int64_t>(), n_tiles, (int)tile_size,
                         (int)tiles_x, (int)tiles_y, (int)width, (int)height, std::get<0>(out).data_ptr<float>(),
                         std::get<1>(out).data_ptr<int64_t>(), std::get<2>(out).data_ptr<int64_t>());
  return out;
}

#if defined(SPLATPACK_WITH_CUDA)
void check_cuda(const char* error) { TORCH_CHECK(error == nullptr, "splatpack CUDA kernel failed: ", error); }

at::Tensor plas_assign_cuda(const at::Tensor& values, const at::Tensor& target, const at::Tensor& order,
                            const at::Tensor& perm) {
  check_plas(values, target, order, perm);
  const c10::cuda::CUDAGuard guard(values.device());
  at::Tensor gains = plas_gains(values);
  check_cuda(sp_plas_assign_cuda(values.data_ptr<float>(), target.data_ptr<float>(), order.data_ptr<int64_t>(),
                                 perm.data_ptr<int64_t>(), gains.data_ptr<float>(), values.size(0), values.size(1),
                                 values.size(2), c10::cuda::getCurrentCUDAStream().stream()));
  return gains;
}

Contributions tile_importance_cuda(const at::Tensor& coefs, const at::Tensor& offsets, int64_t tile_size,
                                   int64_t tiles_x, int64_t tiles_y, int64_t width, int64_t height) {
  const int64_t n_tiles = check_importance(coefs, offsets, tile_size, tiles_x, tiles_y, width, height);
  const c10::cuda::CUDAGuard guard(coefs.device());
  Contributions out = importance_outputs(coefs);
  check_cuda(sp_tile_importance_cuda(coefs.data_ptr<float>(), offsets.data_ptr<int64_t>(), n_tiles,
                                     (int)tile_size, (int)tiles_x, (int)tiles_y, (int)width, (int)height,
                                     std::get<0>(out).data_ptr<float>(), std::get<1>(out).data_ptr<int64_t>(),
                                     std::get<2>(out).data_ptr<int64_t>(), c10::cuda::getCurrentCUDAStream().stream()));
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY(splatpack, m) {
  m.def("plas_assign(Tensor(a!) values, Tensor target, Tensor(b!) order, Tensor perm) -> Tensor");
  m.def("tile_importance(Tensor coefs, Tensor tile_offsets, int tile_size, int tiles_x, int tiles_y, int width, "
        "int height) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(splatpack, CPU, m) {
  m.impl("plas_assign", &plas_assign_cpu);
  m.impl("tile_importance", &tile_importance_cpu);
}

#if defined(SPLATPACK_WITH_CUDA)
TORCH_LIBRARY_IMPL(splatpack, CUDA, m) {
  m.impl("plas_assign", &plas_assign_cuda);
  m.impl("tile_importance", &tile_importance_cuda);
}
#endif
