#pragma once
// Per-element math of the fused gated activation, shared by the CPU kernels (scalar and at::vec
// lanes) and the CUDA kernels; see scalar_ops.h and csrc/cpu/vec_ops.h for the Ops policies.
//
//   out = tanh(a) * sigmoid(b)          a, b: the two channel halves of x
//   d out / d a = (1 - tanh(a)^2) * sigmoid(b)
//   d out / d b = tanh(a) * sigmoid(b) * (1 - sigmoid(b))
//
// Everything is built from ea = exp(-2|a|) and eb = exp(-|b|), which lie in [0, 1] for any input,
// so nothing overflows and no branch produces an inf that a select would have to hide:
//   tanh(|a|) = (1 - ea) / (1 + ea)          1 - tanh(a)^2 = 4 ea / (1 + ea)^2
//   sigmoid(|b|) = 1 / (1 + eb)              sigmoid(-|b|) = eb / (1 + eb)
//   sigmoid(b) (1 - sigmoid(b)) = eb / (1 + eb)^2
// The derivative forms avoid 1 - t^2 and 1 - s, which cancel to nothing where t or s nears 1.
#include "gen_ext/macros.h"
#include "gen_ext/scalar_ops.h"
#include "gen_ext/tanh_near_zero.h"

namespace gen_ext {
namespace gated {

template <typename Ops>
struct Element {
  using T = typename Ops::Scalar;
  using V = typename Ops::V;

  // ea, eb and 1/(1 + ea), 1/(1 + eb), the two reciprocals from one division.
  struct Parts {
    V ea, eb, inv_a, inv_b;
    // user-provided so that it carries the kernels' per-ISA target (see Logistic in dlm_math.h)
    GEN_EXT_HOST_DEVICE Parts() {}
  };

  GEN_EXT_HOST_DEVICE static Parts parts(V a, V b) {
    const V one = Ops::splat(T(1));
    Parts p;
    p.ea = Ops::exp(Ops::splat(T(-2)) * Ops::abs(a));
    p.eb = Ops::exp(-Ops::abs(b));
    const V one_ea = one + p.ea, one_eb = one + p.eb;
    const V d = one / (one_ea * one_eb);  // at most 1, at least 1/4
    p.inv_a = one_eb * d;
    p.inv_b = one_ea * d;
    return p;
  }

  GEN_EXT_HOST_DEVICE static V tanh_of(V a, const Parts& p) {
    const V t = (Ops::splat(T(1)) - p.ea) * p.inv_a;
    // 1 - ea cancels for a small a: a polynomial there (float), so tanh keeps its relative digits
    return tanh_fix_near_zero<Ops>(a, Ops::select(Ops::gt(Ops::splat(T(0)), a), -t, t));
  }

  GEN_EXT_HOST_DEVICE static V sigmoid_of(V b, const Parts& p) {
    return Ops::select(Ops::ge(b, Ops::splat(T(0))), p.inv_b, p.eb * p.inv_b);
  }

  GEN_EXT_HOST_DEVICE static V forward(V a, V b) {
    const Parts p = parts(a, b);
    return tanh_of(a, p) * sigmoid_of(b, p);
  }

  // Gradients of a and b given the gradient g of this element's output.
  GEN_EXT_HOST_DEVICE static void backward(V g, V a, V b, V& grad_a, V& grad_b) {
    const Parts p = parts(a, b);
    const V dtanh = Ops::splat(T(4)) * p.ea * p.inv_a * p.inv_a;
    const V dsigmoid = p.eb * p.inv_b * p.inv_b;
    grad_a = g * sigmoid_of(b, p) * dtanh;
    grad_b = g * tanh_of(a, p) * dsigmoid;
  }
};

}  // namespace gated
}  // namespace gen_ext
