"""``cr.compile``: trace a training step once, then replay it without the framework around it.

A training step in eager mode spends as much time in Python (modules, ``Unit.apply``, ``Tensor``
objects, the back-propagation walk, per-parameter optimizer loops) as in numpy on a small network.
``cr.compile(step)`` runs ``step`` eagerly while *recording* what it does:

- every unit application (``Unit.apply``): the unit, where each input came from (an argument of
  ``step``, a parameter or other leaf tensor, an earlier unit's output, or a constant), its
  keyword arguments and which inputs wanted a gradient;
- every ``Tensor.backward()`` (from which output, with which starting gradient);
- every optimizer ``zero_grad()``/``step()``, ``Module.zero_grad()`` and scheduler ``step()``
  call, in order.

When a second call with the same argument shapes and dtypes records the same thing (same units,
same sources, same constants, same tensors), the record becomes a *program*: a generated Python
function that calls each unit's forward and backward directly, in the recorded order, on numpy
arrays, and calls the recorded optimizer methods themselves. Later calls with that signature run
the program. Units listed in ``PLANS`` (or that define a ``replay_plan`` class method) run on
buffers allocated once (``out=``, in place); any other unit runs its own ``forward``/``backward``
with a fresh ``Context``, so a new unit works under ``compile`` without extra code.

What the program leaves behind is what the eager step would have left: ``.grad`` of every leaf,
the optimizer's state and the parameters hold the same numbers (the same numpy calls, in the same
order). Hyperparameters are read at every call (the optimizer's own ``step`` runs), so learning-rate
schedulers work. Parameters are read through ``param.data`` at every call, so ``param.data =
array`` keeps its meaning.

A replayed call pays one generated check (``accepts``): its arguments' types, shapes and
dtypes, the grad mode, and a count of changes to modules and tensors (``tensor.changes``); the
full guards below are read only when that count moved. Guards send a call back to eager
tracing when: an argument's shape, dtype or ``requires_grad``
differs (a new signature: up to ``cache_size`` programs are kept, e.g. the short last batch of an
epoch), the grad mode differs, a module used by the step switched between ``train()`` and
``eval()``, a leaf tensor's ``requires_grad``, shape or dtype changed, or a planned unit's
assumptions fail for this call's values (labels out of range). A step whose two recordings differ
(data-dependent control flow, a random draw or an in-place update outside any unit) is not
replayed: it keeps running eagerly. Dropout draws its mask, and batch norm updates its running
statistics, inside their units, so both replay (from the same generator: the same masks).

What is *not* replayed: Python code in ``step`` other than the recorded calls (a ``print``, a list
``append``, ``loss.item()``): it runs while tracing only. Values returned by ``step`` must be
tensors, arrays, numbers that do not change, or tuples/lists/dicts of them; returned tensors are
fresh copies holding the values and no record (``backward`` must be called inside ``step``).
Gradient arrays left in ``.grad`` may be reused by the next call's backward: copy a ``.grad``
you want to keep past the next call.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import Counter, OrderedDict

import numpy as np

from . import units as U
from .tensor import Context, Tensor, Unit, is_grad_enabled, unbroadcast

__all__ = ["compile", "CompiledFunction", "PLANS"]

_LOCK = threading.RLock()
_LOCAL = threading.local()  # .recorder: the trace running in this thread (None otherwise)
_PATCH_DEPTH = [0]  # traces running in any thread (the patches stay while > 0)
_SAVED: dict = {}


class _Unreplayable(Exception):
    """The step did something a program cannot repeat (said why): it keeps running eagerly."""


class _Retrace(Exception):
    """A planned unit cannot take this call's values: run this call eagerly."""


# ------------------------------------------------------------------------------------------------
# recording: the patches that are in place while a trace runs (eager mode pays nothing)
# ------------------------------------------------------------------------------------------------


def _recorder():
    return getattr(_LOCAL, "recorder", None)


def _install_patches():
    from .nn.module import Module
    from .optim.lr_scheduler import LRScheduler
    from .optim.optimizer import Optimizer

    if _PATCH_DEPTH[0] == 0:
        _SAVED["apply"] = Unit.__dict__["apply"]
        _SAVED["backward"] = Tensor.__dict__["backward"]
        _SAVED["call"] = Module.__dict__["__call__"]
        from .optim.lr_scheduler import ReduceLROnPlateau

        calls = [
            (Optimizer, "zero_grad"),
            (Optimizer, "step"),
            (Module, "zero_grad"),
            (LRScheduler, "step"),
            (ReduceLROnPlateau, "step"),
            (Tensor, "zero_grad"),
        ]
        _SAVED["calls"] = [(c, n, c.__dict__[n]) for c, n in calls]
        orig_apply = _SAVED["apply"].__func__
        orig_backward = _SAVED["backward"]
        orig_call = _SAVED["call"]

        def apply(cls, *inputs, **kwargs):
            rec = _recorder()
            if rec is None or rec.inside:
                return orig_apply(cls, *inputs, **kwargs)
            grad_on = is_grad_enabled()
            out = orig_apply(cls, *inputs, **kwargs)
            rec.unit(cls, inputs, kwargs, out, grad_on)
            return out

        def backward(self, grad=None, *args, **kwargs):
            rec = _recorder()
            if rec is None or rec.inside:
                return orig_backward(self, grad, *args, **kwargs)
            if args or kwargs:
                rec.fail("backward() was called with options the replay does not know")
            rec.backward(self, grad)
            rec.inside += 1
            try:
                return orig_backward(self, grad)
            finally:
                rec.inside -= 1

        def module_call(self, *args, **kwargs):
            rec = _recorder()
            if rec is not None and not rec.inside:
                rec.module(self)
            return orig_call(self, *args, **kwargs)

        Unit.apply = classmethod(apply)
        Tensor.backward = backward
        Module.__call__ = module_call
        for owner, name, orig in _SAVED["calls"]:
            setattr(owner, name, _recording_method(orig, name))
    _PATCH_DEPTH[0] += 1


def _recording_method(orig, name):
    def method(self, *args, **kwargs):
        rec = _recorder()
        if rec is None or rec.inside:
            return orig(self, *args, **kwargs)
        if name == "step" and (args and args[0] is not None or kwargs.get("closure") is not None):
            rec.fail(f"{type(self).__name__}.step(closure) cannot be replayed")
        rec.call(orig, self, args, kwargs)
        rec.inside += 1
        try:
            return orig(self, *args, **kwargs)
        finally:
            rec.inside -= 1

    method.__name__ = name
    method.__doc__ = orig.__doc__
    method.__wrapped__ = orig
    return method


def _SAVED_STEP(cls):
    """The optimizer's own ``step`` (not the recording wrapper)."""
    f = cls.__dict__["step"]
    return getattr(f, "__wrapped__", f)


def _remove_patches():
    from .nn.module import Module

    _PATCH_DEPTH[0] -= 1
    if _PATCH_DEPTH[0] == 0:
        Unit.apply = _SAVED["apply"]
        Tensor.backward = _SAVED["backward"]
        Module.__call__ = _SAVED["call"]
        for owner, name, orig in _SAVED["calls"]:
            setattr(owner, name, orig)
        _SAVED.clear()


# sources of a value: ("arg", k) the array of argument k, ("out", j) output of unit event j,
# ("leaf", m) the m-th leaf tensor (read .data at each call), ("ref", m) the m-th persistent
# array (read as is), ("const", value) a constant captured by value.


class _Trace:
    """What one eager run of the step did, with every value's source."""

    def __init__(self, args):
        self.inside = 0
        self.events = []  # ("unit", ...), ("backward", ...), ("call", ...)
        self.modules = {}  # id -> module called while tracing
        self.leaves = []  # tensors read through .data
        self.leaf_ids = {}
        self.refs = []  # persistent arrays read as they are
        self.ref_ids = {}
        self.src = {}  # id(ndarray) -> source
        self.tsrc = {}  # id(Tensor)  -> source
        # outputs and the tensors that hold them are watched, not kept: when one dies, its id
        # leaves the tables at once (a later object with the same id is not mistaken for it),
        # so the traced step frees its activations during backward as the eager one does
        self.watch = []  # weak references with the callbacks that drop dead ids
        self.n_units = 0
        self.made = []  # weak references to the output tensors, by unit event
        self.problem = None
        self.arg_tensors = {}
        self.arg_kinds = [
            "t" if isinstance(a, Tensor) else "a" if isinstance(a, np.ndarray) else None
            for a in args
        ]
        for k, a in enumerate(args):
            if isinstance(a, Tensor):
                self.tsrc[id(a)] = ("argt", k)
                self.src.setdefault(id(a.data), ("arg", k))
                self.arg_tensors[k] = a
            elif isinstance(a, np.ndarray):
                self.src.setdefault(id(a), ("arg", k))

    def finish(self):
        """Drop what only the recording needed, and the record itself: the tensors the step
        made lose their link to the units that made them (as the replayed steps' results have
        none), so that the step's activations are freed now, not when the caller drops them."""
        for ref in self.made:
            out = ref()
            if out is not None and out._ctx is not None:
                out._ctx = None
                out._rg = False
        self.made = self.watch = None
        self.src = self.tsrc = self.arg_tensors = None

    def _map(self, table, obj, source):
        """``table[id(obj)] = source`` while ``obj`` lives."""
        key = id(obj)
        table[key] = source

        def gone(_ref, table=table, key=key):
            if table.get(key) is source:
                del table[key]

        self.watch.append(weakref.ref(obj, gone))

    def fail(self, why):
        if self.problem is None:
            self.problem = why

    # --- sources --------------------------------------------------------------------------------
    def _array_source(self, a):
        s = self.src.get(id(a))
        if s is not None:
            return s
        m = self.ref_ids.get(id(a))
        if m is None:
            m = self.ref_ids[id(a)] = len(self.refs)
            self.refs.append(a)
        return ("ref", m)

    def source(self, x):
        if isinstance(x, Tensor):
            s = self.tsrc.get(id(x))
            if s is not None:
                return s
            d = self.src.get(id(x.data))
            if d is not None and not x._rg:
                return d  # a fresh wrapper of a known array (detach, identity)
            m = self.leaf_ids.get(id(x))
            if m is None:
                m = self.leaf_ids[id(x)] = len(self.leaves)
                self.leaves.append(x)
            return ("leaf", m)
        if isinstance(x, np.ndarray):
            return self._array_source(x)
        return ("const", x)

    # --- events ---------------------------------------------------------------------------------
    def unit(self, cls, inputs, kwargs, out, grad_on):
        j = self.n_units
        self.n_units += 1
        srcs = tuple(self.source(x) for x in inputs)
        needs = tuple(isinstance(x, Tensor) and x._rg for x in inputs)
        kw = tuple(
            sorted(
                (k, self.source(v) if isinstance(v, (np.ndarray, Tensor)) else ("const", v))
                for k, v in kwargs.items()
            )
        )
        recorded = out._ctx is not None
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        self.events.append(
            (
                "unit",
                j,
                cls,
                srcs,
                kw,
                needs if recorded else None,
                tuple(np.shape(a) for a in arrays),
                out.data.shape,
                out.data.dtype,
                tuple(None if a is None else np.asarray(a).dtype for a in arrays),
            )
        )
        self.made.append(weakref.ref(out))
        self._map(self.tsrc, out, ("out", j))
        self._map(self.src, out.data, ("out", j))
        if out._retain:
            self.fail("retain_grad() on an intermediate tensor")

    def backward(self, root, grad):
        rs = self.source(root)
        gs = None if grad is None else self.source(grad)
        self.events.append(("backward", rs, gs))

    def call(self, fn, obj, args, kwargs):
        for v in list(args) + list(kwargs.values()):
            if isinstance(v, (Tensor, np.ndarray)):
                self.fail(f"{fn.__qualname__} was called with an array argument")
        self.events.append(("call", fn, obj, tuple(args), tuple(sorted(kwargs.items()))))

    def module(self, m):
        self.modules.setdefault(id(m), m)

    def result(self, value):
        """The template of the returned value (its sources)."""
        if value is None or isinstance(value, (bool, int, float, str, np.generic)):
            return ("const", value)
        if isinstance(value, (Tensor, np.ndarray)):
            return ("tensor" if isinstance(value, Tensor) else "array", self.source(value))
        if isinstance(value, (tuple, list)):
            return (type(value).__name__, tuple(self.result(v) for v in value))
        if isinstance(value, dict):
            return ("dict", tuple((k, self.result(v)) for k, v in value.items()))
        raise _Unreplayable(f"it returned a {type(value).__name__}")


def _same_value(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b))
        )
    if isinstance(a, (tuple, list)) and type(a) is type(b):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, slice) and type(b) is slice:
        return (
            _same_value(a.start, b.start)
            and _same_value(a.stop, b.stop)
            and _same_value(a.step, b.step)
        )
    if isinstance(a, (np.random.Generator, np.dtype)) or type(a) is not type(b):
        return a == b if isinstance(a, np.dtype) else False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects without a plain equality
        return False


def _agree(t1: _Trace, t2: _Trace):
    """The two traces did the same thing: returns the merged constants, or None."""
    if len(t1.events) != len(t2.events) or len(t1.leaves) != len(t2.leaves):
        return None
    if any(a is not b for a, b in zip(t1.leaves, t2.leaves, strict=True)):
        return None
    if len(t1.refs) != len(t2.refs):
        return None
    # a persistent array (same object both times) is read at each call; a different object
    # with the same values is a constant
    refs = []
    for a, b in zip(t1.refs, t2.refs, strict=True):
        if a is b:
            refs.append(("ref", a))
        elif _same_value(a, b):
            refs.append(("value", b.copy()))
        else:
            return None

    def same_src(s1, s2):
        if s1[0] != s2[0]:
            return False
        if s1[0] == "const":
            return _same_value(s1[1], s2[1])
        return s1[1] == s2[1]

    for e1, e2 in zip(t1.events, t2.events, strict=True):
        if e1[0] != e2[0]:
            return None
        if e1[0] == "unit":
            if (
                e1[2] is not e2[2]
                or e1[5] != e2[5]
                or e1[6] != e2[6]
                or e1[7] != e2[7]
                or e1[8] != e2[8]
                or e1[9] != e2[9]
                or len(e1[3]) != len(e2[3])
                or len(e1[4]) != len(e2[4])
            ):
                return None
            if not all(same_src(a, b) for a, b in zip(e1[3], e2[3], strict=True)):
                return None
            if not all(
                k1 == k2 and same_src(a, b) for (k1, a), (k2, b) in zip(e1[4], e2[4], strict=True)
            ):
                return None
        elif e1[0] == "backward":
            if (
                not same_src(e1[1], e2[1])
                or (e1[2] is None) != (e2[2] is None)
                or (e1[2] is not None and not same_src(e1[2], e2[2]))
            ):
                return None
        else:
            if (
                e1[1] is not e2[1]
                or e1[2] is not e2[2]
                or len(e1[3]) != len(e2[3])
                or not all(_same_value(a, b) for a, b in zip(e1[3], e2[3], strict=True))
                or e1[4] != e2[4]
            ):
                return None
    if set(t1.modules) != set(t2.modules):
        return None
    return refs


def _same_result(r1, r2) -> bool:
    if r1[0] != r2[0]:
        return False
    if r1[0] == "const":
        return _same_value(r1[1], r2[1])
    if r1[0] in ("tensor", "array"):
        s1, s2 = r1[1], r2[1]
        return s1[0] == s2[0] and (
            _same_value(s1[1], s2[1]) if s1[0] == "const" else s1[1] == s2[1]
        )
    if r1[0] == "dict":
        return len(r1[1]) == len(r2[1]) and all(
            k1 == k2 and _same_result(a, b) for (k1, a), (k2, b) in zip(r1[1], r2[1], strict=True)
        )
    return len(r1[1]) == len(r2[1]) and all(
        _same_result(a, b) for a, b in zip(r1[1], r2[1], strict=True)
    )


# ------------------------------------------------------------------------------------------------
# plans: how one unit application runs in a program
# ------------------------------------------------------------------------------------------------


class Spec:
    """What a plan is built from: the unit, its inputs' shapes and dtypes, the output's, the
    keyword arguments (constants), which inputs want a gradient (``needs``, None when the
    application is not recorded for back-propagation)."""

    __slots__ = (
        "unit",
        "in_shapes",
        "in_dtypes",
        "out_shape",
        "out_dtype",
        "kwargs",
        "needs",
        "grad_buffers",
    )

    def __init__(
        self, unit, in_shapes, in_dtypes, out_shape, out_dtype, kwargs, needs, grad_buffers=None
    ):
        self.unit, self.in_shapes, self.in_dtypes = unit, in_shapes, in_dtypes
        self.out_shape, self.out_dtype, self.kwargs, self.needs = (
            out_shape,
            out_dtype,
            kwargs,
            needs,
        )
        #: per input, an array the plan may write that input's gradient into (a parameter's slot
        #: in the optimizer's flat gradient buffer), or None
        self.grad_buffers = grad_buffers or (None,) * len(in_shapes)

    def grad_buffer(self, i, shape, dtype):
        b = self.grad_buffers[i]
        if b is not None and b.shape == shape and b.dtype == dtype:
            return b
        return np.empty(shape, dtype=dtype)


class GenericPlan:
    """Any unit: its own ``forward``/``backward`` with a fresh Context, and the engine's
    shape/dtype fix-ups of the gradients (the eager numbers, the eager allocations)."""

    def __init__(self, spec: Spec):
        self.unit = spec.unit
        self.kwargs = spec.kwargs
        self.needs = spec.needs
        self.in_shapes = spec.in_shapes
        self.in_dtypes = spec.in_dtypes
        self.ctx = None

    def forward(self, *arrays, **dyn):
        ctx = Context()
        if self.needs is not None:
            ctx.needs_input_grad = self.needs
            ctx.unit = self.unit
        kw = self.kwargs if not dyn else {**self.kwargs, **dyn}
        out = self.unit.forward(ctx, *arrays, **kw)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        self.ctx = ctx
        return out

    def backward(self, grad):
        unit = self.unit
        gs = unit.backward(self.ctx, grad)
        if type(gs) is not tuple:
            gs = tuple(gs) if isinstance(gs, list) else (gs,)
        out = list(gs)
        for i, need in enumerate(self.needs):
            g = gs[i] if i < len(gs) else None
            if not need or g is None:
                continue
            if type(g) is not np.ndarray:
                g = np.asarray(g)
            shape, dtype = self.in_shapes[i], self.in_dtypes[i]
            if g.shape != shape:
                g = unbroadcast(g, shape)
            if g.dtype != dtype:
                g = g.astype(dtype)
            out[i] = g
        return out


_dot, _add, _subtract, _multiply, _divide = np.dot, np.add, np.subtract, np.multiply, np.divide
_maximum, _greater, _exp, _log, _tanh = np.maximum, np.greater, np.exp, np.log, np.tanh


#: write planned units' numpy calls into the program (``inline_forward``/``inline_backward``)
#: instead of calling their methods; False keeps the calls (the benchmark's per-unit profile)
INLINE = True


class _Plan:
    """Base of the planned units. The program sets, after every plan is built and before
    ``finalize(scratch)`` allocates what is still missing:

    - ``inplace``: the forward may overwrite its (first) input, a buffer no one else reads;
    - ``grad_writable``: the backward may overwrite the gradient it is given.

    ``scratch(shape, dtype)`` gives a buffer shared by the whole program, valid only during one
    forward or backward call. ``buffers``: the arrays the plan writes that may end up in a
    ``.grad``. ``keeps_output``: the backward reads the forward's output (it must not be
    overwritten by a later unit). Returned gradients are arrays only this plan writes.

    A plan runs through ``forward(*arrays)``/``backward(grad)`` methods, or gives its numpy
    calls as source lines: ``inline_forward(j, args, const)`` (lines that set ``v{j}``; ``args``
    the inputs' expressions, ``const(value)`` a name bound to a constant) and
    ``inline_backward(j, g, const)`` (lines that set ``r``, one gradient per input; names the
    forward lines set are in scope). The program writes those lines in, or, with ``INLINE``
    False, makes each pair into two functions of its own (``_unit_functions``).
    """

    keeps_output = True
    can_inplace = False
    inplace = False
    grad_writable = False
    buffers = ()

    def finalize(self, scratch):
        pass


# the most elements of a Linear output whose bias _tile_biases copies into rows: the copy
# (~0.7 ns an element) must cost less than the broadcasting it saves (~1 us)
_TILE_MAX = 1024


def _kept_transpose(a, const):
    """The expression for ``{a}.T`` that reuses the view made at an earlier call with the
    same array (see ``_transposed``)."""
    kept = const([None, None])
    return f"({kept}[1] if {a} is {kept}[0] else _transposed({kept}, {a}))"


class _LinearPlan(_Plan):
    """Linear (x Wᵀ + b) on an output buffer; backward on gradient buffers (2-D x only)."""

    relu = False
    keeps_output = False

    def __init__(self, spec):
        (n, _), (fout, fin) = spec.in_shapes[0], spec.in_shapes[1]
        dt = spec.out_dtype
        self.out = np.empty((n, fout), dtype=dt)
        need = spec.needs or (False, False, False)
        self.need = need
        self.has_b = len(spec.in_shapes) > 2
        self.gx = np.empty((n, fin), dtype=dt) if need[0] else None
        self.gw = spec.grad_buffer(1, (fout, fin), dt) if need[1] else None
        self.gb = spec.grad_buffer(2, (fout,), dt) if len(need) > 2 and need[2] else None
        self.one_row = n == 1
        if self.one_row and self.gw is not None:
            self.gp = np.zeros((2, fout), dtype=dt)
            self.xx = np.empty((2, fin), dtype=dt)
        self.ones = U._ones(n, dt) if self.gb is not None else None
        self.shape, self.dt = (n, fout), dt
        self.mask = self.gr = None
        self.bias_rows = None  # the bias copied into each row of an array (_tile_biases)
        self.buffers = [b for b in (self.gx, self.gw, self.gb) if b is not None]

    def finalize(self, scratch):
        if self.relu:
            self.keeps_output = True
            self.mask = scratch(self.shape, np.dtype(bool))
            # relu's 0 as zeros of the output's shape: 3x faster than the scalar (units._zeros)
            self.zeros = U._zeros(self.shape, self.dt)
            if not self.grad_writable:
                self.gr = np.empty(self.shape, dtype=self.dt)

    # np.dot rather than the unit's ``@``: the same BLAS call (the same numbers, checked for
    # every shape of the tests and the benchmark), a third of matmul's per-call cost on small
    # arrays (no generalized-ufunc setup)
    def inline_forward(self, j, args, const):
        """``forward`` written out for the program (see ``_Plan``)."""
        x, w = args[0], args[1]
        lines = [
            f"x{j} = {x}",
            f"w{j} = {w}",
            f"v{j} = _dot(x{j}, {_kept_transpose(f'w{j}', const)}, out={const(self.out)})",
        ]
        if len(args) > 2:
            b = args[2]
            if self.one_row:  # (1, f) + (f,) as (f,) + (f,): numpy's broadcasting costs more
                row = const(self.out.reshape(-1))
                lines.append(f"_add({row}, {b}, out={row})")
            elif self.bias_rows is not None:  # the same sums against the bias's rows
                lines.append(f"_add(v{j}, {const(self.bias_rows)}, out=v{j})")
            else:
                lines.append(f"_add(v{j}, {b}, out=v{j})")
        if self.relu:
            lines.append(f"_maximum(v{j}, {const(self.zeros)}, out=v{j})")
        return lines

    def inline_backward(self, j, g, const):
        """``backward`` written out for the program (see ``_Plan``)."""
        lines = []
        if self.relu:
            mask = const(self.mask)
            gr = g if self.gr is None else const(self.gr)
            lines += [
                f"_greater({const(self.out)}, {const(self.zeros)}, out={mask})",
                f"{g} = _multiply({g}, {mask}, out={gr})",
            ]
        r = []
        if self.need[0]:
            lines.append(f"gx{j} = _dot({g}, w{j}, out={const(self.gx)})")
            r.append(f"gx{j}")
        else:
            r.append("None")
        if self.need[1]:
            if self.one_row:
                gp, xx = const(self.gp), const(self.xx)
                lines += [
                    f"{gp}[0] = {g}[0]",
                    f"np.concatenate((x{j}, x{j}), out={xx})",
                    f"gw{j} = _dot({gp}.T, {xx}, out={const(self.gw)})",
                ]
            else:
                gt = _kept_transpose(g, const)
                lines.append(f"gw{j} = _dot({gt}, x{j}, out={const(self.gw)})")
            r.append(f"gw{j}")
        else:
            r.append("None")
        if self.has_b:
            if self.gb is not None:
                lines.append(f"gb{j} = _dot({const(self.ones)}, {g}, out={const(self.gb)})")
                r.append(f"gb{j}")
            else:
                r.append("None")
        lines.append(f"r = ({', '.join(r)},)")
        return lines


class _LinearReLUPlan(_LinearPlan):
    relu = True
    keeps_output = True


def _linear_plan(spec):
    if len(spec.in_shapes[0]) != 2 or spec.kwargs or len(set(spec.in_dtypes)) != 1:
        return None
    if len(spec.in_shapes) > 2 and spec.in_shapes[2] != (spec.in_shapes[1][0],):
        return None
    return (_LinearReLUPlan if spec.unit is U.LinearReLU else _LinearPlan)(spec)


class _ActPlan(_Plan):
    """tanh and relu: the unit's own numpy calls, on buffers. In place on the input (a dead
    buffer) when the program allows it; the backward in place on its gradient likewise."""

    can_inplace = True

    def __init__(self, spec):
        self.shape, self.dt = spec.out_shape, spec.out_dtype
        self.tanh = spec.unit is U.Tanh
        self.out = self.gout = self.tmp = None

    def finalize(self, scratch):
        if not self.inplace:
            self.out = np.empty(self.shape, dtype=self.dt)
        if not self.grad_writable:
            self.gout = np.empty(self.shape, dtype=self.dt)
        self.tmp = scratch(self.shape, self.dt if self.tanh else np.dtype(bool))
        # tanh's 1 − y² against ones, relu's max(a, 0) against zeros, of the activation's
        # shape: numpy's scalar operand costs half of the former call, two thirds of the latter
        shape, dt = tuple(self.shape), np.dtype(self.dt)
        if self.tanh:
            self.ones = U._ones(shape, dt)
        else:
            self.zeros = U._zeros(shape, dt)

    def inline_forward(self, j, args, const):
        a = args[0]
        out = a if self.inplace else const(self.out)
        fn = (
            f"_tanh({a}, out={out})"
            if self.tanh
            else f"_maximum({a}, {const(self.zeros)}, out={out})"
        )
        return [f"v{j} = y{j} = {fn}"]

    def inline_backward(self, j, g, const):
        t = const(self.tmp)
        gout = g if self.gout is None else const(self.gout)
        if self.tanh:  # grad * (1 - y*y)
            lines = [
                f"_multiply(y{j}, y{j}, out={t})",
                f"_subtract({const(self.ones)}, {t}, out={t})",
            ]
        else:  # grad * (y > 0)
            lines = [f"_greater(y{j}, {const(self.zeros)}, out={t})"]
        return lines + [f"ga{j} = _multiply({g}, {t}, out={gout})", f"r = (ga{j},)"]


def _act_plan(spec):
    if spec.in_dtypes[0] != spec.out_dtype or spec.in_shapes[0] != spec.out_shape or spec.kwargs:
        return None
    return _ActPlan(spec)


_reduce_add = np.add.reduce
_reduce_max = np.maximum.reduce


class _MeanCEPlan(_Plan):
    """MeanSoftmaxCrossEntropy on buffers, with the unit's own sequence of numpy calls. The
    label entries are read and written through one flat index (row·C + label), computed once
    per call: the same elements as the unit's ``[rows, y]``, a fifth of the cost."""

    def __init__(self, spec):
        (n, C), dt = spec.in_shapes[0], spec.in_dtypes[0]
        self.n, self.C, self.dt = n, C, dt
        self.e = np.empty((n, C), dtype=dt)
        self.dz = np.empty((n, C), dtype=dt)
        self.dz_flat = self.dz.reshape(-1)
        self.row_starts = np.arange(n, dtype=np.intp) * C
        self.idx = np.empty(n, dtype=np.intp)
        ydt = spec.in_dtypes[1]
        # labels seen as unsigned: a negative one becomes huge, so one maximum checks both ends
        self.unsigned = None if ydt.kind == "u" else np.dtype(f"u{ydt.itemsize}")
        self.ones = U._ones(C, dt)
        self.seed = self.seed_scale = None
        self.buffers = [self.dz]
        self.fresh_output = True  # the loss: a new 0-d array at every call
        self.fixed_inputs = None  # set by the program: which inputs are fixed buffers
        self.pair = None  # two classes: (max, sum, ones) in both columns (inline_forward)

    def finalize(self, scratch):
        n, C, dt = self.n, self.C, self.dt
        self.m = scratch((n,), dt)
        self.m_col = self.m[:, None]
        self.s = np.empty(n, dtype=dt)  # read after the scratch below is reused
        self.s_col = self.s[:, None]
        self.logs = scratch((n,), dt, 1)
        self.shifted = scratch((n, C), dt)
        self.shifted_flat = self.shifted.reshape(-1)

    def inline_forward(self, j, args, const):
        z, y = args
        n, C = self.n, self.C
        m = const(self.m)
        lines = []
        if n <= 64:  # a short list of Python ints: its max and min cost less than a reduction
            lines += [f"yl{j} = {y}.tolist()"]
            if n:
                lines += [f"if max(yl{j}) >= {C} or min(yl{j}) < 0:", "    raise _Retrace"]
        else:  # one reduction of the labels seen as unsigned checks both ends
            yu = y if self.unsigned is None else f"{y}.view({const(self.unsigned)})"
            lines += [f"if _reduce_max({yu}) >= {C}:", "    raise _Retrace"]
        fixed = self.fixed_inputs[0] if self.fixed_inputs else None
        # each row's max (subtracted), its sum of exps (a product with ones), the sums' vector
        # (its log) and the softmax's divisor: by default a max and a sum per row, broadcast
        mx, sums, ones = const(self.m_col), const(self.s), const(self.ones)
        sum_vec, div = sums, const(self.s_col)
        if C == 2 and fixed is not None:
            # two classes: each row's max and sum written into both of its columns (the max
            # of the two columns, and of the two the other way round; the product with a 2×2
            # of ones), so that the subtraction and the division take same-shape arrays, not
            # numpy's broadcasting of a column (~0.8 of ~1.3 us each on 10 rows). The same
            # numbers: a sum of two terms is rounded once in any order, and the second
            # column's max differs from the first's at most in the sign of a zero, which
            # z − max and exp do not see
            both_max = np.empty((n, 2), dtype=self.dt)
            both_sum = np.empty((n, 2), dtype=self.dt)
            self.pair = (both_max, both_sum, U._ones((2, 2), self.dt))
            c0, c1 = const(fixed[:, 0]), const(fixed[:, 1])
            m0, m1 = const(both_max[:, 0]), const(both_max[:, 1])
            lines += [f"_maximum({c0}, {c1}, out={m0})", f"_maximum({c1}, {c0}, out={m1})"]
            mx, sums, ones = (const(a) for a in self.pair)
            sum_vec, div = const(both_sum[:, 0]), sums
        elif C > 8:
            lines.append(f"{z}.max(axis=1, out={m})")
        elif C > 1:
            if fixed is not None:  # the same array at every call: its columns, sliced once
                cols = [const(fixed[:, c]) for c in range(C)]
            else:
                cols = [f"{z}[:, {c}]" for c in range(C)]
            lines.append(f"_maximum({cols[0]}, {cols[1]}, out={m})")
            lines += [f"_maximum({m}, {cols[c]}, out={m})" for c in range(2, C)]
        else:
            lines.append(f"np.copyto({m}, {z}[:, 0])")
        e, logs = const(self.e), const(self.logs)
        return lines + [
            f"_subtract({z}, {mx}, out={const(self.shifted)})",
            f"_exp({const(self.shifted)}, out={e})",
            f"_dot({e}, {ones}, out={sums})",
            f"_add({const(self.row_starts)}, {y}, out={const(self.idx)})",
            f"_log({sum_vec}, out={logs})",
            f"_subtract({logs}, {const(self.shifted_flat)}[{const(self.idx)}], out={logs})",
            f"v{j} = np.asarray(_reduce_add({logs}) / {n}, dtype={const(self.dt)})",
            f"_divide({e}, {div}, out={e})",
        ]

    def inline_backward(self, j, g, const):
        e, dz = const(self.e), const(self.dz)
        idx, dz_flat = const(self.idx), const(self.dz_flat)
        lines = [
            f"sc{j} = {g} / {self.n}",
            f"dz{j} = _multiply({e}, sc{j}, out={dz})",
            f"{dz_flat}[{idx}] -= sc{j}",
        ]
        if self.seed is not None:  # the usual call: the product with a same-shape array
            seeded = [
                f"dz{j} = _multiply({e}, {const(self.seed_full)}, out={dz})",
                f"{dz_flat}[{idx}] -= {const(self.seed_rows)}",
            ]
            lines = (
                [f"if {g} is {const(self.seed)}:"]
                + [f"    {ln}" for ln in seeded]
                + ["else:"]
                + [f"    {ln}" for ln in lines]
            )
        return lines + [f"r = (dz{j}, None)"]

    def seeded(self, seed):
        """The backward will start from the constant ``seed`` (the ones of ``loss.backward()``):
        its scale ``seed / n`` is computed once, the same number each call would compute."""
        # a Python float holding the float32/64 value exactly: numpy multiplies by it in the
        # array's dtype (the same numbers), without a 0-d array's slower path; and the same
        # value filling an array of the gradient's shape, whose product skips the scalar's
        # handling altogether (~0.7 of 1.3 us on a 10×2 batch; elementwise the same products)
        self.seed, self.seed_scale = seed, float(seed / self.n)
        self.seed_full = np.full((self.n, self.C), self.seed_scale, dtype=self.dt)
        # and one per row, subtracted at the labels: a third less than the scalar's
        # subtraction there (the same differences)
        self.seed_rows = np.full(self.n, self.seed_scale, dtype=self.dt)


def _mean_ce_plan(spec):
    if len(spec.in_shapes[0]) != 2 or spec.kwargs or spec.in_dtypes[0].kind != "f":
        return None
    if spec.in_shapes[1] != (spec.in_shapes[0][0],) or spec.in_dtypes[1].kind not in "iu":
        return None
    return _MeanCEPlan(spec)


class _DropoutPlan(_Plan):
    """Dropout on buffers: the unit's own draw (the same generator, read at every call, the
    same numbers) into a preallocated array, then its mask and product with ``out=``."""

    can_inplace = True
    keeps_output = False

    def __init__(self, spec):
        self.shape, self.dt = spec.out_shape, spec.out_dtype
        kw = spec.kwargs
        self.p = kw.get("p", 0.5)
        self.rng, self.seed = kw.get("rng"), kw.get("seed")
        self.mask = np.empty(self.shape, dtype=self.dt)
        self.out = self.gout = self.u = self.keep = None

    def finalize(self, scratch):
        self.u = scratch(self.shape, np.dtype(np.float64))  # read within forward only
        self.keep = scratch(self.shape, np.dtype(bool))
        if not self.inplace:
            self.out = np.empty(self.shape, dtype=self.dt)
        if not self.grad_writable:
            self.gout = np.empty(self.shape, dtype=self.dt)

    def forward(self, x):
        m = U.Dropout.draw_mask(
            self.shape, self.dt, self.p, self.rng, self.seed, self.u, self.keep, self.mask
        )
        return np.multiply(x, m, out=x if self.inplace else self.out)

    def backward(self, grad):
        return (np.multiply(grad, self.mask, out=grad if self.gout is None else self.gout),)


def _dropout_plan(spec):
    kw = spec.kwargs
    if len(spec.in_shapes) != 1 or set(kw) - {"p", "rng", "seed"}:
        return None
    if spec.in_shapes[0] != spec.out_shape:
        return None
    if spec.in_dtypes[0] != spec.out_dtype or spec.out_dtype.kind != "f":
        return None
    if not 0.0 < kw.get("p", 0.5) < 1.0:
        return None
    return _DropoutPlan(spec)


class _BatchNormPlan(_Plan):
    """BatchNorm in training (``update=``): the unit's own statistics and running update
    (``BatchNorm.batch_statistics``, per channel), then the unit's elementwise numpy calls on
    buffers: x̂, the affine output, and the backward's terms in the same order."""

    keeps_output = False

    def __init__(self, spec):
        x_shape, dt = spec.in_shapes[0], spec.out_dtype
        self.axes = (0,) + tuple(range(2, len(x_shape)))
        self.shape = (1, x_shape[1]) + (1,) * (len(x_shape) - 2)
        self.update, self.eps = spec.kwargs["update"], spec.kwargs.get("eps", 1e-5)
        need = tuple(spec.needs or ())
        self.need = need + (False,) * (3 - len(need))
        self.n_in = len(spec.in_shapes)
        self.xhat = np.empty(x_shape, dtype=dt)
        self.out = np.empty(x_shape, dtype=dt)
        C = x_shape[1]
        self.gx = np.empty(x_shape, dtype=dt) if self.need[0] else None
        self.gw = spec.grad_buffer(1, (C,), dt) if self.need[1] else None
        self.gb = spec.grad_buffer(2, (C,), dt) if self.need[2] else None
        self.buffers = [b for b in (self.gx, self.gw, self.gb) if b is not None]
        self.x_shape, self.dt = x_shape, dt
        self.inv = self.w = self.t = self.gh = None

    def finalize(self, scratch):
        self.t = scratch(self.x_shape, self.dt)  # within one backward call only
        if self.need[0]:
            self.gh = scratch(self.x_shape, self.dt, 1)

    def forward(self, x, weight=None, bias=None):
        shape = self.shape
        mean, var = U.BatchNorm.batch_statistics(x, self.axes, shape, *self.update)
        inv = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False).reshape(shape)
        xhat = np.subtract(x, mean.reshape(shape), out=self.xhat)
        np.multiply(xhat, inv, out=xhat)
        out = self.out
        if weight is not None:
            np.multiply(xhat, weight.reshape(shape), out=out)
            if bias is not None:
                np.add(out, bias.reshape(shape), out=out)
        elif bias is not None:
            np.add(xhat, bias.reshape(shape), out=out)
        else:
            np.copyto(out, xhat)
        self.inv, self.w = inv, weight
        return out

    def backward(self, grad):
        axes, shape, xhat, t = self.axes, self.shape, self.xhat, self.t
        need = self.need
        gw = gb = gx = None
        if need[1]:
            gw = np.multiply(grad, xhat, out=t).sum(axis=axes, out=self.gw)
        if need[2]:
            gb = grad.sum(axis=axes, out=self.gb)
        if need[0]:
            gh = grad if self.w is None else np.multiply(grad, self.w.reshape(shape), out=self.gh)
            m1 = gh.mean(axis=axes, keepdims=True)
            m2 = np.multiply(gh, xhat, out=t).mean(axis=axes, keepdims=True)
            np.multiply(xhat, m2, out=t)
            gx = np.subtract(gh, m1, out=self.gx)
            np.subtract(gx, t, out=gx)
            np.multiply(self.inv, gx, out=gx)
        return (gx, gw, gb)[: self.n_in]


def _batch_norm_plan(spec):
    kw = spec.kwargs
    if kw.get("update") is None or set(kw) - {"update", "eps", "training"}:
        return None
    if not kw.get("training", True) or len(spec.in_shapes[0]) < 2:
        return None
    dt = spec.out_dtype
    if dt.kind != "f" or any(d is not None and d != dt for d in spec.in_dtypes):
        return None
    C = spec.in_shapes[0][1]
    if any(s != (C,) for s in spec.in_shapes[1:] if s != ()):
        return None
    return _BatchNormPlan(spec)


#: unit class -> plan factory ``f(spec) -> plan or None`` (None: the unit's own forward/backward).
#: A unit may instead define ``replay_plan(cls, spec)`` as a class method.
PLANS = {
    U.Linear: _linear_plan,
    U.LinearReLU: _linear_plan,
    U.Tanh: _act_plan,
    U.ReLU: _act_plan,
    U.MeanSoftmaxCrossEntropy: _mean_ce_plan,
    U.Dropout: _dropout_plan,
    U.BatchNorm: _batch_norm_plan,
}


def _make_plan(spec):
    factory = PLANS.get(spec.unit) or getattr(spec.unit, "replay_plan", None)
    plan = factory(spec) if factory is not None else None
    return plan if plan is not None else GenericPlan(spec)


# ------------------------------------------------------------------------------------------------
# the optimizer on one flat buffer per parameter group
# ------------------------------------------------------------------------------------------------

from operator import attrgetter, is_, itemgetter  # noqa: E402 - beside their only use

from . import tensor as _tensor_module  # noqa: E402
from ._memory import release_freed_memory  # noqa: E402
from .tensor import bump_versions, changes, wrap_array  # noqa: E402

_get_data, _get_grad = attrgetter("_data"), attrgetter("grad")


class _FlatParam:
    """Stands for a whole parameter group in the optimizer's own update code."""

    __slots__ = ("data", "grad", "_version")

    def __init__(self, data, grad):
        self.data, self.grad = data, grad
        self._version = 0


def _flat_optimizers():
    from .optim import SGD, Adagrad, Adam, RMSprop

    # update rules that act element by element: one call on the concatenation of a group's
    # parameters gives each element what the per-parameter loop gives it
    return {SGD._step_group, Adam._step_group, RMSprop._step_group, Adagrad._step_group}


_CHUNK = 1 << 17  # elements per chunk of the flat SGD update (512 KiB of float32): fewer calls
# groups larger than this stay per parameter: the optimizer's loop costs nothing beside their
# GEMMs, and moving them into flat buffers would need a second copy of the model for a moment
_FLAT_MAX = 1 << 20


#: (id(optimizer), ids of a group's parameters) -> its flat layout, while a program holds it
_LAYOUTS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _FlatGroup:
    """One parameter group laid out in flat buffers: parameters, gradients and every array of
    the optimizer state; each parameter's ``.data``, ``.grad`` and state arrays are views."""

    def __init__(self, opt, params):
        dt = params[0].data.dtype
        self.params = list(params)
        sizes = [p.data.size for p in params]
        offs = np.concatenate(([0], np.cumsum(sizes))).astype(int).tolist()
        self.slices = [(offs[i], offs[i + 1], p.data.shape) for i, p in enumerate(params)]
        total = offs[-1]
        # one flat buffer at a time: each array moves into its slot and the parameter (or its
        # gradient, or state) is pointed at the view at once, so that the old array is freed
        # before the next is copied; the freed pages go back to the system before the next
        # buffer is filled (the process never holds a second copy of the model)
        self.P = np.empty(total, dtype=dt)
        self.pviews = self._views(self.P)
        for p, v in zip(params, self.pviews, strict=True):
            v[...] = p.data
            p.data = v
        release_freed_memory()
        self.G = np.empty(total, dtype=dt)
        self.gviews = self._views(self.G)
        for p, g in zip(params, self.gviews, strict=True):
            if p.grad is not None and p.grad.shape == g.shape and p.grad.dtype == g.dtype:
                g[...] = p.grad  # the traced step's gradient, in its slot
                p.grad = g
        release_freed_memory()
        self.state = {}
        self.sviews = {}
        states = [opt.state.get(p, {}) for p in params]
        for key in list(states[0]):
            if isinstance(states[0][key], np.ndarray):
                flat = self.state[key] = np.empty(total, dtype=dt)
                views = self.sviews[key] = self._views(flat)
                for st, v in zip(states, views, strict=True):
                    v[...] = st[key]
                    st[key] = v
                release_freed_memory()
            else:
                self.state[key] = states[0][key]
        self.flat = _FlatParam(self.P, self.G)
        from .optim import SGD

        self.sgd = type(opt)._step_group is SGD._step_group
        self.tmp = None
        self.chunks = None
        self.opt, self.opt_state = opt, opt.state
        self._checks()
        self.proxy = object.__new__(type(opt))
        self.proxy.state = {self.flat: self.state}
        self.proxy.defaults = opt.defaults

    @classmethod
    def laid_out(cls, opt, params):
        """The group already laid out for these parameters of this optimizer, by another program
        (another signature: the short last batch), when its views are still in place: programs
        share it (a second layout would move the parameters away from the first one's)."""
        fg = _LAYOUTS.get((id(opt), tuple(id(p) for p in params)))
        if (
            fg is None
            or fg.opt is not opt
            or len(fg.params) != len(params)
            or not all(map(is_, fg.params, params))
            or not all(map(is_, map(_get_data, params), fg.pviews))
        ):
            return None
        try:
            for key, views in fg.sviews.items():
                if not all(opt.state[p][key] is v for p, v in zip(params, views, strict=True)):
                    return None
        except KeyError:
            return None
        fg._checks()
        return fg

    @classmethod
    def lay_out(cls, opt, params):
        fg = cls(opt, params)
        _LAYOUTS[(id(opt), tuple(id(p) for p in params))] = fg
        return fg

    @staticmethod
    def possible(opt, params) -> bool:
        if not params or len({id(p) for p in params}) != len(params):
            return False
        dt = params[0].data.dtype
        if sum(p.data.size for p in params) > _FLAT_MAX:
            return False
        if dt.kind != "f" or any(p.data.dtype != dt or not p._rg for p in params):
            return False
        states = [opt.state.get(p, {}) for p in params]
        keys = set(states[0])
        for st in states:
            if set(st) != keys:
                return False
        for key in keys:
            vals = [st[key] for st in states]
            if isinstance(vals[0], np.ndarray):
                if not all(
                    isinstance(v, np.ndarray) and v.shape == p.data.shape
                    for v, p in zip(vals, params, strict=True)
                ):
                    return False
            elif not all(type(v) is type(vals[0]) and v == vals[0] for v in vals):
                return False
        return True

    def _views(self, flat):
        return [flat[a:b].reshape(shape) for a, b, shape in self.slices]

    def _checks(self):
        """What ``ready`` compares, by identity: each parameter's data, gradient, state dict
        and state arrays against the views laid out here (scalars in the state: by value)."""
        self.nkeys = len(self.state)
        self.scalars = any(not isinstance(f, np.ndarray) for f in self.state.values())
        self.flat_arrays = tuple(self.state.items())
        st = self.opt_state
        self.sdicts = [st.get(p) for p in self.params]
        self.state_checks = [
            (itemgetter(k), self.sviews[k] if isinstance(f, np.ndarray) else f)
            for k, f in self.state.items()
        ]

    def ready(self, group, state) -> bool:
        """Every parameter still has its views as data, gradient and state (nothing was
        reassigned, loaded or left without a gradient since the last call). The comparisons
        run in C (``map`` over ``operator.is_``): a few hundred nanoseconds per group."""
        gp = group["params"]
        params = self.params
        if (
            len(gp) != len(params)
            or state is not self.opt_state
            or not all(map(is_, gp, params))
            or not all(map(is_, map(_get_data, params), self.pviews))
            or not all(map(is_, map(_get_grad, params), self.gviews))
            or not all(map(is_, map(state.get, params), self.sdicts))
        ):
            return False
        sdicts = self.sdicts
        if self.nkeys and any(len(d) != self.nkeys for d in sdicts):
            return False
        try:
            for get, v in self.state_checks:
                if type(v) is list:
                    if not all(map(is_, map(get, sdicts), v)):
                        return False
                elif any(get(d) != v for d in sdicts):
                    return False
        except KeyError:
            return False
        return True

    def _sgd(self, group) -> bool:
        """SGD's common cases (plain, or momentum without dampening/Nesterov/decay) with the
        same numpy operations as SGD._step_group, the temporary lr·b in a kept buffer instead
        of a fresh one each step (the same numbers; no 4-bytes-per-parameter allocation)."""
        if (
            group["weight_decay"] != 0
            or group["maximize"]
            or group["nesterov"]
            or group["dampening"] != 0
        ):
            return False
        momentum, lr = group["momentum"], group["lr"]
        if type(lr) is not float and type(lr) is not int:
            # SGD's lr·b of a numpy scalar (a float64 one: computed in float64) is kept
            # unrounded until it is subtracted; the update into the float32 temporary below
            # would round it first: the optimizer's own code, on the flat arrays, instead
            return False
        buf = None
        if momentum != 0:
            buf = self.state.get("momentum_buffer")
            if buf is None:
                return False  # the first step creates the buffer: SGD's own code does it
        chunks = self.chunks
        if chunks is None or chunks[0] is not buf:
            chunks = self.chunks = (buf, self._chunk_views(buf))
        # chunk by chunk: the four passes stay in the cache, and the temporary is small
        if buf is None:
            for p, g, t in chunks[1]:
                _multiply(g, lr, out=t)
                p -= t
        else:
            for p, g, t, m in chunks[1]:
                m *= momentum
                m += g
                _multiply(m, lr, out=t)
                p -= t
        return True

    def _chunk_views(self, buf):
        """(parameters, gradients, temporary[, momentum]) slices of at most _CHUNK elements."""
        n = self.P.size
        if self.tmp is None:
            self.tmp = np.empty(min(n, _CHUNK), dtype=self.P.dtype)
        out = []
        for a in range(0, n, _CHUNK):
            b = min(a + _CHUNK, n)
            views = (self.P[a:b], self.G[a:b], self.tmp[: b - a])
            out.append(views if buf is None else (*views, buf[a:b]))
        return out

    def step(self, group, state):
        bump_versions(self.params)  # as the optimizer's own loop notes each in-place change
        if self.sgd and self._sgd(group):
            return
        fake = dict(group)
        fake["params"] = [self.flat]
        before = self.nkeys
        self.proxy._step_group(fake)
        if (
            not self.scalars
            and len(self.state) == before
            and all(self.state[k] is v for k, v in self.flat_arrays)
        ):
            return  # the state arrays were updated in place: the views show it
        for key, flat in self.state.items():
            if isinstance(flat, np.ndarray):
                views = self.sviews.get(key)
                if views is None or views[0].base is not flat:
                    views = self.sviews[key] = self._views(flat)
                    for p, v in zip(self.params, views, strict=True):
                        state[p][key] = v
            else:
                for p in self.params:
                    state[p][key] = flat
        self._checks()


#: a flat group of at most this many elements multiplies by arrays of lr / momentum (_emit_sgd)
_SMALL_GROUP = 1 << 14


def _number_as_array(name, out, n, dtype, const, pad):
    """Lines that set ``out`` to an array of ``n`` copies of the Python number ``name`` (kept,
    and refilled only when the group holds another object), or to ``name`` itself when it is
    not a Python float or int (the momentum; the lr's type is checked before)."""
    arr, last = const(np.empty(n, dtype=dtype)), const([None])
    return [
        f"{pad}if {name} is {last}[0]:",
        f"{pad}    {out} = {arr}",
        f"{pad}elif type({name}) is float or type({name}) is int:",
        f"{pad}    {arr}.fill({name})",
        f"{pad}    {last}[0] = {name}",
        f"{pad}    {out} = {arr}",
        f"{pad}else:",
        f"{pad}    {out} = {name}",
    ]


class _FlatStep:
    """``optimizer.step()`` in a program: the optimizer's own update rule once per group on the
    flat buffers when every parameter is still laid out there; the optimizer's step otherwise."""

    def __init__(self, opt, orig_step, leaves):
        self.opt, self.orig = opt, orig_step
        self.groups = None
        if type(opt)._step_group not in _flat_optimizers():
            return
        groups = []
        for group in opt.param_groups:
            params = group["params"]
            if not all(id(p) in leaves for p in params):
                return
            fg = _FlatGroup.laid_out(opt, params)
            if fg is None and not _FlatGroup.possible(opt, params):
                return
            groups.append((params, fg))
        self.groups = [fg or _FlatGroup.lay_out(opt, params) for params, fg in groups]

    def emit(self, const):
        """Source lines for this step in a program: the checks of ``_FlatGroup.ready`` written
        out for these parameters (each one an identity test, no loop), then each group's flat
        update; when any check fails, this object's call (the checks again, in full, then the
        flat update or the optimizer's own step)."""
        names: dict[int, str] = {}
        raw_const = const

        def const(v):  # one name per object
            n = names.get(id(v))
            if n is None:
                n = names[id(v)] = raw_const(v)
            return n

        me = const(self)
        if self.groups is None or not INLINE:
            return [f"    {me}()"]
        opt = self.opt
        conds = [f"len(pg) == {len(self.groups)}", f"{const(opt)}.state is st"]
        steps = []
        for k, fg in enumerate(self.groups):
            if fg.scalars:
                return [f"    {me}()"]
            plist = opt.param_groups[k]["params"]
            pl = const(plist)
            conds.append(f"pg[{k}]['params'] is {pl} and len({pl}) == {len(plist)}")
            for i, p in enumerate(fg.params):
                P = const(p)
                # (each parameter's array is its view here: accepts() checked it, and the
                # guards send a program whose flat parameter got another array to tracing)
                conds.append(f"{const(plist)}[{i}] is {P}")
                conds.append(f"{P}.grad is {const(fg.gviews[i])}")
                sd = fg.sdicts[i]
                conds.append(f"st.get({P}) is {const(sd)}")
                if sd is not None and not fg.sgd:  # SGD reads its one key, whatever else is there
                    conds.append(f"len({const(sd)}) == {fg.nkeys}")
                    for key, views in fg.sviews.items():
                        conds.append(f"{const(sd)}.get({key!r}) is {const(views[i])}")
            steps += (
                self._emit_sgd(k, fg, const)
                if fg.sgd
                else [f"        {const(fg)}.step(pg[{k}], st)"]
            )
        return [
            f"    pg = {const(opt)}.param_groups",
            f"    st = {const(opt)}.state",
            "    if (\n        " + "\n        and ".join(conds) + "\n    ):",
            *steps,
            "    else:",
            f"        {me}()",
        ]

    @staticmethod
    def _emit_sgd(k, fg, const):
        """``_FlatGroup._sgd`` written out: the group's hyperparameters read at this call, the
        same numpy calls on the chunks' views (bound as constants); other settings, or a
        momentum buffer that appeared or changed, go to the group's own ``step``."""
        buf = fg.state.get("momentum_buffer")
        chunks = fg._chunk_views(buf)
        fg.chunks = (buf, chunks)
        has = "is" if buf is not None else "is None and gr['momentum'] == 0 and"
        cond = (
            f"gr['weight_decay'] == 0 and not gr['maximize'] and not gr['nesterov'] "
            f"and gr['dampening'] == 0 and (type(gr['lr']) is float or type(gr['lr']) is int) "
            f"and {const(fg)}.state.get('momentum_buffer') {has}"
        )
        cond = cond + (f" {const(buf)}" if buf is not None else " True")
        lines = [f"        gr = pg[{k}]", f"        if {cond}:"]
        # bump_versions written out: one clock reading for every parameter of the group
        lines.append(f"            v = next({const(_tensor_module._counter)})")
        lines += [f"            {const(p)}._version = v" for p in fg.params]
        lines.append(f"            {const(_tensor_module)}._last_change = v")
        lines.append("            lr = gr['lr']")
        # A small group multiplies by arrays filled with lr and the momentum instead of the
        # Python numbers: numpy's handling of a scalar operand is most of such a call (~0.4 of
        # 1.0 us on 354 elements). A float32 array filled with a Python float holds the value
        # numpy converts that scalar to, so the products are the same. Refilled when the group
        # holds another number; a momentum of another type (a numpy float64 multiplies in
        # float64 before the in-place result is rounded) keeps the scalar. Large groups keep
        # the scalars: there they cost nothing extra.
        lrx, mox = "lr", "mo"
        small = len(chunks) == 1 and fg.P.size <= _SMALL_GROUP
        if small:  # (lr is a Python float or int here: the condition above checked it)
            lrx, last = const(np.empty(fg.P.size, dtype=fg.P.dtype)), const([None])
            lines += [
                f"            if lr is not {last}[0]:",
                f"                {lrx}.fill(lr)",
                f"                {last}[0] = lr",
            ]
            mox = "mox"
        plain = []
        for views in chunks:
            p, g, t = (const(v) for v in views[:3])
            plain += [f"_multiply({g}, {lrx}, out={t})", f"_subtract({p}, {t}, out={p})"]
        if buf is not None:
            lines += ["            mo = gr['momentum']", "            if mo != 0:"]
            if small:
                lines += _number_as_array("mo", "mox", fg.P.size, fg.P.dtype, const, " " * 16)
            for p_, g_, t_, m_ in chunks:
                p, g, t, m = const(p_), const(g_), const(t_), const(m_)
                lines += [
                    f"                _multiply({m}, {mox}, out={m})",
                    f"                _add({m}, {g}, out={m})",
                    f"                _multiply({m}, {lrx}, out={t})",
                    f"                _subtract({p}, {t}, out={p})",
                ]
            lines.append("            else:")
            lines += ["                " + x for x in plain]
        else:
            lines += ["            " + x for x in plain]
        lines += ["        else:", f"            {const(fg)}.step(gr, st)"]
        return lines

    def grad_buffers(self):
        out = {}
        for fg in self.groups or ():
            for p, g in zip(fg.params, fg.gviews, strict=True):
                out[id(p)] = g
        return out

    def __call__(self):
        opt = self.opt
        groups = self.groups
        pg = opt.param_groups
        if groups is not None and len(pg) == len(groups):
            st = opt.state
            for fg, group in zip(groups, pg, strict=True):
                if not fg.ready(group, st):
                    break
            else:
                for fg, group in zip(groups, pg, strict=True):
                    fg.step(group, st)
                return None
        return self.orig(opt)


# ------------------------------------------------------------------------------------------------
# the program: generated Python that runs the recorded events
# ------------------------------------------------------------------------------------------------


def _transposed(kept, a):
    """``a.T``, kept in ``kept`` (a two-item list) with ``a``: a program's line reads
    ``kept[1] if a is kept[0] else _transposed(kept, a)``, a third of the view's making when
    the array is the same as at the last call (a weight, a gradient buffer: nearly always)."""
    kept[0], kept[1] = a, a.T
    return kept[1]


def _store(t, g, handed):
    """Leave ``g`` in ``t.grad`` as the eager engine does (assign, or add to what is there)."""
    if t.grad is None:
        t.grad = g.copy() if (id(g) in handed or not g.flags.writeable) else g
    else:
        t.grad = t.grad + g
    handed.add(id(t.grad))


def _protect(t, owned):
    """A gradient still held in ``t.grad`` from an earlier call must not be overwritten by this
    call's backward (no zero_grad in between: gradients accumulate): give it its own copy."""
    g = t.grad
    if g is not None and (id(g) in owned or (g.base is not None and id(g.base) in owned)):
        t.grad = g.copy()


_R_TUPLE = re.compile(r"^(\s*)r = \(((?:\w+, )*\w+),?\)$")
_R_READ = re.compile(r"^(\s*)(\w+) = r\[(\d+)\]$")


def _no_result_tuples(lines):
    """``r = (a, b)`` and later ``x = r[0]``... become ``x = a``... (no tuple per unit), when
    every element is a plain name and every use of ``r`` up to its next assignment is a whole
    line ``name = r[i]``."""
    out = list(lines)
    for i, line in enumerate(lines):
        m = _R_TUPLE.match(line)
        if m is None:
            continue
        names = m.group(2).split(", ")
        end = i + 1
        while end < len(lines) and not re.match(r"^\s*r = ", lines[end]):
            end += 1
        uses = [k for k in range(i + 1, end) if re.search(r"\br\b", lines[k])]
        reads = [(k, _R_READ.match(lines[k])) for k in uses]
        if any(r is None or int(r.group(3)) >= len(names) for _, r in reads):
            continue
        out[i] = ""
        for k, r in reads:
            out[k] = f"{r.group(1)}{r.group(2)} = {names[int(r.group(3))]}"
    return [ln for ln in out if ln != ""]


def _unit_functions(plan, j, n_inputs, const, ns) -> None:
    """``F{j}(*inputs)`` and ``B{j}(grad)`` in ``ns``, made from the plan's source lines: what
    the forward's lines set and the backward's lines read is handed over in a kept list."""
    args = [f"a{i}" for i in range(n_inputs)]
    fwd = plan.inline_forward(j, args, const)
    bwd = plan.inline_backward(j, f"g{j}", const)
    set_by_fwd = {n for ln in fwd for n in re.findall(r"(\w+) = ", ln)}
    handed = sorted(n for n in set_by_fwd if re.search(rf"\b{n}\b", "\n".join(bwd)))
    kept = const([])
    src = [f"def F{j}({', '.join(args)}):", *("    " + ln for ln in fwd)]
    src += [f"    {kept}[:] = ({', '.join(handed)},)" if handed else "", f"    return v{j}"]
    src += [f"def B{j}(g{j}):"]
    src += [f"    ({', '.join(handed)},) = {kept}"] if handed else []
    src += [*("    " + ln for ln in bwd), "    return r"]
    exec("\n".join(src), ns)  # noqa: S102 - our own generated code


def _reset_before_backward(events) -> set[int]:
    """Ids of the tensors whose ``.grad`` the step sets to None (``optimizer.zero_grad()`` or
    ``module.zero_grad()``, the default ``set_to_none=True``) before its first backward: their
    gradients do not accumulate across calls."""
    from .nn.module import Module
    from .optim.optimizer import Optimizer

    out: set[int] = set()
    for ev in events:
        if ev[0] == "backward":
            break
        if ev[0] != "call" or ev[1].__name__ != "zero_grad":
            continue
        _, fn, obj, args, kw = ev
        if args or kw:  # set_to_none given (False keeps arrays of zeros): not counted
            continue
        if isinstance(obj, Optimizer):
            out.update(id(p) for g in obj.param_groups for p in g["params"])
        elif isinstance(obj, Module):
            out.update(id(p) for p in obj.parameters())
    return out


def _adoptable(g, t) -> bool:
    """``g`` (a leaf's ``.grad`` from the traced step) can become a plan's gradient buffer: an
    array of its own (not a view of another), writeable, laid out as a fresh one would be."""
    return (
        type(g) is np.ndarray
        and g.base is None
        and g.flags.writeable
        and g.flags.c_contiguous
        and g.shape == t._data.shape
        and g.dtype == t._data.dtype
    )


class _Program:
    def __init__(self, trace: _Trace, refs, result, call_args):
        self.leaves = list(trace.leaves)
        self.leaf_state = [(t, t._rg, t.data.shape, t.data.dtype) for t in self.leaves]
        self.modules = [(m, m.training) for m in trace.modules.values()]
        # what the modules' forwards will read: the same parameters, children and hooks (a
        # parameter or layer assigned anew, a hook added: the step must be traced again)
        self.structure = []
        for m in trace.modules.values():
            for attr in ("_parameters", "_modules", "_forward_hooks"):
                d = m.__dict__.get(attr)
                if d is None:
                    continue
                # the keys in their order (a Sequential runs its children in it; hooks by id),
                # then each value by identity
                self.structure.append((d, None, tuple(d)))
                if attr != "_forward_hooks":
                    self.structure.extend((d, k, v) for k, v in d.items())
        ns = {"np": np, "_store": _store, "_protect": _protect, "W": wrap_array}
        ns["_transposed"] = _transposed
        ns.update(_dot=_dot, _add=_add, _subtract=_subtract, _multiply=_multiply, _divide=_divide)
        ns.update(_maximum=_maximum, _greater=_greater, _exp=_exp, _log=_log, _tanh=_tanh)
        ns.update(_reduce_add=_reduce_add, _reduce_max=_reduce_max, _Retrace=_Retrace)
        self.ns = ns
        lines: list = ["def run(A):"]  # source lines, and placeholders (see _expand)
        emit = lines.append
        const_n = [0]

        def const(v):
            name = f"K{const_n[0]}"
            const_n[0] += 1
            ns[name] = v
            return name

        for k, kind in enumerate(trace.arg_kinds):
            if kind == "t":
                emit(f"    a{k} = A[{k}]._data")
            elif kind == "a":
                emit(f"    a{k} = A[{k}]")
        for m, (_kind, r) in enumerate(refs):
            ns[f"R{m}"] = r
        for m, t in enumerate(self.leaves):
            ns[f"L{m}"] = t

        def expr(src):
            kind, v = src
            if kind == "arg":
                return f"a{v}"
            if kind == "argt":
                return f"A[{v}]._data"
            if kind == "out":
                return f"v{v}"
            if kind == "leaf":
                return f"L{v}._data"
            if kind == "ref":
                return f"R{v}"
            return const(v)

        units = {}
        owned: set[int] = set()
        self.plans = []
        self.plan_of = {}
        self.unit_of = {}
        self.out_meta = {}
        self.reads = []
        self.units_needs = {}
        # optimizer steps on flat buffers; their gradient slots are offered to the plans
        from .optim.optimizer import Optimizer

        leaf_ids = {id(t) for t in self.leaves}
        flat_steps: dict[int, _FlatStep] = {}
        grad_bufs = {}
        for e, ev in enumerate(trace.events):
            if (
                ev[0] == "call"
                and ev[1] is _SAVED_STEP(Optimizer)
                and not ev[3]
                and not ev[4]
                and id(ev[2]) not in {id(f.opt) for f in flat_steps.values()}
            ):
                fs = _FlatStep(ev[2], ev[1], leaf_ids)
                flat_steps[e] = fs
                grad_bufs.update(fs.grad_buffers())
        self.flat_steps = list(flat_steps.values())
        self.flat_leaves = {
            id(p) for fs in self.flat_steps for fg in fs.groups or () for p in fg.params
        }
        # a leaf's gradient buffer is offered to a plan only when that unit alone computes the
        # leaf's gradient (a weight used by two units gets two arrays, summed as in eager).
        # Outside the flat groups, the buffer is the array the traced step left in ``.grad``
        # (it is replaced at the next call anyway): no second set of gradient arrays
        grad_uses = Counter(
            s[1]
            for ev in trace.events
            if ev[0] == "unit" and ev[5] is not None
            for s, n in zip(ev[3], ev[5], strict=True)
            if n and s[0] == "leaf"
        )
        reset = _reset_before_backward(trace.events)
        for m, t in enumerate(self.leaves):
            g = t.grad
            if grad_uses[m] != 1:
                grad_bufs.pop(id(t), None)
            elif id(t) not in grad_bufs and id(t) in reset and _adoptable(g, t):
                grad_bufs[id(t)] = g
        for e, ev in enumerate(trace.events):
            if ev[0] == "unit":
                _, j, cls, srcs, kw, needs, in_shapes, out_shape, out_dtype, in_dtypes = ev
                static_kw = {k: s[1] for k, s in kw if s[0] == "const"}
                dyn_kw = [(k, s) for k, s in kw if s[0] != "const"]
                for k, s in kw:
                    if s[0] == "ref":
                        static_kw[k] = refs[s[1]][1]
                dyn_kw = [(k, s) for k, s in dyn_kw if s[0] != "ref"]
                gb = tuple(
                    grad_bufs.get(id(self.leaves[s[1]])) if s[0] == "leaf" else None for s in srcs
                )
                spec = Spec(cls, in_shapes, in_dtypes, out_shape, out_dtype, static_kw, needs, gb)
                plan = GenericPlan(spec) if dyn_kw else _make_plan(spec)
                self.plans.append(plan)
                self.plan_of[j] = plan
                self.unit_of[j] = cls
                self.out_meta[j] = (out_shape, out_dtype)
                self.reads.append(list(srcs) + [s for _, s in dyn_kw])
                self.units_needs[j] = (srcs, needs)
                if hasattr(plan, "forward"):
                    ns[f"F{j}"] = plan.forward
                    ns[f"B{j}"] = plan.backward
                arg_exprs = [expr(s) for s in srcs]
                args = ", ".join(arg_exprs + [f"{k}={expr(s)}" for k, s in dyn_kw])
                # a placeholder: the plan's own lines or its call, once finalize has run
                emit(("F", j, arg_exprs, f"    v{j} = F{j}({args})", bool(dyn_kw)))
                units[j] = (srcs, needs)
            elif ev[0] == "call" and e in flat_steps:
                for line in flat_steps[e].emit(const):
                    emit(line)
            elif ev[0] == "call":
                _, fn, obj, args, kw = ev
                ns_name = const(fn)
                obj_name = const(obj)
                parts = [obj_name] + [const(a) for a in args] + [f"{k}={const(v)}" for k, v in kw]
                emit(f"    {ns_name}({', '.join(parts)})")
            else:
                self._emit_backward(ev, units, expr, const, emit)
        self._share_buffers(trace, result)
        lines[:] = self._tile_biases(lines, const)
        lines[:] = self._expand(lines, const)
        for plan in self.plans:
            owned.update(id(b) for b in getattr(plan, "buffers", ()))
        ns["OWNED"] = owned
        emit(f"    return {self._result_expr(result, expr)}")
        self.last_data = [t.data for t in self.leaves]  # after the flat layout moved them
        self.source = "\n".join(lines)
        exec(self.source, ns)  # noqa: S102 - our own generated code, from the trace
        self.run = ns["run"]
        self.seen_changes = [changes[0]]  # the count when the guards below last held
        self.accepts = self._make_accepts(call_args)

    def _make_accepts(self, args):
        """A generated function ``accepts(A)``: True when a call with arguments ``A`` may run
        this program at once: the same argument types, shapes, dtypes and ``requires_grad``
        (by identity: the common case), the same grad mode, and the guards (modules' modes,
        their parameters, children and hooks, each leaf's ``requires_grad`` and array).
        False sends the call to the full checks (``CompiledFunction._key``, ``guards_hold``),
        which decide by value. Constant (non-array) arguments: None (always the full checks)."""
        ns = {"ndarray": np.ndarray, "GRAD": is_grad_enabled, "LD": self.last_data}
        ns["CH"], ns["SEEN"] = changes, self.seen_changes
        conds = [f"len(A) == {len(args)}", f"GRAD() is {is_grad_enabled()}"]

        def const(v):
            name = f"C{len(ns)}"
            ns[name] = v
            return name

        for k, a in enumerate(args):
            if type(a) is np.ndarray:
                d = a
                conds.append(f"type(A[{k}]) is ndarray")
            elif isinstance(a, Tensor):
                d = a._data
                conds.append(f"type(A[{k}]) is {const(type(a))} and A[{k}]._rg is {a._rg}")
            else:
                return None
            data = f"A[{k}]" if d is a else f"A[{k}]._data"
            conds.append(f"{data}.shape == {d.shape!r} and {data}.dtype is {const(d.dtype)}")
        fast = len(conds)  # the arguments' checks; what follows is read only after a change
        for m, training in self.modules:
            conds.append(f"{const(m)}.training is {bool(training)}")
        for d, k, v in self.structure:
            if k is None:
                conds.append(f"tuple({const(d)}) == {const(v)}")
            else:
                conds.append(f"{const(d)}.get({k!r}) is {const(v)}")
        for i, (t, rg, _shape, _dtype) in enumerate(self.leaf_state):
            name = const(t)
            conds.append(f"{name}._rg is {bool(rg)} and {name}._data is LD[{i}]")
        src = "\n".join(
            [
                "def accepts(A):",
                "    if not (",
                "        " + "\n        and ".join(conds[:fast]),
                "    ):",
                "        return False",
                "    if CH[0] == SEEN[0]:",
                "        return True  # no module or tensor changed since the last check",
                "    if (",
                "        " + "\n        and ".join(conds[fast:] or ["True"]),
                "    ):",
                "        SEEN[0] = CH[0]",
                "        return True",
                "    return False",
            ]
        )
        exec(src, ns)  # noqa: S102 - our own generated code
        return ns["accepts"]

    def _expand(self, lines, const):
        """Replace each unit's placeholder by the plan's own lines (``inline_forward`` /
        ``inline_backward``: its numpy calls written into the program, no method call, its
        buffers bound as constants) or, for a plan without them, by the call of its method."""
        out = []
        for ln in lines:
            if type(ln) is str:
                out.append(ln)
                continue
            plan = self.plan_of[ln[1]]
            if not INLINE and ln[0] == "F" and hasattr(plan, "inline_forward"):
                _unit_functions(plan, ln[1], len(ln[2]), const, self.ns)
            if ln[0] == "F":
                _, j, arg_exprs, call, dyn = ln
                if hasattr(plan, "fixed_inputs"):  # inputs that are a Linear plan's own buffer
                    plan.fixed_inputs = [
                        self.plan_of[s[1]].out
                        if s[0] == "out" and type(self.plan_of.get(s[1])) is _LinearPlan
                        else None
                        for s in self.units_needs[j][0]
                    ]
                inline = getattr(plan, "inline_forward", None) if INLINE and not dyn else None
                out += ["    " + x for x in inline(j, arg_exprs, const)] if inline else [call]
            else:
                _, j, pad, call = ln
                inline = getattr(plan, "inline_backward", None) if INLINE else None
                out += [pad + x for x in inline(j, f"g{j}", const)] if inline else [call]
        return _no_result_tuples(out)

    def _tile_biases(self, lines, const):
        """Small Linear units add their bias to each row of their output, and numpy's
        broadcasting of that sum costs more than the sum itself on a few rows (10×16: ~1.2 of
        ~1.6 us). Biases that are views of one flat buffer (an optimizer group's layout) are
        copied into full rows for a whole run of consecutive units by one ``take`` placed before
        it; each unit then adds same-shape arrays (the same sums). The copy is made where no
        other event can have changed the buffer since (between two units of one run), and the
        bias is that buffer's view at every call: a new array in ``.data`` fails the program's
        guards (``accepts``: each leaf's array by identity). The optimizer's layout moved the
        parameters into their flat buffers before this runs (``_FlatStep``, built with the
        program's events), so a bias's ``base`` is the buffer the step updates."""
        if not INLINE:
            return lines
        out, run, pending = [], [], []

        def close():
            groups: dict = {}
            for plan, b in pending:
                groups.setdefault(id(b.base), (b.base, []))[1].append((plan, b))
            for base, members in groups.values():
                start = base.__array_interface__["data"][0]
                idx = []
                for plan, b in members:  # each row: the bias's positions in the buffer
                    first = (b.__array_interface__["data"][0] - start) // b.itemsize
                    idx.append(np.tile(np.arange(first, first + b.size), plan.shape[0]))
                where = np.concatenate(idx).astype(np.intp)
                rows = np.empty(where.size, dtype=base.dtype)
                k = 0
                for plan, _ in members:
                    size = plan.shape[0] * plan.shape[1]
                    plan.bias_rows = rows[k : k + size].reshape(plan.shape)
                    k += size
                take = f"{const(base)}.take({const(where)}, None, {const(rows)}, 'clip')"
                run.insert(0, "    " + take)
            out.extend(run)
            run.clear()
            pending.clear()

        for ln in lines:
            if type(ln) is not str and ln[0] == "F":
                run.append(ln)
                b = self._tileable_bias(ln)
                if b is not None:
                    pending.append((self.plan_of[ln[1]], b))
                continue
            close()
            out.append(ln)
        close()
        return out

    def _tileable_bias(self, ln):
        """Unit ``ln``'s bias array when ``_tile_biases`` can copy it into rows, else None."""
        _, j, _, _, dyn = ln
        plan = self.plan_of[j]
        if dyn or not isinstance(plan, _LinearPlan) or not plan.has_b or plan.one_row:
            return None
        if plan.shape[0] * plan.shape[1] > _TILE_MAX:
            return None
        s = self.units_needs[j][0][2]
        if s[0] != "leaf":
            return None
        b = self.leaves[s[1]].data
        base = b.base
        ok = (
            b.ndim == 1
            and b.flags.c_contiguous
            and isinstance(base, np.ndarray)
            and base.base is None
            and base.ndim == 1
            and base.flags.c_contiguous
            and base.dtype == b.dtype == plan.dt
        )
        return b if ok else None

    def _share_buffers(self, trace, result):
        """Let planned units work in place where no one else reads the array, then allocate
        the rest (dead values' buffers are reused: less memory, fewer cache misses)."""
        readers = {j: 0 for j in self.plan_of}
        for srcs in self.reads:
            for s in srcs:
                if s[0] == "out":
                    readers[s[1]] += 1

        def mark(r):
            kind, v = r
            if kind in ("tensor", "array"):
                if v[0] == "out":
                    readers[v[1]] += 2
            elif kind != "const":
                for x in v if kind != "dict" else [x for _, x in v]:
                    mark(x)

        mark(result)
        backwards = [ev for ev in trace.events if ev[0] == "backward"]
        for ev in backwards:
            if ev[1][0] == "out":
                readers[ev[1][1]] += 2
        plans = self.plan_of
        for j, plan in plans.items():
            if getattr(plan, "can_inplace", False):
                s = self.reads[j][0]
                if (
                    s[0] == "out"
                    and readers[s[1]] == 1
                    and isinstance(plans[s[1]], _Plan)
                    and not plans[s[1]].keeps_output
                ):
                    plan.inplace = True
        if len(backwards) == 1:
            given = {j: [] for j in plans}
            for j, (srcs, needs) in self.units_needs.items():
                for s, n in zip(srcs, needs or (), strict=False):
                    if n and s[0] == "out":
                        given[s[1]].append(j)
            root = backwards[0][1][1] if backwards[0][1][0] == "out" else None
            for j, plan in plans.items():
                if (
                    isinstance(plan, _Plan)
                    and j != root
                    and len(given[j]) == 1
                    and isinstance(plans[given[j][0]], _Plan)
                ):
                    plan.grad_writable = True
        pool = {}

        def scratch(shape, dtype, slot=0):
            key = (tuple(shape), np.dtype(dtype), slot)
            b = pool.get(key)
            if b is None:
                b = pool[key] = np.empty(shape, dtype=dtype)
            return b

        for plan in self.plans:
            fin = getattr(plan, "finalize", None)
            if fin is not None:
                fin(scratch)

    def _emit_backward(self, ev, units, expr, const, emit):
        _, root, gsrc = ev
        lines = emit.__self__  # the program's source lines (emit is their append)
        h_lines = [len(lines)]
        emit("    h = set()")
        if root[0] != "out":
            raise _Unreplayable("backward() from a tensor no unit made")
        j0 = root[1]
        if gsrc is None:
            # eager makes np.ones_like(loss) each time; one read-only array holds the same ones
            ones = np.ones(self.out_meta[j0][0], dtype=self.out_meta[j0][1])
            ones.flags.writeable = False
            seeded = getattr(self.plan_of[j0], "seeded", None)
            if seeded is not None:
                seeded(ones)
            emit(f"    g{j0} = {const(ones)}")
        else:
            emit(f"    g{j0} = np.array({expr(gsrc)}, dtype=v{j0}.dtype)")
        h_lines.append(len(lines))
        emit(f"    h.add(id(g{j0}))")
        # the units that the gradient reaches, latest first (the eager engine's order)
        reach = {j0}
        for j in sorted(units, reverse=True):
            if j in reach and j <= j0:
                srcs, needs = units[j]
                if needs is None:
                    continue
                for s, n in zip(srcs, needs, strict=True):
                    if n and s[0] == "out":
                        reach.add(s[1])
        order = [j for j in sorted(reach, reverse=True) if units[j][1] is not None]
        for j in order:
            if j != j0:
                emit(f"    g{j} = None")
        leaves = []
        for j in order:
            for s, n in zip(*units[j], strict=True):
                if n and s[0] in ("leaf", "argt") and s not in leaves:
                    leaves.append(s)
        names = {s: f"gl{i}" for i, s in enumerate(leaves)}
        for s in leaves:
            emit(f"    {names[s]} = None")
            tens = f"L{s[1]}" if s[0] == "leaf" else f"A[{s[1]}]"
            emit(f"    if {tens}.grad is not None:")
            emit(f"        _protect({tens}, OWNED)")
        # which gradients are certainly there: planned units return one for every input that
        # needs it; a unit's own backward may return None
        state = {f"g{j0}": "set"}
        private = {}  # leaf gradient -> came once, from a planned unit's own buffer
        for j in order:
            srcs, needs = units[j]
            sure = state.get(f"g{j}") == "set" and not isinstance(self.plan_of[j], GenericPlan)
            pad = "    "
            if state.get(f"g{j}") != "set":
                emit(f"    if g{j} is not None:")
                pad = "        "
            emit(("B", j, pad, f"{pad}r = B{j}(g{j})"))
            for i, (s, n) in enumerate(zip(srcs, needs, strict=True)):
                if not n:
                    continue
                tgt = f"g{s[1]}" if s[0] == "out" else names.get(s)
                if tgt is None:
                    continue
                st = state.get(tgt, "unset")
                private[tgt] = sure and st == "unset" and isinstance(self.plan_of[j], _Plan)
                if sure and st == "unset":
                    emit(f"{pad}{tgt} = r[{i}]")
                    state[tgt] = "set" if pad == "    " else "maybe"
                elif sure and st == "set":
                    emit(f"{pad}{tgt} = {tgt} + r[{i}]")
                else:
                    emit(f"{pad}t = r[{i}]")
                    emit(f"{pad}if t is not None:")
                    emit(f"{pad}    {tgt} = t if {tgt} is None else {tgt} + t")
                    state[tgt] = "set" if (st == "set") else "maybe"
        fast = all(state.get(names[s]) == "set" and private.get(names[s]) for s in leaves)
        if fast:  # no _store below: the set of handed-out gradients is not needed
            for i in h_lines:
                lines[i] = ""
        for s in leaves:
            tens = f"L{s[1]}" if s[0] == "leaf" else f"A[{s[1]}]"
            if fast:
                # _store without the bookkeeping: each array is a planned unit's own buffer,
                # writeable, handed to this leaf only
                g = names[s]
                emit(f"    {tens}.grad = {g} if {tens}.grad is None else {tens}.grad + {g}")
            elif state.get(names[s]) == "set":
                emit(f"    _store({tens}, {names[s]}, h)")
            else:
                emit(f"    if {names[s]} is not None:")
                emit(f"        _store({tens}, {names[s]}, h)")

    def _result_expr(self, r, expr):
        kind, v = r
        if kind == "const":
            return expr(("const", v))
        if kind == "tensor":
            if v[0] in ("leaf", "argt"):
                return f"L{v[1]}" if v[0] == "leaf" else f"A[{v[1]}]"
            if v[0] == "out" and getattr(self.plan_of[v[1]], "fresh_output", False):
                return f"W({expr(v)})"  # a new array at every call: no copy needed
            return f"W(np.array({expr(v)}))"
        if kind == "array":
            return f"np.array({expr(v)})"
        if kind == "dict":
            return "{" + ", ".join(f"{k!r}: {self._result_expr(x, expr)}" for k, x in v) + "}"
        inner = ", ".join(self._result_expr(x, expr) for x in v)
        if kind == "tuple":
            return f"({inner}{',' if len(v) == 1 else ''})"
        return f"[{inner}]"

    def guards_hold(self) -> bool:
        for m, training in self.modules:
            if m.training != training:
                return False
        for d, k, v in self.structure:
            if (tuple(d) != v) if k is None else (d.get(k) is not v):
                return False
        last = self.last_data
        flat = self.flat_leaves
        for i, (t, rg, shape, dtype) in enumerate(self.leaf_state):
            d = t._data  # the slot behind .data (the property costs a call per read)
            if t._rg != rg:
                return False
            if d is not last[i]:
                if d.shape != shape or d.dtype != dtype or id(t) in flat:
                    return False  # (a flat parameter's new array: trace, and lay it out anew)
                last[i] = d
        return True


# ------------------------------------------------------------------------------------------------
# the compiled function
# ------------------------------------------------------------------------------------------------


class _Entry:
    __slots__ = ("state", "trace", "result", "program", "misses", "why")

    def __init__(self):
        self.state = "new"  # new -> traced -> ready | eager
        self.trace = self.result = self.program = None
        self.misses = 0
        self.why = None


class CompiledFunction:
    """A training step that is traced on its first calls and replayed afterwards.

    See :func:`compile`. ``stats`` counts calls by how they ran: ``'replayed'``, ``'traced'``
    and ``'eager'`` (a signature whose recordings differ, or that a guard sent back);
    ``explain()`` says, per cached signature, what state it is in and why.
    """

    def __init__(self, fn, cache_size: int = 4):
        if not callable(fn):
            raise TypeError(f"compile: expected a function, got {type(fn).__name__}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"compile: cache_size must be a whole number >= 1, got {cache_size!r}")
        self.fn = fn
        self.cache_size = cache_size
        self.cache: OrderedDict = OrderedDict()
        self.stats = {"replayed": 0, "traced": 0, "eager": 0}
        self.__name__ = getattr(fn, "__name__", "compiled")
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        self._hot = None  # the program of the latest replayed call (see __call__)

    @staticmethod
    def _key(args, kwargs):
        parts = [is_grad_enabled()]
        for a in args:
            t = type(a)
            if t is np.ndarray:
                parts.append((a.shape, a.dtype))
            elif t is Tensor or isinstance(a, Tensor):
                d = a._data
                parts.append((d.shape, d.dtype, a._rg, 1))
            else:
                try:
                    hash(a)
                except TypeError:
                    return None
                parts.append((t, a))
        if kwargs:
            return None
        return tuple(parts)

    def __call__(self, *args, **kwargs):
        hot = self._hot  # the program that ran last: one generated check, then run it
        retrace = False
        # _PATCH_DEPTH: no trace runs in any thread (else _recorder() decides, below)
        if hot is not None and not kwargs and not _PATCH_DEPTH[0] and hot.accepts(args):
            try:
                out = hot.run(args)
            except _Retrace:
                retrace = True  # trace this call (do not run the program a second time)
            else:
                self.stats["replayed"] += 1
                return out
        self._hot = None
        key = self._key(args, kwargs)
        if key is None or _recorder() is not None:
            self.stats["eager"] += 1
            return self.fn(*args, **kwargs)
        entry = self.cache.get(key)
        if entry is not None and entry.state == "ready":
            prog = entry.program
            if not retrace and prog.guards_hold():
                try:
                    out = prog.run(args)
                except _Retrace:
                    pass
                else:
                    self.stats["replayed"] += 1
                    self._hot = prog if prog.accepts is not None else None
                    return out
            entry = None  # a guard failed: trace again
        if entry is None:
            entry = _Entry()
            self.cache[key] = entry
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        else:
            self.cache.move_to_end(key)
        if entry.state == "eager":
            self.stats["eager"] += 1
            return self.fn(*args)
        return self._trace(entry, args)

    def _trace(self, entry, args):
        trace = _Trace(args)
        with _LOCK:
            _install_patches()
            _LOCAL.recorder = trace
            try:
                out = self.fn(*args)
            finally:
                _LOCAL.recorder = None
                _remove_patches()
        self.stats["traced"] += 1
        try:
            if trace.problem:
                raise _Unreplayable(trace.problem)
            result = trace.result(out)
            trace.finish()
            if entry.state == "new":
                entry.state, entry.trace, entry.result = "traced", trace, result
                return out
            refs = _agree(entry.trace, trace)
            if refs is None or not _same_result(entry.result, result):
                entry.misses += 1
                entry.trace, entry.result = trace, result
                if entry.misses >= 3:
                    raise _Unreplayable("its recordings differ from call to call")
                return out
            entry.program = _Program(trace, refs, result, args)
            entry.state = "ready"
            entry.trace = None
        except _Unreplayable as why:
            entry.state, entry.why, entry.trace = "eager", str(why), None
        return out

    @staticmethod
    def _shapes(key) -> str:
        return ", ".join(
            str(p[0]) for p in key[1:] if isinstance(p, tuple) and isinstance(p[0], tuple)
        )

    def explain(self) -> str:
        """One line per cached signature: ready (replayed), traced (once), or eager and why."""
        lines = []
        for key, e in self.cache.items():
            lines.append(f"({self._shapes(key)}): {e.state}" + (f" ({e.why})" if e.why else ""))
        return "\n".join(lines) or "(no calls yet)"

    def source(self) -> str:
        """The generated Python function that a replayed call runs, per replayed signature
        (constants appear as ``K0``, ``K1``...: buffers, the optimizer, the parameters)."""
        parts = [
            f"# arguments of shapes ({self._shapes(key)})\n{e.program.source}"
            for key, e in self.cache.items()
            if e.program is not None
        ]
        return "\n\n".join(parts) or "(nothing replayed yet)"


def compile(fn=None, *, cache_size: int = 4):  # noqa: A001 - the name users expect
    """Trace a training-step function once and replay it on later calls with the same shapes.

    ``fn`` is a step such as::

        @cr.compile
        def step(xb, yb):
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            return loss

    Its positional arguments are arrays, tensors or hashable constants (keyword arguments make a
    call eager). The first two calls with a new signature (shapes, dtypes, ``requires_grad``,
    grad mode) run eagerly and are recorded; when both recordings agree, later calls replay the
    recording: the same numbers as eager mode, without modules, tensors or the graph walk. Up to
    ``cache_size`` signatures are kept. See the module documentation for the guards and for what
    is not replayed (Python side effects in ``fn``).
    """
    if fn is None:
        return lambda f: CompiledFunction(f, cache_size=cache_size)
    return CompiledFunction(fn, cache_size=cache_size)
