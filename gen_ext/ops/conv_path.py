"""Which path the CPU convolution ops (masked_conv2d, shifted_conv2d, causal_conv1d) take per
shape: their own kernel, or the dense alternative (oneDNN's convolution of the masked weight, or
of a copy padded with the causal border; conv1d over a left-padded copy), whichever this
processor runs faster.

Under the default policy "auto" both paths are timed the first time a shape is seen (one warm-up
run each, then the fastest of three, alternating), and the faster is kept for that shape in this
process, the dense path unless the kernel wins by 3% (csrc/cpu/conv_path.h). "kernel" and
"dense" force one path; the environment variable GEN_EXT_CONV_PATH sets the policy for a process.
The dense path is used only where it is exact: it multiplies masked taps and the zero padding,
so a call whose values are not all finite runs the kernel whatever the choice.

A training checkpoint stores the choices (`conv_path_choices`) and a resumed run restores them
(`set_conv_path_choices`), so it computes exactly as the uninterrupted run did.
"""

import contextlib

import torch

from gen_ext import _extension

POLICIES = ("auto", "kernel", "dense")


def set_conv_path_policy(policy: str | None) -> str | None:
    """Sets the policy ("auto", "kernel" or "dense"; None: the environment's, GEN_EXT_CONV_PATH,
    else "auto") and returns the setting it replaces (None where none was set)."""
    if policy is not None and policy not in POLICIES:
        raise ValueError(f"set_conv_path_policy: policy must be one of {POLICIES}, got {policy!r}")
    _extension.require()
    return torch.ops.gen_ext.set_conv_path_policy(policy or "") or None


def conv_path_policy() -> str:
    """The policy in force."""
    _extension.require()
    return torch.ops.gen_ext.conv_path_policy()


@contextlib.contextmanager
def use_conv_path(policy: str):
    """Runs the block under `policy`, then restores the previous setting."""
    previous = set_conv_path_policy(policy)
    try:
        yield
    finally:
        set_conv_path_policy(previous)


def conv_path_choices() -> dict[str, str]:
    """shape -> "kernel" or "dense": the choices made so far under "auto" in this process."""
    if not _extension.available():
        return {}
    lines = torch.ops.gen_ext.conv_path_choices()
    return dict(line.rsplit("=", 1) for line in lines)


def set_conv_path_choices(choices: dict[str, str]) -> None:
    """Makes `choices` (from conv_path_choices) this process's choices for those shapes."""
    _extension.require()
    torch.ops.gen_ext.set_conv_path_choices([f"{k}={v}" for k, v in choices.items()])
