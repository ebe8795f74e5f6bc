#pragma once
// What the CPU masked convolution computes, as an implicit GEMM over the kept taps only:
//   dst[b, n, y, x] (+)= sum over taps t, k in range(g(n), t) of
//                        src[b, k, y + ry[t], x + rx[t]] * packed[t, k, n]
// src is the input (forward) or the incoming gradient (input gradient), copied with zero columns
// at both sides so every tap reads its row in bounds; a tap whose row y + ry[t] lies above or
// below the image reads zeros and is skipped, so no rows are padded (the copy stays the size of
// the input, however few rows a wide image has). The output channels n fall into groups (the
// colour groups, or one group), and each group reads, per tap, one contiguous range of k: all of
// them for a tap above or left of the centre, the colour mask's range at the centre. A masked
// (tap, k, n) is never read or multiplied.
#include <cstdint>
#include <vector>

#include "gen_ext/pixelcnn_mask.h"

namespace gen_ext {
namespace cpu {

struct KRange {
  int64_t begin, end;
};

struct TapPlan {
  std::vector<int64_t> dy, dx;  // the kept taps, in the weight's (row, column)
  std::vector<int64_t> ry, rx;  // their offsets into the source: rows (unpadded), padded columns
  int64_t n_size = 0;  // channels n (split into the groups below)
  std::vector<int64_t> group_begin, group_end;  // output-channel (n) groups
  std::vector<std::vector<KRange>> k_range;     // [group][tap]: the k this group reads
};

// The kept taps of the mask, row by row (taps open to every channel, then the centre if any
// channel pair keeps it).
inline void kept_taps(const PixelCnnMask& m, std::vector<int64_t>& dy, std::vector<int64_t>& dx) {
  const bool centre = m.type_b || m.groups > 1;
  for (int64_t r = 0; r < m.kh; ++r) {
    for (int64_t c = 0; c < m.kw; ++c) {
      if (m.tap_open(r, c) || (centre && m.is_centre(r, c))) {
        dy.push_back(r);
        dx.push_back(c);
      }
    }
  }
}

// Splits the n channels into the mask's groups; range_of(t, n) is the k range that channel n
// (standing for its group) reads at tap t.
template <typename RangeOf>
void add_groups(TapPlan& p, int64_t groups, const RangeOf& range_of) {
  const int64_t size = p.n_size / groups;
  for (int64_t g = 0; g < groups; ++g) {
    p.group_begin.push_back(g * size);
    p.group_end.push_back((g + 1) * size);
    std::vector<KRange> ranges;
    for (size_t t = 0; t < p.dy.size(); ++t) ranges.push_back(range_of(t, g * size));
    p.k_range.push_back(ranges);
  }
}

// Forward: n = output channel, k = input channel; the source is x padded by (centre_col) columns
// on both sides, so tap (dy, dx) of output (y, x) reads source row y + dy - centre_row, padded
// column x + dx.
inline TapPlan forward_plan(const PixelCnnMask& m) {
  TapPlan p;
  kept_taps(m, p.dy, p.dx);
  for (size_t t = 0; t < p.dy.size(); ++t) {
    p.ry.push_back(p.dy[t] - m.centre_row());
    p.rx.push_back(p.dx[t]);
  }
  p.n_size = m.out_channels;
  add_groups(p, m.groups, [&](size_t t, int64_t n) {
    return KRange{0, m.is_centre(p.dy[t], p.dx[t]) ? m.centre_in_end(n) : m.in_channels};
  });
  return p;
}

// Input gradient: n = input channel, k = output channel; the source is the output gradient
// padded by (centre_col) columns on both sides, so tap (dy, dx) sends output
// (y + c_r - dy, x + c_c - dx)'s gradient to input (y, x): source row y + c_r - dy, padded column
// x + 2 c_c - dx.
inline TapPlan input_grad_plan(const PixelCnnMask& m) {
  TapPlan p;
  kept_taps(m, p.dy, p.dx);
  for (size_t t = 0; t < p.dy.size(); ++t) {
    p.ry.push_back(m.centre_row() - p.dy[t]);
    p.rx.push_back(2 * m.centre_col() - p.dx[t]);
  }
  p.n_size = m.in_channels;
  add_groups(p, m.groups, [&](size_t t, int64_t n) {
    return KRange{m.is_centre(p.dy[t], p.dx[t]) ? m.centre_out_begin(n) : 0, m.out_channels};
  });
  return p;
}

}  // namespace cpu
}  // namespace gen_ext
