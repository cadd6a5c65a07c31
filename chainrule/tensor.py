"""Tensor, the unit protocol and back-propagation.

A :class:`Tensor` is a numpy array (``.data``) plus what back-propagation needs: ``.grad`` and
``.requires_grad``, and, for a tensor that a unit made, the *record* of that unit application
(``._ctx``: which unit, which inputs, and what the unit saved for its backward).

A :class:`Unit` is one differentiable step with its forward value and its local derivative side
by side (see ``units.py``). ``Unit.apply`` runs the forward pass of one unit and records it.

:meth:`Tensor.backward` is back-propagation as the course notes describe it: start at the loss,
walk the record in reverse topological order, and let each unit multiply its own local term into
the gradient it receives and hand the product on to its inputs. A tensor used twice receives the
sum of both contributions (gradients accumulate with ``+=``), and so do leaves across calls.
"""

from __future__ import annotations

import builtins
import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Literal, SupportsFloat, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .errors import ChainruleError, ShapeError

if TYPE_CHECKING:
    from typing_extensions import Self

_F = TypeVar("_F", bound=Callable[..., Any])

#: What an index into a tensor may be: numpy's basic and advanced indexing (an integer tensor or
#: array, a boolean mask) and tuples of those.
Index = Union[int, slice, EllipsisType, None, np.ndarray, "Tensor", Sequence[Any], tuple[Any, ...]]
#: An axis argument of a reduction: one axis, several, or None for all of them.
Axis = int | tuple[int, ...] | list[int] | None
#: What a unit's backward returns: one gradient per input (a tuple), a bare array when the unit
#: has one input, None for an input that needs no gradient.
Grads = np.ndarray | Sequence[np.ndarray | None] | None

_counter = itertools.count(1)  # one clock for creation numbers and in-place versions
_last_change = 0  # the clock when a tensor was last changed in place (see bump_version)


def bump_version(t: Tensor) -> None:
    """Note that ``t``'s values were changed in place (optimizer steps, in-place operators).

    A tensor's ``_version`` is the clock reading of its latest in-place change; a unit that ran
    before it (a smaller creation number) and saved its array would compute a wrong gradient,
    which backward detects and refuses."""
    global _last_change
    _last_change = t._version = next(_counter)


#: a count of changes that a compiled step's guards read (``chainrule.compile``): a tensor's
#: array replaced or its ``requires_grad`` set, a module's attribute, parameter, buffer, child
#: or hook added, replaced or removed. While it stands still, nothing of the kind happened.
changes = [0]


def wrap_array(a: np.ndarray) -> Tensor:
    """A plain tensor (no gradient, no record) around the array ``a`` itself, built without
    ``Tensor.__init__``'s conversions (for arrays already made by numpy)."""
    t = Tensor.__new__(Tensor)
    t._data = a
    t.grad = None
    t._ctx = None
    t._retain = False
    t.name = None
    t._rg = False
    t._version = 0
    return t


def bump_versions(ts: Iterable[Tensor]) -> None:
    """``bump_version`` for several tensors changed together (one clock reading for all)."""
    global _last_change
    v = next(_counter)
    for t in ts:
        t._version = v
    _last_change = v


__all__ = ["Tensor", "Unit", "Context", "tensor", "no_grad", "enable_grad", "is_grad_enabled"]


# ------------------------------------------------------------------------------------------------
# recording on/off
# ------------------------------------------------------------------------------------------------


class _GradMode(threading.local):
    """Whether recording is on, per thread (as PyTorch's grad mode): ``no_grad`` in one thread
    leaves every other thread recording."""

    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when unit applications are being recorded for back-propagation (in this thread)."""
    return _grad_mode.enabled


class no_grad:
    """Context manager (and decorator): nothing computed inside is recorded (in this thread).

    Use it for evaluation and for optimizer updates; it skips all graph-building work.
    """

    _prev: bool

    def __enter__(self) -> Self:
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = False
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _grad_mode.enabled = self._prev
        return False

    def __call__(self, fn: _F) -> _F:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper  # type: ignore[return-value]  # same arguments and result as fn


class enable_grad(no_grad):
    """Context manager: record again inside an enclosing ``no_grad`` block."""

    def __enter__(self) -> Self:
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = True
        return self


# ------------------------------------------------------------------------------------------------
# the gradient helper shared by every unit: sum a gradient back to a broadcast input's shape
# ------------------------------------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    If ``a`` of shape (3, 1) was added to ``b`` of shape (4,), the output is (3, 4); each element
    of ``a`` fed 4 outputs and each element of ``b`` fed 3, so their gradients are sums.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:  # e.g. a scalar () input: sum everything left
        grad = grad.reshape(shape)
    return grad


# ------------------------------------------------------------------------------------------------
# Tensor
# ------------------------------------------------------------------------------------------------


def _as_array(data: Tensor | ArrayLike, dtype: DTypeLike | None = None) -> np.ndarray:
    """numpy arrays keep their dtype; Python numbers and lists become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float32)
    return arr


class Tensor:
    """A numpy array with a gradient and the record of the unit that made it.

    Parameters
    ----------
    data : array-like
        A numpy array keeps its dtype (and is not copied); a Python number or list becomes float32.
    requires_grad : bool
        Whether back-propagation should compute ``.grad`` for this tensor (floating dtypes only).

    Attributes
    ----------
    data : ndarray
    grad : ndarray or None
        dL/d(this tensor), same shape as ``data``, filled by :meth:`backward` (leaves only, unless
        :meth:`retain_grad` was called).
    """

    __slots__ = (
        "_data",
        "grad",
        "_rg",
        "_ctx",
        "_retain",
        "name",
        "_seq",
        "_version",
        "__weakref__",
    )
    __array_priority__ = 1000  # numpy defers to our operators: ndarray + Tensor -> Tensor

    _data: np.ndarray
    grad: np.ndarray | None
    name: str | None
    _rg: bool
    _ctx: Context | None
    _retain: bool
    _seq: int  # creation number, set on a tensor that a recorded unit made
    _version: int

    def __init__(
        self,
        data: Tensor | ArrayLike,
        requires_grad: bool = False,
        dtype: DTypeLike | None = None,
        name: str | None = None,
    ) -> None:
        self._data = _as_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._retain = False
        self.name = name
        self._rg = False
        self._version = 0
        if requires_grad:
            self.requires_grad = True

    # --- data: a property so that replacing the array counts as a change -------------------------
    @property
    def data(self) -> np.ndarray:
        """The values, a numpy array.

        ``t.data = array`` replaces them and counts as an in-place change (the tensor's version
        is bumped, as optimizer steps and in-place operators do). Writing *into* the array,
        ``t.data[...] = v``, goes straight to numpy: like PyTorch's ``.data`` it is not seen by
        autograd (no version bump, no check in backward), so do it only under ``no_grad`` on
        values no recorded graph still needs.
        """
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        if value is not self._data:
            self._data = value
            bump_version(self)
            changes[0] += 1

    # --- requires_grad: a property so that an integer tensor can refuse it ----------------------
    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if value and self.data.dtype.kind not in "fc":
            raise ChainruleError(
                f"requires_grad: a tensor of dtype {self.data.dtype} cannot require grad; "
                "only floating-point tensors can (convert with .astype(np.float32) first)"
            )
        self._rg = value
        changes[0] += 1

    def requires_grad_(self, value: bool = True) -> Tensor:
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def unit(self) -> type[Unit] | None:
        """The Unit class that produced this tensor (None for a leaf)."""
        return None if self._ctx is None else self._ctx.unit

    # --- numpy-like properties ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def item(self) -> int | builtins.float | bool:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def tolist(self) -> Any:  # nested lists of Python numbers
        return self.data.tolist()

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def detach(self) -> Tensor:
        """The same array, cut from the record (shares memory, never requires grad)."""
        return Tensor(self.data)

    def astype(self, dtype: DTypeLike) -> Tensor:
        return _PRIMITIVES["cast"].apply(self, dtype=np.dtype(dtype))

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor after ``backward()``."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, threshold=20, edgeitems=3, prefix="tensor(")
        extra: list[str] = []
        if self.data.dtype != np.float32:
            extra.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extra.append(f"unit={self._ctx.unit.name}")
        elif self._rg:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> builtins.float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    # --- back-propagation -----------------------------------------------------------------------
    def backward(self, grad: Tensor | ArrayLike | None = None, retain_graph: bool = False) -> None:
        """Back-propagate from this tensor: fill ``.grad`` of every leaf that requires grad.

        Parameters
        ----------
        grad : array-like, optional
            dL/d(this tensor), of this tensor's shape. May be left out only when this tensor
            holds a single element (a loss): then it is 1.
        retain_graph : bool
            Keep the graph for another walk. By default, as in PyTorch, each unit's saved
            values and its links to its inputs are freed as soon as its backward has run (the
            forward pass's intermediate arrays are released during the walk, not when the loss
            is dropped), and a second backward through the same graph is an error instead of
            silently doubling the gradients. Drawing or explaining the graph after backward
            (``cr.viz.graph``) also needs ``retain_graph=True``.

        Raises
        ------
        ChainruleError
            When a value a unit saved was changed in place after the unit ran (an optimizer
            step or an in-place operator between forward and backward), or when the graph was
            already freed by an earlier backward.
        """
        if not self._rg:
            raise ChainruleError(
                "backward: this tensor does not require grad (no input of the computation "
                "had requires_grad=True, or it was computed inside no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise ChainruleError(
                    f"backward: the tensor has shape {self.data.shape}; back-propagation starts "
                    "from a scalar (a loss), so pass grad= of the same shape for a non-scalar"
                )
            g = np.ones_like(self.data)
        else:
            g = _as_array(grad, self.data.dtype)
            if g.shape != self.data.shape:
                raise ShapeError(
                    f"backward: grad has shape {g.shape} but the tensor has shape {self.data.shape}"
                )
        _backprop(self, g, retain_graph=retain_graph)

    # --- in-place operators: PyTorch's rules, and every change counted ---------------------------
    def _inplace(self, other: Tensor | ArrayLike, ufunc: Callable[..., Any], symbol: str) -> Self:
        if _grad_mode.enabled:
            if self._rg and self._ctx is None:
                raise ChainruleError(
                    f"a leaf tensor that requires grad is used in an in-place operation "
                    f"(x {symbol}= ...): that would change a value the gradient is taken with "
                    f"respect to; write x = x {symbol} ... for a new tensor, or do it inside "
                    "no_grad() (as an update step)"
                )
            if self._rg or (isinstance(other, Tensor) and other._rg):
                raise ChainruleError(
                    f"in-place x {symbol}= ... on a tensor that is part of a recorded "
                    f"computation is not supported; write y = x {symbol} ... (a new tensor)"
                )
        value = other.data if isinstance(other, Tensor) else other
        try:
            ufunc(self.data, value, out=self.data, casting="same_kind")
        except (ValueError, TypeError) as err:
            raise ShapeError(
                f"in-place {symbol}=: a tensor of shape {self.data.shape} and dtype "
                f"{self.data.dtype} cannot take {np.shape(value)}: {err}"
            ) from None
        bump_version(self)
        return self

    def __iadd__(self, other: Tensor | ArrayLike) -> Self:
        return self._inplace(other, np.add, "+")

    def __isub__(self, other: Tensor | ArrayLike) -> Self:
        return self._inplace(other, np.subtract, "-")

    def __imul__(self, other: Tensor | ArrayLike) -> Self:
        return self._inplace(other, np.multiply, "*")

    def __itruediv__(self, other: Tensor | ArrayLike) -> Self:
        return self._inplace(other, np.true_divide, "/")

    def copy_(self, src: Tensor | ArrayLike) -> Self:
        """Copy ``src``'s values into this tensor in place (counted, like every in-place change)."""
        return self._inplace(
            src, lambda a, b, out, casting: np.copyto(out, b, casting=casting), "copy_ "
        )

    def zero_(self) -> Self:
        return self._inplace(0, lambda a, b, out, casting: out.fill(0), "zero_ ")

    # --- operators and methods: each runs one unit of units.py ------------------------------
    # (reached through _PRIMITIVES, which each unit of units.py joins by being defined, so that
    # this module does not import units.py, which imports it)
    def __add__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["add"].apply(self, other)

    def __radd__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["add"].apply(other, self)

    def __sub__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["sub"].apply(self, other)

    def __rsub__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["sub"].apply(other, self)

    def __mul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["mul"].apply(self, other)

    def __rmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["mul"].apply(other, self)

    def __truediv__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["div"].apply(self, other)

    def __rtruediv__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["div"].apply(other, self)

    def __matmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["matmul"].apply(self, other)

    def __rmatmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["matmul"].apply(other, self)

    def __pow__(self, p: builtins.float | np.number[Any]) -> Tensor:
        return _PRIMITIVES["pow"].apply(self, exponent(p))

    def __rpow__(self, c: builtins.float | np.number[Any]) -> Tensor:
        return _PRIMITIVES["rpow"].apply(c, self)

    def __neg__(self) -> Tensor:
        return _PRIMITIVES["neg"].apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _PRIMITIVES["abs"].apply(self)

    def __getitem__(self, index: Index) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return _PRIMITIVES["getitem"].apply(self, index=index)

    # comparisons give a constant (boolean) tensor: nothing to differentiate
    def __lt__(self, other: Tensor | ArrayLike) -> Tensor:
        return Tensor(np.less(self.data, _plain(other)))

    def __le__(self, other: Tensor | ArrayLike) -> Tensor:
        return Tensor(np.less_equal(self.data, _plain(other)))

    def __gt__(self, other: Tensor | ArrayLike) -> Tensor:
        return Tensor(np.greater(self.data, _plain(other)))

    def __ge__(self, other: Tensor | ArrayLike) -> Tensor:
        return Tensor(np.greater_equal(self.data, _plain(other)))

    def exp(self) -> Tensor:
        return _PRIMITIVES["exp"].apply(self)

    def log(self) -> Tensor:
        return _PRIMITIVES["log"].apply(self)

    def sin(self) -> Tensor:
        return _PRIMITIVES["sin"].apply(self)

    def cos(self) -> Tensor:
        return _PRIMITIVES["cos"].apply(self)

    def tanh(self) -> Tensor:
        return _PRIMITIVES["tanh"].apply(self)

    def sigmoid(self) -> Tensor:
        return _PRIMITIVES["sigmoid"].apply(self)

    def relu(self) -> Tensor:
        return _PRIMITIVES["relu"].apply(self)

    def abs(self) -> Tensor:
        return _PRIMITIVES["abs"].apply(self)

    def sqrt(self) -> Tensor:
        return _PRIMITIVES["sqrt"].apply(self)

    def clip(  # noqa: A002 - numpy's names
        self, min: ArrayLike | None = None, max: ArrayLike | None = None
    ) -> Tensor:
        return _PRIMITIVES["clip"].apply(self, lo=min, hi=max)

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return _PRIMITIVES["sum"].apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return _PRIMITIVES["mean"].apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return _PRIMITIVES["max"].apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return _PRIMITIVES["min"].apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return _PRIMITIVES["reshape"].apply(self, shape=shape_arg(shape))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        return _PRIMITIVES["transpose"].apply(self, axes=shape_arg(axes) or None)

    @property
    def T(self) -> Tensor:
        return _PRIMITIVES["transpose"].apply(self, axes=None)

    def matmul(self, other: Tensor | ArrayLike) -> Tensor:
        return _PRIMITIVES["matmul"].apply(self, other)

    def softmax(self, axis: int = -1) -> Tensor:
        return _PRIMITIVES["softmax"].apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return _PRIMITIVES["log_softmax"].apply(self, axis=axis)

    def argmax(self, axis: int | None = None) -> np.ndarray:
        return np.asarray(self.data.argmax(axis=axis))


#: What the functions and operators accept where a tensor goes: a tensor, or anything numpy turns
#: into an array (a number, a list, an ndarray), which is then a constant.
TensorLike = Tensor | ArrayLike


def _plain(x: Tensor | ArrayLike) -> ArrayLike:
    return x.data if isinstance(x, Tensor) else x


def shape_arg(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` alike (reshape's shape, transpose's axes)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def exponent(p: SupportsFloat) -> int | float:
    """The constant exponent of ``a ** p``: one number (an int stays an int)."""
    if isinstance(p, Tensor) or (isinstance(p, np.ndarray) and p.ndim > 0):
        raise ShapeError("pow: the exponent must be one number (a scalar), got an array")
    return float(p) if not isinstance(p, (int, np.integer)) else int(p)


def tensor(
    data: Tensor | ArrayLike, requires_grad: bool = False, dtype: DTypeLike | None = None
) -> Tensor:
    """Make a tensor: ``cr.tensor(10.0, requires_grad=True)``.

    numpy arrays keep their dtype; Python numbers and lists become float32 unless ``dtype`` says.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _store_grad(t: Tensor, g: np.ndarray, handed: set[int]) -> None:
    """Accumulate ``g`` into ``t.grad`` (a leaf, or a tensor with retain_grad), as PyTorch does."""
    if t.grad is None:
        # never let two tensors share one gradient array, nor keep a read-only view
        t.grad = g.copy() if (id(g) in handed or not g.flags.writeable) else g
    else:
        t.grad = t.grad + g
    handed.add(id(t.grad))


def _freed_error(t: Tensor, traced: bool = False) -> ChainruleError:
    """A walk that meets a unit whose record an earlier backward freed: PyTorch's rule (the
    graph is spent after one backward unless retain_graph=True), so that gradients are not
    silently doubled. ``traced``: the walk of graph()/explain(), which cannot go on either."""
    name = getattr(t._ctx, "unit", None)
    name = name.name if name is not None else "a unit"
    if traced:
        return ChainruleError(
            f"cannot walk the graph through {name}: backward() already freed what its units "
            "saved (as PyTorch does); draw or explain the graph before calling backward(), "
            "or call backward(retain_graph=True)"
        )
    return ChainruleError(
        f"backward through {name} a second time: the graph was already back-propagated "
        "through and freed (its gradients are in .grad); call backward(retain_graph=True) the "
        "first time to back-propagate through the same graph twice, or run the forward pass "
        "again"
    )


def _free(ctx: Context) -> None:
    """Release what one unit application kept for its backward (a non-retaining walk, once its
    backward ran): its saved arrays and its links to its inputs, so the intermediate tensors
    nobody else holds are freed during the walk. Only the unit (for messages) and the mark that
    the record is spent stay."""
    unit = ctx.unit
    d = ctx.__dict__
    d.clear()
    d["unit"] = unit
    d["freed"] = True
    d["inputs"] = d["slots"] = ()


def _is_freed(t: object) -> bool:
    """True when ``t`` was made by a unit whose record a backward has freed (see _free)."""
    ctx = getattr(t, "_ctx", None)
    return ctx is not None and "freed" in ctx.__dict__


def _check_versions(t: Tensor) -> None:
    """Called when some tensor changed in place after ``t`` was computed: refuse if the unit
    that made ``t`` saved the array of a tensor (an input, or ``t`` itself) that changed."""
    ctx = t._ctx
    assert ctx is not None  # only a recorded tensor is checked
    saved: list[np.ndarray] = []
    for v in ctx.__dict__.values():
        if isinstance(v, np.ndarray):
            saved.append(v)
        elif isinstance(v, (tuple, list)):
            saved.extend(a for a in v if isinstance(a, np.ndarray))
    candidates: list[tuple[int | None, Tensor]] = [
        (i, x) for i, x in enumerate(ctx.inputs) if isinstance(x, Tensor)
    ]
    candidates.append((None, t))
    for i, x in candidates:
        if getattr(x, "_version", 0) > t._seq and any(
            np.may_share_memory(a, x.data) for a in saved
        ):
            what = "its output" if i is None else f"its input {i + 1}"
            kind = type(x).__name__
            raise ChainruleError(
                f"backward through {ctx.unit.name}: one of the values it needs for the gradient "
                f"was changed in place after it ran ({what}, a {kind} of shape {x.data.shape}, "
                "modified by an optimizer step, an in-place operator, copy_ or .data = ...); "
                "the gradient would be wrong. Call backward before optimizer.step(), or compute "
                "the forward pass again after the change"
            )


def _backprop(
    root: Tensor,
    grad: np.ndarray,
    trace: dict[str, dict[Any, np.ndarray]] | None = None,
    retain_graph: bool = True,
) -> None:
    """Walk the record backwards from ``root``; each unit turns dL/d(output) into dL/d(inputs).

    Every recorded tensor carries a creation number, and a unit's inputs always exist before
    its output, so taking the tensors with the largest number first is a reverse topological
    order: a tensor is processed only once every unit that used it has handed its gradient
    back. A heap gives that order in one pass, without a separate sort and without recursion.
    Leaves are collected and receive their summed gradient at the end.

    With ``trace`` (a dict), nothing is stored on the tensors: ``trace['grads']`` gets every
    tensor's gradient by ``id`` and ``trace['handed']`` each unit's hand-back to its input
    ``k`` by ``(id(output), k)`` — what the graph drawing shows on every box and arrow.
    """
    handed = {id(grad)}  # arrays already stored somewhere (or the caller's): never store twice
    if trace is not None:
        seen, handed_back = trace.setdefault("grads", {}), trace.setdefault("handed", {})
    if root._ctx is None:
        if trace is None:
            _store_grad(root, grad, handed)
        else:
            seen[id(root)] = grad
        return
    free = trace is None and not retain_graph
    grads = {root: grad}
    heap = [(-root._seq, root)]
    leaves = []
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        t = pop(heap)[1]
        g = grads.pop(t)
        ctx = t._ctx
        assert ctx is not None  # the heap holds only tensors that a unit made
        if "freed" in ctx.__dict__:  # an earlier backward walked (and freed) this record
            raise _freed_error(t, trace is not None)
        if trace is not None:
            seen[id(t)] = g
        elif t._retain:
            _store_grad(t, g, handed)
        if _last_change > t._seq:  # something changed in place since this unit ran
            _check_versions(t)
        # a user's unit may return anything here: checked and normalised just below
        in_grads: Any = ctx.unit.backward(ctx, g)
        if type(in_grads) is not tuple:
            in_grads = tuple(in_grads) if isinstance(in_grads, list) else (in_grads,)
        if len(in_grads) != len(ctx.inputs):
            raise ChainruleError(
                f"{ctx.unit.name}: backward returned {len(in_grads)} gradients for "
                f"{len(ctx.inputs)} inputs (return one per input, None where not needed)"
            )
        for i, inp in ctx.slots:
            ig = in_grads[i]
            if ig is None:
                continue
            data = inp._data
            if type(ig) is not np.ndarray:
                ig = np.asarray(ig)
            if ig.shape != data.shape:
                try:
                    ig = unbroadcast(ig, data.shape)
                except ValueError:
                    raise ShapeError(
                        f"{ctx.unit.name}: backward gave a gradient of shape {ig.shape} for an "
                        f"input of shape {data.shape}"
                    ) from None
            if ig.dtype != data.dtype:
                ig = ig.astype(data.dtype)
            if trace is not None:
                handed_back[(id(t), i)] = ig
            prev = grads.get(inp)
            if prev is None:
                grads[inp] = ig
                if inp._ctx is None:
                    leaves.append(inp)
                else:
                    push(heap, (-inp._seq, inp))
            else:
                grads[inp] = prev + ig
        if free:  # PyTorch's rule: a walked graph is freed unless retain_graph=True
            _free(ctx)
    for leaf in leaves:
        if trace is None:
            _store_grad(leaf, grads[leaf], handed)
        else:
            seen[id(leaf)] = grads[leaf]


# ------------------------------------------------------------------------------------------------
# Units
# ------------------------------------------------------------------------------------------------


class Context:
    """What one unit application keeps for its backward.

    ``unit`` and ``inputs`` are the record; ``needs_input_grad`` says which inputs want a
    gradient (a backward may skip the others); anything else a forward stores on ``ctx`` (for
    example ``ctx.out = y``) is there for its backward.
    """

    unit: type[Unit]
    inputs: tuple[Any, ...]  # tensors, and the constants (numbers, arrays) given with them
    needs_input_grad: tuple[bool, ...]
    slots: list[tuple[int, Tensor]]  # (position, input) of each input that needs a gradient
    saved_tensors: tuple[Any, ...]
    freed: bool

    if TYPE_CHECKING:
        # a forward keeps whatever its backward needs on ctx (ctx.x = x, ctx.out = y)
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved_tensors = arrays

    def __repr__(self) -> str:
        unit = getattr(self, "unit", None)
        return f"<Context of {unit.name if unit else '?'}>"


#: The primitives of units.py by name ('add', 'matmul', ...): Tensor's operators run them. Each
#: joins by being defined (Unit.__init_subclass__), so this module need not import units.py.
_PRIMITIVES: dict[str, type[Unit]] = {}
_PRIMITIVES_HOME = __name__.rpartition(".")[0] + ".units"


class Unit:
    """A differentiable step: forward value and local derivative, side by side.

    Subclass it with two static methods::

        class Cube(cr.Unit):
            @staticmethod
            def forward(ctx, x):            # numpy arrays in, a numpy array out
                ctx.x = x
                return x ** 3

            @staticmethod
            def backward(ctx, grad):        # dL/d(out) in, dL/d(each input) out
                return grad * 3 * ctx.x ** 2

        y = Cube.apply(t)                   # t: a Tensor (numpy arrays and numbers are constants)

    ``backward`` returns one gradient per input, as a tuple (a bare array when there is one
    input; ``None`` for an input that needs none). A gradient may have the broadcast shape: it is
    summed back to the input's shape for you. Keyword arguments of ``apply`` (an axis, a shape)
    are passed to ``forward`` and are not differentiated.
    """

    name = "unit"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__.lower()
        if cls.__module__ == _PRIMITIVES_HOME:
            _PRIMITIVES[cls.name] = cls

    @staticmethod
    def forward(ctx: Context, *arrays: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        """numpy arrays in, a numpy array out. A constant given beside the tensors arrives as it
        was given (a Python number stays a number, so that float32 stays float32 under numpy's
        promotion rules; a list becomes an array); the units type their inputs as arrays."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:  # pragma: no cover - abstract
        """dL/d(output) in, dL/d(each input) out."""
        raise NotImplementedError

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        """The message for a forward that failed on shapes (units may say it better)."""
        shapes = " and ".join(str(getattr(a, "shape", ())) for a in arrays)
        return f"{cls.name}: inputs of shapes {shapes} do not fit: {err}"

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any) -> Tensor:
        """Run this unit's forward on ``inputs`` and, when a gradient is needed, record it."""
        arrays: list[Any] = []
        needs: list[bool] = []
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x._data)
                needs.append(x._rg)
            else:
                arrays.append(_as_array(x) if isinstance(x, (list, tuple)) else x)
                needs.append(False)
        need = True in needs and _grad_mode.enabled
        ctx = Context()
        if need:
            ctx.needs_input_grad = tuple(needs)
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
        except ValueError as err:
            if isinstance(err, ChainruleError):
                raise
            raise ShapeError(cls.shape_error(arrays, kwargs, err)) from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        t = Tensor.__new__(Tensor)
        t._data = out
        t.grad = None
        t._retain = False
        t.name = None
        t._version = 0
        if need and out.dtype.kind == "f":
            ctx.unit = cls
            ctx.inputs = inputs
            ctx.slots = [(i, x) for i, (x, n) in enumerate(zip(inputs, needs, strict=True)) if n]
            t._rg = True
            t._ctx = ctx
            t._seq = next(_counter)
        else:
            t._rg = False
            t._ctx = None
        return t
