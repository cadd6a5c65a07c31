"""Facts about layers and losses, kept on the classes they describe.

Every ``cr.nn.Module`` subclass may state, in its class line, what the rest of the library needs
to know about it; the class joins the registry by being defined::

    class Sigmoid(Module, role="activation", config=(), keeps_shape=True, elementwise=True,
                  output_kind="probability", short_name="sigmoid", derivative="{o}(1 − {o})"):
        ...

Model files (``io``), the explainer, the report, ``summary()``, the metrics and the command read
these facts here instead of keeping tables of class names. Adding a layer is one class with its
facts; nothing else changes.

The facts (all optional):

role
    What the explainer calls it: ``'linear'`` (a linear unit Σ with ``weight`` and ``bias``),
    ``'activation'`` (σ), ``'passthrough'`` (Identity, Dropout in eval mode, Flatten: the value
    goes on unchanged), ``'normalization'``, ``'loss'`` (the loss unit L), ``'container'``, or
    ``'layer'`` (anything else, the default).
config
    The constructor arguments, each read back from the attribute of the same name, that rebuild
    the layer from a model file. ``None`` (the default): the class cannot be saved in a model
    file. An argument that is a parameter of the layer (Linear's ``bias``) is stored as whether
    the parameter exists.
keeps_shape
    The output has the input's shape (``summary()`` carries shapes through such layers).
elementwise
    An activation applied to each number on its own (not Softmax, which mixes a row).
chained
    A container whose forward applies its children in order (Sequential).
output_kind
    How the values a layer or loss works on are read: ``'logits'`` (several columns, the class
    is the argmax), ``'logit'`` (one column, class 1 when > 0), ``'probability'`` (one column,
    class 1 when > 0.5) or ``'value'`` (regression). For a loss: what it expects the model to
    output; for a layer (Sigmoid): what its output is.
target
    For a loss: ``'index'`` when the targets are class indices (one per sample, so 'mean'
    averages over the samples); ``None`` when they have the input's shape.
short_name
    The name the command's options and model files use (``'cross_entropy'``, ``'relu'``).
settings
    How a model file's value of each ``config`` argument is checked before the layer is built:
    ``{argument: (check, what is expected)}`` (``chainrule._schema`` has the usual checks:
    SIZE, BOOL, DIM). ``None``: each value only has to be a number, text, true/false or a short
    list of numbers.
values
    How many numbers the layer's state (parameters and buffers) holds, as a function of its
    model-file config: ``values(config) -> int``. A model file's check compares the total with
    the weights the file holds before anything is built. ``None``: counted as 0 when
    ``settings`` are stated, else bounded by the product of the config's sizes.
formula, derivative
    Text the explainer prints beside the numbers: the loss as a formula of the output ``{o}``,
    and the local derivative (``{o}`` the output, ``{i}`` the input, ``{o2}`` the output
    squared). Labels for the reader only; the numbers come from the units.

Facts are not inherited: a subclass states its own (a subclass of Linear with a different
constructor is not a Linear as far as model files are concerned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from .errors import ConfigError

__all__ = [
    "Facts",
    "ROLES",
    "OUTPUT_KINDS",
    "register",
    "facts_of",
    "unit_word",
    "lookup",
    "registered",
    "by_short_name",
]

ROLES = ("linear", "activation", "passthrough", "normalization", "loss", "container", "layer")
OUTPUT_KINDS = ("logits", "logit", "probability", "value")


@dataclass(frozen=True, eq=False)
class Facts:
    """What the library knows about one layer or loss class (see the module's docstring)."""

    role: str = "layer"
    config: tuple | None = None
    keeps_shape: bool = False
    elementwise: bool = False
    chained: bool = False
    output_kind: str | None = None
    target: str | None = None
    short_name: str | None = None
    settings: dict | None = None
    values: Callable[[dict], int] | None = None
    formula: str | None = None
    derivative: str | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ConfigError(f"facts: role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.output_kind is not None and self.output_kind not in OUTPUT_KINDS:
            raise ConfigError(
                f"facts: output_kind must be one of {', '.join(OUTPUT_KINDS)}, "
                f"got {self.output_kind!r}"
            )
        if self.config is not None:
            if isinstance(self.config, str) or not all(isinstance(c, str) for c in self.config):
                raise ConfigError(
                    f"facts: config must be a tuple of argument names, got {self.config!r}"
                )
            object.__setattr__(self, "config", tuple(self.config))


_DEFAULT = Facts()
_NAMES = frozenset(f.name for f in fields(Facts))
_by_name: dict[str, type] = {}


def register(cls, **facts) -> Facts:
    """Record ``facts`` for ``cls`` (called by ``Module.__init_subclass__``); returns them.

    A class that states no fact keeps the defaults and is not listed by name. A name may be
    taken only once: a second class of the same name (from another module) is refused, so that
    a model file's ``"type": "Linear"`` always means one class. Defining the same class again
    (same module and qualified name, as a reloaded module does) replaces it.
    """
    unknown = set(facts) - _NAMES
    if unknown:
        raise ConfigError(
            f"{cls.__name__}: unknown class facts {sorted(unknown)}; "
            f"expected some of {sorted(_NAMES)}"
        )
    if not facts:
        return _DEFAULT
    made = Facts(**facts)
    name = cls.__name__
    old = _by_name.get(name)
    if (
        old is not None
        and old is not cls
        and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__)
    ):
        raise ConfigError(
            f"{cls.__module__}.{cls.__qualname__}: the layer name {name!r} is "
            f"already taken by {old.__module__}.{old.__qualname__}; give the "
            "class another name"
        )
    _by_name[name] = cls
    return made


def facts_of(obj) -> Facts:
    """The facts of a module, a module class or a registered class name (defaults otherwise)."""
    if isinstance(obj, str):
        cls = _by_name.get(obj)
    elif isinstance(obj, type):
        cls = obj
    else:
        cls = type(obj)
    return cls.__dict__.get("_facts", _DEFAULT) if cls is not None else _DEFAULT


def unit_word(module: object) -> str:
    """Which of the course's units a layer is: 'linear unit Σ', 'activation σ' or '' (from the
    role its class states)."""
    return {"linear": "linear unit Σ", "activation": "activation σ"}.get(facts_of(module).role, "")


def lookup(name: str):
    """The registered class called ``name`` (None when there is none)."""
    return _by_name.get(name)


def registered(role: str | None = None, savable: bool = False) -> dict:
    """``{name: class}`` of the registered classes (of one ``role``; only those model files can
    hold with ``savable``), in the order they were defined."""
    out = {}
    for name, cls in _by_name.items():
        f = facts_of(cls)
        if (role is None or f.role == role) and (
            not savable or f.config is not None or f.role == "container"
        ):
            out[name] = cls
    return out


def by_short_name(name: str, role: str | None = None):
    """The registered class whose ``short_name`` (or class name) is ``name``, of ``role`` when
    given (None when there is none). Short names are matched without regard to case."""
    cls = _by_name.get(name)
    if cls is not None and (role is None or facts_of(cls).role == role):
        return cls
    low = name.lower()
    for cls in _by_name.values():
        f = facts_of(cls)
        if f.short_name == low and (role is None or f.role == role):
            return cls
    return None
