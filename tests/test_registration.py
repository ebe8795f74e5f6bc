"""Every op has its kernels registered: CPU always, CUDA when the build has CUDA (the .cu files,
plus the Triton sampler registered from Python), and a fake kernel and autograd for each."""

import pytest
import torch

from gen_ext import _extension

KERNEL_OPS = [
    "discretized_logistic_mixture_nll",
    "discretized_logistic_mixture_nll_backward",
    "discretized_logistic_mixture_nll_with_grad",
    "discretized_logistic_mixture_sample",
    "gaussian_reparameterize_kl",
    "gaussian_reparameterize_kl_backward",
    "gaussian_reparameterize_kl_seeded",
    "gaussian_reparameterize_kl_seeded_backward",
    "gaussian_noise",
    "masked_conv2d",
    "masked_conv2d_backward",
    "shifted_conv2d",
    "shifted_conv2d_backward",
    "gated_activation",
    "gated_activation_backward",
    "concat_elu",
    "concat_elu_backward",
    "gated_resnet_block",
    "gated_resnet_block_backward",
    "diagonal_lstm_scan",
    "diagonal_lstm_scan_backward",
    "causal_conv1d",
    "causal_conv1d_backward",
    "wavenet_layer_step",
    "langevin_step",
    "langevin_step_",
]
# ops that set or report the library's state rather than compute on tensors
STATE_OPS = [
    "conv_path_choices",
    "conv_path_policy",
    "cpu_capability",
    "set_conv_path_choices",
    "set_conv_path_policy",
]
# the samplers and the noise have no gradient; the NLL with its gradients is the forward of the
# public function's autograd.Function, which supplies the backward
NOT_DIFFERENTIABLE = (
    "discretized_logistic_mixture_sample",
    "wavenet_layer_step",
    "langevin_step",
    "langevin_step_",
    "gaussian_noise",
    "discretized_logistic_mixture_nll_with_grad",
)
DIFFERENTIABLE = [op for op in KERNEL_OPS if op not in NOT_DIFFERENTIABLE]


def has_kernel(op, key):
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"gen_ext::{op}", key)


@pytest.mark.parametrize("op", KERNEL_OPS)
def test_cpu_kernel_and_fake(op):
    assert has_kernel(op, "CPU")
    assert (
        torch._library.simple_registry.singleton.find(f"gen_ext::{op}").fake_impl.kernel is not None
    )


@pytest.mark.parametrize("op", KERNEL_OPS)
def test_cuda_kernel_when_built_with_cuda(op):
    if not _extension.build_info()["cuda"]:
        pytest.skip("this build has no CUDA kernels")
    assert has_kernel(op, "CUDA")


@pytest.mark.parametrize("op", DIFFERENTIABLE)
def test_autograd_registered(op):
    assert has_kernel(op, "Autograd") or has_kernel(op, "AutogradCPU")


def test_every_op_is_listed():
    """A new op must be added above, so the checks of its registrations run."""
    names = {
        n.removeprefix("gen_ext::")
        for n in torch._C._dispatch_get_all_op_names()
        if n.startswith("gen_ext::")
    }
    assert names == set(KERNEL_OPS) | set(STATE_OPS)
