"""gen-ext bench keeps torch.compile's cache apart per CPU capability (gen_ext/bench/
inductor_cache.py): a graph compiled for AVX2 and reused at AVX-512 aborted the process."""

import os
import subprocess
import sys

import pytest
import torch

from gen_ext.bench import inductor_cache


def test_the_folder_is_this_capabilitys_below_inductors_default(monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    path = inductor_cache.keep_inductor_cache_per_capability()
    capability = torch.backends.cpu.get_cpu_capability().lower()
    assert path == os.path.join(inductor_cache.default_cache_dir(), f"cpu_{capability}")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == path


def test_inductors_own_default_is_replaced_and_a_users_folder_kept(monkeypatch, tmp_path):
    # inductor writes its default into the variable on first use: not a choice of the user's
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", inductor_cache.default_cache_dir())
    assert inductor_cache.keep_inductor_cache_per_capability().endswith(
        f"cpu_{torch.backends.cpu.get_cpu_capability().lower()}"
    )
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    assert inductor_cache.keep_inductor_cache_per_capability() == str(tmp_path)


def test_a_lower_capability_gets_another_folder():
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX2"):
        pytest.skip("no AVX2 on this processor to hold ATen at")
    code = "from gen_ext.bench import inductor_cache as c; print(c.cache_dir_for_capability())"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    lower = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert lower.endswith("cpu_default")
    assert lower != inductor_cache.cache_dir_for_capability()
