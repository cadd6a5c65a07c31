"""Measuring: run a model once and read every number of the chain rule from the engine.

The model runs on a float64 copy (so that central differences are exact to about 1e-10),
forward hooks on its layers keep each layer's input and output, ``loss.backward()`` leaves the
gradients autodiff computes in ``.grad``, and the engine's traced back-propagation
(``tensor._backprop(root, grad, trace)``) reports, without storing anything on the tensors,
the gradient every tensor received and what each unit handed back to each of its inputs, after
the engine's own unbroadcast and dtype cast. A layer's local term is that traced walk started
at its output with a vector of ones. Nothing here knows a derivative formula.

:func:`record` is the one measuring path: the explainer (and through it the report) and the
playground's chain-rule panel read the same :class:`Measurement`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ChainruleError, ShapeError
from ..gradcheck import central_differences
from ..nn.module import leaf_modules
from ..registry import facts_of
from ..tensor import Tensor, _backprop, no_grad
from .records import GradientCheck

__all__ = [
    "FunctionCall",
    "UnitCall",
    "Measurement",
    "Float64Model",
    "record",
    "check_inputs",
    "float64_model",
    "local_term",
    "check_gradient",
    "CHECK_ALL_UP_TO",
    "SAMPLED_ENTRIES",
]

# every entry of every parameter is checked by central differences up to this many parameters;
# above it, a few sampled entries per parameter (the largest |gradient| and random others)
CHECK_ALL_UP_TO = 2000
SAMPLED_ENTRIES = 4
ATOL, RTOL = 1e-6, 1e-4

#: units that act on each number on their own, when called as functions between layers
ELEMENTWISE_UNITS = frozenset(
    ("relu", "sigmoid", "tanh", "leaky_relu", "gelu", "abs", "sqrt", "exp", "log", "sin", "cos")
    + ("neg", "clip")
)


class FunctionCall:
    """A unit called between layers (``cr.relu(self.l1(x))``), measured as a step of its own."""

    def __init__(self, unit_name: str):
        self.unit_name = unit_name
        self._parameters: dict[str, Any] = {}


@dataclass(eq=False)
class UnitCall:
    """One layer (or function) as the forward pass ran it: its input and output tensors."""

    module: Any  # a Module, or a FunctionCall
    input: Any  # a Tensor (or whatever the layer was given)
    output: Any  # a Tensor

    @property
    def is_function(self) -> bool:
        return isinstance(self.module, FunctionCall)


@dataclass(eq=False)
class Measurement:
    """One forward pass and one back-propagation of a loss, with every gradient on record."""

    model: Any
    loss_fn: Any
    x: Tensor
    y: np.ndarray  # the targets as the loss took them
    out: Tensor
    loss: Tensor
    calls: list[UnitCall]
    names: dict[int, str]  # id(module) -> its path in the model
    params: list[tuple[str, Any]]
    trace: dict = field(default_factory=dict)  # the engine's traced walk from the loss

    def grad(self, t: Any) -> np.ndarray | None:
        """∂L/∂t as back-propagation delivered it (None for what it did not reach)."""
        if not isinstance(t, Tensor):
            return None
        g = self.trace["grads"].get(id(t))
        return None if g is None else np.asarray(g)

    def handed(self, out: Any, target: Any) -> np.ndarray | None:
        """What the unit that made ``out`` handed back to its input ``target`` (after the
        engine's unbroadcast and cast); None when ``target`` is not one of its inputs."""
        ctx = getattr(out, "_ctx", None)
        if ctx is None:
            return None
        for k, t in enumerate(ctx.inputs):
            if t is target:
                g = self.trace["handed"].get((id(out), k))
                return None if g is None else np.asarray(g)
        return None

    def local(self, call: UnitCall) -> np.ndarray | None:
        """An elementwise step's local term (σ′ of an activation), else None."""
        if not elementwise(call):
            return None
        return local_term(call.output, call.input)

    def call_of(self, module: Any) -> UnitCall | None:
        """The call of a layer of the model (None when the forward pass did not run it)."""
        return next((c for c in self.calls if c.module is module), None)


def local_term(out: Tensor, inp: Tensor) -> np.ndarray:
    """d out / d inp of an elementwise step, measured by the engine: its traced
    back-propagation from ``out`` given a vector of ones, read at ``inp``."""
    trace: dict = {}
    _backprop(out, np.ones_like(out.data), trace)
    return np.asarray(trace["grads"][id(inp)])


def unit_of(out: Any, inp: Any) -> Any:
    """The record (ctx) of the unit that made ``out`` directly from ``inp``, else None."""
    c = getattr(out, "_ctx", None)
    if c is None or not any(t is inp for t in c.inputs):
        return None
    return c


def elementwise(call: UnitCall) -> bool:
    """An activation applied to each number on its own: by its facts, or by its one unit."""
    c = unit_of(call.output, call.input)
    if call.is_function:
        return c is not None and call.module.unit_name in ELEMENTWISE_UNITS
    return facts_of(call.module).elementwise or (c is not None and c.unit.name in ELEMENTWISE_UNITS)


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------


def check_inputs(model: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """x as a 2-D array of numbers and y beside it (one sample becomes a batch of one)."""
    if not hasattr(model, "named_parameters"):
        raise ChainruleError(
            f"explain: expected a chainrule Module as the model, got {type(model).__name__}"
        )
    xa = np.asarray(x.data if isinstance(x, Tensor) else x)
    if xa.dtype.kind not in "biuf":
        raise ChainruleError(f"explain: x must hold numbers, got dtype {xa.dtype}")
    if xa.ndim == 1:
        xa = xa[None, :]
        if np.ndim(y) == 0:
            y = np.asarray([y])
    ya = y.data if isinstance(y, Tensor) else np.asarray(y)
    if xa.ndim >= 1 and ya.ndim >= 1 and len(ya) != len(xa):
        raise ChainruleError(f"explain: x has {len(xa)} rows but y has {len(ya)}")
    return xa, ya


@dataclass(eq=False)
class Float64Model:
    """The model the explainer runs: a float64 copy in eval mode with no gradients, or (when
    the model cannot be copied) the model itself, with its mode and gradients put back after."""

    model: Any
    loss_fn: Any
    dtype: Any
    copied: bool
    saved_grads: list | None = None
    was_training: bool | None = None

    @property
    def eps(self) -> float:
        return 1e-6 if self.dtype == np.float64 else 1e-3

    def restore(self) -> None:
        if self.was_training:
            self.model.train()
        for p, g in self.saved_grads or ():
            p.grad = g


def float64_model(model: Any, loss_fn: Any) -> Float64Model:
    """A float64 deep copy of the model (and of a loss module) in eval mode, gradients cleared;
    the original is left as it is."""
    try:
        m = copy.deepcopy(model)
    except Exception:  # noqa: BLE001 - an uncopyable attribute: use the model itself
        return _the_model_itself(model, loss_fn)
    if hasattr(m, "to"):
        m.to(np.float64)
    if hasattr(m, "eval"):
        m.eval()
    for p in m.parameters():  # a copy of a model in training carries its last .grad
        p.grad = None
    return Float64Model(m, _loss_copy(loss_fn), np.dtype(np.float64), True)


def _the_model_itself(model: Any, loss_fn: Any) -> Float64Model:
    saved = [(p, p.grad) for p in model.parameters()]
    for p, _ in saved:
        p.grad = None
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float64))
    was_training = None
    if hasattr(model, "training"):
        was_training = model.training
        model.eval()
    return Float64Model(model, loss_fn, dtype, False, saved, was_training)


def _loss_copy(loss_fn: Any) -> Any:
    if hasattr(loss_fn, "to") and hasattr(loss_fn, "named_modules"):
        try:
            lf = copy.deepcopy(loss_fn)
            lf.to(np.float64)
            return lf
        except Exception:  # noqa: BLE001
            return loss_fn
    return loss_fn


def _call_loss(loss_fn: Any, out: Tensor, y: Any) -> tuple[Any, Any]:
    """loss_fn(out, y), reshaping float targets like (n,) to an output of shape (n, 1)."""
    try:
        return loss_fn(out, y), y
    except ShapeError:
        ya = np.asarray(y.data if isinstance(y, Tensor) else y)
        if ya.size == out.data.size and ya.shape != out.shape:
            ya = ya.reshape(out.shape)
            return loss_fn(out, ya), ya
        raise


def _run_with_hooks(model: Any, xt: Tensor) -> tuple[Any, list[UnitCall], dict[int, str]]:
    """model(xt) with a forward hook on every leaf layer: (output, calls, paths by id)."""
    calls: list[UnitCall] = []
    leaves = leaf_modules(model)  # the one rule of what a layer is
    handles = []
    try:
        for _, m in leaves:
            handles.append(
                m.register_forward_hook(
                    lambda mod, inputs, out: calls.append(
                        UnitCall(mod, inputs[0] if inputs else None, out)
                    )
                )
            )
        out = model(xt)
    finally:
        for h in handles:
            h.remove()
    return out, calls, {id(m): n for n, m in leaves}


def _fill_gaps(calls: list[UnitCall], xt: Tensor, out: Tensor) -> list[UnitCall]:
    """The layer calls, with steps added for single-input units applied between layers (and
    after the last one), so that the chain from the loss back to x has no holes."""
    known = {id(xt)}

    def trace(t: Tensor) -> list[UnitCall]:
        path: list[tuple[Tensor, str]] = []  # (a tensor, the name of the unit that made it)
        cur = t
        for _ in range(12):
            if id(cur) in known:
                steps, prev = [], cur
                for nxt, unit_name in reversed(path):
                    steps.append(UnitCall(FunctionCall(unit_name), prev, nxt))
                    prev = nxt
                return steps
            c = getattr(cur, "_ctx", None)
            if c is None:
                return []
            tins = [q for q in c.inputs if isinstance(q, Tensor) and q._rg]
            if len(tins) != 1:
                return []
            path.append((cur, c.unit.name))
            cur = tins[0]
        return []

    full: list[UnitCall] = []
    for c in calls:
        if isinstance(c.input, Tensor) and id(c.input) not in known:
            full.extend(trace(c.input))
        full.append(c)
        if isinstance(c.output, Tensor):
            known.add(id(c.output))
    if id(out) not in known:
        full.extend(trace(out))
    return full


def record(model: Any, x: np.ndarray, y: Any, loss_fn: Any, dtype: Any = np.float64) -> Measurement:
    """Run ``model`` on ``x``, the loss against ``y``, and back-propagate it: ``.grad`` on the
    parameters (``loss.backward()``) and, from the engine's traced walk, every gradient and
    hand-back in between. ``model`` and ``loss_fn`` should be the float64 copies."""
    xt = Tensor(x.astype(dtype), requires_grad=True, name="x")
    out, calls, names = _run_with_hooks(model, xt)
    if not isinstance(out, Tensor):
        raise ChainruleError(f"explain: the model returned {type(out).__name__}, not a Tensor")
    loss, y_used = _call_loss(loss_fn, out, y)
    if not isinstance(loss, Tensor) or loss.data.size != 1:
        raise ChainruleError("explain: the loss must be one number (reduction 'mean' or 'sum')")
    trace: dict = {}
    _backprop(loss, np.ones_like(loss.data), trace)  # stores nothing on the tensors
    loss.backward(retain_graph=True)  # .grad as training leaves it; the record stays walkable
    return Measurement(
        model=model,
        loss_fn=loss_fn,
        x=xt,
        y=np.asarray(y_used),
        out=out,
        loss=loss,
        calls=_fill_gaps(calls, xt, out),
        names=names,
        params=list(model.named_parameters()),
        trace=trace,
    )


# ------------------------------------------------------------------------------------------------
# central differences beside the engine's gradient
# ------------------------------------------------------------------------------------------------


class LossAt:
    """The loss as a number, for central differences. In a chained model (Sequential) the
    forward pass re-runs only from the layer that owns the perturbed parameter: the layers
    before it cannot change, so their outputs are computed once."""

    def __init__(self, m: Measurement, x: np.ndarray, dtype: Any, eps: float):
        self.m, self.x, self.eps = m, x.astype(dtype), eps  # x as given, before the cast
        self.children = list(m.model) if facts_of(m.model).chained else None
        self.owner: dict[int, int] = {}
        self.inputs: list[Any] = []
        if self.children:
            with no_grad():
                h: Any = self.x
                for k, c in enumerate(self.children):
                    self.inputs.append(h)
                    for q in c.parameters():
                        self.owner.setdefault(id(q), k)
                    h = c(h)
                    h = h.data if isinstance(h, Tensor) else h

    def __call__(self, p: Any = None) -> float:
        with no_grad():
            if self.children:
                k = self.owner.get(id(p), 0)
                o = self.inputs[k]
                for c in self.children[k:]:
                    o = c(o)
            else:
                o = self.m.model(self.x)
            return float(np.asarray(self.m.loss_fn(o, self.m.y).data))


def _sample_entries(grad: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """The entry with the largest |gradient| and k − 1 others drawn at random (flat indices)."""
    n = grad.size
    if n <= k:
        return list(range(n))
    first = int(np.argmax(np.abs(grad).reshape(-1)))
    others = [int(i) for i in rng.choice(n, size=min(n, k + 2), replace=False) if i != first]
    return [first] + others[: k - 1]


def check_gradient(
    loss_at: Callable[[Any], float],
    p: Any,
    n_params: int,
    rng: np.random.Generator,
    eps: float,
) -> GradientCheck:
    """Central differences for every entry of ``p`` (models of up to CHECK_ALL_UP_TO
    parameters) or for SAMPLED_ENTRIES of them, beside ``p.grad``."""
    grad = p.grad if p.grad is not None else np.zeros_like(p.data)
    sampled = n_params > CHECK_ALL_UP_TO
    flat_idx = _sample_entries(grad, SAMPLED_ENTRIES, rng) if sampled else list(range(p.data.size))
    if not p.data.flags.c_contiguous:  # perturbed in place: work on a contiguous copy
        p.data = np.ascontiguousarray(p.data)
    numeric = central_differences(p.data, flat_idx, lambda: loss_at(p), eps)
    auto = np.asarray(grad, dtype=np.float64).reshape(-1)[flat_idx]
    diff = np.abs(auto - numeric)
    return GradientCheck(
        checked=[tuple(int(v) for v in np.unravel_index(i, p.data.shape)) for i in flat_idx],
        numeric=numeric,
        autodiff=auto,
        sampled=sampled,
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        ok=bool(np.all(diff <= ATOL + RTOL * np.abs(numeric))),
    )


def agrees(auto: float, numeric: float) -> bool:
    """One number: |autodiff − central difference| within the check's tolerance."""
    return abs(auto - numeric) <= ATOL + RTOL * abs(numeric)
