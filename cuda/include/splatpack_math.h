// The per-group (PLAS) and per-pixel (importance) maths of splatpack's kernels, compiled by both g++ (the CPU
// twins in cpu/) and nvcc (the CUDA kernels in kernels/), so the two cannot drift apart.
//
// Floating-point rules: every sum is accumulated left to right in float, with separately rounded multiplies
// and adds (sp_mul / sp_add: __fmul_rn / __fadd_rn on the device, and the CPU build uses -ffp-contract=off).
// That is exactly what torch's CPU reference computes for PLAS (its small batched matmuls loop the same way),
// so PLAS decisions agree bit for bit on every device.
#ifndef SPLATPACK_MATH_H
#define SPLATPACK_MATH_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define SP_HD __host__ __device__ __forceinline__
#else
#define SP_HD inline
#endif

SP_HD float sp_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

SP_HD float sp_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

#if defined(__CUDACC__)
#define SP_UNROLL _Pragma("unroll")
#elif defined(__GNUC__) && !defined(__clang__)
#define SP_UNROLL _Pragma("GCC unroll 24")
#else
#define SP_UNROLL
#endif

// ---------------------------------------------------------------------------------------------------- PLAS
// The 24 permutations of 4 in itertools.permutations(range(4)) order (identity first), permutation p packed
// in one byte: the slot of member a in bits 2a, 2a + 1.
SP_HD unsigned sp_permutation(int p) {
  const unsigned char codes[24] = {0xE4, 0xB4, 0xD8, 0x78, 0x9C, 0x6C, 0xE1, 0xB1, 0xC9, 0x39, 0x8D, 0x2D,
                                   0xD2, 0x72, 0xC6, 0x36, 0x4E, 0x1E, 0x93, 0x63, 0x87, 0x27, 0x4B, 0x1B};
  return codes[p];
}

// One group of 4 cells of a tile: member a sits at row rows[a] of the tile's (cells, C) values. The group
// takes the best of the 24 ways to place its 4 vectors on its 4 target rows (largest summed dot product =
// smallest summed squared distance), the permutations enumerated in itertools.permutations(range(4)) order
// with the first maximum winning, as splatpack/sort/plas.py does. Returns best score - identity score.
SP_HD float sp_plas_group(float* values, const float* target, int64_t* order, const int64_t rows[4],
                          int64_t channels) {
  // dots[a * 4 + b] = <values of member a, target of member b>, each summed over c in order; the 16 sums
  // advance together so they run in parallel (and vectorise) without changing any of them.
  float dots[16];
  for (int j = 0; j < 16; ++j) dots[j] = 0.0f;
  const float* x[4];
  const float* y[4];
  for (int a = 0; a < 4; ++a) x[a] = values + rows[a] * channels, y[a] = target + rows[a] * channels;
  for (int64_t c = 0; c < channels; ++c)
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 4; ++b) dots[a * 4 + b] = sp_add(dots[a * 4 + b], sp_mul(x[a][c], y[b][c]));
  // Scores of all 24 placements first (independent sums), then the first maximum: no data-dependent branch
  // inside the enumeration.
  float scores[24];
  SP_UNROLL
  for (int p = 0; p < 24; ++p) {
    const unsigned code = sp_permutation(p);
    scores[p] = sp_add(sp_add(sp_add(dots[code & 3u], dots[4 + ((code >> 2) & 3u)]), dots[8 + ((code >> 4) & 3u)]),
                       dots[12 + (code >> 6)]);
  }
  int best = 0;
  SP_UNROLL
  for (int p = 1; p < 24; ++p) best = scores[p] > scores[best] ? p : best;
  if (best != 0) {
    const unsigned code = sp_permutation(best);
    const int64_t to[4] = {rows[code & 3u], rows[(code >> 2) & 3u], rows[(code >> 4) & 3u], rows[code >> 6]};
    // Member a moves to row to[a]: read all four before writing, one channel at a time.
    for (int64_t c = 0; c < channels; ++c) {
      float v[4];
      for (int a = 0; a < 4; ++a) v[a] = values[rows[a] * channels + c];
      for (int a = 0; a < 4; ++a) values[to[a] * channels + c] = v[a];
    }
    int64_t o[4];
    for (int a = 0; a < 4; ++a) o[a] = order[rows[a]];
    for (int a = 0; a < 4; ++a) order[to[a]] = o[a];
  }
  return sp_add(scores[best], -scores[0]);
}

// ---------------------------------------------------------------------------------------------- importance
// gsplat's cut-offs, as splatpack/render/_torch_impl.py: alpha capped below 1, faint contributions skipped, a
// pixel stops before the pair that would take its transmittance to T_MIN or below.
#define SP_ALPHA_MAX 0.999f
#define SP_ALPHA_MIN (1.0f / 255.0f)
#define SP_T_MIN 1e-4f
// exp(-5.6) < 1/255: beyond this exponent a pair is skipped without evaluating exp.
#define SP_SKIP_EXPONENT 5.6f

// Blending state of one pixel. Transmittance is a double running product rounded to float at each step, as
// torch's CPU cumprod of the reference computes it.
struct SpPixel {
  double trans;     // running product of (1 - alpha)
  float trans_f;    // transmittance before the next pair, in float
  float best_w;     // largest blending weight so far
  int64_t best_k;   // pair holding it (-1: none); strict > keeps the front-most on ties
  int done;         // the pixel stopped
};

SP_HD SpPixel sp_pixel_start(int inside) {
  SpPixel s;
  s.trans = 1.0, s.trans_f = 1.0f, s.best_w = 0.0f, s.best_k = -1, s.done = !inside;
  return s;
}

// The blending weight alpha * T of pair k (coefficients c[6] of sigma - log(opacity) as a polynomial in the
// tile-local pixel centre x, y: c0 x^2 + c1 xy + c2 y^2 + c3 x + c4 y + c5) at this pixel, 0 when skipped or
// stopped; updates the pixel's state.
SP_HD float sp_pixel_step(SpPixel* s, const float* c, float x, float y, int64_t k) {
  if (s->done) return 0.0f;
  float e = sp_mul(c[0], sp_mul(x, x));
  e = sp_add(e, sp_mul(c[1], sp_mul(x, y)));
  e = sp_add(e, sp_mul(c[2], sp_mul(y, y)));
  e = sp_add(e, sp_mul(c[3], x));
  e = sp_add(e, sp_mul(c[4], y));
  e = sp_add(e, c[5]);
  if (e > SP_SKIP_EXPONENT) return 0.0f;
  float alpha = expf(fmaxf(-e, -30.0f));
  if (!(alpha > SP_ALPHA_MIN)) return 0.0f;
  alpha = fminf(alpha, SP_ALPHA_MAX);
  const double next = s->trans * (double)(1.0f - alpha);
  const float next_f = (float)next;
  if (!(next_f > SP_T_MIN)) {
    s->done = 1;
    return 0.0f;
  }
  const float w = sp_mul(alpha, s->trans_f);
  s->trans = next, s->trans_f = next_f;
  if (w > s->best_w) s->best_w = w, s->best_k = k;
  return w;
}

// The pixels of a tile that pair c can reach: every pixel outside [x0, x1] x [y0, y1] (tile-local pixel
// indices, inclusive; empty when x0 > x1) has an exponent above SP_SKIP_EXPONENT, so sp_pixel_step would skip
// it. The exponent is a quadratic 0.5 d^T A d + g^T d + c5 with A = [[2 c0, c1], [c1, 2 c2]]; its sublevel set
// is an ellipse whose bounding box is solved in double for a threshold raised by a bound on the float rounding
// of sp_pixel_step's evaluation, so no pixel the walk would composite falls outside. Not positive definite
// (degenerate): the whole tile.
struct SpBox {
  int x0, x1, y0, y1;
};

SP_HD SpBox sp_pair_box(const float* c, int tile_size) {
  SpBox box = {0, tile_size - 1, 0, tile_size - 1};
  const double a = 2.0 * c[0], b = c[1], d = 2.0 * c[2], gx = c[3], gy = c[4];
  const double det = a * d - b * b;
  if (!(det > 0.0 && a > 0.0)) return box;
  const double half = 0.5 * tile_size;
  // |each term| at the farthest pixel centre of the tile, summed: the float evaluation errs by far less than
  // 1e-6 of it (six roundings of 2^-24 each).
  const double reach = fabs(c[0]) * half * half + fabs(b) * half * half + fabs(c[2]) * half * half +
                       fabs(gx) * half + fabs(gy) * half + fabs((double)c[5]);
  const double inv_xx = d / det, inv_yy = a / det, inv_xy = -b / det;
  const double cx = -(inv_xx * gx + inv_xy * gy), cy = -(inv_xy * gx + inv_yy * gy);
  const double e_min = c[5] + 0.5 * (gx * cx + gy * cy);
  const double budget = SP_SKIP_EXPONENT - e_min + 1e-6 * reach + 1e-6;
  if (!(budget >= 0.0)) {
    box.x0 = 1, box.x1 = 0;  // reaches no pixel
    return box;
  }
  const double hx = sqrt(2.0 * budget * inv_xx), hy = sqrt(2.0 * budget * inv_yy);
  // pixel p's centre is p + 0.5 - half; one pixel of slack on each side
  const double lo_x = floor(cx - hx + half - 0.5) - 1.0, hi_x = ceil(cx + hx + half - 0.5) + 1.0;
  const double lo_y = floor(cy - hy + half - 0.5) - 1.0, hi_y = ceil(cy + hy + half - 0.5) + 1.0;
  box.x0 = lo_x > 0.0 ? (lo_x < tile_size ? (int)lo_x : tile_size) : 0;
  box.x1 = hi_x < tile_size - 1.0 ? (hi_x >= 0.0 ? (int)hi_x : -1) : tile_size - 1;
  box.y0 = lo_y > 0.0 ? (lo_y < tile_size ? (int)lo_y : tile_size) : 0;
  box.y1 = hi_y < tile_size - 1.0 ? (hi_y >= 0.0 ? (int)hi_y : -1) : tile_size - 1;
  return box;
}

// Tile-local pixel centre of pixel (px, py) relative to the tile centre, as _torch_impl.pixel_terms.
SP_HD float sp_pixel_offset(int p, int tile_size) { return (float)p + 0.5f - 0.5f * (float)tile_size; }

#endif  // SPLATPACK_MATH_H
