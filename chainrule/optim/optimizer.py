"""The optimizer base class: parameter groups, per-parameter state, zero_grad, state_dict.

An optimizer is gradient descent and its variants: it reads each parameter's ``.grad`` (filled by
back-propagation) and moves ``.data`` against it. It never computes a derivative itself.

The shape of everything here is PyTorch's ``torch.optim.Optimizer``, so that code, checkpoints and
habits carry over:

- ``param_groups`` is a list of dicts, each holding ``'params'`` (a list of tensors) and that
  group's hyperparameters (``'lr'``, ...). Schedulers change ``group['lr']``.
- ``state`` maps each parameter to a dict of its running quantities (momentum buffers, moment
  estimates, the step count), numpy arrays of the parameter's dtype and plain numbers.
- ``state_dict()`` refers to parameters by their index in the order of ``param_groups``, as
  PyTorch does, and holds only numpy arrays, plain numbers, strings, tuples and lists, so it can be
  written as JSON or safetensors and loaded into a freshly built optimizer.
"""

from __future__ import annotations

import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..tensor import Tensor, bump_version, enable_grad

__all__ = ["Optimizer"]

#: One parameter group: ``'params'`` (a list of tensors) and that group's hyperparameters.
ParamGroup = dict[str, Any]
#: What an optimizer takes: tensors (``net.parameters()``), ``(name, tensor)`` pairs
#: (``net.named_parameters()``) or parameter groups (dicts with a ``'params'`` entry).
Params = Iterable[Tensor] | Iterable[tuple[str, Tensor]] | Iterable[ParamGroup]


# ------------------------------------------------------------------------------------------------
# hyperparameter checks shared by the optimizers (messages as PyTorch's, plus what was expected)
# ------------------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_nonnegative(owner: str, what: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a real number >= 0 (NaN is rejected)."""
    if not _is_number(value) or not value >= 0.0:
        shown = value if _is_number(value) else repr(value)
        raise ConfigError(f"{owner}: Invalid {what}: {shown} (expected a number >= 0)")


def check_unit_interval(owner: str, what: str, value: Any) -> None:
    """Raise ConfigError unless ``0 <= value < 1``."""
    if not _is_number(value) or not 0.0 <= value < 1.0:
        shown = value if _is_number(value) else repr(value)
        raise ConfigError(f"{owner}: Invalid {what}: {shown} (expected 0 <= value < 1)")


_SET_MESSAGE = (
    "optimizer parameters need to be organized in ordered collections, but the "
    "ordering of tensors in sets will change between runs. Please use a list instead."
)


def effective_grad(
    g: np.ndarray, w: np.ndarray, weight_decay: float, maximize: bool
) -> tuple[np.ndarray, bool]:
    """The gradient an update steps against: negated to maximize, plus ``weight_decay · w``
    (the L2 penalty's gradient). Returns ``(g, owned)``: ``owned`` is True when ``g`` is a new
    array that the update may overwrite (the parameter's own ``.grad`` never is)."""
    owned = False
    if maximize:
        g = np.negative(g)
        owned = True
    if weight_decay != 0:
        d = np.multiply(w, weight_decay)
        g = np.add(g, d, out=d)
        owned = True
    return g, owned


def _type_name(x: object) -> str:
    return type(x).__module__.split(".")[0] + "." + type(x).__name__


class Optimizer:
    """Base class of the optimizers.

    Parameters
    ----------
    params : iterable of Tensors, or of dicts
        The tensors to optimize (anything with ``.data`` and ``.grad``, such as
        ``net.parameters()``), or parameter groups: dicts with a ``'params'`` list and any
        hyperparameters that differ from the defaults for that group, e.g.
        ``[{'params': net[0].parameters()}, {'params': net[2].parameters(), 'lr': 1e-3}]``.
        ``(name, tensor)`` pairs (``named_parameters()``) are accepted too; the names are kept in
        the group's ``'param_names'``.
    defaults : dict
        The hyperparameters of a group that does not set them.

    Notes
    -----
    Subclasses check their hyperparameters in ``_check_hyperparameters(group)`` and implement
    ``_step_group(group)``.
    """

    def __init__(self, params: Params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._check_hyperparameters(defaults)
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or dicts, but "
                f"got a single {type(params).__name__} (wrap it in a list: [param])"
            )
        if isinstance(params, dict):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[ParamGroup] = []
        groups: list[Any] = list(params)
        if len(groups) == 0:
            raise ConfigError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- hooks for subclasses ---------------------------------------------------------------------
    def _check_hyperparameters(self, group: ParamGroup) -> None:
        """Raise ConfigError for a hyperparameter value that cannot work (subclasses extend)."""
        check_nonnegative(type(self).__name__, "learning rate", group["lr"])

    def _init_state(self, group: ParamGroup, p: Tensor) -> None:
        """Create the state of parameter ``p`` eagerly (only Adagrad needs this)."""

    def _step_group(self, group: ParamGroup) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _with_grads(
        self, group: ParamGroup
    ) -> Iterator[tuple[Tensor, np.ndarray, np.ndarray, dict[str, Any]]]:
        """(p, w, g, st) for each parameter ``p`` of ``group`` that has a gradient: its array
        (updated in place), its gradient (never written to) and its state dict."""
        state = self.state
        for p in group["params"]:
            g = p.grad
            if g is not None:
                bump_version(p)  # a graph recorded before this step can no longer backward
                yield p, p.data, g, state[p]

    # --- groups -----------------------------------------------------------------------------------
    def add_param_group(self, param_group: ParamGroup) -> None:
        """Add a group of parameters, e.g. layers unfrozen while fine-tuning.

        Hyperparameters the group leaves out take the optimizer's defaults. A parameter may belong
        to one group only.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ConfigError("param_group must have a 'params' entry (a list of tensors)")
        group = dict(param_group)
        params = group["params"]
        if hasattr(params, "data") and hasattr(params, "grad"):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        params = list(params)
        names: list[str] = []
        tensors: list[Any] = []
        for item in params:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                names.append(item[0])
                item = item[1]
            tensors.append(item)
        if names and len(names) != len(tensors):
            raise ConfigError(
                "all optimizer params should be with/without names. Some param names are missing"
            )
        for p in tensors:
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(
                    "optimizer can only optimize Tensors (objects with .data and .grad), but one "
                    f"of the params is {_type_name(p)}"
                )
            if not getattr(p, "is_leaf", True):
                raise ConfigError(
                    "can't optimize a non-leaf Tensor (one computed by a unit); "
                    "optimize the leaf tensors it was computed from"
                )
        group["params"] = tensors
        if names:
            group["param_names"] = names
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_hyperparameters(group)

        ids = [id(p) for p in tensors]
        if len(set(ids)) != len(ids):
            raise ConfigError("optimizer contains a parameter group with duplicate parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise ConfigError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)
        for p in tensors:
            self._init_state(group, p)

    # --- the training-loop calls ------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` for every parameter (PyTorch's default).

        With ``set_to_none=False`` each gradient becomes a fresh array of zeros instead (never
        zeroed in place: a gradient array may be shared with the caller).
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else np.zeros_like(p.grad)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Take one optimization step on every parameter that has a gradient.

        Parameters whose ``.grad`` is None are skipped (their state is not touched).

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (it should call ``zero_grad`` and
            ``backward`` itself). Called once, with gradient recording on, before the update.

        Returns
        -------
        The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, to save beside the model's weights.

        Returns ``{'state': {index: {name: ndarray or number}}, 'param_groups': [{hyperparameters,
        'params': [index, ...]}]}`` where ``index`` numbers the parameters across the groups in
        order, as PyTorch does. Arrays are copies (later steps do not change a saved dict).
        """
        index: dict[int, int] = {}
        groups: list[dict[str, Any]] = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state: dict[int, dict[str, Any]] = {}
        for p, s in self.state.items():
            if not s or id(p) not in index:
                continue
            state[index[id(p)]] = {
                k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()
            }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict` into this optimizer (same groups, same sizes).

        Parameters are matched by position. State arrays are copied and cast to each parameter's
        dtype (``'step'`` stays a number). JSON-decoded input works too: string keys, lists for
        arrays and tuples.
        """
        saved_groups = state_dict["param_groups"]
        groups = self.param_groups
        if len(groups) != len(saved_groups):
            raise ConfigError(
                f"loaded state dict has {len(saved_groups)} parameter groups but the optimizer "
                f"has {len(groups)}"
            )
        for i, (g, sg) in enumerate(zip(groups, saved_groups, strict=True)):
            if len(g["params"]) != len(sg["params"]):
                raise ConfigError(
                    f"loaded state dict's parameter group {i} has {len(sg['params'])} parameters "
                    f"but the optimizer's has {len(g['params'])}"
                )
        id_map: dict[int, Tensor] = {}
        for g, sg in zip(groups, saved_groups, strict=True):
            for p, k in zip(g["params"], sg["params"], strict=True):
                id_map[int(k)] = p

        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, saved in state_dict["state"].items():
            key = int(key)
            if key not in id_map:
                continue
            p = id_map[key]
            pdata = p.data
            entry: dict[str, Any] = {}
            for name, value in saved.items():
                if name == "step":
                    entry[name] = int(value) if float(value).is_integer() else float(value)
                elif isinstance(value, (np.ndarray, list)):
                    dtype = pdata.dtype if pdata.dtype.kind in "fc" else None
                    arr = np.array(value, dtype=dtype, copy=True)
                    if arr.shape != pdata.shape:
                        raise ConfigError(
                            f"loaded state '{name}' of parameter {key} has shape {arr.shape} but "
                            f"the parameter has shape {pdata.shape}"
                        )
                    entry[name] = arr
                else:
                    entry[name] = value
            new_state[p] = entry

        new_groups: list[ParamGroup] = []
        for g, sg in zip(groups, saved_groups, strict=True):
            ng: ParamGroup = {}
            for k, v in sg.items():
                if k == "params":
                    continue
                if isinstance(g.get(k), tuple) and isinstance(v, list):
                    v = tuple(v)
                ng[k] = v
            ng["params"] = g["params"]
            if "param_names" in g and "param_names" not in sg:
                ng["param_names"] = g["param_names"]
            new_groups.append(ng)
        self.state = new_state
        self.param_groups = new_groups

    # --- printing ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
