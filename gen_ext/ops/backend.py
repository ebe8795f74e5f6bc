"""Which implementation the public ops run: the compiled kernels (default) or, only when asked,
the plain-PyTorch references."""

import contextlib
import threading

BACKENDS = ("kernels", "reference")
_state = threading.local()


def get_backend() -> str:
    return getattr(_state, "backend", "kernels")


@contextlib.contextmanager
def use_backend(name: str):
    """Runs the block with backend `name` ("kernels" or "reference") on this thread."""
    if name not in BACKENDS:
        raise ValueError(f"use_backend: name must be one of {BACKENDS}, got {name!r}")
    previous = get_backend()
    _state.backend = name
    try:
        yield
    finally:
        _state.backend = previous
