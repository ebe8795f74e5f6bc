"""build_config.py: finding the CUDA toolkit and deciding what setup.py builds, on fake toolkit
folders (no compiler runs)."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_config", ROOT / "build_config.py")
build_config = importlib.util.module_from_spec(_spec)
sys.modules["build_config"] = build_config  # dataclasses look their module up there
_spec.loader.exec_module(build_config)
find = build_config.find_cuda_toolkit
decide = build_config.decide_cuda


def make_toolkit(folder: Path, complete: bool = True) -> Path:
    """A folder shaped like a CUDA toolkit: bin/nvcc, include/cuda_runtime.h, lib64/libcudart.so
    (the last left out when not complete)."""
    (folder / "bin").mkdir(parents=True)
    (folder / "include").mkdir()
    (folder / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (folder / "bin" / "nvcc").chmod(0o755)
    (folder / "include" / "cuda_runtime.h").write_text("")
    if complete:
        (folder / "lib64").mkdir()
        (folder / "lib64" / "libcudart.so").write_text("")
    return folder


def no_nvcc(_name):
    return None


def must_not_ask(_nvcc):
    raise AssertionError("nvcc should not be run when its folder is already a toolkit")


def test_cuda_home_is_used_when_it_is_a_toolkit(tmp_path):
    home = make_toolkit(tmp_path / "cuda")
    found = find({"CUDA_HOME": str(home)}, which=no_nvcc, default=tmp_path / "none")
    assert found.home == home and "CUDA_HOME" in found.found_by


def test_cuda_path_is_used_when_cuda_home_is_unset(tmp_path):
    home = make_toolkit(tmp_path / "cuda")
    found = find({"CUDA_PATH": str(home)}, which=no_nvcc, default=tmp_path / "none")
    assert found.home == home and "CUDA_PATH" in found.found_by


def test_a_wrong_cuda_home_is_reported_not_overridden(tmp_path):
    """CUDA_HOME=/usr/local (the guess from a wrapper in /usr/local/bin) lacks libcudart: report
    it, even though a good toolkit sits at the default place."""
    wrong = make_toolkit(tmp_path / "usr-local", complete=False)
    good = make_toolkit(tmp_path / "cuda")
    found = find({"CUDA_HOME": str(wrong)}, which=no_nvcc, default=good)
    assert found.home is None
    assert found.rejected == [
        (f"CUDA_HOME={wrong}: {wrong} is not a CUDA toolkit: it has no lib64/libcudart.so")
    ]


def test_nvcc_symlink_is_resolved_to_its_toolkit(tmp_path):
    home = make_toolkit(tmp_path / "cuda-13.0")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvcc").symlink_to(home / "bin" / "nvcc")
    found = find(
        {},
        which=lambda _: str(tmp_path / "bin" / "nvcc"),
        ask_nvcc=must_not_ask,
        default=tmp_path / "none",
    )
    assert found.home == home and "nvcc on the PATH" in found.found_by


def test_nvcc_wrapper_script_is_seen_through(tmp_path):
    """/usr/local/bin/nvcc is a script that execs the real nvcc: its parent folder (/usr/local)
    is rejected and the folder nvcc itself reports is taken."""
    home = make_toolkit(tmp_path / "cuda-13.0")
    # the real nvcc prints its folder under --dryrun, as nvcc does
    (home / "bin" / "nvcc").write_text(f"#!/bin/sh\necho '#$ _HERE_={home}/bin' >&2\n")
    wrapper_dir = tmp_path / "usr-local"
    (wrapper_dir / "bin").mkdir(parents=True)
    wrapper = wrapper_dir / "bin" / "nvcc"
    wrapper.write_text(f'#!/bin/sh\nexec {home}/bin/nvcc "$@"\n')
    wrapper.chmod(0o755)
    found = find({}, which=lambda _: str(wrapper), default=tmp_path / "none")
    assert found.home == home.resolve()
    assert found.rejected == [
        (
            f"nvcc on the PATH ({wrapper} -> {wrapper}): {wrapper_dir} is not "
            "a CUDA toolkit: it has no include/cuda_runtime.h or "
            "lib64/libcudart.so"
        )
    ]


def test_default_folder_is_the_last_resort(tmp_path):
    home = make_toolkit(tmp_path / "cuda")
    assert find({}, which=no_nvcc, default=home).home == home
    found = find({}, which=no_nvcc, default=tmp_path / "none")
    assert found.home is None and len(found.rejected) == 1 and "none" in found.rejected[0]


def toolkit(tmp_path):
    return find({"CUDA_HOME": str(make_toolkit(tmp_path / "cuda"))}, which=no_nvcc)


NO_TOOLKIT = build_config.Toolkit(None, rejected=["the default /x: no include/cuda_runtime.h"])


def test_no_gpu_builds_cpu_kernels_only_unless_asked(tmp_path):
    tk = toolkit(tmp_path)
    cuda, why = decide("", "13.0", [], tk)
    assert not cuda and "no GPU" in why and "GEN_EXT_CUDA=1" in why
    assert decide("1", "13.0", [], tk)[0]


def test_gpu_present_builds_cuda_kernels(tmp_path):
    tk = toolkit(tmp_path)
    assert decide("", "13.0", ["9.0"], tk)[0]
    assert not decide("0", "13.0", ["9.0"], tk)[0]


def test_gpu_without_toolkit_falls_back_to_cpu_and_says_why():
    cuda, why = decide("", "13.0", ["9.0"], NO_TOOLKIT)
    assert not cuda
    assert "only the CPU kernels" in why and "no CUDA toolkit found" in why and "CUDA_HOME" in why


@pytest.mark.parametrize(
    "torch_cuda, tk, blocker",
    [
        ("13.0", NO_TOOLKIT, "no CUDA toolkit found (the default /x"),
        (None, None, "CPU-only build"),
    ],
)
def test_asked_for_cuda_that_cannot_build_fails_with_the_fix(tmp_path, torch_cuda, tk, blocker):
    with pytest.raises(build_config.BuildConfigError) as err:
        decide("1", torch_cuda, [], tk or toolkit(tmp_path))
    assert blocker in str(err.value) and "Set CUDA_HOME to the toolkit folder" in str(err.value)


def test_bad_setting_is_refused():
    with pytest.raises(build_config.BuildConfigError, match="GEN_EXT_CUDA must be 0 or 1"):
        decide("yes", "13.0", [], NO_TOOLKIT)


def test_archs_come_from_the_setting_then_the_gpus_then_the_default():
    assert build_config.cuda_archs({"TORCH_CUDA_ARCH_LIST": "9.0"}, ["8.6"]) == "9.0"
    assert build_config.cuda_archs({}, ["8.6", "8.6", "9.0"]) == "8.6;9.0"
    assert build_config.cuda_archs({}, []) == build_config.DEFAULT_CUDA_ARCHS
    assert build_config.arch_count(build_config.DEFAULT_CUDA_ARCHS) == 5


def test_estimate_grows_with_cuda_work_and_shrinks_with_jobs():
    cpu = build_config.estimate_seconds(0, 0, 2)
    assert build_config.estimate_seconds(3, 5, 2) > build_config.estimate_seconds(3, 1, 2) > cpu
    assert build_config.estimate_seconds(0, 0, 4) == pytest.approx(cpu / 2)


def test_setup_py_fails_at_once_when_cuda_cannot_be_built(tmp_path):
    """GEN_EXT_CUDA=1 with a CUDA_HOME that lacks libcudart stops before compiling anything, with
    the fix, instead of failing at the link step minutes later."""
    wrong = make_toolkit(tmp_path / "usr-local", complete=False)
    env = {**os.environ, "GEN_EXT_CUDA": "1", "CUDA_HOME": str(wrong)}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "setup.py"), "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert f"CUDA_HOME={wrong}: {wrong} is not a CUDA toolkit" in done.stderr
    assert "Set CUDA_HOME to the toolkit folder" in done.stderr
    assert time.monotonic() - start < 120  # the time to import torch, not to compile


def test_every_isa_file_named_in_the_build_exists():
    for source in build_config.ISA_FLAGS:
        assert (build_config.ROOT / source).is_file(), source
