"""Loads the compiled extension gen_ext._C, or explains why it cannot be used.

Nothing falls back silently: if the extension is missing or was built for another torch, every
op raises ExtensionNotAvailable with the reason and the command that builds it; only an explicit
``gen_ext.ops.use_backend("reference")`` runs the plain-PyTorch references instead.
"""

import torch

BUILD_HINT = (
    "Build it against the installed torch from the source tree with "
    "`pip install --no-build-isolation -e .` (or `make test`, which also runs the tests)."
)


class ExtensionNotAvailable(RuntimeError):
    """gen_ext._C could not be loaded; the message says why and how to build it."""


def build_info() -> dict | None:
    """What gen_ext._C was compiled against (written by setup.py), or None without a build."""
    try:
        from gen_ext._build_info import BUILD_INFO
    except ImportError:
        return None
    return dict(BUILD_INFO)


_NOT_TRIED = object()
_failure: object = _NOT_TRIED  # None once loaded, else why not


def _load() -> str | None:
    """Imports gen_ext._C once; returns None on success, else the reason it failed. (A plain
    global rather than functools.cache, so torch.compile reads it as a constant.)"""
    global _failure
    if _failure is _NOT_TRIED:
        _failure = _try_load()
    return _failure


def _try_load() -> str | None:
    info = build_info()
    if info is None:
        return f"gen_ext._C has not been built. {BUILD_HINT}"
    if info["torch"] != torch.__version__:
        return (
            f"gen_ext._C was built for torch {info['torch']}, you have torch {torch.__version__}. "
            f"Rebuild it: {BUILD_HINT}"
        )
    try:
        import gen_ext._C  # noqa: F401  (registers the torch.ops.gen_ext kernels)
    except ImportError as err:
        return f"gen_ext._C failed to load ({err}). {BUILD_HINT}"
    import os
    import warnings

    message = portable_kernels_warning(
        torch.ops.gen_ext.cpu_capability(),
        info.get("cpu_kernels", []),
        os.environ.get("GEN_EXT_CPU_CAPABILITY"),
    )
    if message:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return None


def portable_kernels_warning(in_use: str, built: list, asked: str | None) -> str | None:
    """The warning for an x86 build (one with AVX2 kernels) running its portable kernels because
    the processor lacks AVX2, unless the user asked for them: there x86's portable kernels are
    scalar, and several fused ops are slower than the plain PyTorch they replace (the likelihood
    measured 0.74x its eager reference with them forced on an Intel Xeon). On other processors
    the portable build is the only one (at::vec's own vectors, NEON on ARM) and says nothing."""
    if in_use != "default" or "avx2" not in built or asked is not None:
        return None
    return (
        "gen_ext: this processor has no AVX2, so gen_ext's portable CPU kernels run; on x86 they "
        "are scalar and some fused ops are slower than plain PyTorch (see the README's Known "
        "limits). Set GEN_EXT_CPU_CAPABILITY=default to silence this."
    )


def available() -> bool:
    return _load() is None


def require() -> None:
    """Raises ExtensionNotAvailable unless gen_ext._C is loaded."""
    reason = _load()
    if reason is not None:
        raise ExtensionNotAvailable(reason)
