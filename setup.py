"""Builds gen_ext._C: the C++ CPU kernels always, the CUDA kernels when they can be compiled.

GEN_EXT_CUDA=0 forces a CPU-only build, GEN_EXT_CUDA=1 demands the CUDA kernels (and fails if
nvcc or a CUDA build of torch is missing); unset, CUDA is built whenever both are present. No GPU
is needed to compile. TORCH_CUDA_ARCH_LIST is respected; DEFAULT_CUDA_ARCHS applies otherwise.
Build against the installed torch: pip install --no-build-isolation .
"""

import os
import platform
import shutil
import sys
from pathlib import Path

from setuptools import find_packages, setup
from torch.utils import cpp_extension

ROOT = Path(__file__).parent.resolve()
CSRC = ROOT / "csrc"
# Architectures nvcc 13 supports that people train on, plus PTX for newer ones.
DEFAULT_CUDA_ARCHS = "7.5;8.0;8.6;8.9;9.0+PTX"


def want_cuda() -> bool:
    import torch

    setting = os.environ.get("GEN_EXT_CUDA", "").strip()
    possible = torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None
    if setting == "0":
        return False
    if setting == "1":
        if not possible:
            sys.exit(
                "GEN_EXT_CUDA=1 but CUDA kernels cannot be built: "
                f"torch.version.cuda={torch.version.cuda}, CUDA_HOME={cpp_extension.CUDA_HOME}. "
                "Install a CUDA build of torch and set CUDA_HOME to the toolkit "
                "(e.g. /usr/local/cuda)."
            )
        return True
    if setting:
        sys.exit(f"GEN_EXT_CUDA must be 0 or 1 when set, got {setting!r}")
    return possible


def use_ccache() -> None:
    """Route compilers through ccache when it is installed and nothing else was chosen."""
    if shutil.which("ccache") is None:
        return
    os.environ.setdefault("CXX", "ccache g++")
    os.environ.setdefault("CC", "ccache gcc")
    if shutil.which("nvcc") or cpp_extension.CUDA_HOME:
        nvcc = os.path.join(cpp_extension.CUDA_HOME or "", "bin", "nvcc")
        os.environ.setdefault("PYTORCH_NVCC", f"ccache {nvcc}")


def write_build_info(cuda: bool) -> None:
    """Records what this build was made against, so the loader can explain a mismatch."""
    import torch

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cuda_archs": os.environ.get("TORCH_CUDA_ARCH_LIST") if cuda else None,
        "python": platform.python_version(),
        "cpu_kernels": (
            ["default", "avx2", "avx512"]
            if platform.machine() in ("x86_64", "AMD64")
            else ["default"]
        ),
    }
    (ROOT / "gen_ext" / "_build_info.py").write_text(
        '"""Written by setup.py at build time; describes the compiled gen_ext._C."""\n\n'
        f"BUILD_INFO = {info!r}\n"
    )


def extension():
    cuda = want_cuda()
    if cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
    use_ccache()
    write_build_info(cuda)
    sources = [str(p.relative_to(ROOT)) for p in sorted(CSRC.glob("*.cpp"))]
    sources += [str(p.relative_to(ROOT)) for p in sorted((CSRC / "cpu").glob("*.cpp"))]
    # -ffp-contract=fast: ISO C++ mode (which torch's -std flag selects) turns off fusing a*b+c
    # into an FMA, the kernels' most common pattern
    # -fopenmp: at::parallel_for is inline and runs serially in code compiled without it (torch's
    # own libgomp, already loaded by torch, then serves the extension too)
    cxx_flags = ["-O3", "-fvisibility=hidden", "-ffp-contract=fast", "-fopenmp"]
    link_flags = ["-fopenmp"]
    include_dirs = [str(CSRC / "include")]
    if not cuda:
        return cpp_extension.CppExtension(
            "gen_ext._C", sources, include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags,
        )
    sources += [str(p.relative_to(ROOT)) for p in sorted((CSRC / "cuda").glob("*.cu"))]
    return cpp_extension.CUDAExtension(
        "gen_ext._C",
        sources,
        include_dirs=include_dirs,
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-Xcompiler", "-fopenmp"]},
        extra_link_args=link_flags,
    )


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension},
    # the Triton kernels live in the top-level kernels/ folder and install as gen_ext.kernels
    packages=find_packages(include=["gen_ext", "gen_ext.*"]) + ["gen_ext.kernels"],
    package_dir={"gen_ext.kernels": "kernels"},
)
