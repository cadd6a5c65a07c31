"""Check autodiff against central differences, in float64.

For each input element x_j, (f(x + ε e_j) − f(x − ε e_j)) / 2ε approximates the column j of the
Jacobian of f; back-propagation gives the same Jacobian one output element at a time. The two
must agree to |autodiff − numeric| <= atol + rtol·|numeric| for every pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .errors import ChainruleError, GradcheckError
from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "central_differences", "numerical_jacobian", "autodiff_jacobian"]


def _to_float64(inputs: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """Copies of the inputs in float64; which of them are checked."""
    out: list[Any] = []
    checked: list[int] = []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor):
            if x.data.dtype.kind == "f":
                t = Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad)
                out.append(t)
                if x.requires_grad:
                    checked.append(i)
            else:
                out.append(x)
        elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
            out.append(Tensor(x.astype(np.float64)))
        else:
            out.append(x)
    if not checked:  # nothing marked: check every floating-point tensor input
        for i, x in enumerate(out):
            if isinstance(x, Tensor) and x.data.dtype.kind == "f":
                x.requires_grad = True
                checked.append(i)
    if not checked:
        raise ChainruleError("gradcheck: no floating-point tensor among the inputs to check")
    return out, checked


def _call(fn: Callable[..., Any], inputs: Sequence[Any]) -> Tensor:
    out = fn(*inputs)
    if isinstance(out, Tensor):
        return out
    raise ChainruleError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")


def central_differences(
    values: np.ndarray,
    indices: Iterable[int],
    evaluate: Callable[[], ArrayLike],
    eps: float = 1e-6,
) -> np.ndarray:
    """(evaluate() with values[i] + eps − with values[i] − eps) / 2 eps, for each flat index i.

    ``values`` is perturbed in place, one element at a time, and restored; ``evaluate()``
    returns a number or an array (copied, since it may be a view of ``values``). Returns an
    array of shape (len(indices), *evaluate()'s shape).
    """
    flat = values.reshape(-1)
    if not np.shares_memory(flat, values):
        raise ValueError("central_differences: values must be contiguous (perturbed in place)")
    rows = []
    for i in indices:
        orig = flat[i]
        flat[i] = orig + eps
        plus = np.array(evaluate(), dtype=np.float64)
        flat[i] = orig - eps
        minus = np.array(evaluate(), dtype=np.float64)
        flat[i] = orig
        rows.append((plus - minus) / (2 * eps))
    return np.array(rows)


def numerical_jacobian(
    fn: Callable[..., Tensor], inputs: Sequence[Any], index: int, eps: float = 1e-6
) -> np.ndarray:
    """d(outputs)/d(inputs[index]) by central differences, shape (n_out, n_in)."""
    x = inputs[index].data
    with no_grad():
        if x.size == 0:
            return np.zeros((_call(fn, inputs).data.size, 0))
        cols = central_differences(
            x, range(x.size), lambda: _call(fn, inputs).data.reshape(-1), eps
        )
    return cols.T


def autodiff_jacobian(
    fn: Callable[..., Tensor], inputs: Sequence[Any], indices: Sequence[int]
) -> dict[int, np.ndarray]:
    """d(outputs)/d(inputs[i]) by back-propagation, one output element at a time."""
    out = _call(fn, inputs)
    n_out = out.data.size
    jacs = {i: np.zeros((n_out, inputs[i].data.size)) for i in indices}
    for k in range(n_out):
        for i in indices:
            inputs[i].grad = None
        out = _call(fn, inputs)
        if not out.requires_grad:
            for i in indices:
                jacs[i][k] = 0.0
            continue
        seed = np.zeros(out.data.size, dtype=out.data.dtype)
        seed[k] = 1
        out.backward(seed.reshape(out.data.shape))
        for i in indices:
            g = inputs[i].grad
            if g is not None:
                jacs[i][k] = np.asarray(g, dtype=np.float64).reshape(-1)
    return jacs


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Tensor | ArrayLike,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Compare autodiff with central differences in float64; True, or raise GradcheckError.

    Parameters
    ----------
    fn : callable
        Takes the inputs and returns a Tensor (any shape: every output element is checked).
    *inputs : Tensor or ndarray
        Inputs with ``requires_grad=True`` are checked (all floating-point ones when none is
        marked). They are copied to float64 first; the originals are left untouched.
    eps, atol, rtol : float
        Step of the central difference, and the tolerance |a − n| <= atol + rtol·|n|.

    Notes
    -----
    The error names the input, the worst element's index, both values and the difference.
    """
    inputs64, checked = _to_float64(inputs)
    auto = autodiff_jacobian(fn, inputs64, checked)
    for i in checked:
        num = numerical_jacobian(fn, inputs64, i, eps=eps)
        a = auto[i]
        if not np.all(np.isfinite(num)) and np.array_equal(np.isfinite(num), np.isfinite(a)):
            finite = np.isfinite(num)
        else:
            finite = np.ones_like(num, dtype=bool)
        diff = np.where(finite, np.abs(a - num), 0.0)
        diff = np.where(np.isnan(diff), np.inf, diff)
        excess = diff - (atol + rtol * np.abs(np.where(finite, num, 0.0)))
        if np.any(excess > 0):
            k, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
            shape = inputs64[i].data.shape
            out_shape = np.shape(_call(fn, inputs64).data)
            elem = np.unravel_index(j, shape) if shape else ()
            oelem = np.unravel_index(k, out_shape) if out_shape else ()
            raise GradcheckError(
                f"gradcheck: input {i} (shape {shape}) element {tuple(int(v) for v in elem)}, "
                f"output element {tuple(int(v) for v in oelem)}: autodiff {a[k, j]:.10g} vs "
                f"central difference {num[k, j]:.10g} (difference {abs(a[k, j] - num[k, j]):.3g},"
                f" allowed {atol + rtol * abs(num[k, j]):.3g})"
            )
    return True
