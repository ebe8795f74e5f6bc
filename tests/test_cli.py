"""The gen-ext command: info, check and bench run and report what they should."""

import json

import pytest

from gen_ext import _extension
from gen_ext.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "compiled kernels: CPU" in out and "CPU kernels in use:" in out


def test_check_passes_on_cpu(capsys):
    assert main(["check", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert (
        "discretized_logistic_mixture_nll" in out and "discretized_logistic_mixture_sample" in out
    )
    assert "FAIL" not in out and " 0 failed" in out


def test_check_fails_on_a_wrong_kernel(monkeypatch, capsys):
    """The check can fail: a kernel that is off by a little is reported and exits non-zero."""
    import gen_ext.check as check
    from gen_ext import ops

    real = ops.discretized_logistic_mixture_nll
    monkeypatch.setattr(
        check.ops,
        "discretized_logistic_mixture_nll",
        lambda x, p, n=256: real(x, p, n) * (1 + 1e-4),
    )
    assert main(["check", "--ops", "discretized_logistic_mixture_nll"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_unavailable_device_is_a_clear_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--device", "cuda"])
    assert exit_.value.code == 2
    assert "--device: cuda: CUDA is not available" in capsys.readouterr().err


def test_bench_quick_writes_results(tmp_path, capfd, monkeypatch):
    from gen_ext.bench import runner

    # a machine loaded above the benchmark's threads before and after the run
    monkeypatch.setattr(runner, "load_average", lambda: 9.0)
    # the command points torch.compile at a cache folder of its own: restored after the test
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    out = tmp_path / "bench"
    assert (
        main(
            ["bench", "--quick", "--ops", "discretized_logistic_mixture_sample", "--out", str(out)]
        )
        == 0
    )
    data = json.loads((out / "bench.json").read_text())
    impls = {r["impl"] for r in data["rows"]}
    assert impls == {"fused", "eager", "compiled"}
    assert all(r["full_ms"] > 0 for r in data["rows"])
    assert data["summary"][0]["speedup_vs_eager"] > 0
    assert "| discretized_logistic_mixture_sample | fused |" in (out / "bench.md").read_text()
    png = (out / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width <= 1600 and height <= 1200  # viewable at normal size, not a 35-inch strip
    assert data["conditions"]["load_1min"] == "9.0 before, 9.0 after"
    printed = capfd.readouterr()
    assert "warning: the machine was busy during this benchmark" in printed.out
    # the profiler's and torch's native log lines stay out of the output (on the file
    # descriptors, where native code writes them)
    for noise in (
        "profiler_start",
        "profiler_stop",
        "Memory block of unknown size",
        "gpuGetDeviceCount",
        "No CUDA runtime is found",
    ):
        assert noise not in printed.out + printed.err


def test_missing_extension_message_says_how_to_build(monkeypatch):
    monkeypatch.setattr(
        _extension,
        "build_info",
        lambda: {
            "torch": "0.0.0",
            "python": "3",
            "cuda": None,
            "cuda_archs": None,
            "cpu_kernels": ["default"],
        },
    )
    reason = _extension._try_load()
    assert "built for torch 0.0.0" in reason and "pip install --no-build-isolation" in reason
    monkeypatch.setattr(_extension, "build_info", lambda: None)
    assert "has not been built" in _extension._try_load()
    monkeypatch.setattr(_extension, "_failure", "gen_ext._C has not been built.")
    with pytest.raises(_extension.ExtensionNotAvailable, match="has not been built"):
        from gen_ext import ops
        from gen_ext.testing import make_dlm_inputs

        ops.discretized_logistic_mixture_nll(*make_dlm_inputs(1, 3, 1, (1, 1)))
