"""Builds gen_ext._C: the C++ CPU kernels always; the CUDA kernels when a GPU is present or when
asked with GEN_EXT_CUDA=1 (GEN_EXT_CUDA=0: never). build_config.py decides, finds the CUDA
toolkit (CUDA_HOME/CUDA_PATH, the real nvcc behind the PATH's, /usr/local/cuda) and says what is
built and about how long it takes before compiling. No GPU is needed to compile.
Build against the installed torch: pip install --no-build-isolation .
"""

import copy
import logging
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent.resolve()
sys.path.insert(0, str(ROOT))  # build_config.py, beside this file (PEP 517 builds omit it)

import build_config  # noqa: E402  (found through the path entry above)


def say(message: str) -> None:
    # stderr, unbuffered: shown by `setup.py build_ext` and `pip install -v` as it happens
    print(message, file=sys.stderr, flush=True)


def import_cpp_extension(cuda_home):
    """torch.utils.cpp_extension guesses CUDA_HOME once, when imported (from the first nvcc on
    the PATH: /usr/local for a wrapper script in /usr/local/bin) and logs the guess; hand it the
    toolkit build_config verified instead, and keep its guess out of the build log."""
    if cuda_home is not None:
        os.environ["CUDA_HOME"] = str(cuda_home)
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        log.setLevel(level)
    cpp_extension.CUDA_HOME = str(cuda_home) if cuda_home is not None else None
    return cpp_extension


def use_ccache(plan) -> None:
    """Route compilers through ccache when it is installed and nothing else was chosen: its
    g++ link folder where the package made one (torch checks CXX is one program it can run and
    that reports itself as gcc), else `ccache g++`."""
    if plan.ccache is None:
        return
    for links in ("/usr/lib/ccache", "/usr/lib64/ccache", "/usr/local/opt/ccache/libexec"):
        if os.path.exists(f"{links}/g++"):
            os.environ.setdefault("CXX", f"{links}/g++")
            os.environ.setdefault("CC", f"{links}/gcc")
    os.environ.setdefault("CXX", f"{plan.ccache} g++")
    os.environ.setdefault("CC", f"{plan.ccache} gcc")
    if plan.cuda:
        os.environ.setdefault("PYTORCH_NVCC", f"{plan.ccache} {plan.toolkit.home}/bin/nvcc")


def write_build_info(plan) -> None:
    """Records what this build was made against, so the loader can explain a mismatch and
    `gen-ext info` can say why CUDA kernels are absent."""
    import torch

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda if plan.cuda else None,
        "cuda_archs": plan.archs,
        "cuda_reason": plan.reason,
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


def extension(plan, cpp_extension):
    # -ffp-contract=fast: ISO C++ mode (which torch's -std flag selects) turns off fusing a*b+c
    # into an FMA, the kernels' most common pattern
    # -fopenmp: at::parallel_for is inline and runs serially in code compiled without it (torch's
    # own libgomp, already loaded by torch, then serves the extension too)
    cxx_flags = ["-O3", "-fvisibility=hidden", "-ffp-contract=fast", "-fopenmp"]
    link_flags = ["-fopenmp"]
    include_dirs = [str(build_config.CSRC / "include")]
    if not plan.cuda:
        return cpp_extension.CppExtension(
            "gen_ext._C",
            plan.cpp_sources,
            include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=link_flags,
        )
    os.environ["TORCH_CUDA_ARCH_LIST"] = plan.archs
    return cpp_extension.CUDAExtension(
        "gen_ext._C",
        plan.cpp_sources + plan.cu_sources,
        include_dirs=include_dirs,
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-Xcompiler", "-fopenmp"]},
        extra_link_args=link_flags,
    )


def timed_build_ext(base):
    class TimedBuildExt(base):
        """Says what it compiles and why, about how long that takes, then how long it took."""

        def build_extensions(self):
            # here rather than when setup.py starts: pip runs setup.py three times per install
            say(PLAN.describe())
            say("gen_ext build: compiling ...")
            start = time.monotonic()
            super().build_extensions()
            say(f"gen_ext build: gen_ext._C built in {time.monotonic() - start:.0f} s")

        def build_extension(self, ext):
            # here, after BuildExtension has added its flags to ext.extra_compile_args
            isa_sources = [s for s in ext.sources if s in build_config.ISA_FLAGS]
            if isa_sources and platform.machine() in ("x86_64", "AMD64"):
                ext.sources = [s for s in ext.sources if s not in isa_sources]
                objects = self.compile_isa_sources(ext, isa_sources)
                # linked after every other object: where an inline function (of libstdc++, of
                # torch) is compiled in several files, the linker keeps the first copy, and that
                # must be one built for the baseline processor, not with AVX-512
                ext.extra_objects = list(ext.extra_objects or []) + objects
                ext.depends = list(ext.depends or []) + isa_sources + objects
            super().build_extension(ext)

        def compile_isa_sources(self, ext, sources) -> list[str]:
            """Each instruction-set file compiled with its own -m flags, the files side by side
            (each in its own folder: the ninja compile writes one build file per folder)."""

            def compile_one(source):
                args = copy.deepcopy(ext.extra_compile_args)
                flags = build_config.ISA_FLAGS[source]
                if isinstance(args, dict):
                    args["cxx"] = list(args.get("cxx", [])) + flags
                else:
                    args = list(args or []) + flags
                return self.compiler.compile(
                    [source],
                    output_dir=os.path.join(self.build_temp, "isa", Path(source).stem),
                    macros=ext.define_macros,
                    include_dirs=ext.include_dirs,
                    debug=self.debug,
                    extra_postargs=args,
                    depends=ext.depends,
                )

            with ThreadPoolExecutor(len(sources)) as pool:
                return [obj for objects in pool.map(compile_one, sources) for obj in objects]

    return TimedBuildExt


try:
    PLAN = build_config.plan()
except build_config.BuildConfigError as err:
    sys.exit(f"gen_ext build: {err}")
cpp_extension = import_cpp_extension(PLAN.toolkit.home if PLAN.cuda else None)
use_ccache(PLAN)
write_build_info(PLAN)

setup(
    ext_modules=[extension(PLAN, cpp_extension)],
    cmdclass={"build_ext": timed_build_ext(cpp_extension.BuildExtension)},
    # the Triton kernels live in the top-level kernels/ folder and install as gen_ext.kernels
    packages=find_packages(include=["gen_ext", "gen_ext.*"]) + ["gen_ext.kernels"],
    package_dir={"gen_ext.kernels": "kernels"},
)
