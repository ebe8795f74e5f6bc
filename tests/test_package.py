"""The package as a user meets it: one version string, and `import gen_ext` giving every public
subpackage without a cycle."""

import subprocess
import sys
from pathlib import Path

import pytest

import gen_ext

ROOT = Path(__file__).resolve().parents[1]


def test_pip_reads_the_version_from_the_package():
    """pip's version (pyproject.toml) and gen_ext.__version__ are one string: the pyproject
    declares it dynamic and setuptools resolves it to gen_ext.__version__."""
    import tomllib
    from setuptools.config.expand import read_attr

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in config["project"]["dynamic"] and "version" not in config["project"]
    attr = config["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert read_attr(attr, root_dir=ROOT) == gen_ext.__version__  # as setuptools reads it


@pytest.mark.parametrize(
    "first",
    [
        "gen_ext",
        "gen_ext.models",
        "gen_ext.data",
        "gen_ext.metrics",
        "gen_ext.nn",
        "gen_ext.train",
        "gen_ext.cli",
    ],
)
def test_one_import_exposes_the_subpackages_in_any_order(first):
    """In a fresh interpreter, importing any module first (a cycle breaks some order) and then
    `gen_ext` gives gen_ext.models, .data and .metrics without importing them by name."""
    code = (
        f"import {first}, gen_ext\n"
        "print(gen_ext.models.MODELS['vae'].__name__, gen_ext.data.load.__name__, "
        "gen_ext.metrics.bits_per_dim.__name__, gen_ext.__version__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["VAE", "load", "bits_per_dim", gen_ext.__version__]


def test_portable_kernels_on_an_x86_build_warn_unless_asked_for():
    from gen_ext._extension import portable_kernels_warning

    x86 = ["default", "avx2", "avx512"]
    assert "no AVX2" in portable_kernels_warning("default", x86, None)
    assert portable_kernels_warning("default", x86, "default") is None  # asked for
    assert portable_kernels_warning("avx2", x86, None) is None
    assert portable_kernels_warning("default", ["default"], None) is None  # ARM: the only build
