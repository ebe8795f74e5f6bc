#pragma once
// The geometry of the diagonal LSTM's skewed image, shared by the CPU and CUDA kernels: an
// H x W image whose row r is moved right by r, so Ws = W + H - 1 columns, stored channels-last
// as [B, H, Ws, channels]. Row r's own pixels lie at columns r .. r + W - 1.
#include <cstdint>

#include "gen_ext/macros.h"

namespace gen_ext {
namespace diagonal_lstm {

struct SkewedImage {
  int64_t B, H, Ws, hid, G, W;  // G = 4 * hid gate channels; W = Ws - H + 1, the image's width

  GEN_EXT_HOST_DEVICE bool inside(int64_t r, int64_t j) const {
    return r >= 0 && r < H && j >= r && j - r < W;
  }
  // The rows of column j inside the image.
  GEN_EXT_HOST_DEVICE int64_t first_row(int64_t j) const { return j - W + 1 > 0 ? j - W + 1 : 0; }
  GEN_EXT_HOST_DEVICE int64_t last_row(int64_t j) const { return j < H - 1 ? j : H - 1; }
  // The flat position of (row r, column j) of image b.
  GEN_EXT_HOST_DEVICE int64_t position(int64_t b, int64_t r, int64_t j) const {
    return (b * H + r) * Ws + j;
  }
};

// From the sizes of the gate pre-activations i2s: B images of H rows, Ws columns, G channels.
GEN_EXT_HOST_DEVICE SkewedImage skewed_image(int64_t B, int64_t G, int64_t H, int64_t Ws) {
  return {B, H, Ws, G / 4, G, Ws - H + 1};
}

}  // namespace diagonal_lstm
}  // namespace gen_ext
