"""The scripts under benchmarks/ run and print what their docstrings promise (one repetition:
their numbers are not checked here, only that they come)."""

import importlib.util
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dlm_conditions_prints_every_build_and_thread_count(capsys):
    script = load("dlm_conditions")
    isas = script.supported_isas()
    assert "default" in isas  # the portable build runs everywhere
    script.main(["1"])
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (.+?) \| (\d+) \| ([\d.]+) \| ([\d.]+) \|", out, re.M)
    names = [f"fused ({isa})" for isa in isas] + ["eager reference", "eager lean formula"]
    assert sorted({name for name, *_ in rows}) == sorted(names)
    # each at 1 thread, and at the process's count where that is more
    assert all(sum(r[0] == name for r in rows) in (1, 2) for name in names)
    assert all(float(ratio) == 1.0 for name, _, _, ratio in rows if name == f"fused ({isas[0]})")
    assert "MiB (the parameter gradient's size)" in out
