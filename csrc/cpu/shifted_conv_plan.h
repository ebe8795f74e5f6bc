#pragma once
// The shifted convolution as tap plans of the masked convolution's implicit GEMM
// (masked_conv_plan.h): every tap kept, one group of n, every k at every tap. The source is
// copied with side() zero columns on both sides (P below); rows are not padded, the GEMM skips
// the taps whose row lies outside the image.
#include "../shifted_conv_checks.h"
#include "masked_conv_plan.h"

namespace gen_ext {
namespace cpu {

// Every tap of the kernel, k in [0, k_size) for each, n_size channels n in one group.
inline TapPlan every_tap_plan(const ShiftedConv& c, int64_t k_size, int64_t n_size) {
  TapPlan p;
  for (int64_t r = 0; r < c.kh; ++r) {
    for (int64_t col = 0; col < c.kw; ++col) {
      p.dy.push_back(r);
      p.dx.push_back(col);
    }
  }
  p.n_size = n_size;
  add_groups(p, 1, [&](size_t, int64_t) { return KRange{0, k_size}; });
  return p;
}

// Forward: n = output channel, k = input channel; tap (dy, dx) of output (y, x) reads source row
// y + dy - top, padded column x + dx - left + P.
inline TapPlan shifted_forward_plan(const ShiftedConv& c) {
  TapPlan p = every_tap_plan(c, c.in_channels, c.out_channels);
  for (size_t t = 0; t < p.dy.size(); ++t) {
    p.ry.push_back(p.dy[t] - c.top);
    p.rx.push_back(p.dx[t] - c.left + c.side());
  }
  return p;
}

// Input gradient: n = input channel, k = output channel; tap (dy, dx) sends output
// (y + top - dy, x + left - dx)'s gradient to input (y, x): source (the output gradient) row
// y + top - dy, padded column x + left - dx + P.
inline TapPlan shifted_input_grad_plan(const ShiftedConv& c) {
  TapPlan p = every_tap_plan(c, c.out_channels, c.in_channels);
  for (size_t t = 0; t < p.dy.size(); ++t) {
    p.ry.push_back(c.top - p.dy[t]);
    p.rx.push_back(c.left - p.dx[t] + c.side());
  }
  return p;
}

}  // namespace cpu
}  // namespace gen_ext
