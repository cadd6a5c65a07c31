"""Module: the base class of layers, losses and models; Sequential and ModuleList containers.

A module owns parameters (learnable tensors), buffers (state that is saved but not learned, such
as BatchNorm's running statistics) and submodules. Assigning any of them to an attribute
registers it, as in PyTorch::

    class MLP(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = cr.nn.Linear(2, 16)     # a submodule: its parameters are ours too
            self.out = cr.nn.Linear(16, 3)

        def forward(self, x):
            return self.out(cr.relu(self.hidden(x)))

    list(dict(MLP().named_parameters()))  # ['hidden.weight', 'hidden.bias', 'out.weight', ...]
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np
from numpy.typing import DTypeLike

from .. import registry
from .._views import view
from ..errors import ChainruleError, ConfigError, ModelFileError
from ..tensor import Tensor, changes, no_grad
from .parameter import Parameter

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..display import Summary

__all__ = ["Module", "Sequential", "ModuleList"]


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` reports: keys the model has that the state dict lacked, and
    keys of the state dict that the model does not have."""

    missing_keys: list[str]
    unexpected_keys: list[str]


#: ``hook(module, inputs, output)``, called after a forward; a result other than None replaces
#: the output.
ForwardHook = Callable[["Module", tuple[Any, ...], Any], Any]


def _addindent(s: str, spaces: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * spaces + line for line in lines)


def _shape_str(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


class _Store(OrderedDict):  # type: ignore[type-arg]
    """A module's parameters, buffers, children or hooks: an OrderedDict that counts every
    change in ``tensor.changes`` (a compiled step then knows its guards must be read again)."""

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        changes[0] += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        changes[0] += 1
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        changes[0] += 1
        return super().pop(*args)

    def popitem(self, last: bool = True) -> Any:
        changes[0] += 1
        return super().popitem(last)

    def clear(self) -> None:
        changes[0] += 1
        super().clear()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        changes[0] += 1
        return super().setdefault(key, default)

    def move_to_end(self, key: Any, last: bool = True) -> None:
        changes[0] += 1
        super().move_to_end(key, last)

    def update(self, *args: Any, **kwargs: Any) -> None:
        changes[0] += 1
        super().update(*args, **kwargs)


class _HookHandle:
    _ids = itertools.count()

    def __init__(self, hooks: dict[int, ForwardHook]) -> None:
        self.hooks = hooks
        self.id = next(self._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Module:
    """Base class of every layer, loss and model.

    Subclass it, create parameters and submodules in ``__init__`` (after
    ``super().__init__()``) and compute the output in ``forward``; call the module itself
    (``model(x)``), which runs ``forward``.

    Attributes
    ----------
    training : bool
        True in training mode (the default), False after :meth:`eval`. Dropout and BatchNorm
        behave differently in the two modes.
    """

    training: bool
    _facts = registry.Facts()
    # the stores behind attribute assignment (filled in __init__, through __dict__)
    _parameters: OrderedDict[str, Parameter | None]
    _buffers: OrderedDict[str, np.ndarray | None]
    _non_persistent: set[str]
    _modules: OrderedDict[str, Module | None]
    _forward_hooks: OrderedDict[int, ForwardHook]

    def __init_subclass__(cls, **facts: Any) -> None:
        """A subclass states its facts in its class line (``class Tanh(Module,
        role="activation", config=())``) and so joins the registry (see ``chainrule.registry``)."""
        super().__init_subclass__()
        cls._facts = registry.register(cls, **facts)

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = _Store()
        d["_buffers"] = _Store()
        d["_non_persistent"] = set()
        d["_modules"] = _Store()
        d["_forward_hooks"] = _Store()

    # --- calling ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:
            for hook in list(hooks.values()):
                res = hook(self, args, out)
                if res is not None:
                    out = res
        return out

    def register_forward_hook(self, hook: ForwardHook) -> _HookHandle:
        """Call ``hook(module, inputs, output)`` after every forward; it may return a new output.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        handle = _HookHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # --- registration -------------------------------------------------------------------------
    def _check_init(self, what: str, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise ChainruleError(
                f"cannot assign {what} '{name}' before Module.__init__() call: call "
                f"super().__init__() first in {type(self).__name__}.__init__"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        changes[0] += 1  # training, a parameter, a child... (see tensor.changes)
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameter", name)
            self.__dict__.pop(name, None)
            d["_buffers"].pop(name, None)
            d["_modules"].pop(name, None)
            d["_parameters"][name] = value
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as parameter '{name}' of "
                    f"{type(self).__name__} (a cr.nn.Parameter or None is expected)"
                )
            params[name] = None
            return
        if isinstance(value, Module):
            self._check_init("module", name)
            self.__dict__.pop(name, None)
            d["_parameters"].pop(name, None)
            d["_buffers"].pop(name, None)
            d["_modules"][name] = value
            return
        modules = d.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as submodule '{name}' of "
                    f"{type(self).__name__} (a Module or None is expected)"
                )
            modules[name] = None
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            buffers[name] = self._as_buffer(name, value)
            return
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:  # a parameter, a buffer (ndarray) or a submodule
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        changes[0] += 1
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                del s[name]
                d["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        keys = list(super().__dir__())
        keys += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(k for k in keys if not k[0].isdigit()))

    @staticmethod
    def _as_buffer(name: str, value: object) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, Tensor):
            return value.data
        if isinstance(value, (np.ndarray, np.generic, int, float, list, tuple)):
            return np.asarray(value)
        raise TypeError(
            f"cannot assign a {type(value).__name__} as buffer '{name}' "
            "(a numpy array or None is expected)"
        )

    def _check_name(self, kind: str, name: object) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{kind} name can't contain \".\" and can't be empty, got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` (a Parameter, or None) under ``name``, as ``setattr`` does."""
        self._check_init("parameter", name)
        self._check_name("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot register a {type(param).__name__} as parameter '{name}' "
                "(a cr.nn.Parameter or None is expected)"
            )
        if param is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(
        self, name: str, tensor: Tensor | np.ndarray | None, persistent: bool = True
    ) -> None:
        """Add a buffer: state saved in :meth:`state_dict` but not learned (no gradient).

        Buffers are numpy arrays (``module.name`` returns the array); ``persistent=False``
        leaves the buffer out of the state dict.
        """
        self._check_init("buffer", name)
        self._check_name("buffer", name)
        if name in self.__dict__ or name in self._parameters or name in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._buffers[name] = self._as_buffer(name, tensor)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a submodule (or None) under ``name``, as ``setattr`` does."""
        self._check_init("module", name)
        self._check_name("module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(_not_a_module(f"{type(self).__name__}: module '{name}'", module))
        if module is None:
            self.__dict__.pop(name, None)
            self._modules[name] = None
        else:
            setattr(self, name, module)

    register_module = add_module

    # --- traversal ----------------------------------------------------------------------------
    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted_name, module)`` for this module ('') and every submodule, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from m.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """Every module in the tree, this one first."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` for the direct submodules."""
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """The direct submodules."""
        for _, m in self.named_children():
            yield m

    def _named_members(
        self, store: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods: Iterable[tuple[str, Module]] = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for mod_prefix, m in mods:
            for name, v in getattr(m, store).items():
                if v is None:
                    continue
                if remove_duplicate:
                    if id(v) in seen:
                        continue
                    seen.add(id(v))
                yield mod_prefix + ("." if mod_prefix else "") + name, v

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, parameter)``: ``'weight'``, ``'0.bias'``, ``'layers.1.weight'``.

        A parameter shared by two modules is listed once (under its first name).
        """
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter of this module and its submodules (what an optimizer steps)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(dotted_name, array)`` for every buffer (e.g. ``'1.running_mean'``)."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the module learns (elements of all parameters, shared ones once)."""
        return int(
            sum(p.data.size for p in self.parameters() if p.requires_grad or not trainable_only)
        )

    def apply(self, fn: Callable[[Module], object]) -> Self:
        """Call ``fn(module)`` on every submodule (children first) and then on this one."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # --- gradients, modes, dtypes ---------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``.grad = None``; zeros with set_to_none=False)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = np.zeros_like(p.grad)

    def requires_grad_(self, requires_grad: bool = True) -> Self:
        """Switch gradient computation on or off for every parameter (freeze with False)."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def train(self, mode: bool = True) -> Self:
        """Training mode (True) or evaluation mode (False) for this module and all below it."""
        if not isinstance(mode, bool):
            raise ConfigError(f"train: mode is expected to be True or False, got {mode!r}")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Self:
        """Evaluation mode: Dropout is the identity, BatchNorm uses its running statistics."""
        return self.train(False)

    def to(self, dtype: DTypeLike) -> Self:
        """Convert every floating parameter (and its gradient) and floating buffer to ``dtype``.

        ``model.to(np.float64)`` (or ``model.double()``) is handy for gradient checks.
        """
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise ConfigError(f"to: {dtype!r} is not a numpy dtype (try np.float64)") from None
        if dt.kind != "f":
            raise ConfigError(f"to: parameters must stay floating point, got dtype {dt}")
        dtype = dt
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype.kind == "f" and p.data.dtype != dtype:
                    p.data = p.data.astype(dtype)
                    if p.grad is not None:
                        p.grad = p.grad.astype(dtype)
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f" and b.dtype != dtype:
                    m._buffers[name] = b.astype(dtype)
        return self

    def double(self) -> Self:
        """Parameters and buffers to float64."""
        return self.to(np.float64)

    def float(self) -> Self:
        """Parameters and buffers to float32."""
        return self.to(np.float32)

    # --- state --------------------------------------------------------------------------------
    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, Module, str, str]]:
        """(key, owner module, store, attribute name) for every saved entry, in PyTorch's order."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, self, "_parameters", name
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, self, "_buffers", name
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_entries(prefix + name + ".")

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """An ordered dict ``dotted_name -> numpy array`` (copies) of parameters and buffers."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for key, owner, store, name in self._state_entries():
            v = getattr(owner, store)[name]
            out[key] = np.array(v.data if isinstance(v, Tensor) else v, copy=True)
        return out

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy the arrays of ``state_dict`` into this module's parameters and buffers.

        Values may be numpy arrays, tensors or anything ``np.asarray`` takes (PyTorch tensors
        too); each keeps the dtype of the parameter it is copied into. Nothing is changed when
        a check fails. Shape mismatches always raise; with ``strict=True`` (the default) missing
        and unexpected keys raise too. Returns ``(missing_keys, unexpected_keys)``.

        Raises
        ------
        ModelFileError
            One line naming every missing or unexpected key and each shape mismatch.
        """
        if not hasattr(state_dict, "items"):
            raise ModelFileError(
                f"load_state_dict: expected a dict of arrays, got {type(state_dict).__name__}"
            )
        entries = {key: (owner, store, name) for key, owner, store, name in self._state_entries()}
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        problems: list[str] = []
        values: dict[str, np.ndarray] = {}
        for key, (owner, store, name) in entries.items():
            if key not in state_dict:
                continue
            try:
                value = np.asarray(state_dict[key])
            except Exception as err:  # e.g. a torch tensor that requires grad
                raise ModelFileError(
                    f"load_state_dict: cannot read '{key}' as an array: {err}"
                ) from None
            current = getattr(owner, store)[name]
            cur = current.data if isinstance(current, Tensor) else current
            if value.shape != cur.shape:
                problems.append(
                    f"size mismatch for '{key}': the state dict has shape {_shape_str(value.shape)}"
                    f" but the model has shape {_shape_str(cur.shape)}"
                )
            values[key] = value
        if strict:
            for k in missing:
                owner, store, name = entries[k]
                cur = getattr(owner, store)[name]
                problems.append(
                    f"missing key '{k}' (model shape "
                    f"{_shape_str(np.shape(cur.data if isinstance(cur, Tensor) else cur))})"
                )
            for k in unexpected:
                problems.append(
                    f"unexpected key '{k}' (shape {_shape_str(np.shape(state_dict[k]))})"
                )
        if problems:
            raise ModelFileError(
                f"load_state_dict for {type(self).__name__}: " + "; ".join(problems)
            )
        for key, value in values.items():
            owner, store, name = entries[key]
            current = getattr(owner, store)[name]
            if isinstance(current, Tensor):
                current.data = np.array(value, dtype=current.data.dtype, copy=True)
            else:
                getattr(owner, store)[name] = np.array(value, dtype=current.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # --- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (e.g. ``in_features=2, ...``)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for key, m in self._modules.items():
            child_lines.append("(" + key + "): " + _addindent(repr(m), 2))
        lines = extra_lines + child_lines
        s = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                s += extra_lines[0]
            else:
                s += "\n  " + "\n  ".join(lines) + "\n"
        return s + ")"

    def _output_shape(self, in_shape: str) -> str:
        """This layer's output shape as summary() shows it, from its configuration and the
        shape of its input (``'?'`` when unknown), without running it. Layers whose output
        has their input's shape say so with ``keeps_shape=True``; others may override this."""
        return in_shape if self._facts.keeps_shape else "?"

    def summary(self, input_shape: int | tuple[int, ...] | None = None) -> Summary:
        """A table of the layers, their output shapes and parameter counts (as Keras' summary).

        The result is a ``str`` (print it); a notebook shows it as an HTML table with each
        layer's settings and which unit it is (linear unit Σ, activation σ).

        Parameters
        ----------
        input_shape : int or tuple, optional
            The shape of ONE sample, without the batch dimension (``(2,)`` for 2 features).
            When given, a batch of zeros of that shape is run through the model (in eval mode,
            without recording) to find every layer's output shape; otherwise output shapes are
            inferred from Linear layers and the shape-preserving layers after them ('?' where
            unknown). The batch dimension is shown as None.
        """
        rows = leaf_modules(self, own_parameters=True)
        shapes: dict[int, str] = {}
        if input_shape is not None:
            if isinstance(input_shape, (int, np.integer)):
                input_shape = (int(input_shape),)
            input_shape = tuple(int(s) for s in input_shape)
            found = probe_shapes(self, [m for _, m in rows], input_shape)
            shapes = {k: _shape_str(("None",) + shape) for k, shape in found.items()}
        else:
            last = "?"
            for _, m in rows:
                shape = m._output_shape(last)
                shapes[id(m)] = shape
                last = shape
        table: list[tuple[str, str, str]] = [("Layer (type)", "Output Shape", "Param #")]
        for name, m in rows:
            label = f"{name} ({type(m).__name__})" if name else type(m).__name__
            n = sum(p.data.size for p in m._parameters.values() if p is not None)
            table.append((label, shapes.get(id(m), "?"), f"{n:,}"))
        widths = [max(len(r[i]) for r in table) + 3 for i in range(3)]
        total_width = sum(widths)

        def line(r: tuple[str, str, str]) -> str:
            return (r[0].ljust(widths[0]) + r[1].ljust(widths[1]) + r[2]).rstrip()

        total = self.num_parameters()
        trainable = self.num_parameters(trainable_only=True)
        out = [
            f'Model: "{type(self).__name__}"',
            "_" * total_width,
            line(table[0]),
            "=" * total_width,
        ]
        for i, r in enumerate(table[1:]):
            out.append(line(r))
            if i < len(table) - 2:
                out.append("_" * total_width)
        out += [
            "=" * total_width,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
            "_" * total_width,
        ]
        rows_info = [
            {
                "name": name,
                "type": type(m).__name__,
                "settings": m.extra_repr(),
                "unit": registry.unit_word(m),
                "output_shape": shapes.get(id(m), "?"),
                "params": int(sum(p.data.size for p in m._parameters.values() if p is not None)),
            }
            for name, m in rows
        ]
        # a str that a notebook shows as a table (chainrule.display provides it)
        return view("summary")("\n".join(out), type(self).__name__, rows_info, total, trainable)


def leaf_modules(model: Module, own_parameters: bool = False) -> list[tuple[str, Module]]:
    """[(name, module)] of the modules without submodules, in order (the layers); with
    ``own_parameters``, also the containers that hold parameters of their own (as summary()
    lists them)."""
    rows: list[tuple[str, Module]] = []
    for name, m in model.named_modules():
        has_children = any(True for _ in m.children())
        if not has_children or (
            own_parameters and any(p is not None for p in m._parameters.values())
        ):
            rows.append((name, m))
    return rows


def probe_shapes(
    model: Module,
    modules: Iterable[Module],
    sample_shape: tuple[int, ...],
    shapes: dict[int, tuple[int, ...]] | None = None,
) -> dict[int, tuple[int, ...]]:
    """{id(module): its output's shape without the batch dimension} for each of ``modules``
    that returned a Tensor when one sample of zeros of ``sample_shape`` (in the parameters'
    dtype) ran through ``model`` in eval mode, without recording. Each module's training mode
    is restored afterwards; an exception from the model propagates (``shapes``, a dict to
    fill, then keeps what the layers before the failing one gave)."""
    if shapes is None:
        shapes = {}

    def record(mod: Module, inputs: tuple[Any, ...], out: Any) -> None:
        if isinstance(out, Tensor):
            shapes[id(mod)] = tuple(out.shape[1:])
        else:
            shapes.pop(id(mod), None)

    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    handles = [m.register_forward_hook(record) for m in modules]
    was_training = {id(m): m.training for m in model.modules()}
    model.eval()
    try:
        with no_grad():
            model(np.zeros((1,) + tuple(sample_shape), dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            m.training = was_training[id(m)]
    return shapes


def _not_a_module(where: str, obj: object) -> str:
    if isinstance(obj, type) and issubclass(obj, Module):
        return f"{where} is the class {obj.__name__}, not a module: write {obj.__name__}()"
    if callable(obj):
        name = getattr(obj, "__name__", type(obj).__name__)
        return (
            f"{where} is the function {name}, not a Module (use a layer such as "
            "cr.nn.ReLU() in a Sequential, or call the function inside a forward)"
        )
    return f"{where} is a {type(obj).__name__}, not a Module"


# ================================================================================================
# containers
# ================================================================================================


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: submodules named '0', '1', ... in order, indexed
    (negative indices count from the end; a slice gives a container sharing the modules),
    replaced, deleted (renumbering the rest, as PyTorch does), appended, popped."""

    def _slice(self, items: list[tuple[str, Module]]) -> Self:
        """A container of the same kind holding the (name, module) ``items``."""
        raise NotImplementedError

    def _check_element(self, key: object, m: object) -> None:
        if not isinstance(m, Module):
            raise TypeError(_not_a_module(f"{type(self).__name__}: element {key}", m))

    def _index(self, idx: int) -> int:
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(
                f"index {idx} is out of range for a {type(self).__name__} of length {n}"
            )
        return idx % n

    def _renumber(self, items: Iterable[Module]) -> None:
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    @overload
    def __getitem__(self, idx: slice) -> Self: ...
    @overload
    def __getitem__(self, idx: int) -> Module: ...
    def __getitem__(self, idx: int | slice) -> Module | Self:
        if isinstance(idx, slice):
            return self._slice(list(_entries(self).items())[idx])
        return list(_entries(self).values())[self._index(int(idx))]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[self._index(int(idx))]
        self._check_element(key, module)
        self.add_module(key, module)

    def __delitem__(self, idx: int | slice) -> None:
        items = list(_entries(self).values())
        if isinstance(idx, slice):
            del items[idx]
        else:
            del items[self._index(int(idx))]
        self._renumber(items)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(_entries(self).values())

    def append(self, module: Module) -> Self:
        """Add ``module`` at the end; returns self."""
        self._check_element(len(self), module)
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Self:
        for m in modules:
            self.append(m)
        return self

    def pop(self, index: int = -1) -> Module:
        m = self[index]
        del self[index]
        return m


class Sequential(_ModuleSequence, role="container", chained=True):
    """Modules applied one after the other: ``Sequential(Linear(2, 16), ReLU(), Linear(16, 3))``.

    Also ``Sequential(OrderedDict(name=module, ...))``. Supports ``model[i]`` (a slice gives a
    Sequential that shares the modules), ``len``, iteration, ``append``, ``extend`` and
    ``insert``. Submodules are named '0', '1', ... so parameters are '0.weight', '2.bias'.
    """

    def __init__(self, *args: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            for key, m in args[0].items():
                self._add(key, m)
        else:
            for i, m in enumerate(args):
                self._add(str(i), m)

    @classmethod
    def _from_children(cls, children: Iterable[Module]) -> Self:
        """Rebuild from a list of modules (model files)."""
        return cls(*children)

    def _slice(self, items: list[tuple[str, Module]]) -> Self:
        return self.__class__(OrderedDict(items))

    def _add(self, key: str, m: object) -> None:
        self._check_element(key, m)
        self.add_module(key, m)  # type: ignore[arg-type]  # checked to be a Module above

    def forward(self, x: Any) -> Any:
        for m in self:
            x = m(x)
        return x

    def __add__(self, other: object) -> Sequential:
        if not isinstance(other, Sequential):
            return NotImplemented
        return Sequential(*self, *other)

    def insert(self, index: int, module: Module) -> Self:
        """Insert ``module`` before position ``index`` (renumbering those after it)."""
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for insert into length {n}")
        index = index % (n + 1) if index < 0 else index
        items = list(_entries(self).values())
        self._check_element(index, module)
        items.insert(index, module)
        self._renumber(items)
        return self


def _entries(container: Module) -> OrderedDict[str, Module]:
    """A container's submodules: modules only, as its methods check (an entry is None only
    after ``add_module(name, None)``, which Sequential and ModuleList do not do)."""
    return container._modules  # type: ignore[return-value]  # see the docstring


class ModuleList(_ModuleSequence, role="container"):
    """A list of modules whose parameters are registered (a plain Python list hides them).

    ``self.layers = ModuleList([Linear(2, 8), Linear(8, 8)])`` gives parameters
    'layers.0.weight', 'layers.1.bias', ... Index, slice, iterate, ``append``, ``extend``,
    ``insert``; it has no forward of its own.
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    @classmethod
    def _from_children(cls, children: Iterable[Module]) -> Self:
        """Rebuild from a list of modules (model files)."""
        return cls(children)

    def _slice(self, items: list[tuple[str, Module]]) -> Self:
        return self.__class__([m for _, m in items])

    def __iadd__(self, modules: Iterable[Module]) -> Self:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(list(self) + list(other))

    def insert(self, index: int, module: Module) -> None:
        self._check_element(index, module)
        items = list(_entries(self).values())
        items.insert(index, module)
        self._renumber(items)

    def __repr__(self) -> str:
        """As PyTorch: runs of identical modules are collapsed, '(0-2): 3 x ReLU()'."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        blocks: list[tuple[int, int, str]] = []  # (start, end, repr)
        for i, r in enumerate(reprs):
            if blocks and blocks[-1][2] == r:
                blocks[-1] = (blocks[-1][0], i, r)
            else:
                blocks.append((i, i, r))
        lines = []
        for start, end, r in blocks:
            text = (
                f"({start}): {r}" if start == end else f"({start}-{end}): {end - start + 1} x {r}"
            )
            lines.append(_addindent(text, 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "ModuleList has no forward: iterate over it in your module's forward "
            "(for layer in self.layers: x = layer(x)), or use Sequential"
        )
