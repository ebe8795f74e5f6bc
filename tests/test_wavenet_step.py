"""wavenet_layer_step: the op against its reference, and a layer's steps against its forward."""

import pytest
import torch

from gen_ext import ops, reference
from gen_ext.nn import WaveNetLayer
from gen_ext.nn.wavenet import LayerSampler

OP = torch.ops.gen_ext.wavenet_layer_step


def step_inputs(B=3, R=5, D=4, S=6, K=2, d=3, dtype=torch.float64, seed=0, options=True):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(shape, generator=g, dtype=dtype)

    x, cache = randn(B, R), randn((K - 1) * d, B, R)
    weight_taps, out_weight = randn(K, R, 2 * D), randn(D, R + S)
    bias, cond, out_bias = (randn(2 * D), randn(B, 2 * D), randn(R + S)) if options else (None,) * 3
    return x, cache, weight_taps, bias, cond, out_weight, out_bias


@pytest.mark.parametrize("K, d", [(1, 1), (2, 1), (2, 5), (3, 2), (4, 1)])
@pytest.mark.parametrize("step", [0, 1, 4, 17])
@pytest.mark.parametrize("options", [True, False])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_matches_reference(cpu_isa, K, d, step, options, dtype, tol):
    x, cache, w, b, c, ow, ob = step_inputs(K=K, d=d, dtype=dtype, seed=step, options=options)
    cache_ref = cache.clone()
    got = ops.wavenet_layer_step(x, cache, step, w, b, c, ow, ob)
    want = reference.wavenet_layer_step(x, cache_ref, step, w, b, c, ow, ob)
    for g_, w_ in zip(got, want, strict=True):
        torch.testing.assert_close(g_, w_, rtol=tol, atol=tol)
    torch.testing.assert_close(cache, cache_ref, rtol=0, atol=0)  # the same slot updated
    if K > 1:
        assert torch.equal(cache[step % ((K - 1) * d)], x)


def test_taps_before_the_start_are_absent():
    """Before time (K-1) d some taps have no input yet: the cache's contents there never count,
    even when they are not finite (a fresh cache may hold anything)."""
    x, cache, w, b, c, ow, ob = step_inputs(K=3, d=2)
    for step in range(4):
        garbage = torch.full_like(cache, float("nan"))
        for s in range(step):  # what earlier steps would have written
            garbage[s % 4] = cache[s % 4]
        got = ops.wavenet_layer_step(x, garbage, step, w, b, c, ow, ob)
        assert all(torch.isfinite(t).all() for t in got)


def test_reference_backend_runs_the_reference():
    args = step_inputs()
    cache = args[1].clone()  # each call updates its cache
    with ops.use_backend("reference"):
        got = ops.wavenet_layer_step(args[0], cache, 7, *args[2:])
    want = reference.wavenet_layer_step(*args[:2], 7, *args[2:])
    for g_, w_ in zip(got, want, strict=True):
        torch.testing.assert_close(g_, w_, rtol=0, atol=0)


def test_opcheck():
    x, cache, w, b, c, ow, ob = step_inputs()
    torch.library.opcheck(OP, (x, cache, 5, w, b, c, ow, ob))
    torch.library.opcheck(OP, (x, cache, 0, w, None, None, ow, None))


def test_refuses_inputs_that_want_gradients():
    x, cache, w, b, c, ow, ob = step_inputs()
    with pytest.raises(ValueError, match="no gradients.*torch.no_grad"):
        ops.wavenet_layer_step(x, cache, 0, w.requires_grad_(), b, c, ow, ob)


def bad(name, value):
    x, cache, w, b, c, ow, ob = step_inputs()
    args = dict(x=x, cache=cache, step=3, w=w, b=b, c=c, ow=ow, ob=ob)
    args[name] = value
    return args


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("x", torch.zeros(3, 5, dtype=torch.int64), "x must be float32 or float64"),
        ("x", torch.zeros(3, 5, 1, dtype=torch.float64), r"x must be \[B, R\]"),
        ("w", torch.zeros(2, 5, 7, dtype=torch.float64), "weight_taps must be .* even 2D"),
        ("w", torch.zeros(2, 4, 8, dtype=torch.float64), "weight_taps must have shape"),
        ("cache", torch.zeros(0, 3, 5, dtype=torch.float64), "cache must hold .* K = 2 .* of 0"),
        ("cache", torch.zeros(3, 2, 5, dtype=torch.float64), "cache must have shape"),
        ("cache", torch.zeros(3, 3, 5, dtype=torch.float32), "cache must match x in dtype"),
        ("step", -1, "step must be >= 0"),
        ("ow", torch.zeros(4, 5, dtype=torch.float64), r"out_weight must be \[D, R \+ S\]"),
        ("b", torch.zeros(7, dtype=torch.float64), "bias must have shape"),
        ("c", torch.zeros(2, 8, dtype=torch.float64), "cond must have shape"),
        ("ob", torch.zeros(3, dtype=torch.float64), "out_bias must have shape"),
    ],
)
@pytest.mark.parametrize("backend", ["kernel", "fake"])
def test_bad_inputs_name_the_argument(name, value, message, backend):
    a = bad(name, value)
    args = (a["x"], a["cache"], a["step"], a["w"], a["b"], a["c"], a["ow"], a["ob"])
    with pytest.raises(RuntimeError, match=f"wavenet_layer_step: {message}"):
        if backend == "kernel":
            OP(*args)
        else:
            ops.wavenet_step.check_inputs(*args)


def layer_and_input(K, d, cond_channels, T=29, seed=0):
    torch.manual_seed(seed)
    layer = WaveNetLayer(6, d, K, gate_channels=5, skip_channels=7, cond_channels=cond_channels)
    layer = layer.double()
    x = torch.randn(3, 6, T, dtype=torch.float64)
    cond = torch.randn(3, cond_channels, dtype=torch.float64) if cond_channels else None
    return layer, x, cond


def run_steps(layer, x, cond):
    with torch.no_grad():
        step = layer.sampler(x.shape[0], cond)
        outs = [step(x[:, :, t].contiguous()) for t in range(x.shape[2])]
    return torch.stack([o[0] for o in outs], -1), torch.stack([o[1] for o in outs], -1)


@pytest.mark.parametrize("K, d", [(1, 1), (2, 1), (2, 4), (3, 2), (2, 40)])
@pytest.mark.parametrize("cond_channels", [0, 2])
def test_steps_reproduce_the_layer_forward(K, d, cond_channels):
    """Step by step from an empty cache, the layer's outputs at every time equal its forward over
    the whole sequence (float64), including times before the cache is full and a dilation
    longer than the sequence."""
    layer, x, cond = layer_and_input(K, d, cond_channels)
    with torch.no_grad():
        want = layer(x, cond)
    for g_, w_ in zip(run_steps(layer, x, cond), want, strict=True):
        torch.testing.assert_close(g_, w_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("offset", [-1, 1])
def test_a_cache_read_one_step_off_is_caught(monkeypatch, offset):
    """The comparison above fails for a sampler that reads its cache one step late or early."""
    layer, x, cond = layer_and_input(2, 3, 0)
    with torch.no_grad():
        want = layer(x, cond)
    real = ops.wavenet_layer_step

    def off_by_one(x_, cache, step, *rest):
        if step + offset < 0:
            return real(x_, cache, step, *rest)
        # read at step + offset, but keep the slot the real step writes
        saved = cache[step % cache.shape[0]].clone()
        out = real(x_, cache, step + offset, *rest)
        cache[(step + offset) % cache.shape[0]] = saved if offset else x_
        cache[step % cache.shape[0]] = x_
        return out

    monkeypatch.setattr("gen_ext.nn.wavenet.ops.wavenet_layer_step", off_by_one)
    got = run_steps(layer, x, cond)
    assert not torch.allclose(got[0], want[0], rtol=1e-6, atol=1e-6)


def test_sampler_layouts():
    layer, _, _ = layer_and_input(3, 4, 0)
    s = LayerSampler(layer, 5, None)
    assert s.cache.shape == (8, 5, 6) and s.weight_taps.shape == (3, 6, 10)
    assert s.out_weight.shape == (5, 13)
