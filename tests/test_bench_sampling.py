"""gen-ext bench --suite sampling: the cached samplers against the naive ones (at tiny sizes; the
speeds themselves are measured by the benchmark, never asserted here)."""

import json

import pytest

from gen_ext.bench import sampling
from gen_ext.cli import main
from gen_ext.models import MODELS


def test_every_model_with_a_cached_sampler_is_benchmarked():
    fast = {name for name, cls in MODELS.items() if name in sampling.TINY_SIZES}
    assert set(sampling.SIZES) == set(sampling.TINY_SIZES) == fast
    for name in sampling.TINY_SIZES:
        model = MODELS[name](**sampling.TINY_SIZES[name].config)
        assert model.has_fast_sampler, name
    others = [n for n in MODELS if n not in sampling.SIZES and MODELS[n]().can_sample]
    assert all(not MODELS[n]().has_fast_sampler for n in others), others


@pytest.mark.parametrize("name", sorted(sampling.TINY_SIZES))
def test_measure_reports_both_rates(name):
    row = sampling.measure(name, sampling.TINY_SIZES, quick=True)
    assert row.naive_samples_per_s > 0 and row.fast_samples_per_s > 0
    assert row.speedup == pytest.approx(row.fast_samples_per_s / row.naive_samples_per_s)


def test_cli_writes_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sampling, "SIZES", sampling.TINY_SIZES)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)  # set by the command
    assert main(["bench", "--suite", "sampling", "--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| wavenet | tiny |" in printed and "fast / naive" in printed
    saved = json.loads((tmp_path / "sampling.json").read_text())
    assert [r["model"] for r in saved["rows"]] == list(sampling.TINY_SIZES)
    assert "processor" in saved["conditions"]
    assert (tmp_path / "sampling.md").read_text().startswith("| model |")
