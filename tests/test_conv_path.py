"""The per-shape choice between the masked convolution's kernel and the dense path (oneDNN's
convolution of the masked weight): both are exact against the reference, non-finite values always
take the kernel, the choice is made once per shape and can be read, restored and forced."""

import pytest
import torch
import torch.nn.functional as F
from train_helpers import TINY, image_array

from gen_ext import ops
from gen_ext.reference.masked_conv import pixelcnn_mask
from gen_ext.train import TrainConfig, train


def results(x, weight, bias, mask_type, colors):
    """(out, grad x, grad weight, grad bias) of sum(out * cotangent)."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    out = ops.masked_conv2d(*leaves, mask_type, colors)
    cotangent = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return (out, *torch.autograd.grad(out, leaves, cotangent))


def reference_results(x, weight, bias, mask_type, colors):
    with ops.use_backend("reference"):
        return results(x, weight, bias, mask_type, colors)


def inputs(shape, cout, k, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    weight = torch.randn(cout, shape[1], k, k, generator=g, dtype=dtype)
    bias = torch.randn(cout, generator=g, dtype=dtype)
    return x, weight, bias


@pytest.mark.parametrize(
    "mask_type,colors,shape,cout,k",
    [("A", 1, (2, 5, 7, 6), 4, 3), ("B", 3, (3, 6, 5, 9), 9, 5), ("A", 3, (1, 3, 1, 1), 3, 7)],
)
def test_dense_path_matches_the_reference(mask_type, colors, shape, cout, k):
    x, weight, bias = inputs(shape, cout, k)
    want = reference_results(x, weight, bias, mask_type, colors)
    with ops.use_conv_path("dense"):
        got = results(x, weight, bias, mask_type, colors)
    for g, w, name in zip(got, want, ("out", "grad x", "grad weight", "grad bias"), strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12, msg=name)
    o, i, kh, kw = weight.shape
    masked = ~pixelcnn_mask(o, i, (kh, kw), mask_type, colors).bool()
    assert (got[2][masked] == 0).all(), "masked taps get no gradient"


def test_dense_path_is_the_oneDNN_convolution():
    """Under "dense" the op returns exactly conv2d of the masked weight (so the dense path ran),
    and under "kernel" the kernel's own arithmetic (float32 rounding differs)."""
    x, weight, bias = inputs((2, 16, 9, 9), 16, 3, torch.float32)
    dense = F.conv2d(x, weight * pixelcnn_mask(16, 16, (3, 3), "B", 1), bias, padding=1)
    with ops.use_conv_path("dense"):
        assert torch.equal(ops.masked_conv2d(x, weight, bias, "B", 1), dense)
    with ops.use_conv_path("kernel"):
        assert not torch.equal(ops.masked_conv2d(x, weight, bias, "B", 1), dense)


@pytest.mark.parametrize("where", ["x", "weight", "grad"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_dense_path_hands_nonfinite_values_to_the_kernel(where, value):
    """The dense convolution multiplies masked taps and padding (0 * inf is NaN); with a
    non-finite value anywhere the results must still be the reference's, NaN for NaN."""
    x, weight, bias = inputs((2, 4, 5, 6), 4, 3)
    cotangent = torch.linspace(-1, 1, 2 * 4 * 5 * 6, dtype=torch.float64).view(2, 4, 5, 6)
    if where == "x":
        x[0, 1, 2, 3] = value
    elif where == "weight":
        weight[1, 2, 0, 0] = value  # a tap that reads the padding at the top-left pixels
    else:
        cotangent[1, 0, 4, 5] = value

    def run():
        leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
        out = ops.masked_conv2d(*leaves, "B", 1)
        return (out, *torch.autograd.grad(out, leaves, cotangent))

    with ops.use_backend("reference"):
        want = run()
    with ops.use_conv_path("dense"):
        got = run()
    for g, w in zip(got, want, strict=True):
        assert torch.equal(torch.isnan(g), torch.isnan(w))
        assert torch.equal(torch.isinf(g), torch.isinf(w))
        finite = torch.isfinite(w)
        torch.testing.assert_close(g[finite], w[finite], rtol=1e-10, atol=1e-12)


def new_choices(run):
    before = ops.conv_path_choices()
    run()
    after = ops.conv_path_choices()
    return {k: v for k, v in after.items() if k not in before}


def test_auto_times_each_shape_once_and_keeps_its_choice():
    x, weight, bias = inputs((3, 8, 11, 7), 8, 5, torch.float32, seed=5)
    with ops.use_conv_path("auto"):
        made = new_choices(lambda: ops.masked_conv2d(x, weight, bias, "A", 1))
        assert len(made) == 1
        ((key, path),) = made.items()
        assert "masked_conv2d" in key and "[3,8,11,7]" in key and path in ("kernel", "dense")
        assert new_choices(lambda: ops.masked_conv2d(x, weight, bias, "A", 1)) == {}
        # a restored choice is what the next call runs
        for forced in ("dense", "kernel"):
            ops.set_conv_path_choices({key: forced})
            with ops.use_conv_path(forced):
                want = ops.masked_conv2d(x, weight, bias, "A", 1)
            assert torch.equal(ops.masked_conv2d(x, weight, bias, "A", 1), want), forced


def _first_call(op):
    """A fresh shape for each convolution: (conv(weight) -> output, x, weight)."""
    g = torch.Generator().manual_seed(31)
    if op == "causal_conv1d":
        x = torch.randn(1, 3, 29, generator=g, dtype=torch.float64)
        return lambda w: ops.causal_conv1d(x, w, None, 3), torch.randn(4, 3, 2, generator=g)
    x = torch.randn(1, 3, 13, 5, generator=g, dtype=torch.float64)
    if op == "masked_conv2d":
        return lambda w: ops.masked_conv2d(x, w, None, "B", 1), torch.randn(3, 3, 3, 3, generator=g)
    return lambda w: ops.shifted_conv2d(x, w, None, "down"), torch.randn(4, 3, 2, 3, generator=g)


@pytest.mark.parametrize("op", ["masked_conv2d", "shifted_conv2d", "causal_conv1d"])
@pytest.mark.parametrize("stage", ["forward", "backward"])
def test_a_first_call_the_dense_path_cannot_take_records_no_choice(op, stage):
    """Under "auto" the first call of a shape times both paths. Where the dense path is not exact
    for that call's values (an inf weight, an inf output gradient) it returns early, and its time
    says nothing about the convolution: no choice may be recorded then, or the shape would keep the
    dense path on the strength of a check. The next call, with finite values, makes the choice."""
    conv, weight = _first_call(op)
    weight = weight.double()
    key = op if stage == "forward" else f"{op}_backward"

    def choices_made(nonfinite):
        w = weight.clone()
        if stage == "forward":
            if nonfinite:
                w[0, 0, 0] = float("inf")
            return new_choices(lambda: conv(w))
        w.requires_grad_()
        out = conv(w)
        cotangent = torch.ones_like(out)
        if nonfinite:
            cotangent.view(-1)[-1] = float("inf")
        return new_choices(lambda: torch.autograd.grad(out, w, cotangent))

    with ops.use_conv_path("auto"):
        made = choices_made(nonfinite=True)
        assert not [k for k in made if k.startswith(key + " ")], made
        made = choices_made(nonfinite=False)
        assert [k for k in made if k.startswith(key + " ")], made


def test_policy_and_choices_are_checked():
    with pytest.raises(ValueError, match="policy must be one of"):
        ops.set_conv_path_policy("fastest")
    with pytest.raises(ValueError, match="'shape=kernel' or 'shape=dense'"):
        ops.set_conv_path_choices({"masked_conv2d x[1,1,1,1]": "fast"})
    with pytest.raises(ValueError, match="'auto', 'kernel' or 'dense'"):
        torch.ops.gen_ext.set_conv_path_policy("fastest")


def test_environment_sets_the_policy_unless_one_is_set(monkeypatch):
    previous = ops.set_conv_path_policy(None)
    try:
        monkeypatch.setenv("GEN_EXT_CONV_PATH", "dense")
        assert ops.conv_path_policy() == "dense"
        with ops.use_conv_path("kernel"):
            assert ops.conv_path_policy() == "kernel"
        assert ops.conv_path_policy() == "dense"
        monkeypatch.delenv("GEN_EXT_CONV_PATH")
        assert ops.conv_path_policy() == "auto"
        monkeypatch.setenv("GEN_EXT_CONV_PATH", "fastest")
        with pytest.raises(ValueError, match="GEN_EXT_CONV_PATH"):
            ops.conv_path_policy()
    finally:
        ops.set_conv_path_policy(previous)


def test_a_resumed_run_restores_the_choices(tmp_path):
    """The checkpoint carries the per-shape choices; resuming makes them this process's."""
    data = image_array(tmp_path, 20)
    cfg = TrainConfig(
        model="pixelcnn",
        data=data,
        epochs=1,
        out=str(tmp_path / "run"),
        batch_size=8,
        model_args=dict(TINY["pixelcnn"]),
    )
    with ops.use_conv_path("auto"):
        train(cfg, progress=False)
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    chosen = ckpt["conv_paths"]
    assert any(k.startswith("masked_conv2d") for k in chosen)
    key = next(k for k in chosen if k.startswith("masked_conv2d "))
    flipped = {key: "dense" if chosen[key] == "kernel" else "kernel"}
    ckpt["conv_paths"] = flipped
    torch.save(ckpt, path)
    cfg.epochs = 2
    train(cfg, resume=True, progress=False)
    assert ops.conv_path_choices()[key] == flipped[key]
