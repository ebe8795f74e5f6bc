"""A first-order bound on the float32 rounding error of a PyTorch computation, per result element.

The computation (values and gradients alike) is traced into primitive aten operations and
evaluated in float64. To first order, a float32 evaluation of the same operations differs from
the exact result o by sum over the intermediates v of (d o / d v) * delta_v, delta_v the error
v's own operation adds; so

    |error of o|  <=  sum over v of |d o / d v| * local(v),

with the adjoints d o / d v taken exactly (in float64, by reverse-mode autograd through the traced
operations, one pass per result index) and local(v) what v's operation adds (u = 2^-24, float32's
unit roundoff):
- u |v| for +, -, *, /, and 2 TRANSCENDENTAL_ULPS u |v| for exp, log, log1p, sigmoid, tanh
  (library functions are not correctly rounded); n u sum|terms| for a sum of n terms;
- the rounding of constants and inputs to float32 (zero for float32 inputs), as a running bound
  through the operations on constants alone;
- float32's smallest normal number, for what may underflow (or be flushed to zero).
Because the adjoints are exact, errors that cancel downstream (the rounding of a scale that
multiplies both ends of a bin) count as little as they matter, unlike in a running bound that
adds every error's magnitude at every step. A comparison whose two sides lie within their
(running) error bounds of each other may be decided otherwise in float32: the results are
evaluated once more with that decision flipped there, and the distance added.

The bound is the reference's: where its operations cancel (a bin mass as a difference of
sigmoids, sigmoid' as s (1 - s), a gradient summing terms much larger than itself) it is as large
as that cancellation makes them; where they do not, it is a few hundred u of the result, so a wrong
value stands out whatever the size of the example.
"""

import math

import torch
from torch._decomp import core_aten_decompositions, get_decompositions
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

aten = torch.ops.aten

UNIT_ROUNDOFF = 2.0**-24
TRANSCENDENTAL_ULPS = 2.0  # worst error of float32 exp, log, sigmoid, tanh in ulps (2 u each)
# float32's smallest normal number: an operation may flush what falls below it to zero
UNDERFLOW = 2.0**-126


def _slope(derivative, error):
    """|derivative| * error, 0 where no error reaches (an infinite slope times nothing)."""
    return torch.where(error == 0, 0.0, derivative.abs() * error)


# passed-on error of each operation: rule(op, value, args, errors, kwargs), errors never None
PASSED_ON = {
    **{
        op: lambda op, v, a, e, k: op(e[0], *a[1:], **k)
        for op in (
            aten.alias.default,
            aten.clone.default,
            aten._to_copy.default,
            aten.expand.default,
            aten.unsqueeze.default,
            aten.squeeze.dims,
            aten.squeeze.dim,
            aten.permute.default,
            aten.select.int,
            aten.slice.Tensor,
            aten.sum.dim_IntList,
            aten.sum.default,
            aten.amax.default,  # the largest of perturbed values moves by at most the largest error
        )
    },
    # errors need not have their values' strides: reshaped, not viewed
    aten.view.default: lambda op, v, a, e, k: e[0].expand(a[0].shape).reshape(a[1]),
    aten._unsafe_view.default: lambda op, v, a, e, k: e[0].expand(a[0].shape).reshape(a[1]),
    aten.slice_scatter.default: lambda op, v, a, e, k: op(e[0], e[1], *a[2:], **k),
    aten.select_scatter.default: lambda op, v, a, e, k: op(e[0], e[1], *a[2:], **k),
    aten.cat.default: lambda op, v, a, e, k: op(e[0], *a[1:], **k),
    aten.where.self: lambda op, v, a, e, k: torch.where(a[0], e[1], e[2]),
    aten.neg.default: lambda op, v, a, e, k: e[0],
    aten.abs.default: lambda op, v, a, e, k: e[0],
    aten.clamp.default: lambda op, v, a, e, k: e[0],
    aten.minimum.default: lambda op, v, a, e, k: torch.maximum(e[0], e[1]),
    aten.maximum.default: lambda op, v, a, e, k: torch.maximum(e[0], e[1]),
    aten.add.Tensor: lambda op, v, a, e, k: e[0] + abs(k.get("alpha", 1)) * e[1],
    aten.sub.Tensor: lambda op, v, a, e, k: e[0] + abs(k.get("alpha", 1)) * e[1],
    aten.mul.Tensor: lambda op, v, a, e, k: _slope(a[1], e[0]) + _slope(a[0], e[1]),
    aten.div.Tensor: lambda op, v, a, e, k: _slope(1 / a[1], e[0]) + _slope(v / a[1], e[1]),
    aten.reciprocal.default: lambda op, v, a, e, k: _slope(v * v, e[0]),
    aten.exp.default: lambda op, v, a, e, k: _slope(v, e[0]),
    aten.expm1.default: lambda op, v, a, e, k: _slope(v + 1, e[0]),
    aten.log.default: lambda op, v, a, e, k: _slope(1 / a[0], e[0]),
    aten.log1p.default: lambda op, v, a, e, k: _slope(1 / (1 + a[0]), e[0]),
    aten.sigmoid.default: lambda op, v, a, e, k: _slope(v * (1 - v), e[0]),
    aten.tanh.default: lambda op, v, a, e, k: _slope(1 - v * v, e[0]),
    aten.sqrt.default: lambda op, v, a, e, k: _slope(0.5 / v, e[0]),
    # constants: nothing passed on, their rounding below
    aten.full.default: lambda op, v, a, e, k: torch.zeros_like(v),
    aten.full_like.default: lambda op, v, a, e, k: torch.zeros_like(v),
    aten.scalar_tensor.default: lambda op, v, a, e, k: torch.zeros_like(v),
}
# the rounding of each operation's own result, in units of UNIT_ROUNDOFF times |result|
ROUNDING = {
    **{
        op: 1.0
        for op in (
            aten.add.Tensor,
            aten.sub.Tensor,
            aten.mul.Tensor,
            aten.div.Tensor,
            aten.reciprocal.default,
            aten.sqrt.default,
            aten.full.default,
            aten.full_like.default,
            aten.scalar_tensor.default,
        )
    },
    **{
        op: 2 * TRANSCENDENTAL_ULPS
        for op in (
            aten.exp.default,
            aten.expm1.default,
            aten.log.default,
            aten.log1p.default,
            aten.sigmoid.default,
            aten.tanh.default,
        )
    },
}
SUMS = {aten.sum.dim_IntList, aten.sum.default}
COMPARISONS = {
    op
    for name in ("gt", "ge", "lt", "le", "eq", "ne")
    for op in (getattr(aten, name).Scalar, getattr(aten, name).Tensor)
}


def _decompositions():
    table = dict(core_aten_decompositions())
    table.update(get_decompositions([aten._log_softmax, aten.logsumexp]))
    return table


def float32_error_bounds(fn, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """For each tensor fn(*inputs) returns (fn may compute gradients with torch.autograd.grad), a
    float64 tensor of its shape bounding, per element, the difference between fn evaluated in
    float32 on the inputs rounded to float32 and fn evaluated exactly on the inputs given (see
    the module's docstring).

    fn must be written for any floating dtype and compute each row of its inputs (dimension 0,
    the same length N in every input and result) independently of the others: a quantity that
    does not run along that dimension (a constant) is shared by all rows."""
    wide = [t.detach().double() for t in inputs]
    rows = wide[0].shape[0]
    graph = make_fx(fn, decomposition_table=_decompositions())(*wide).graph
    nodes = [n for n in graph.nodes if n.op in ("placeholder", "call_function")]
    outputs = next(n for n in graph.nodes if n.op == "output").args[0]
    values, errors, local, undecided = {}, {}, {}, {}
    placeholders = iter(wide)
    for node in nodes:
        if node.op == "placeholder":
            values[node] = next(placeholders)
            errors[node] = local[node] = (values[node] - values[node].float().double()).abs()
            continue
        args, arg_errors = _arguments(node, values, errors)
        values[node] = value = node.target(*args, **node.kwargs)
        if _is_float(value):
            errors[node] = _error(node.target, value, args, arg_errors, node.kwargs)
            if _per_row(value, rows):
                # what this operation adds: its own rounding and its constants' errors; the
                # errors of per-row arguments reach the results through the adjoints below
                shared = [_shared_only(a, e, rows) for a, e in zip(args, arg_errors, strict=True)]
                local[node] = _error(node.target, value, args, shared, node.kwargs)
        elif node.target in COMPARISONS and _is_float(args[0]):
            mask = _undecided(value, args, arg_errors)
            if bool(mask.any()):
                undecided[node] = mask
    bounds = _adjoint_bounds(graph, wide, local, outputs, rows)
    for node, mask in undecided.items():
        # the other decision at the undecided elements: how far each result moves
        flipped = _evaluate(graph, wide, replaced={node: values[node] ^ mask})
        for bound, n, other in zip(bounds, outputs, flipped, strict=True):
            bound += (other - values[n]).detach().abs().nan_to_num(nan=math.inf)
    return bounds


def _adjoint_bounds(graph, inputs, local, outputs, rows, chunk=16):
    """sum over the per-row intermediates v of |d result / d v| * (the error v's operation adds),
    per result element: each result index (along dimensions after the first) by a reverse pass
    (batched), whose adjoints of row n's intermediates are those of row n's result alone."""
    local = {node: e for node, e in local.items() if bool((e > 0).any())}
    shifts = {node: torch.zeros_like(e, requires_grad=True) for node, e in local.items()}
    results = _evaluate(graph, inputs, shifts=shifts)
    leaves = list(shifts)
    weights = [local[n].expand_as(shifts[n]).reshape(rows, -1) for n in leaves]
    bounds = []
    for result in results:
        flat = result.reshape(rows, -1)
        bound = torch.zeros(flat.shape, dtype=torch.float64, device=flat.device)
        indices = flat.shape[1] if flat.requires_grad else 0
        for first in range(0, indices, chunk):
            picks = torch.arange(first, min(first + chunk, indices), device=flat.device)
            # one cotangent per result index: ones in that column, for every row
            seeds = torch.zeros((len(picks), *flat.shape), dtype=flat.dtype, device=flat.device)
            seeds[torch.arange(len(picks)), :, picks] = 1.0
            grads = torch.autograd.grad(
                flat,
                [shifts[n] for n in leaves],
                seeds,
                retain_graph=True,
                allow_unused=True,
                is_grads_batched=True,
            )
            for grad, weight in zip(grads, weights, strict=True):
                if grad is not None:
                    # an infinite slope where no error arises adds nothing
                    terms = grad.reshape(len(picks), rows, -1).abs() * weight
                    bound[:, picks] += terms.nan_to_num(nan=0.0).sum(-1).T
        bounds.append(bound.reshape(result.shape).nan_to_num(nan=math.inf))
    return bounds


def _per_row(t, rows) -> bool:
    return isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == rows


def _shared_only(arg, error, rows):
    """error, with the errors of per-row tensors (of a list too) taken as zero."""
    if error is None:
        return None
    if isinstance(arg, list):
        return [_shared_only(a, e, rows) for a, e in zip(arg, error, strict=True)]
    return torch.zeros_like(error) if _per_row(arg, rows) else error


def _is_float(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def _arguments(node, values, errors):
    """The node's positional arguments' values, and errors (zeros for exact ones). A Python float
    given for a Tensor argument becomes a float64 tensor carrying its rounding to float32."""
    schema = node.target._schema.arguments
    args, arg_errors = [], []
    for i, a in enumerate(node.args):
        if isinstance(a, torch.fx.Node):
            v = values[a]
            e = errors.get(a)
        elif isinstance(a, list | tuple) and a and all(isinstance(b, torch.fx.Node) for b in a):
            v = [values[b] for b in a]
            e = [errors.get(b, torch.zeros_like(values[b], dtype=torch.float64)) for b in a]
        elif _number_for_tensor(a, schema, i):
            v = torch.tensor(a, dtype=torch.float64)
            e = (v - v.float().double()).abs()
        else:
            v, e = a, None
        if e is None and isinstance(v, torch.Tensor):  # exact, or integers and booleans
            e = torch.zeros((), dtype=torch.float64, device=v.device)
        args.append(v)
        arg_errors.append(e)
    return args, arg_errors


def _number_for_tensor(a, schema, i) -> bool:
    return (
        isinstance(a, int | float)
        and not isinstance(a, bool)
        and i < len(schema)
        and isinstance(schema[i].type, torch.TensorType)
    )


def _error(op, value, args, arg_errors, kwargs):
    """The error bound of op's float result: what its arguments' errors make of it, plus its own
    rounding."""
    if op not in PASSED_ON:
        raise NotImplementedError(f"float32_error_bounds: no rounding rule for {op}")
    error = PASSED_ON[op](op, value, args, arg_errors, kwargs).to(torch.float64)
    if op in ROUNDING:
        error = error + ROUNDING[op] * UNIT_ROUNDOFF * value.abs() + UNDERFLOW
    elif op in SUMS:
        terms = args[0].numel() // max(value.numel(), 1)
        error = error + terms * UNIT_ROUNDOFF * op(args[0].abs(), *args[1:], **kwargs) + UNDERFLOW
    return error.nan_to_num(nan=math.inf)


def _undecided(value, args, arg_errors):
    """Where a comparison's two sides lie within their errors of each other."""
    other = (
        args[1] if isinstance(args[1], torch.Tensor) else torch.tensor(args[1], dtype=torch.float64)
    )
    slack = arg_errors[0] + (arg_errors[1] if _is_float(arg_errors[1]) else 0.0)
    return ((slack > 0) & ((args[0] - other).abs() <= slack)).expand(value.shape)


def _evaluate(graph, inputs, replaced=None, shifts=None):
    """The graph's outputs on inputs, with the given nodes' values replaced, or shifted by the
    given tensors."""
    replaced, shifts = replaced or {}, shifts or {}
    values = {}
    placeholders = iter(inputs)
    for node in graph.nodes:
        if node.op == "placeholder":
            values[node] = next(placeholders)
        elif node.op == "call_function":
            if node in replaced:
                values[node] = replaced[node]
            else:
                args = pytree.tree_map(
                    lambda a: values[a] if isinstance(a, torch.fx.Node) else a, node.args
                )
                values[node] = node.target(*args, **node.kwargs)
        elif node.op == "output":
            return [values[n] for n in node.args[0]]
        if node in shifts:
            values[node] = values[node] + shifts[node]
    raise AssertionError("the traced graph has no output")
