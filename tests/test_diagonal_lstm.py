"""diagonal_lstm_scan (PixelRNN): the fused kernels against the reference (the spec)."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.reference.diagonal_lstm import inside_mask

OP = torch.ops.gen_ext.diagonal_lstm_scan
BACKWARD_OP = torch.ops.gen_ext.diagonal_lstm_scan_backward
EXACT = dict(rtol=1e-11, atol=1e-12)


def inputs(B, hidden, H, W, dtype=torch.float64, seed=0):
    """i2s of a skewed H x W image (random everywhere: outside the image it must be ignored) and
    a state-to-state weight scaled so the gates neither saturate nor vanish."""
    g = torch.Generator().manual_seed(seed)
    i2s = torch.randn((B, 4 * hidden, H, W + H - 1), generator=g, dtype=torch.float64)
    weight = torch.randn((4 * hidden, hidden, 2), generator=g, dtype=torch.float64)
    return i2s.to(dtype), (weight / (2 * hidden) ** 0.5).to(dtype)


def values_and_grads(fn, i2s, weight, with_grad_c=True, seed=9):
    """h, c and the gradients of a random weighting of h (and of c) for i2s and weight."""
    leaves = [t.detach().clone().requires_grad_() for t in (i2s, weight)]
    h, c = fn(*leaves)
    g = torch.Generator().manual_seed(seed)
    wh = torch.randn(h.shape, generator=g, dtype=torch.float64).to(h.dtype)
    wc = torch.randn(c.shape, generator=g, dtype=torch.float64).to(c.dtype)
    loss = (h * wh).sum() + ((c * wc).sum() if with_grad_c else 0)
    # a one-column image never uses the weight, and one of width 0 uses nothing: the
    # reference's graph then holds no gradient
    if not loss.requires_grad:
        return (h, c, *(torch.zeros_like(t) for t in leaves))
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves, strict=True)]
    return (h, c, *grads)


NAMES = ("h", "c", "grad i2s", "grad weight")
# (B, hidden, H, W): hidden counts that fill no vector, one, several and a partial one; images
# taller than wide, wider than tall, one row, one column, no column
SHAPES = [
    (2, 2, 3, 3),
    (1, 5, 4, 1),
    (3, 8, 6, 9),
    (2, 16, 5, 4),
    (1, 3, 1, 7),
    (2, 4, 7, 1),
    (1, 6, 2, 0),
    (2, 33, 4, 5),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_grad_c", [True, False])
def test_matches_reference_float64(cpu_isa, shape, with_grad_c):
    i2s, weight = inputs(*shape, seed=sum(shape))
    got = values_and_grads(OP, i2s, weight, with_grad_c)
    want = values_and_grads(reference.diagonal_lstm_scan, i2s, weight, with_grad_c)
    for name, g, w in zip(NAMES, got, want, strict=True):
        torch.testing.assert_close(g, w, **EXACT, msg=lambda m, name=name: f"{name}: {m}")


def test_float32_error_is_that_of_the_float32_reference(cpu_isa):
    """Against float64: the kernel's float32 error stays within a small multiple of the float32
    reference's own (sums of 2h products and a few exps per gate, over 40 columns)."""
    i2s, weight = inputs(3, 24, 16, 25, seed=5)
    exact = values_and_grads(reference.diagonal_lstm_scan, i2s, weight)
    got = values_and_grads(OP, i2s.float(), weight.float())
    ref32 = values_and_grads(reference.diagonal_lstm_scan, i2s.float(), weight.float())
    for name, g, r, e in zip(NAMES, got, ref32, exact, strict=True):
        scale = e.abs().max()
        err = (g.double() - e).abs().max() / scale
        ref_err = (r.double() - e).abs().max() / scale
        assert err <= 4 * ref_err + 1e-6, f"{name}: {err:.2e} vs the reference's {ref_err:.2e}"


def test_outside_the_image_is_zero_and_ignored():
    """h and c are zero off the image; i2s there is never read (NaN changes nothing) and gets a
    zero gradient. A NaN inside reaches the positions after it and no others."""
    i2s, weight = inputs(2, 3, 5, 4, seed=1)
    H, Ws = i2s.shape[2:]
    inside = inside_mask(H, Ws)
    h, c = OP(i2s, weight)
    assert torch.equal(h[..., ~inside], torch.zeros_like(h[..., ~inside]))
    poisoned = i2s.clone()
    poisoned[..., ~inside] = float("nan")
    got = values_and_grads(OP, poisoned, weight)
    want = values_and_grads(OP, i2s, weight)
    for name, g, w in zip(NAMES, got, want, strict=True):
        assert torch.equal(g, w), name
    assert torch.equal(got[2][..., ~inside], torch.zeros_like(got[2][..., ~inside]))
    one = i2s.clone()
    one[0, 0, 2, 3] = float("nan")  # row 2, image column 1
    h, _ = OP(one, weight)
    nan = torch.isnan(h[0, 0])
    assert nan[2, 3] and not nan[1].any() and not nan[2, :3].any() and not torch.isnan(h[1]).any()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_layouts_give_the_same_results(layout):
    i2s, weight = inputs(2, 5, 4, 6, seed=2)
    want = values_and_grads(OP, i2s, weight)
    if layout == "channels_last":
        x = i2s.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.cat([i2s, i2s], dim=3)[..., ::2]
        x[...] = i2s
    else:
        x = i2s
    got = values_and_grads(OP, x, weight)
    for name, g, w in zip(NAMES, got, want, strict=True):
        assert torch.equal(g, w), name


def test_gradcheck_and_gradgradcheck():
    i2s, weight = inputs(2, 2, 3, 3, seed=3)
    args = (i2s.requires_grad_(), weight.requires_grad_())
    assert torch.autograd.gradcheck(OP, args)
    assert torch.autograd.gradgradcheck(OP, args)


def test_gradcheck_of_h_alone():
    """c unused: its gradient reaches the backward as nothing (or zeros) and must be handled."""
    i2s, weight = inputs(1, 3, 3, 2, seed=4)
    fn = lambda a, w: OP(a, w)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (i2s.requires_grad_(), weight.requires_grad_()))


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    i2s, weight = inputs(2, 3, 4, 3, seed=6)
    torch.library.opcheck(OP, (i2s.requires_grad_(requires_grad), weight))
    h, c = OP(i2s.detach(), weight)
    grad = torch.rand_like(h)
    torch.library.opcheck(BACKWARD_OP, (grad, None, i2s.detach(), weight, h, c))
    torch.library.opcheck(BACKWARD_OP, (grad, torch.rand_like(c), i2s.detach(), weight, h, c))


def test_empty_batch():
    i2s, weight = inputs(0, 3, 4, 3)
    h, c = ops.diagonal_lstm_scan(i2s.requires_grad_(), weight.requires_grad_())
    assert h.shape == (0, 3, 4, 6)
    (h.sum() + c.sum()).backward()
    assert torch.equal(weight.grad, torch.zeros_like(weight))


def test_reference_backend_runs_the_reference():
    i2s, weight = inputs(1, 2, 3, 2)
    with ops.use_backend("reference"):
        got = ops.diagonal_lstm_scan(i2s, weight)
    for g, w in zip(got, reference.diagonal_lstm_scan(i2s, weight), strict=True):
        assert torch.equal(g, w)


def test_bad_input_names_the_argument():
    i2s, weight = inputs(1, 2, 3, 2)
    with pytest.raises(RuntimeError, match="i2s must be float32 or float64"):
        OP(i2s.int(), weight)
    with pytest.raises(RuntimeError, match=r"i2s must be \[B, 4 \* hidden, H, W \+ H - 1\]"):
        OP(i2s[0], weight)
    with pytest.raises(RuntimeError, match="4 \\* hidden channels"):
        OP(i2s[:, :7], weight)
    with pytest.raises(RuntimeError, match="at least H - 1 columns wide"):
        OP(i2s[..., :1], weight)
    with pytest.raises(RuntimeError, match=r"weight must be \[4 \* hidden, hidden, 2\]"):
        OP(i2s, weight[..., :1])
    with pytest.raises(RuntimeError, match="weight must match i2s in dtype"):
        OP(i2s, weight.float())
    h, c = OP(i2s, weight)
    with pytest.raises(RuntimeError, match=r"grad_h must be \[B, hidden, H, Ws\]"):
        BACKWARD_OP(h[:, :1], None, i2s, weight, h, c)
    with FakeTensorMode(), pytest.raises(RuntimeError, match="at least H - 1 columns wide"):
        OP(torch.empty(1, 8, 5, 2, dtype=torch.float64), torch.empty(8, 2, 2, dtype=torch.float64))


def test_bit_identical_across_threads():
    i2s, weight = inputs(6, 16, 8, 8, torch.float32, seed=7)
    first = values_and_grads(OP, i2s, weight)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = values_and_grads(OP, i2s, weight)
    finally:
        torch.set_num_threads(threads)
    for name, a, b in zip(NAMES, first, single, strict=True):
        assert torch.equal(a, b), name
