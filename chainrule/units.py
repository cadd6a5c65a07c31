"""The differentiable primitives: every unit's forward and backward side by side.

Each unit is a small class. ``forward(ctx, *arrays)`` computes the value from numpy arrays and
keeps on ``ctx`` what the local derivative needs (the output where that is cheaper, as
``exp``, ``tanh`` and ``sigmoid`` do). ``backward(ctx, grad)`` receives dL/d(output) and returns
dL/d(input) for each input: the incoming product times this unit's own local term. Gradients of
broadcast inputs are summed back to each input's shape once, in ``tensor.unbroadcast``; no unit
here does it by hand.

Grouped by kind: arithmetic, elementwise functions, matmul, reductions, shape, indexing and
joining, softmax, and the fused units that layers and losses use for speed.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .random import get_rng
from .tensor import Axis, Context, Grads, Tensor, TensorLike, Unit, exponent, shape_arg

# ================================================================================================
# arithmetic (binary units broadcast like numpy)
# ================================================================================================


class _Binary(Unit):
    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        a, b = (np.shape(x) for x in arrays[:2])
        return f"{cls.name}: cannot broadcast shapes {a} and {b}"


class Add(_Binary):
    """z = a + b;  dz/da = 1, dz/db = 1."""

    name = "add"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad, grad


class Sub(_Binary):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    name = "sub"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(_Binary):
    """z = a * b;  dz/da = b, dz/db = a."""

    name = "mul"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.a, ctx.b = a, b
        return a * b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        need_a, need_b = ctx.needs_input_grad
        return (grad * ctx.b if need_a else None), (grad * ctx.a if need_b else None)


class Div(_Binary):
    """z = a / b;  dz/da = 1/b, dz/db = -a/b**2 = -z/b."""

    name = "div"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = a / b
        ctx.b, ctx.out = b, out
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        need_a, need_b = ctx.needs_input_grad
        ga = grad / ctx.b
        return (ga if need_a else None), (-ga * ctx.out if need_b else None)


class Neg(Unit):
    """z = -a;  dz/da = -1."""

    name = "neg"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return -a

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return -grad


class Pow(Unit):
    """z = a ** p for a constant number p;  dz/da = p * a ** (p - 1)."""

    name = "pow"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, p: int | float) -> np.ndarray:
        ctx.a, ctx.p = a, p
        return a**p

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        a, p = ctx.a, ctx.p
        if p == 0:
            return np.zeros_like(grad), None
        if p == 1:
            return grad, None
        if p == 2:
            return grad * 2 * a, None
        return grad * p * a ** (p - 1), None


class RPow(Unit):
    """z = c ** a for a constant positive number c;  dz/da = z * log(c)."""

    name = "rpow"

    @staticmethod
    def forward(ctx: Context, c: float, a: np.ndarray) -> np.ndarray:
        out = c**a
        ctx.c, ctx.out = c, out
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return None, grad * ctx.out * np.log(ctx.c)


class Maximum(_Binary):
    """z = max(a, b) elementwise; the gradient goes to a where a >= b (ties: half to each)."""

    name = "maximum"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.a, ctx.b = a, b
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        a, b = ctx.a, ctx.b
        wa = (a > b) + 0.5 * (a == b)
        return grad * wa, grad * (1.0 - wa)


class Minimum(_Binary):
    """z = min(a, b) elementwise; the gradient goes to a where a <= b (ties: half to each)."""

    name = "minimum"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.a, ctx.b = a, b
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        a, b = ctx.a, ctx.b
        wa = (a < b) + 0.5 * (a == b)
        return grad * wa, grad * (1.0 - wa)


class Where(Unit):
    """z = a where cond else b (cond a constant boolean array)."""

    name = "where"

    @staticmethod
    def forward(ctx: Context, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.cond = np.asarray(cond, dtype=bool)
        return np.where(ctx.cond, a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        c = ctx.cond
        need = ctx.needs_input_grad
        return (
            None,
            np.where(c, grad, 0) if need[1] else None,
            np.where(c, 0, grad) if need[2] else None,
        )


class Cast(Unit):
    """z = a converted to another float dtype; the gradient is converted back."""

    name = "cast"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad  # the engine casts it to the input's dtype


# ================================================================================================
# elementwise functions (derivatives from the saved output where that is cheaper)
# ================================================================================================


class Exp(Unit):
    """z = exp(a);  dz/da = exp(a) = z."""

    name = "exp"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.out = np.exp(a)
        return ctx.out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad * ctx.out


class Log(Unit):
    """z = log(a);  dz/da = 1/a."""

    name = "log"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.a = a
        return np.log(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad / ctx.a


class Sin(Unit):
    """z = sin(a);  dz/da = cos(a)."""

    name = "sin"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.a = a
        return np.sin(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad * np.cos(ctx.a)


class Cos(Unit):
    """z = cos(a);  dz/da = -sin(a)."""

    name = "cos"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.a = a
        return np.cos(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return -grad * np.sin(ctx.a)


class Tanh(Unit):
    """z = tanh(a);  dz/da = 1 - z**2 (from the output)."""

    name = "tanh"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.out = np.tanh(a)
        return ctx.out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        y = ctx.out
        return grad * (1 - y * y)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-a)) without overflow for large |a| and with full precision in the tails."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Unit):
    """z = σ(a) = 1 / (1 + exp(-a));  dz/da = z (1 - z) (from the output)."""

    name = "sigmoid"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.out = _sigmoid(a)
        return ctx.out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        y = ctx.out
        return grad * y * (1 - y)


class ReLU(Unit):
    """z = max(a, 0);  dz/da = 1 where a > 0, else 0 (from the output)."""

    name = "relu"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.maximum(a, _relu_zero(a))
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad * (ctx.out > 0)


class LeakyReLU(Unit):
    """z = a where a > 0 else slope * a;  dz/da = 1 or slope."""

    name = "leaky_relu"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, slope: float = 0.01) -> np.ndarray:
        ctx.pos = a > 0
        ctx.slope = slope
        return np.where(ctx.pos, a, a * slope)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return np.where(ctx.pos, grad, grad * ctx.slope)


_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
_INV_SQRT_2 = 1.0 / np.sqrt(2.0)


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, to about 1e-15 (numpy has no erf; scipy is optional)."""
    try:
        from scipy.special import erf
    except (
        ImportError
    ):  # pragma: no cover - scipy ships with scikit-learn, but the core needs numpy
        import math

        return np.vectorize(math.erf, otypes=[x.dtype])(x)
    return erf(x).astype(x.dtype, copy=False)


class GELU(Unit):
    """z = a Φ(a) (Φ the standard normal CDF);  dz/da = Φ(a) + a φ(a).

    ``approximate='tanh'`` uses 0.5 a (1 + tanh(√(2/π)(a + 0.044715 a³))) as PyTorch does.
    """

    name = "gelu"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, approximate: str = "none") -> np.ndarray:
        ctx.a, ctx.approximate = a, approximate
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (a + 0.044715 * a**3)
            ctx.t = np.tanh(inner)
            return (0.5 * a * (1 + ctx.t)).astype(a.dtype, copy=False)
        ctx.cdf = 0.5 * (1 + _erf(a * _INV_SQRT_2))
        return (a * ctx.cdf).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        a = ctx.a
        if ctx.approximate == "tanh":
            t = ctx.t
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return grad * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * dinner)
        pdf = np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)
        return grad * (ctx.cdf + a * pdf)


class Abs(Unit):
    """z = |a|;  dz/da = sign(a) (0 at 0, as PyTorch)."""

    name = "abs"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.a = a
        return np.abs(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad * np.sign(ctx.a)


class Sqrt(Unit):
    """z = √a;  dz/da = 1 / (2 z) (from the output)."""

    name = "sqrt"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.out = np.sqrt(a)
        return ctx.out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad / (2 * ctx.out)


class Clip(Unit):
    """z = min(max(a, lo), hi);  dz/da = 1 where lo <= a <= hi, else 0 (as torch.clamp)."""

    name = "clip"

    @staticmethod
    def forward(
        ctx: Context, a: np.ndarray, lo: ArrayLike | None = None, hi: ArrayLike | None = None
    ) -> np.ndarray:
        inside = np.ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        ctx.inside = inside
        return np.clip(a, lo, hi)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad * ctx.inside


# ================================================================================================
# matmul
# ================================================================================================


class MatMul(Unit):
    """z = a @ b (1-D, 2-D or batched, as numpy.matmul);  dz/da = g bᵀ, dz/db = aᵀ g."""

    name = "matmul"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        a, b = (np.shape(x) for x in arrays)
        if len(a) == 0 or len(b) == 0:
            return f"matmul: cannot multiply {a} by {b}: both inputs need at least 1 dimension"
        ka = a[-1]
        kb = b[0] if len(b) == 1 else b[-2]
        if ka != kb:
            return f"matmul: cannot multiply {a} by {b}: inner sizes {ka} and {kb} differ"
        return (
            f"matmul: cannot multiply {a} by {b}: batch shapes {a[:-2]} and {b[:-2]} "
            "do not broadcast"
        )

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            raise ValueError("0-d input")
        ctx.a, ctx.b = a, b
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        a, b = ctx.a, ctx.b
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:  # the common case, no reshaping
            return (grad @ b.T if need_a else None), (a.T @ grad if need_b else None)
        if a.ndim == 1 and b.ndim == 1:
            return (grad * b if need_a else None), (grad * a if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if need_a:
            ga = g2 @ np.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                ga = ga.squeeze(-2)
        if need_b:
            gb = np.swapaxes(a2, -1, -2) @ g2
            if b.ndim == 1:
                gb = gb.squeeze(-1)
        return ga, gb  # batch dimensions are summed back by the engine


# ================================================================================================
# reductions
# ================================================================================================


def _norm_axis(axis: Axis, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(sorted(a % ndim for a in axis)) if ndim else tuple(axis)
    return (axis % ndim,) if ndim else (axis,)


def _expand_to(
    grad: np.ndarray, shape: tuple[int, ...], axis: tuple[int, ...] | None, keepdims: bool
) -> np.ndarray:
    """Give a reduced gradient back the reduced axes, then broadcast it to ``shape``."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
    return np.broadcast_to(grad, shape)


class _Reduce(Unit):
    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        return (
            f"{cls.name}: axis {kwargs.get('axis')} is out of range for shape {np.shape(arrays[0])}"
        )


class Sum(_Reduce):
    """z = Σ a over ``axis`` (all when None);  dz/da = 1 for every summed element."""

    name = "sum"

    @staticmethod
    def forward(
        ctx: Context, a: np.ndarray, axis: Axis = None, keepdims: bool = False
    ) -> np.ndarray:
        ctx.axis = _norm_axis(axis, a.ndim)
        ctx.shape, ctx.keepdims = a.shape, keepdims
        return np.sum(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return _expand_to(grad, ctx.shape, ctx.axis, ctx.keepdims)


class Mean(_Reduce):
    """z = (1/n) Σ a over ``axis``;  dz/da = 1/n."""

    name = "mean"

    @staticmethod
    def forward(
        ctx: Context, a: np.ndarray, axis: Axis = None, keepdims: bool = False
    ) -> np.ndarray:
        ctx.axis = _norm_axis(axis, a.ndim)
        ctx.shape, ctx.keepdims = a.shape, keepdims
        out = np.mean(a, axis=axis, keepdims=keepdims)
        ctx.n = a.size // out.size if out.size else 1
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return _expand_to(grad / ctx.n, ctx.shape, ctx.axis, ctx.keepdims)


class _Extremum(_Reduce):
    """max/min over ``axis``: over everything (axis=None) the gradient is split evenly among
    tied extrema; along one axis it goes to the first one, the one argmax/argmin picks (as
    PyTorch's ``max(dim)``)."""

    _reduce: Callable[..., Any]  # np.max or np.min: an array, or a numpy scalar over all axes
    _arg: Callable[..., Any]  # np.argmax or np.argmin

    @classmethod
    def forward(
        cls,
        ctx: Context,
        a: np.ndarray,
        axis: Axis = None,
        keepdims: bool = False,
    ) -> np.ndarray:
        ctx.a, ctx.axis, ctx.keepdims = a, axis, keepdims
        if axis is not None and not isinstance(axis, (int, np.integer)):
            raise ValueError(f"{cls.name}: axis must be one integer or None")
        return cls._reduce(a, axis=axis, keepdims=keepdims)

    @classmethod
    def backward(cls, ctx: Context, grad: np.ndarray) -> Grads:
        a, axis = ctx.a, ctx.axis
        if axis is None:
            mask = a == cls._reduce(a)
            return mask * (grad / mask.sum())
        axis = axis % a.ndim
        idx = np.expand_dims(cls._arg(a, axis=axis), axis)
        g = grad if ctx.keepdims else np.expand_dims(grad, axis)
        out = np.zeros_like(a, dtype=np.result_type(a, grad))
        np.put_along_axis(out, idx, g, axis=axis)
        return out


class Max(_Extremum):
    """z = max a over ``axis`` (ties: see _Extremum)."""

    name = "max"
    _reduce = staticmethod(np.max)
    _arg = staticmethod(np.argmax)


class Min(_Extremum):
    """z = min a over ``axis`` (ties: see _Extremum)."""

    name = "min"
    _reduce = staticmethod(np.min)
    _arg = staticmethod(np.argmin)


# ================================================================================================
# shape (views, no copies)
# ================================================================================================


class Reshape(Unit):
    """z = a with another shape (a view);  the gradient is reshaped back."""

    name = "reshape"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        a = np.shape(arrays[0])
        return (
            f"reshape: cannot reshape {a} ({int(np.prod(a))} elements) into {kwargs.get('shape')}"
        )

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad.reshape(ctx.shape)


class Transpose(Unit):
    """z = a with its axes permuted (a view; reversed when ``axes`` is None)."""

    name = "transpose"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        return f"transpose: axes {kwargs.get('axes')} do not fit shape {np.shape(arrays[0])}"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axes: Sequence[int] | None = None) -> np.ndarray:
        ctx.axes = axes
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        if ctx.axes is None:
            return np.transpose(grad)
        return np.transpose(grad, np.argsort(ctx.axes))


def _is_basic_index(idx: Any) -> bool:
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) for i in items)


class GetItem(Unit):
    """z = a[index] (slices, integers, integer or boolean arrays);  the gradient is scattered
    back into zeros of a's shape (summed where an index repeats)."""

    name = "getitem"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        index, shape = kwargs.get("index"), np.shape(arrays[0])
        return f"getitem: index {index!r} does not fit shape {shape}: {err}"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, index: Any) -> np.ndarray:
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return a[index]

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        out = np.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic_index(ctx.index):
            out[ctx.index] = grad
        else:
            np.add.at(out, ctx.index, grad)
        return out


class Concatenate(Unit):
    """z = the inputs joined along an existing ``axis``;  each input gets its slice of the
    gradient."""

    name = "concatenate"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        shapes = ", ".join(str(np.shape(x)) for x in arrays)
        return f"concatenate: cannot join shapes {shapes} along axis {kwargs.get('axis', 0)}"

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, axis: int = 0) -> np.ndarray:
        ctx.axis = axis
        ctx.sizes = [np.shape(x)[axis] for x in arrays]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        cuts = np.cumsum(ctx.sizes)[:-1]
        return tuple(np.split(grad, cuts, axis=ctx.axis))


class Stack(Unit):
    """z = the inputs stacked along a new ``axis``;  each input gets its slice of the gradient."""

    name = "stack"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        shapes = ", ".join(str(np.shape(x)) for x in arrays)
        return f"stack: cannot stack shapes {shapes}: they must all be equal"

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, axis: int = 0) -> np.ndarray:
        out = np.stack(arrays, axis=axis)
        ctx.axis = axis % out.ndim
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return tuple(np.moveaxis(grad, ctx.axis, 0))


# ================================================================================================
# softmax (numerically stable: the maximum is subtracted first)
# ================================================================================================


class Softmax(Unit):
    """z_i = exp(a_i) / Σ_j exp(a_j) along ``axis``;  dL/da = z ⊙ (g − Σ g ⊙ z)."""

    name = "softmax"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis: int = -1) -> np.ndarray:
        e = np.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        y = ctx.out
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Unit):
    """z_i = a_i − log Σ_j exp(a_j) along ``axis``;  dL/da = g − softmax(a) Σ g."""

    name = "log_softmax"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis: int = -1) -> np.ndarray:
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad - np.exp(ctx.out) * grad.sum(axis=ctx.axis, keepdims=True)


# ================================================================================================
# fused units (one record instead of several, fewer passes over memory)
# ================================================================================================


_CONSTS: dict[tuple[int, int | tuple[int, ...], np.dtype[Any]], np.ndarray] = {}


def _const(fill: int, n: int | tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """A cached read-only array of ``fill`` (0 or 1): n of them, or of shape n."""
    key = (fill, n, dtype)
    v = _CONSTS.get(key)
    if v is None:
        if len(_CONSTS) > 64:
            _CONSTS.clear()
        v = np.ones(n, dtype=dtype) if fill else _untouched_zeros(n, dtype)
        v.flags.writeable = False
        _CONSTS[key] = v
    return v


def _untouched_zeros(n: int | tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """Zeros in an anonymous memory map of their own: pages that are only ever read map the
    system's one zero page, so the array adds nothing to the resident memory (numpy's own
    ``zeros`` may take already-touched heap memory and clear it)."""
    shape = (n,) if isinstance(n, int) else tuple(n)
    dt = np.dtype(dtype)
    size = math.prod(shape) * dt.itemsize
    if not hasattr(mmap, "MAP_PRIVATE"):  # Windows: numpy's zeros
        return np.zeros(shape, dtype=dt)
    # private (a shared anonymous map is shared memory: reading it allocates pages)
    buf = mmap.mmap(-1, size or 1, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buf, dtype=dt, count=math.prod(shape)).reshape(shape)


def _ones(n: int | tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """Ones (cached, read-only): for sums done as BLAS matrix-vector products, and ``1 − x``
    against an array in replayed steps."""
    return _const(1, n, dtype)


def _zeros(n: int | tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """Zeros (cached, read-only) for ``max(a, 0)``: numpy 2.4's maximum against a same-shape
    array runs ~3x faster than against the scalar 0 (1.8 vs 5.3 us on 32×256 float32, 57 vs
    162 us on 256×1024), the same values (NaN and −0.0 included). They cost no resident memory
    (``_untouched_zeros``)."""
    return _const(0, n, dtype)


def _relu_zero(a: np.ndarray) -> np.ndarray | int:
    """The 0 of relu's ``max(a, 0)``: cached zeros of a's shape for a float array (numpy's
    scalar operand is ~3x slower, see ``_zeros``), the scalar for anything else."""
    return _zeros(a.shape, a.dtype) if type(a) is np.ndarray and a.dtype.kind == "f" else 0


def _row_max(z: np.ndarray) -> np.ndarray:
    """max over the last axis of a 2-D array, shape (N,). numpy's reduction over a short last
    axis loops once per row; with few columns, comparing whole columns is several times faster."""
    C = z.shape[1]
    if C > 8:
        return z.max(axis=1)
    m = z[:, 0].copy()
    for c in range(1, C):
        np.maximum(m, z[:, c], out=m)
    return m


class Linear(Unit):
    """The linear unit Σ of a layer: z = x Wᵀ + b, x of shape (..., in), W (out, in), b (out,).

    dL/dx = g W,  dL/dW = gᵀ x,  dL/db = Σ g over the batch: two GEMMs and one reduction.
    """

    name = "linear"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        x, w = np.shape(arrays[0]), np.shape(arrays[1])
        fin = w[1] if len(w) == 2 else "?"
        return (
            f"linear: input of shape {x} does not fit weight of shape {w}: expected last "
            f"dimension {fin}, got {x[-1] if x else '()'}"
        )

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
    ) -> np.ndarray:
        if x.ndim == 0 or x.shape[-1] != w.shape[1]:
            raise ValueError("shape")
        ctx.x, ctx.w = x, w
        # np.dot for a 2-D batch: the same BLAS product as @ (the same numbers), with a third
        # of matmul's per-call overhead on small arrays
        out = np.dot(x, w.T) if x.ndim == 2 else x @ w.T
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        x, w = ctx.x, ctx.w
        need = ctx.needs_input_grad
        gx = (np.dot(grad, w) if grad.ndim == 2 else grad @ w) if need[0] else None
        g2 = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])
        gw = gb = None
        if need[1]:
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            if len(g2) == 1:
                # one sample: gᵀx is an outer product, which BLAS runs far slower as a GEMM
                # with one row than with two; add a zero row (exact: 0·x adds nothing)
                gp = np.zeros((2, g2.shape[1]), dtype=g2.dtype)
                gp[0] = g2[0]
                gw = np.dot(gp.T, np.concatenate((x2, x2)))
            else:
                gw = np.dot(g2.T, x2)
        if len(need) > 2 and need[2]:
            gb = np.dot(_ones(len(g2), g2.dtype), g2)  # Σ over the batch, as a BLAS product
        return (gx, gw, gb) if len(need) > 2 else (gx, gw)


class LinearReLU(Unit):
    """relu(x Wᵀ + b) in one unit (the common hidden layer): one record, one output array."""

    name = "linear_relu"
    shape_error = Linear.shape_error

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
    ) -> np.ndarray:
        out = Linear.forward(ctx, x, w, b)  # a fresh array: the relu can work in place
        np.maximum(out, _relu_zero(out), out=out)
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        grad = grad * (ctx.out > 0)
        return Linear.backward(ctx, grad)


class SoftmaxCrossEntropy(Unit):
    """Cross-entropy of logits against integer labels, per sample (softmax and log fused).

    L_i = −log softmax(z_i)[y_i] = logsumexp(z_i) − z_i[y_i];
    dL_i/dz_i = softmax(z_i) − onehot(y_i).
    ``weight`` (per class) scales each sample's loss by weight[y_i]; ``ignore_index`` gives 0.
    ``label_smoothing`` mixes the one-hot target with the uniform distribution, as PyTorch.
    Returns the per-sample losses, shape (N,) (or z's shape without the class axis).
    """

    name = "softmax_cross_entropy"

    @staticmethod
    def forward(
        ctx: Context,
        z: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> np.ndarray:
        # z: (N, C) or (N, C, d1, ...): move the class axis last
        if z.ndim > 2:
            z = np.moveaxis(z, 1, -1)
            ctx.moved = True
        else:
            ctx.moved = False
        shifted = z - z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=-1, keepdims=True)
        logp = shifted - np.log(s)
        y = np.asarray(y)
        valid = y != ignore_index
        ysafe = np.where(valid, y, 0)
        if logp.ndim == 2:
            picked = logp[np.arange(len(ysafe)), ysafe]
        else:
            picked = np.take_along_axis(logp, ysafe[..., None], axis=-1)[..., 0]
        C = z.shape[-1]
        if label_smoothing:
            if weight is not None:
                smooth = -(logp * weight).sum(axis=-1) / C
            else:
                smooth = -logp.sum(axis=-1) / C
        w = np.where(valid, 1.0, 0.0).astype(z.dtype)
        if weight is not None:
            w = w * weight[ysafe]
        loss = -(1 - label_smoothing) * picked * w if label_smoothing else -picked * w
        if label_smoothing:
            loss = loss + label_smoothing * smooth * np.where(valid, 1.0, 0.0)
        ctx.p = e / s
        ctx.y, ctx.w, ctx.valid = ysafe, w, valid
        ctx.weight, ctx.ls, ctx.C = weight, label_smoothing, C
        return loss.astype(z.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        p, y, w = ctx.p, ctx.y, ctx.w
        g = grad[..., None]
        ls = ctx.ls
        # d(−w·log p_y)/dz = w (p − onehot_y)
        wy = w * (1 - ls)
        dz = p * wy[..., None]
        if dz.ndim == 2:
            dz[np.arange(len(y)), y] -= wy
        else:
            np.put_along_axis(
                dz,
                y[..., None],
                np.take_along_axis(dz, y[..., None], axis=-1) - wy[..., None],
                axis=-1,
            )
        if ls:
            # d(−(ls/C) Σ_c wc log p_c)/dz = (ls/C) (p Σ_c wc − wc)
            valid = ctx.valid[..., None]
            if ctx.weight is not None:
                wc = ctx.weight
                dz = dz + (ls / ctx.C) * (p * wc.sum() - wc) * valid
            else:
                dz = dz + ls * (p - 1.0 / ctx.C) * valid
        dz = dz * g
        if ctx.moved:
            dz = np.moveaxis(dz, -1, 1)
        return dz, None


class MeanSoftmaxCrossEntropy(Unit):
    """The mean cross-entropy of logits z (N, C) against integer labels y (N,), in one unit.

    L = (1/N) Σ_i [logsumexp(z_i) − z_i[y_i]];  dL/dz_i = (softmax(z_i) − onehot(y_i)) / N.
    The training loop's common case (no class weights, no ignored labels, no smoothing):
    one record instead of three, and the softmax kept from the forward for the backward.
    """

    name = "cross_entropy"

    @staticmethod
    def forward(ctx: Context, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = z.shape[0]
        shifted = z - _row_max(z)[:, None]
        e = np.exp(shifted)
        s = e @ _ones(z.shape[1], e.dtype)
        rows = np.arange(n)
        per_sample = np.log(s)  # logsumexp(z_i) − max_i ...
        per_sample -= shifted[rows, y]  # ... − (z_i[y_i] − max_i): each term ≥ 0, no cancellation
        loss = per_sample.sum() / n
        e /= s[:, None]
        ctx.p, ctx.y, ctx.rows, ctx.n = e, y, rows, n
        return np.asarray(loss, dtype=z.dtype)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        scale = grad / ctx.n
        dz = ctx.p * scale
        dz[ctx.rows, ctx.y] -= scale
        return dz, None


class SigmoidBCE(Unit):
    """Binary cross-entropy of logits z against targets y in [0, 1], per element (fused).

    L = −[y log σ(z) + (1 − y) log(1 − σ(z))] = max(z, 0) − z y + log(1 + exp(−|z|));
    dL/dz = σ(z) − y.  ``pos_weight`` multiplies the positive term, as PyTorch.
    """

    name = "sigmoid_bce"

    @staticmethod
    def forward(
        ctx: Context, z: np.ndarray, y: np.ndarray, pos_weight: np.ndarray | None = None
    ) -> np.ndarray:
        y = np.asarray(y, dtype=z.dtype)  # targets are constants: they take the logits' dtype
        softplus_neg_abs = np.log1p(np.exp(-np.abs(z)))
        if pos_weight is None:
            loss = np.maximum(z, 0) - z * y + softplus_neg_abs
        else:
            # (1 − y) z + (1 + (pw − 1) y) softplus(−z)
            lw = 1 + (pos_weight - 1) * y
            loss = (1 - y) * z + lw * (softplus_neg_abs + np.maximum(-z, 0))
        ctx.s, ctx.y, ctx.pw = _sigmoid(z), y, pos_weight
        return loss

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        s, y, pw = ctx.s, ctx.y, ctx.pw
        dz = s - y if pw is None else (1 - y) - (1 + (pw - 1) * y) * (1 - s)
        return grad * dz, None


class BCEProb(Unit):
    """Binary cross-entropy of probabilities a against y (the logistic classifier's NLL).

    L = −[y log a + (1 − y) log(1 − a)], each log clamped at −100 as PyTorch's BCELoss does;
    dL/da = (a − y) / (a (1 − a)) (with the same clamping of the denominators).
    """

    name = "bce"

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=a.dtype)  # targets are constants: they take the input's dtype
        with np.errstate(divide="ignore"):
            log_a = np.maximum(np.log(a), -100)
            log_1a = np.maximum(np.log1p(-a), -100)
        ctx.a, ctx.y = a, y
        return -(y * log_a + (1 - y) * log_1a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        a, y = ctx.a, ctx.y
        eps = float(np.float32(1e-12))  # PyTorch clamps a(1 − a) at its float EPSILON = 1e-12
        return grad * (a - y) / np.maximum((1 - a) * a, eps), None


class BatchNorm(Unit):
    """Batch normalization per channel (axis 1) of x (N, C) or (N, C, L, ...), in one unit.

    x̂ = (x − μ) / √(σ² + ε),  z = γ x̂ + β  (γ = ``weight``, β = ``bias``, either may be None).

    ``training=True``: μ and σ² are the batch mean and *biased* variance over the m = N·L·...
    values of each channel (pass them as ``mean``/``var`` when already computed, else they are
    computed here); they depend on x, so with ĝ = g γ:
        dL/dx = (1/√(σ²+ε)) (ĝ − mean(ĝ) − x̂ mean(ĝ x̂)),
    ``training=False``: ``mean``/``var`` (the running statistics) are constants and
    dL/dx = ĝ / √(σ²+ε).  In both, dL/dγ = Σ g x̂ and dL/dβ = Σ g over all but the channel axis.

    ``update=(running_mean, running_var, momentum, count)`` (training, what ``nn.BatchNorm1d``
    passes): the batch statistics are computed here and the running ones updated in place,
    running = (1 − momentum)·running + momentum·batch with the *unbiased* variance; ``count``
    (a 0-d integer array, or None) goes up by one, and ``momentum=None`` means 1/count (the
    cumulative average). Inside the unit, so that a compiled step replays the update.
    """

    name = "batch_norm"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        x = np.shape(arrays[0])
        c = np.shape(arrays[1]) if len(arrays) > 1 and arrays[1] is not None else "?"
        return f"batch_norm: input of shape {x} does not fit per-channel parameters of shape {c}"

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        weight: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        mean: np.ndarray | None = None,
        var: np.ndarray | None = None,
        eps: float = 1e-5,
        training: bool = True,
        # (running_mean, running_var, momentum, count): see batch_statistics
        update: tuple[np.ndarray | None, np.ndarray | None, float | None, np.ndarray | None]
        | None = None,
    ) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError("batch_norm needs (N, C, ...) input")
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        if update is not None:
            mean, var = BatchNorm.batch_statistics(x, axes, shape, *update)
        if mean is None:
            mean = x.mean(axis=axes)
        if var is None:
            var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
        inv = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False).reshape(shape)
        xhat = (x - mean.reshape(shape)) * inv
        out = xhat if weight is None else xhat * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        ctx.xhat, ctx.inv, ctx.weight, ctx.training = xhat, inv, weight, training
        ctx.axes, ctx.shape = axes, shape
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def batch_statistics(
        x: np.ndarray,
        axes: tuple[int, ...],
        shape: tuple[int, ...],
        running_mean: np.ndarray | None,
        running_var: np.ndarray | None,
        momentum: float | None,
        count: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The batch mean and biased variance; the running statistics updated in place."""
        m = x.size // x.shape[1]
        mean = x.mean(axis=axes)
        var_sum = ((x - mean.reshape(shape)) ** 2).sum(axis=axes)
        var = var_sum / m
        if count is not None:
            count += 1
            if momentum is None:  # the cumulative moving average
                momentum = 1.0 / float(count)
        if momentum is None:
            momentum = 0.0
        if running_mean is not None:
            running_mean[...] = momentum * mean + (1 - momentum) * running_mean
        if running_var is not None:
            running_var[...] = momentum * (var_sum / (m - 1)) + (1 - momentum) * running_var
        return mean, var

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        need = ctx.needs_input_grad
        xhat, axes, shape = ctx.xhat, ctx.axes, ctx.shape
        gw = (grad * xhat).sum(axis=axes) if len(need) > 1 and need[1] else None
        gb = grad.sum(axis=axes) if len(need) > 2 and need[2] else None
        gx = None
        if need[0]:
            gh = grad if ctx.weight is None else grad * ctx.weight.reshape(shape)
            if ctx.training:
                gx = ctx.inv * (
                    gh
                    - gh.mean(axis=axes, keepdims=True)
                    - xhat * (gh * xhat).mean(axis=axes, keepdims=True)
                )
            else:
                gx = gh * ctx.inv
        return (gx, gw, gb)[: len(need)]


class Dropout(Unit):
    """Inverted dropout in one unit: z = x · mask, mask = keep / (1 − p), keep = (u < 1 − p) for
    u uniform in [0, 1) drawn from ``rng`` (else a generator from ``seed``, else the default one,
    read at every call);  dz/dx = mask.

    The mask is drawn inside the unit, so a compiled step draws a fresh one at every replay,
    from the same generator, exactly as eager steps do.
    """

    name = "dropout"

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        p: float = 0.5,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        mask = Dropout.draw_mask(x.shape, dtype, p, rng, seed)
        ctx.mask = mask
        return x * mask

    @staticmethod
    def draw_mask(
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        p: float,
        rng: np.random.Generator | None,
        seed: int | None,
        u: np.ndarray | None = None,
        keep: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """mask = (u < 1 − p) / (1 − p) for u uniform in [0, 1) from the generator; written into
        ``u``, ``keep`` and ``out`` when given (a compiled step's buffers), else new arrays."""
        gen = get_rng(rng, seed)
        u = gen.random(shape) if u is None else gen.random(out=u)
        keep = np.less(u, 1.0 - p, out=keep)
        if out is None:
            out = keep.astype(dtype)
        else:
            np.copyto(out, keep)
        return np.divide(out, dtype.type(1.0 - p), out=out)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad * ctx.mask


# ================================================================================================
# functions: what users call (they accept tensors, numpy arrays and numbers)
# ================================================================================================


def _number(a: TensorLike) -> TensorLike:
    """A plain number as the 0-d array numpy makes of it, for the units that read an input's
    shape or dtype (the others take numbers as they are); anything else is left as it is."""
    return np.asarray(a) if isinstance(a, (int, float, np.generic)) else a


def add(a: TensorLike, b: TensorLike) -> Tensor:
    return Add.apply(a, b)


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    return Sub.apply(a, b)


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    return Mul.apply(a, b)


def div(a: TensorLike, b: TensorLike) -> Tensor:
    return Div.apply(a, b)


def neg(a: TensorLike) -> Tensor:
    return Neg.apply(a)


def pow(a: TensorLike, p: float | np.number[Any]) -> Tensor:  # noqa: A001 - the name users expect
    """a ** p for a constant number p."""
    return Pow.apply(a, exponent(p))


def exp(a: TensorLike) -> Tensor:
    return Exp.apply(a)


def log(a: TensorLike) -> Tensor:
    return Log.apply(a)


def sin(a: TensorLike) -> Tensor:
    return Sin.apply(a)


def cos(a: TensorLike) -> Tensor:
    return Cos.apply(a)


def tanh(a: TensorLike) -> Tensor:
    return Tanh.apply(a)


def sigmoid(a: TensorLike) -> Tensor:
    return Sigmoid.apply(a)


def relu(a: TensorLike) -> Tensor:
    return ReLU.apply(a)


def leaky_relu(a: TensorLike, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(a, slope=negative_slope)


def gelu(a: TensorLike, approximate: str = "none") -> Tensor:
    return GELU.apply(_number(a), approximate=approximate)


def abs(a: TensorLike) -> Tensor:  # noqa: A001
    return Abs.apply(a)


def sqrt(a: TensorLike) -> Tensor:
    return Sqrt.apply(a)


def clip(a: TensorLike, min: ArrayLike | None = None, max: ArrayLike | None = None) -> Tensor:  # noqa: A002
    return Clip.apply(_number(a), lo=min, hi=max)


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    return Maximum.apply(a, b)


def minimum(a: TensorLike, b: TensorLike) -> Tensor:
    return Minimum.apply(a, b)


def where(cond: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    if isinstance(cond, Tensor):
        cond = cond.data
    return Where.apply(cond, a, b)


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    return MatMul.apply(a, b)


def sum(a: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Sum.apply(_number(a), axis=axis, keepdims=keepdims)


def mean(a: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Mean.apply(_number(a), axis=axis, keepdims=keepdims)


def max(a: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Max.apply(a, axis=axis, keepdims=keepdims)


def min(a: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Min.apply(a, axis=axis, keepdims=keepdims)


def reshape(a: TensorLike, *shape: int | Sequence[int]) -> Tensor:
    return Reshape.apply(_number(a), shape=shape_arg(shape))


def transpose(a: TensorLike, axes: Sequence[int] | None = None) -> Tensor:
    return Transpose.apply(a, axes=axes)


def concatenate(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    return Stack.apply(*tensors, axis=axis)


def softmax(a: TensorLike, axis: int = -1) -> Tensor:
    return Softmax.apply(_number(a), axis=axis)


def log_softmax(a: TensorLike, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(_number(a), axis=axis)


def linear(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None) -> Tensor:
    """x Wᵀ + b (the linear unit Σ of a layer), as ``torch.nn.functional.linear``."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
