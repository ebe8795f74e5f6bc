"""gen-ext bench's report: the conditions it names, the busy-machine warning and the figure."""

import shutil
import subprocess

import pytest
import torch

from gen_ext.bench import runner


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
