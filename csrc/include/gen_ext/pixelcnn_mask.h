#pragma once
// The PixelCNN mask of a [out_channels, in_channels, kh, kw] kernel, shared by the CPU kernels
// (which turn it into lists of kept taps and channel ranges) and the CUDA kernels (which test it
// per weight). Same definition as gen_ext/reference/masked_conv.py:
//   - taps on the rows above the centre, and left of the centre on its row, see every channel;
//   - the centre tap: output group g sees input groups before g (mask A) or up to g (mask B),
//     with one group (color_channels 1) or three (R, G, B thirds of the channels);
//   - every other tap is masked.
#include <cstdint>

#include "gen_ext/macros.h"

namespace gen_ext {

struct PixelCnnMask {
  int64_t out_channels, in_channels, kh, kw;
  bool type_b;     // mask B: the centre pixel sees its own group
  int64_t groups;  // 1, or 3 for colour images

  GEN_EXT_HOST_DEVICE int64_t centre_row() const { return kh / 2; }
  GEN_EXT_HOST_DEVICE int64_t centre_col() const { return kw / 2; }
  GEN_EXT_HOST_DEVICE bool is_centre(int64_t dy, int64_t dx) const {
    return dy == centre_row() && dx == centre_col();
  }
  // A tap that sees every channel: above the centre, or left of it on its row.
  GEN_EXT_HOST_DEVICE bool tap_open(int64_t dy, int64_t dx) const {
    return dy < centre_row() || (dy == centre_row() && dx < centre_col());
  }
  // At the centre tap, output channel co sees input channels [0, centre_in_end(co)).
  GEN_EXT_HOST_DEVICE int64_t centre_in_end(int64_t co) const {
    const int64_t g = co / (out_channels / groups);
    return (g + (type_b ? 1 : 0)) * (in_channels / groups);
  }
  // At the centre tap, input channel ci is seen by output channels [centre_out_begin(ci), out).
  GEN_EXT_HOST_DEVICE int64_t centre_out_begin(int64_t ci) const {
    const int64_t g = ci / (in_channels / groups);
    return (g + (type_b ? 0 : 1)) * (out_channels / groups);
  }
  GEN_EXT_HOST_DEVICE bool kept(int64_t co, int64_t ci, int64_t dy, int64_t dx) const {
    return tap_open(dy, dx) || (is_centre(dy, dx) && ci < centre_in_end(co));
  }
};

}  // namespace gen_ext
