"""Second derivatives of a fused op through its reference.

Each op's backward is an op of its own; its autograd (the op's second derivative) is a
vector-Hessian product through the reference, whose every step is differentiable. It is exact to
rounding because the fused backward computes the reference's first derivative.
"""

import torch


def backward_of_backward(reference, primals, cotangents, grads_of_first):
    """Gradients of <grads_of_first, d reference(primals) . cotangents> with respect to the
    cotangents and then the primals, in order (None where an input gets none).

    reference(*primals) returns a tensor or a tuple; cotangents holds the incoming gradient of
    each output (None for an output that got none); grads_of_first holds the gradient of each
    first derivative, one per primal (None where none)."""
    with torch.enable_grad():
        ps = [p.detach().requires_grad_() for p in primals]
        cs = [None if c is None else c.detach().requires_grad_() for c in cotangents]
        outs = reference(*ps)
        outs = outs if isinstance(outs, tuple) else (outs,)
        used = [(o, c) for o, c in zip(outs, cs, strict=True) if c is not None]
        first = torch.autograd.grad(
            [o for o, _ in used], ps, [c for _, c in used], create_graph=True, allow_unused=True
        )
        pairs = [
            (f, g)
            for f, g in zip(first, grads_of_first, strict=True)
            if f is not None and g is not None and f.requires_grad
        ]
        wrt = [c for c in cs if c is not None] + ps
        if not pairs:
            return [None] * (len(cs) + len(ps))
        second = iter(
            torch.autograd.grad(
                [f for f, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True
            )
        )
    return [None if c is None else next(second) for c in cs] + list(second)


def register_autograd_pair(
    op, backward_op, *, backward, setup_context, backward_backward, backward_setup_context
):
    """The autograd registrations every forward/backward op pair shares: on the forward op, one
    that calls the backward op; on the backward op, its own (the second derivative, usually
    through backward_of_backward). The fake kernels are registered by each op's module itself:
    torch checks that they come from the module the schema names."""
    torch.library.register_autograd(op, backward, setup_context=setup_context)
    torch.library.register_autograd(
        backward_op, backward_backward, setup_context=backward_setup_context
    )
