"""langevin_step: the fused kernels against the reference (the spec), the in-place form, the
noise stream, clamping, and the argument checks."""

import math

import pytest
import torch
from scipy import stats
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.ops.gaussian import draw_seed

OP = torch.ops.gen_ext.langevin_step
INPLACE = torch.ops.gen_ext.langevin_step_


def inputs(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
    grad = (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype)
    return x, grad


CLAMPS = [None, (0.0, 1.0), (None, 0.5), (-0.2, None)]
SHAPES = [(3, 5), (1, 1), (2, 1, 7, 9), (4, 3, 8, 8), (3 * 4096 + 17,)]


def ref_step(x, grad, step, scale, clamp, seed):
    lo, hi = clamp if clamp else (None, None)
    return reference.langevin_step(x.double(), grad.double(), step, scale, lo, hi, seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("clamp", CLAMPS)
def test_matches_reference_float64(cpu_isa, shape, clamp):
    x, grad = inputs(shape, seed=len(shape))
    got = ops.langevin_step(x, grad, 0.1, 0.05, clamp, torch.Generator().manual_seed(3))
    seed = draw_seed(torch.Generator().manual_seed(3), x.device)
    want = ref_step(x, grad, 0.1, 0.05, clamp, seed)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    lo, hi = clamp if clamp else (None, None)
    assert lo is None or got.min() >= lo
    assert hi is None or got.max() <= hi


@pytest.mark.parametrize("clamp", CLAMPS)
def test_float32_close_to_the_float64_reference(cpu_isa, clamp):
    x, grad = inputs((4, 1, 16, 16), torch.float32, seed=2)
    seed = draw_seed(torch.Generator().manual_seed(8), x.device)
    lo, hi = clamp if clamp else (None, None)
    got = OP(x, grad, 0.01, 0.005, lo, hi, seed)
    assert got.dtype == torch.float32
    # float32 draws the float32 stream (24-bit uniforms): the reference in float32 on the same
    # values, its Box-Muller within 2e-5 of the kernel's (test_gaussian) times noise_scale 0.005,
    # and the step's own rounding (values below 2, float32 epsilon 1.2e-7)
    want = reference.langevin_step(x, grad, 0.01, 0.005, *(clamp or (None, None)), seed)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_the_step_is_the_formula_without_noise():
    x, grad = inputs((5, 6))
    got = OP(x, grad, 0.25, 0.0, None, None, 123)
    torch.testing.assert_close(got, x - 0.25 * grad, rtol=0, atol=1e-15)
    assert torch.equal(got, OP(x, grad, 0.25, 0.0, None, None, 456))  # the seed plays no part


def test_the_noise_is_the_gaussian_stream_scaled():
    x = torch.zeros(200_000, dtype=torch.float64)
    noise = OP(x, x, 0.0, 1.0, None, None, 99)
    want = reference.gaussian_noise(x.shape, 99, torch.float64)
    torch.testing.assert_close(noise, want, rtol=1e-12, atol=1e-12)
    assert stats.kstest(noise.numpy(), "norm").pvalue > 1e-3
    torch.testing.assert_close(OP(x, x, 0.0, 0.3, None, None, 99), 0.3 * noise)


def test_in_place_overwrites_x_and_equals_the_out_of_place_step(cpu_isa):
    x, grad = inputs((3, 2, 5, 5))
    want = OP(x, grad, 0.2, 0.1, 0.0, 1.0, 7)
    y = x.clone()
    pointer = y.data_ptr()
    assert INPLACE(y, grad, 0.2, 0.1, 0.0, 1.0, 7) is None  # it mutates y, returns nothing
    assert y.data_ptr() == pointer
    assert torch.equal(y, want)
    z = x.clone()
    assert (
        ops.langevin_step(z, grad, 0.2, 0.1, (0, 1), torch.Generator().manual_seed(1), inplace=True)
        is z
    )


@pytest.mark.parametrize("inplace", [False, True])
def test_strided_x_takes_the_noise_of_its_row_major_index(inplace):
    base, grad = inputs((6, 5))
    x = base.t()  # [5, 6], not contiguous
    g = grad.t().contiguous()
    want = ref_step(x.contiguous(), g, 0.1, 0.5, None, 11)
    if inplace:
        INPLACE(x, g, 0.1, 0.5, None, None, 11)
        got = x
    else:
        got = OP(x, g, 0.1, 0.5, None, None, 11)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    if inplace:
        torch.testing.assert_close(base.t(), want, rtol=1e-12, atol=1e-12)


def test_the_result_does_not_depend_on_the_thread_count():
    x, grad = inputs((5 * 4096 + 3,))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = OP(x, grad, 0.1, 0.2, -1.0, 2.0, 5)
        torch.set_num_threads(max(2, threads))
        many = OP(x, grad, 0.1, 0.2, -1.0, 2.0, 5)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)


def test_a_generator_seed_reproduces_the_step_and_another_differs():
    x, grad = inputs((4, 10))
    a = ops.langevin_step(x, grad, 0.1, 0.1, generator=torch.Generator().manual_seed(1))
    b = ops.langevin_step(x, grad, 0.1, 0.1, generator=torch.Generator().manual_seed(1))
    c = ops.langevin_step(x, grad, 0.1, 0.1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(1)
    first = ops.langevin_step(x, grad, 0.1, 0.1, generator=g)
    assert not torch.equal(first, ops.langevin_step(x, grad, 0.1, 0.1, generator=g))


def test_the_reference_backend_draws_the_same_step():
    x, grad = inputs((3, 7))
    fused = ops.langevin_step(x, grad, 0.3, 0.2, (0, 1), torch.Generator().manual_seed(4))
    with ops.use_backend("reference"):
        ref = ops.langevin_step(x, grad, 0.3, 0.2, (0, 1), torch.Generator().manual_seed(4))
        y = x.clone()
        ops.langevin_step(y, grad, 0.3, 0.2, (0, 1), torch.Generator().manual_seed(4), inplace=True)
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


def test_nan_stays_nan_and_an_infinite_gradient_lands_on_the_bound():
    x = torch.tensor([float("nan"), 0.5, 0.5, 0.5], dtype=torch.float64)
    grad = torch.tensor([0.0, float("inf"), -float("inf"), float("nan")], dtype=torch.float64)
    got = OP(x, grad, 0.1, 0.0, 0.0, 1.0, 0)
    assert math.isnan(got[0]) and got[1] == 0.0 and got[2] == 1.0 and math.isnan(got[3])
    want = torch.clamp(x - 0.1 * grad, 0.0, 1.0)
    torch.testing.assert_close(got, want, equal_nan=True)


def test_empty_input():
    x = torch.empty(0, 3, dtype=torch.float64)
    assert OP(x, x, 0.1, 0.1, None, None, 1).shape == (0, 3)
    INPLACE(x, x, 0.1, 0.1, None, None, 1)
    assert x.shape == (0, 3)


def test_opcheck_of_both_forms():
    x, grad = inputs((2, 3, 4))
    torch.library.opcheck(OP, (x, grad, 0.1, 0.2, 0.0, 1.0, 5))
    torch.library.opcheck(INPLACE, (x.clone(), grad, 0.1, 0.2, None, 1.0, 5))


def test_fake_tensors_get_the_shape_and_the_checks():
    with FakeTensorMode():
        x = torch.empty(2, 3, dtype=torch.float32)
        assert OP(x, torch.empty(2, 3), 0.1, 0.2, None, None, 1).shape == (2, 3)
        with pytest.raises(RuntimeError, match="grad_energy must have the shape of x"):
            OP(x, torch.empty(3, 2), 0.1, 0.2, None, None, 1)


def test_compiled_sampling_loop_matches_eager():
    x, grad = inputs((2, 6))

    def loop(x, grad, seed):
        for i in range(3):
            x = OP(x, grad * (i + 1), 0.05, 0.01, 0.0, 1.0, seed + i)
        return x

    compiled = torch.compile(loop, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, grad, 10), loop(x, grad, 10), rtol=0, atol=0)


def bad(change):
    x, grad = inputs((2, 3))
    args = {"x": x, "grad_energy": grad, "step_size": 0.1, "noise_scale": 0.1, "clamp": None}
    args.update(change)
    return args


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"grad_energy": torch.zeros(3, 2, dtype=torch.float64)},
            "grad_energy must have the shape",
        ),
        ({"grad_energy": torch.zeros(2, 3)}, "grad_energy must match x in dtype"),
        ({"x": torch.zeros(2, 3, dtype=torch.int64)}, "x must be float32 or float64"),
        ({"step_size": float("nan")}, "step_size must be finite"),
        ({"noise_scale": -1.0}, "noise_scale must be finite and >= 0"),
        ({"noise_scale": float("inf")}, "noise_scale must be finite and >= 0"),
        ({"clamp": (1.0, 0.0)}, "lo must not exceed hi"),
        ({"clamp": (float("nan"), 1.0)}, "lo must not be NaN"),
    ],
)
@pytest.mark.parametrize("backend", ["kernels", "reference"])
def test_bad_input_names_the_argument(change, message, backend):
    with ops.use_backend(backend), pytest.raises(RuntimeError, match=message):
        ops.langevin_step(**bad(change))


def test_a_malformed_clamp_and_inputs_that_require_grad_are_refused():
    with pytest.raises(ValueError, match=r"clamp must be \(lo, hi\)"):
        ops.langevin_step(**bad({"clamp": 1.0}))
    x, grad = inputs((2, 3))
    with pytest.raises(ValueError, match="no gradients; call it under torch.no_grad"):
        ops.langevin_step(x.requires_grad_(), grad, 0.1, 0.1)
    with torch.no_grad():
        assert ops.langevin_step(x, grad, 0.1, 0.1).shape == (2, 3)
