#pragma once
// Per-element math of the diagonal LSTM's cell (PixelRNN), shared by the CPU kernels (scalar and
// at::vec lanes) and the CUDA kernels; see scalar_ops.h and csrc/cpu/vec_ops.h for the policies.
//
// Gate pre-activations a_o, a_f, a_i, a_g (in that order along the 4h gate channels):
//   o = sigmoid(a_o), f = sigmoid(a_f), i = sigmoid(a_i), g = tanh(a_g)
//   c = f * c_prev + i * g          h = o * tanh(c)
// The backward takes the total gradients dh of h and dc_in of c (from the loss and from the next
// column), and gives the four pre-activation gradients and the gradient of c_prev:
//   dc = dc_in + dh * o * (1 - tanh(c)^2)
//   d a_o = dh * tanh(c) * o (1 - o)      d a_f = dc * c_prev * f (1 - f)
//   d a_i = dc * g * i (1 - i)             d a_g = dc * i * (1 - g^2)
//   dc_prev = dc * f
// sigmoid(v)(1 - sigmoid(v)) = e / (1 + e)^2 with e = exp(-|v|), and 1 - tanh(v)^2 =
// 4 e / (1 + e)^2 with e = exp(-2|v|): no subtraction that cancels where the gate saturates.
#include "gen_ext/macros.h"
#include "gen_ext/scalar_ops.h"
#include "gen_ext/tanh_near_zero.h"

namespace gen_ext {
namespace lstm {

template <typename Ops>
struct Element {
  using T = typename Ops::Scalar;
  using V = typename Ops::V;

  // sigmoid(v) and sigmoid(v) (1 - sigmoid(v)).
  GEN_EXT_HOST_DEVICE static void sigmoid(V v, V& s, V& ds) {
    const V one = Ops::splat(T(1));
    const V e = Ops::exp(-Ops::abs(v));
    const V inv = one / (one + e);
    s = Ops::select(Ops::ge(v, Ops::splat(T(0))), inv, e * inv);
    ds = e * inv * inv;
  }

  // tanh(v) and 1 - tanh(v)^2.
  GEN_EXT_HOST_DEVICE static void tanh(V v, V& t, V& dt) {
    const V one = Ops::splat(T(1));
    const V e = Ops::exp(Ops::splat(T(-2)) * Ops::abs(v));
    const V inv = one / (one + e);
    const V m = (one - e) * inv;
    t = tanh_fix_near_zero<Ops>(v, Ops::select(Ops::gt(Ops::splat(T(0)), v), -m, m));
    dt = Ops::splat(T(4)) * e * inv * inv;
  }

  GEN_EXT_HOST_DEVICE static void forward(V a_o, V a_f, V a_i, V a_g, V c_prev, V& h, V& c) {
    V o, f, i, g, unused;
    sigmoid(a_o, o, unused);
    sigmoid(a_f, f, unused);
    sigmoid(a_i, i, unused);
    tanh(a_g, g, unused);
    c = f * c_prev + i * g;
    V tc;
    tanh(c, tc, unused);
    h = o * tc;
  }

  // Pre-activation gradients (into d_o, d_f, d_i, d_g) and dc_prev; c is this step's cell.
  GEN_EXT_HOST_DEVICE static void backward(V a_o, V a_f, V a_i, V a_g, V c_prev, V c, V dh,
                                           V dc_in, V& d_o, V& d_f, V& d_i, V& d_g,
                                           V& dc_prev) {
    V o, f, i, g, ds_o, ds_f, ds_i, dt_g, tc, dt_c;
    sigmoid(a_o, o, ds_o);
    sigmoid(a_f, f, ds_f);
    sigmoid(a_i, i, ds_i);
    tanh(a_g, g, dt_g);
    tanh(c, tc, dt_c);
    const V dc = dc_in + dh * o * dt_c;
    d_o = dh * tc * ds_o;
    d_f = dc * c_prev * ds_f;
    d_i = dc * g * ds_i;
    d_g = dc * i * dt_g;
    dc_prev = dc * f;
  }
};

}  // namespace lstm
}  // namespace gen_ext
