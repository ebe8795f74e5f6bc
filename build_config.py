"""What setup.py builds, decided before any compiler runs: the CUDA toolkit (if any), whether the
CUDA kernels are built, for which architectures, and about how long the build will take.

Kept apart from setup.py so that the decisions can be unit-tested (tests/test_build_config.py)
and printed before a build (`python build_config.py`, which the Makefile runs).

The CUDA kernels are built when a GPU is present, or when asked with GEN_EXT_CUDA=1;
GEN_EXT_CUDA=0 never builds them. Building them without a usable toolkit either fails at once
with the fix (asked for) or builds the CPU kernels alone and says why (a GPU was present).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parent.resolve()
CSRC = ROOT / "csrc"
# Architectures people train on that nvcc 13 supports, plus PTX for newer ones: the default for a
# CUDA build asked for on a machine without a GPU (a package built to be copied elsewhere).
DEFAULT_CUDA_ARCHS = "7.5;8.0;8.6;8.9;9.0+PTX"
# The files a CUDA toolkit folder must have for the extension to compile and link against it.
TOOLKIT_FILES = ("include/cuda_runtime.h", "lib64/libcudart.so")

# Processor seconds (one core) of the build on the 2-core development machine (AMD EPYC at
# 2.6 GHz), without ccache, for printing an estimate: the C++ CPU kernels (every .cpp under csrc/,
# three instruction sets; 16 files) took 154 s and 295 s of processor time on its two cores in a
# fresh clone's `make demo` (2026-12-03, load below 2.6); in a CUDA build
# for one architecture (under a load average of 15 to 20) each .cu file took 3.1 times as long as
# the average .cpp file, so about 60 s of one core per .cu file and architecture.
CPU_BUILD_CORE_SECONDS = 300.0
CUDA_FILE_ARCH_CORE_SECONDS = 60.0
MEASURED_ON = "a 2-core AMD EPYC at 2.6 GHz"

# The instruction-set builds of the CPU kernels and the compiler flags of each (x86-64 only). Each
# file is compiled with its own flags, as torch compiles its own per-ISA kernels: a target pragma
# inside the file instead compiled with GCC 12 but not with GCC 13, whose libstdc++ inlines
# always_inline functions across the pragma's target boundary and refuses ("target specific
# option mismatch"; seen building against torch 2.11 on the GPU machine).
ISA_FLAGS = {
    "csrc/cpu/kernels_avx2.cpp": ["-mavx2", "-mfma", "-mf16c"],
    "csrc/cpu/kernels_avx512.cpp": [
        "-mavx512f",
        "-mavx512bw",
        "-mavx512vl",
        "-mavx512dq",
        "-mavx2",
        "-mfma",
        "-mf16c",
    ],
}


class BuildConfigError(Exception):
    """The build cannot go as asked; the message says why and what to change."""


@dataclass
class Toolkit:
    """A CUDA toolkit folder, or None with the reasons the candidates were rejected."""

    home: Path | None
    found_by: str = ""
    rejected: list[str] = field(default_factory=list)


def toolkit_problem(home: Path) -> str | None:
    """None when `home` is a CUDA toolkit the extension can compile and link against, else what
    it lacks."""
    missing = [f for f in TOOLKIT_FILES if not (home / f).exists()]
    if missing:
        return f"{home} is not a CUDA toolkit: it has no {' or '.join(missing)}"
    return None


def _nvcc_reported_home(nvcc: str) -> Path | None:
    """Asks nvcc where it really lives: `nvcc --dryrun` prints `_HERE_=<its bin folder>`, which
    sees through shell wrappers that `exec` the real nvcc from elsewhere."""
    try:
        done = subprocess.run(
            [nvcc, "--dryrun", "-c", "-x", "cu", os.devnull],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"^#\$ _HERE_=(.+)$", done.stdout + done.stderr, re.MULTILINE)
    return Path(match.group(1).strip()).resolve().parent if match else None


def _nvcc_homes(nvcc: str, ask_nvcc) -> list[tuple[Path, str]]:
    """Candidate toolkit folders for an nvcc on the PATH: through its symlinks, then (when that
    is not a toolkit, e.g. /usr/local/bin/nvcc being a wrapper script) as nvcc reports itself."""
    real = Path(os.path.realpath(nvcc))
    candidates = [(real.parent.parent, f"nvcc on the PATH ({nvcc} -> {real})")]
    if toolkit_problem(real.parent.parent) is not None:
        reported = ask_nvcc(nvcc)
        if reported is not None:
            candidates.append(
                (reported, f"nvcc on the PATH ({nvcc}, which runs {reported}/bin/nvcc)")
            )
    return candidates


def find_cuda_toolkit(
    environ=None,
    which=shutil.which,
    ask_nvcc=_nvcc_reported_home,
    default: Path = Path("/usr/local/cuda"),
) -> Toolkit:
    """The CUDA toolkit to build with: CUDA_HOME or CUDA_PATH when set (and then only that one:
    a wrong setting is reported rather than overridden), else the folder of the real nvcc on the
    PATH (symlinks and wrappers resolved), else /usr/local/cuda; each verified to have
    include/cuda_runtime.h and lib64/libcudart.so."""
    environ = os.environ if environ is None else environ
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if environ.get(var):
            home = Path(environ[var])
            problem = toolkit_problem(home)
            if problem is None:
                return Toolkit(home, f"{var}={home}")
            return Toolkit(None, rejected=[f"{var}={home}: {problem}"])
    candidates = []
    nvcc = which("nvcc")
    if nvcc:
        candidates += _nvcc_homes(nvcc, ask_nvcc)
    candidates.append((default, f"the default {default}"))
    rejected = []
    for home, found_by in candidates:
        problem = toolkit_problem(home)
        if problem is None:
            return Toolkit(home, found_by, rejected)
        rejected.append(f"{found_by}: {problem}")
    return Toolkit(None, rejected=rejected)


def decide_cuda(
    setting: str, torch_cuda: str | None, gpu_archs: list[str], toolkit: Toolkit
) -> tuple[bool, str]:
    """(build the CUDA kernels?, why), from GEN_EXT_CUDA, torch's CUDA version, the archs of the
    GPUs present and the toolkit found. Raises BuildConfigError where GEN_EXT_CUDA asks for
    something impossible, before anything is compiled."""
    setting = setting.strip()
    if setting not in ("", "0", "1"):
        raise BuildConfigError(f"GEN_EXT_CUDA must be 0 or 1 when set, got {setting!r}")
    if setting == "0":
        return False, "GEN_EXT_CUDA=0"
    blockers = []
    if torch_cuda is None:
        blockers.append("the installed torch is a CPU-only build (torch.version.cuda is None)")
    if toolkit.home is None:
        blockers.append("no CUDA toolkit found (" + "; ".join(toolkit.rejected) + ")")
    fix = (
        "Set CUDA_HOME to the toolkit folder (the one holding bin/nvcc, "
        "include/cuda_runtime.h and lib64/libcudart.so, e.g. CUDA_HOME=/usr/local/cuda), "
        "install a CUDA build of torch, or build the CPU kernels alone with GEN_EXT_CUDA=0."
    )
    if setting == "1":
        if blockers:
            raise BuildConfigError(
                "GEN_EXT_CUDA=1 but the CUDA kernels cannot be built: "
                + "; ".join(blockers)
                + ". "
                + fix
            )
        return True, f"GEN_EXT_CUDA=1, toolkit from {toolkit.found_by}"
    if not gpu_archs:
        return False, "no GPU on this machine; GEN_EXT_CUDA=1 builds them anyway"
    if blockers:
        return False, (
            "a GPU is present but the CUDA kernels cannot be built, so only the CPU "
            "kernels are: " + "; ".join(blockers) + ". " + fix
        )
    return True, f"GPU present (sm {', '.join(gpu_archs)}), toolkit from {toolkit.found_by}"


def cuda_archs(environ, gpu_archs: list[str]) -> str:
    """TORCH_CUDA_ARCH_LIST when set; else the GPUs present (one architecture compiles several
    times faster than the five of a distributable build); else DEFAULT_CUDA_ARCHS."""
    if environ.get("TORCH_CUDA_ARCH_LIST"):
        return environ["TORCH_CUDA_ARCH_LIST"]
    if gpu_archs:
        return ";".join(sorted(set(gpu_archs)))
    return DEFAULT_CUDA_ARCHS


def arch_count(archs: str) -> int:
    return len([a for a in re.split(r"[;\s]+", archs) if a])


def build_jobs(environ) -> int:
    """Parallel compile jobs: MAX_JOBS, else torch's default of one per core."""
    if environ.get("MAX_JOBS", "").isdigit():
        return max(1, int(environ["MAX_JOBS"]))
    return os.cpu_count() or 1


def estimate_seconds(cuda_files: int, archs: int, jobs: int) -> float:
    """Wall-clock seconds of a build without ccache hits on an idle machine like MEASURED_ON."""
    work = CPU_BUILD_CORE_SECONDS + cuda_files * archs * CUDA_FILE_ARCH_CORE_SECONDS
    return work / max(1, jobs)


def _fmt_duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


@dataclass
class BuildPlan:
    cuda: bool
    reason: str
    cpp_sources: list[str]
    cu_sources: list[str]
    toolkit: Toolkit
    archs: str | None
    jobs: int
    ccache: str | None

    def describe(self) -> str:
        """What will be compiled, why, and about how long it takes; one line per fact."""
        what = f"C++ CPU kernels ({len(self.cpp_sources)} files, AVX-512/AVX2/portable)"
        if self.cuda:
            what += (
                f" + CUDA kernels ({len(self.cu_sources)} .cu files for archs {self.archs},"
                f" nvcc in {self.toolkit.home})"
            )
        seconds = estimate_seconds(
            len(self.cu_sources) if self.cuda else 0,
            arch_count(self.archs or "") if self.cuda else 0,
            self.jobs,
        )
        cache = (
            f"through {self.ccache} (rebuilds of unchanged files are near instant)"
            if self.ccache
            else "no ccache (install it to make rebuilds near instant)"
        )
        return "\n".join(
            [
                f"gen_ext build: {what}",
                f"gen_ext build: CUDA {'on' if self.cuda else 'off'}: {self.reason}",
                (
                    f"gen_ext build: {self.jobs} parallel jobs, {cache}; "
                    f"about {_fmt_duration(seconds)} "
                    f"(on {MEASURED_ON}: {_fmt_duration(CPU_BUILD_CORE_SECONDS / 2)} for the CPU "
                    f"kernels, {_fmt_duration(CUDA_FILE_ARCH_CORE_SECONDS / 2)} more per .cu file "
                    "and architecture)"
                ),
            ]
        )


def _relative(paths) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in sorted(paths)]


def gpu_archs_present() -> list[str]:
    """Compute capabilities of the GPUs torch can see, as TORCH_CUDA_ARCH_LIST spells them."""
    import torch

    if torch.version.cuda is None or not torch.cuda.is_available():
        return []
    return [
        ".".join(map(str, torch.cuda.get_device_capability(i)))
        for i in range(torch.cuda.device_count())
    ]


def plan(environ=None) -> BuildPlan:
    """The build this machine and environment call for. Raises BuildConfigError at once when
    GEN_EXT_CUDA=1 cannot be honoured."""
    import torch

    environ = os.environ if environ is None else environ
    toolkit = find_cuda_toolkit(environ)
    gpus = gpu_archs_present()
    cuda, reason = decide_cuda(environ.get("GEN_EXT_CUDA", ""), torch.version.cuda, gpus, toolkit)
    return BuildPlan(
        cuda=cuda,
        reason=reason,
        cpp_sources=_relative(CSRC.glob("*.cpp")) + _relative((CSRC / "cpu").glob("*.cpp")),
        cu_sources=_relative((CSRC / "cuda").glob("*.cu")),
        toolkit=toolkit,
        archs=cuda_archs(environ, gpus) if cuda else None,
        jobs=build_jobs(environ),
        ccache=shutil.which("ccache"),
    )


if __name__ == "__main__":
    try:
        print(plan().describe())
    except BuildConfigError as err:
        sys.exit(f"gen_ext build: {err}")
