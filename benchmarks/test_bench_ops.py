"""pytest-benchmark suite over the same cases as `gen-ext bench` (gen_ext/bench/cases.py).

    pytest benchmarks --benchmark-enable --benchmark-group-by=param:op

Each op is timed as the fused kernel, the eager reference and torch.compile(reference), one
forward+backward step per round. `gen-ext bench` adds peak memory and writes the tables."""

import pytest
import torch

from gen_ext.bench.cases import CASES, IMPLEMENTATIONS


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("op", sorted(CASES))
def test_fwd_bwd(benchmark, op, impl):
    case = CASES[op](torch.device("cpu"))
    step = case.make[impl]()
    step()  # compile / warm up outside the timing
    benchmark.extra_info["shape"] = case.shape
    benchmark(step)
