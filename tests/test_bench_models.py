"""gen-ext bench's model cases (gen_ext/bench/model_cases.py): every registered model family has
one, each implementation runs, the eager implementation is the same model on plain PyTorch, the
compiled one runs the references and compiles once, and the CLI selects cases."""

import inspect
import math

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from gen_ext.bench import model_cases, runner
from gen_ext.bench.model_cases import (
    MODEL_CASES,
    NOT_BENCHED,
    NOT_COMPILED,
    SIZES,
    TINY_SIZES,
    model_case,
)
from gen_ext.cli import bench_cases, build_parser
from gen_ext.models import MODELS

CPU = torch.device("cpu")
FAMILIES = sorted(TINY_SIZES)
# the families whose models call gen_ext ops (the autoencoders are plain PyTorch in every backend)
WITH_OPS = ["vae", "pixelcnn", "gated-pixelcnn", "pixelcnn++"]


def tiny(name, dtype=torch.float32):
    return model_case(name, CPU, TINY_SIZES, dtype)


def gen_ext_ops_called(fn) -> set[str]:
    """The gen_ext custom ops (torch.ops.gen_ext.*) that one call of fn dispatches, as the
    profiler records every dispatched op by its qualified name."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events() if e.name.startswith("gen_ext::")}


def test_every_registered_model_family_has_a_case():
    assert set(MODEL_CASES) == set(SIZES) == set(TINY_SIZES)
    assert set(MODEL_CASES) | set(NOT_BENCHED) == set(MODELS)
    assert not set(MODEL_CASES) & set(NOT_BENCHED)
    assert not set(MODEL_CASES) & set(runner.CASES)  # one namespace for --ops and --models


@pytest.mark.parametrize("name", sorted(SIZES))
def test_documented_sizes_are_constructor_arguments(name):
    size = SIZES[name]
    inspect.signature(MODELS[name]).bind(**size.config)  # raises on an unknown argument
    assert size.batch in (8, 16)


def test_pixelcnn_pp_is_measured_at_the_documented_size():
    size = SIZES["pixelcnn++"]
    assert size.batch == 8
    assert size.config["input_shape"] == (3, 32, 32)
    assert size.config["blocks"] == 5 and size.config["channels"] == 80
    assert size.config["resolutions"] == 3  # the paper's 32, 16 and 8 pixel stages
    for words in ("3x32x32", "5 blocks per stage", "3 stages", "80 filters"):
        assert words in size.describe


@pytest.mark.parametrize("name", FAMILIES)
def test_every_step_runs_in_fused_and_eager(name):
    case = tiny(name)
    assert set(case.make) == {"fused", "eager"} | (set() if name in NOT_COMPILED else {"compiled"})
    assert bool(case.forward_only) == MODELS[name]().can_sample
    for impl in ("fused", "eager"):
        loss = case.make[impl]()()
        assert loss.dim() == 0 and torch.isfinite(loss)
        if case.forward_only:
            drawn = case.forward_only[impl]()()
            assert torch.isfinite(drawn).all()


def _two_losses(case, impl):
    """The losses of the first two training steps of `impl`, the global RNG (dropout, the
    denoiser's corruption) seeded alike before each."""
    step = case.make[impl]()
    losses = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        losses.append(step().item())
    return losses


@pytest.mark.parametrize("name", FAMILIES)
def test_fused_and_eager_are_the_same_model(name):
    """Same weights, same batch, same noise: the same loss, and after one Adam step (which
    depends on the gradients) the same loss again. In float64, so that a different model or
    gradient could not hide in float32 rounding."""
    case = tiny(name, torch.float64)
    fused, eager = _two_losses(case, "fused"), _two_losses(case, "eager")
    assert fused[1] != fused[0]  # the Adam step changed the weights
    for a, b in zip(fused, eager, strict=True):
        assert math.isclose(a, b, rel_tol=1e-9), (fused, eager)


@pytest.mark.parametrize("name", WITH_OPS)
def test_eager_calls_no_gen_ext_op(name):
    case = tiny(name)
    steps = [case.make]
    if case.forward_only:
        steps.append(case.forward_only)
    for made in steps:
        fused, eager = made["fused"](), made["eager"]()
        assert gen_ext_ops_called(fused)  # the check sees the kernels where they run
        assert gen_ext_ops_called(eager) == set()


def test_compiled_runs_the_references_and_compiles_once():
    """One tiny compiled training step (PixelCNN++, whose ops are the gated activation and the
    likelihood): after its first call, which compiles, further steps neither recompile (that
    would raise) nor call a gen_ext kernel."""
    step = tiny("pixelcnn++").make["compiled"]()
    step()
    with torch._dynamo.config.patch(error_on_recompile=True):
        assert gen_ext_ops_called(step) == set()
        assert torch.isfinite(step())


@pytest.fixture
def tiny_cases(monkeypatch):
    """runner.ALL_CASES with the model cases at their tiny sizes."""
    tiny_models = {name: (lambda device, name=name: tiny(name)) for name in TINY_SIZES}
    monkeypatch.setattr(runner, "ALL_CASES", {**runner.CASES, **tiny_models})


def test_runner_reports_a_model_case(tiny_cases, tmp_path, monkeypatch):
    # pixelcnn marked as one torch.compile cannot compile: no compiled row to build (this runs in
    # a second), and the table says why
    monkeypatch.setitem(NOT_COMPILED, "pixelcnn", "a reason")
    rows = runner.run(CPU, ["pixelcnn"], quick=True)
    assert [(r.op, r.impl, r.kind) for r in rows] == [
        ("pixelcnn", "fused", "model"),
        ("pixelcnn", "eager", "model"),
    ]
    assert all(r.forward_ms > 0 and r.full_ms > 0 and r.first_forward_s > 0 for r in rows)
    info = runner.conditions(CPU)
    text = runner.markdown(rows, info)
    assert "| model | implementation | training step ms" in text
    assert "| pixelcnn | compiled | not run: a reason" in text
    assert info["processor"] in text
    paths = runner.write(rows, info, tmp_path)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    (entry,) = runner.summary(rows)
    assert entry["kind"] == "model" and "sampling_speedup_vs_eager" in entry


def _row(op, impl, full, forward, kind="model"):
    return runner.BenchRow(op, "shape", impl, full, 0.1, forward, 1.0, 0.5, 3, kind=kind)


def test_model_table_shows_both_ratios_and_a_missing_sampler():
    rows = [
        _row("vae", "fused", 10.0, 2.0),
        _row("vae", "eager", 30.0, 3.0),
        _row("autoencoder", "fused", 4.0, None),
        _row("autoencoder", "eager", 5.0, None),
        _row("gated_activation", "fused", 1.0, 0.5, kind="op"),
        _row("gated_activation", "eager", 2.0, 1.0, kind="op"),
    ]
    text = runner.markdown(rows, {"device": "cpu"})
    assert "| vae | eager | 30.00 ± 0.10 | 3.00 |" in text and "| 3.00 / 1.50 |" in text
    assert "| autoencoder | eager | 5.00 ± 0.10 | – |" in text and "| 1.25 / – |" in text
    assert "| gated_activation | eager | 2.00 ± 0.10 | 1.00 |" in text
    summary = {s["op"]: s for s in runner.summary(rows)}
    assert summary["vae"]["sampling_speedup_vs_eager"] == 1.5
    assert "sampling_speedup_vs_eager" not in summary["autoencoder"]
    titles = [title for title, _ in runner._panels(rows)]
    assert titles == [
        "vae: training step",
        "vae: sampling step",
        "autoencoder: training step",
        "gated_activation",
    ]


def _selected(*argv):
    args = build_parser().parse_args(["bench", *argv])
    return bench_cases(args)


def test_selection_flags():
    assert _selected() == list(runner.CASES)  # the default: the op cases
    assert _selected("--suite", "ops") == list(runner.CASES)
    assert _selected("--suite", "models") == list(MODEL_CASES)
    assert _selected("--suite", "all") == list(runner.CASES) + list(MODEL_CASES)
    assert _selected("--models", "pixelcnn++") == ["pixelcnn++"]
    assert _selected("--ops", "gated_activation", "--models", "vae") == ["gated_activation", "vae"]


@pytest.mark.parametrize(
    "argv",
    [["--suite", "models", "--models", "vae"], ["--models", "nope"], ["--suite", "every"]],
)
def test_selection_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _selected(*argv)
    assert exit_info.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_runner_refuses_an_unknown_case():
    with pytest.raises(ValueError, match="unknown cases \\['nope'\\]"):
        runner.run(CPU, ["nope"])


def test_sampling_step_draws_what_the_sampler_draws():
    """The autoregressive sampling step is the network over the batch and a draw at one position:
    its output has the shape of one sub-pixel (softmax) or pixel (mixture) per image."""
    softmax = tiny("pixelcnn").forward_only["fused"]()()
    assert softmax.shape == (TINY_SIZES["pixelcnn"].batch,)
    mixture = tiny("pixelcnn++").forward_only["fused"]()()
    assert mixture.shape == (TINY_SIZES["pixelcnn++"].batch, 3, 1, 1)
    assert model_cases.BACKEND == {
        "fused": "kernels",
        "eager": "reference",
        "compiled": "reference",
    }
