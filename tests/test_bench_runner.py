"""gen-ext bench's report: the conditions it names, the busy-machine warning and the figure."""

import shutil
import subprocess

import pytest
import torch

from gen_ext.bench import runner
from gen_ext.bench.cases import BenchCase


def test_conditions_name_the_processor_clock_and_instruction_set():
    info = runner.conditions(torch.device("cpu"), load=(0.25, 1.5))
    if shutil.which("lscpu"):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines()
            if line.startswith("Model name")
        )
        assert info["processor"] == model
    assert info["clock"].endswith(" GHz") and float(info["clock"].split()[0]) > 0
    assert info["instruction_set"] in ("AVX-512", "AVX2", "portable (no AVX2)")
    assert info["threads"] == torch.get_num_threads()
    assert info["load_1min"] == "0.2 before, 1.5 after"
    line = runner.conditions_line(info)
    for part in (
        info["processor"],
        info["clock"],
        info["instruction_set"],
        f"{info['threads']} threads",
        info["date"],
    ):
        assert part in line


def test_clock_falls_back_to_the_current_frequency(monkeypatch):
    monkeypatch.setattr(runner, "_lscpu", lambda: {"Model name": "Some CPU", "CPU MHz": "2596.1"})
    assert runner.processor() == ("Some CPU", "2.60 GHz")
    monkeypatch.setattr(
        runner, "_lscpu", lambda: {"Model name": "Some CPU", "CPU max MHz": "3500.0000"}
    )
    assert runner.processor() == ("Some CPU", "3.50 GHz")


@pytest.mark.parametrize(
    "before, after, busy",
    [
        (0.3, 1.9, False),  # the benchmark's own 2 threads
        (2.0, 2.0, False),
        (3.1, 1.0, True),  # others were running when it started
        (0.5, 4.2, True),  # others started during the run
    ],
)
def test_busy_warning_when_load_exceeds_the_threads(before, after, busy):
    warning = runner.busy_warning(before, after, threads=2)
    assert (warning is not None) == busy
    if busy:
        assert f"{before:.1f} before, {after:.1f} after" in warning and "2 threads" in warning


def test_no_warning_without_a_load_average():
    assert runner.busy_warning(None, None, threads=2) is None


# --- the check of results before timing -------------------------------------------------------

WANT = torch.tensor([1.0, -2.0, 4.0])


@pytest.mark.parametrize(
    "got",
    [
        WANT.clone(),
        WANT * (1 + 1e-6),  # float32 rounding
        WANT + 3e-3,  # within 1e-3 of the largest magnitude, 4
        (WANT.clone(),),  # a tuple of one
    ],
)
def test_results_within_rounding_are_the_same(got):
    assert runner.results_differ(got, WANT) is None


@pytest.mark.parametrize(
    "got, why",
    [
        (WANT + 5e-3, "max |difference| 0.005 where the reference's largest is 4"),
        (torch.tensor([1.0, float("nan"), 4.0]), "NaN or infinity where the reference has none"),
        (torch.tensor([1.0, -2.0, 4.0, 0.0]), "shape [4], the reference's [3]"),
        ((WANT, WANT), "2 results against the reference's 1"),
    ],
)
def test_results_that_differ_say_how(got, why):
    assert why in runner.results_differ(got, WANT)


def test_non_finite_values_must_match_the_reference():
    want = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0])
    assert runner.results_differ(want.clone(), want) is None
    assert "NaN or infinity" in runner.results_differ(want.flip(0), want)
    # an infinity of the other sign is a different result
    assert "NaN or infinity" in runner.results_differ(want * torch.tensor([1, -1, 1, 1]), want)
    # a reference with no finite value at all compares only its NaN and infinities
    nan = torch.full((2,), float("nan"))
    assert runner.results_differ(nan, nan.clone()) is None
    assert "NaN or infinity" in runner.results_differ(torch.zeros(2), nan)


def _forward_case(op, outputs: dict, uncompared=""):
    x = torch.arange(6.0)
    made = {impl: (lambda f=f: lambda: f(x)) for impl, f in outputs.items()}
    return BenchCase(op, "6 values", make=made, forward_only=made, uncompared=uncompared)


def test_a_wrong_implementation_is_marked_and_gets_no_ratio(monkeypatch):
    right = {"fused": lambda x: x * 2, "eager": lambda x: x + x, "compiled": lambda x: x * 2.5}
    noisy = {"fused": lambda x: x * 2, "eager": lambda x: x * 3, "compiled": lambda x: x * 4}
    monkeypatch.setattr(
        runner,
        "ALL_CASES",
        {
            "checked": lambda device: _forward_case("checked", right),
            "noisy": lambda device: _forward_case("noisy", noisy, uncompared="a reason"),
        },
    )
    rows = runner.run(torch.device("cpu"), ["checked", "noisy"], quick=True)
    wrong = {(r.op, r.impl): r.wrong_result for r in rows}
    assert wrong[("checked", "fused")] is None
    assert "max |difference| 2.5" in wrong[("checked", "compiled")]
    # the case that says why its results differ is not compared
    assert all(wrong[("noisy", impl)] is None for impl in ("fused", "eager", "compiled"))
    summary = {s["op"]: s for s in runner.summary(rows)}
    assert "speedup_vs_eager" in summary["checked"]
    assert "speedup_vs_compiled" not in summary["checked"]
    assert list(summary["checked"]["wrong_results"]) == ["compiled"]
    assert {"speedup_vs_eager", "speedup_vs_compiled"} <= summary["noisy"].keys()
    text = runner.markdown(rows, {"device": "cpu"})
    assert "| checked | compiled |" in text and "wrong result: result: max |difference|" in text
    assert "Results not compared: noisy (a reason)." in text


def test_no_ratio_at_all_where_the_fused_result_is_wrong():
    rows = [
        runner.BenchRow("op", "s", "fused", 1.0, 0.1, 1.0, 1.0, 0.5, 3, wrong_result="off"),
        runner.BenchRow("op", "s", "eager", 2.0, 0.1, 2.0, 1.0, 0.5, 3),
    ]
    (entry,) = runner.summary(rows)
    assert entry["wrong_results"] == {"fused": "off"}
    assert "speedup_vs_eager" not in entry
    assert "| op | eager | 2.00 ± 0.10 | 2.00 | 1.0 | 0.5 | – |" in runner.markdown(rows, {})


def test_every_op_case_that_is_not_compared_says_why():
    # the noise-drawing cases and the discrete sampler, and no other
    from gen_ext.bench.cases import CASES

    device = torch.device("cpu")
    uncompared = {name for name, make in CASES.items() if make(device).uncompared}
    assert uncompared == {
        "discretized_logistic_mixture_sample",
        "gaussian_reparameterize_kl (drawn eps)",
        "concat_elu (dropout)",
        "gated_resnet_block",
        "langevin_step",
    }
