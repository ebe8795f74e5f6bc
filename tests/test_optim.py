"""The models' Adam: torch's fused implementation where the parameters' device has it, the same
update as the per-parameter loop."""

import torch

from gen_ext.models.base import adam


def test_fused_on_the_cpu_with_the_loops_update():
    torch.manual_seed(0)
    start = [torch.randn(5, 3, dtype=torch.float64), torch.randn(7, dtype=torch.float64)]
    fused_params = [torch.nn.Parameter(p.clone()) for p in start]
    loop_params = [torch.nn.Parameter(p.clone()) for p in start]
    fused = adam(fused_params, 1e-2, (0.5, 0.9))
    loop = torch.optim.Adam(loop_params, lr=1e-2, betas=(0.5, 0.9), foreach=False)
    assert fused.param_groups[0]["fused"] is True
    for step in range(4):
        for params in (fused_params, loop_params):
            for i, p in enumerate(params):
                p.grad = torch.cos(p.detach() * (step + 1) + i)
        fused.step()
        loop.step()
    for f, p in zip(fused_params, loop_params, strict=True):
        torch.testing.assert_close(f, p, rtol=1e-12, atol=1e-12)
        assert not torch.equal(f, start[0] if f.shape == start[0].shape else start[1])


def test_other_devices_keep_torchs_default():
    params = [torch.nn.Parameter(torch.empty(3, device="meta"))]
    assert adam(params, 1e-3).param_groups[0]["fused"] is None
