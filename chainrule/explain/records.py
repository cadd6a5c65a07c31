"""The explainer's records: what was measured, as typed data that the views read.

``measure.py`` makes them (through the engine: forward hooks, the engine's back-propagation and
its traced walk, central differences); ``text.py`` and ``html.py`` show them. Every record also
reads like the dict the explainer used to return (``row["kind"]``, ``term["chain"]``), as
docs/explain.md documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..errors import ChainruleError

__all__ = [
    "Record",
    "ForwardStep",
    "ChainTerm",
    "GradientCheck",
    "ParameterTerms",
    "LayerStep",
    "NeuronView",
    "NetworkView",
    "CompositionView",
    "Explanation",
]


class Record:
    """Read access by key as well as by attribute: ``step["kind"]`` is ``step.kind``."""

    _extra_keys: tuple[str, ...] = ()  # properties that read like fields

    def keys(self) -> list[str]:
        """The names of the record's fields (and of the properties that read like them)."""
        return [f.name for f in fields(self)] + list(self._extra_keys)  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the record has no such field or it is None."""
        value = getattr(self, key, None) if key in self.keys() else None
        return default if value is None else value


@dataclass(eq=False)
class ForwardStep(Record):
    """One unit of the forward pass (or the input, or the loss), in forward order."""

    step: int
    kind: str  # 'input' | 'linear' | 'activation' | 'layer' | 'loss'
    unit: str  # 'linear unit Σ', 'activation σ', 'loss unit', 'input', or the unit's name
    layer: str  # the module's type ('Linear'), the function's name ('tanh'), the loss's name
    name: str  # the module's path in the model ('0', 'hidden'), '(function)' or ''
    symbol: str  # 'x', 'z¹', 'a', 'L'
    formula: str
    input: np.ndarray | None
    output: np.ndarray
    shape: tuple[int, ...]
    target: np.ndarray | None = None  # the loss's targets (loss rows only)


@dataclass(eq=False)
class ChainTerm(Record):
    """One factor of the chain rule: a local term, named after the unit that owns it."""

    symbol: str  # '∂a/∂z'
    unit: str  # 'activation σ'
    text: str  # the formula shown beside it, a label for the reader ('a(1 − a)')
    value: np.ndarray | None = None  # measured, per sample (one neuron, the composition)


@dataclass(eq=False)
class GradientCheck(Record):
    """Central differences beside the engine's gradient, for some or all entries."""

    checked: list[tuple[int, ...]]  # the entries compared
    numeric: np.ndarray  # central differences there
    autodiff: np.ndarray  # the engine's gradient there
    sampled: bool  # True when only some entries were checked
    max_abs_diff: float
    ok: bool  # every checked entry within 1e-6 + 1e-4·|numeric|


@dataclass(eq=False)
class ParameterTerms(Record):
    """The chain of local terms from the loss back to one parameter, and its gradient."""

    _extra_keys = ("checked", "numeric", "autodiff_checked", "sampled", "max_abs_diff", "ok")

    parameter: str  # '0.weight'
    layer: str  # the owning layer's path ('0'), '' when no layer owns it
    symbol: str  # 'W¹', 'w', 'w₀'
    chain: list[ChainTerm]
    equation: str  # '∂L/∂W¹ = ∂L/∂z² · ∂z²/∂a¹ · …'
    product: np.ndarray  # the chain applied by the layer's unit (measured by the engine)
    autodiff: np.ndarray  # the parameter's .grad after loss.backward()
    n_entries: int
    check: GradientCheck | None = None  # None with check=False
    product_text: str | None = None  # how the product is formed ('(∂L/∂z¹)ᵀ · x')
    unit_product: np.ndarray | None = None  # one neuron: the linear unit's own hand-back
    by_hand: np.ndarray | float | None = None  # (a − y)·x for sigmoid + BCE; 3cos(36)

    @property
    def product_diff(self) -> float:
        """max |product − autodiff|: the chain applied by the unit against .grad."""
        return float(np.abs(self.product - self.autodiff).max()) if self.product.size else 0.0

    @property
    def checked(self) -> list[tuple[int, ...]]:
        return self.check.checked if self.check else []

    @property
    def numeric(self) -> np.ndarray | None:
        return self.check.numeric if self.check else None

    @property
    def autodiff_checked(self) -> np.ndarray | None:
        return self.check.autodiff if self.check else None

    @property
    def sampled(self) -> bool:
        return self.check.sampled if self.check else False

    @property
    def max_abs_diff(self) -> float | None:
        return self.check.max_abs_diff if self.check else None

    @property
    def ok(self) -> bool:
        return self.check.ok if self.check else True


@dataclass(eq=False)
class LayerStep(Record):
    """Back-propagation through one layer (or the loss unit), from the loss back."""

    name: str
    layer: str
    kind: str
    upstream: np.ndarray | None  # ∂L/∂ its output: what it receives
    upstream_symbol: str
    local: np.ndarray | None  # its local term, for an elementwise activation (σ′)
    local_symbol: str | None
    local_text: str | None
    handed_on: np.ndarray | None  # ∂L/∂ its input: what it hands on
    handed_symbol: str
    params: list[str]
    elementwise: bool = False
    symbol: str | None = None  # its output's symbol (z²)
    in_symbol: str | None = None  # its input's symbol (a¹)
    formula: str | None = None
    desc: str | None = None  # 'Linear 16→2'
    terms: list[ParameterTerms] = field(default_factory=list)  # its parameters'


@dataclass(eq=False)
class NeuronView(Record):
    """What the one-neuron view prints beside the records: the notes' letters and numbers."""

    x: np.ndarray  # (n, d)
    y: np.ndarray  # (n,)
    w: np.ndarray
    b: np.ndarray | None
    z: np.ndarray  # (n,)
    a: np.ndarray  # (n,)
    activation: str | None  # the activation's class name, None for a bare linear unit
    out_symbol: str  # 'a' or 'z'
    loss_name: str
    loss_formula: str
    loss_derivative: str  # with the mean's 1/n in front
    activation_derivative: str
    n_mean: int  # the number of values the loss averages
    dL_dout: np.ndarray  # the loss unit's term, per sample
    local: np.ndarray  # the activation's term, per sample (ones without one)
    x_grad: np.ndarray | None  # ∂L/∂x
    by_hand: bool  # sigmoid into a loss of probabilities: the product is a − y


@dataclass(eq=False)
class NetworkView(Record):
    """What the layer-by-layer view prints beside the records."""

    n_samples: int
    n_params: int
    n_linear: int
    n_mean: int
    notes: list[str]


@dataclass(eq=False)
class CompositionView(Record):
    """The notes' composition f, g, h at x: the numbers its view prints."""

    x: float
    f: float
    g: float
    h: float
    local: dict[str, float]  # 'f', 'g', 'h' -> the unit's local derivative
    product: float
    autodiff: float
    numeric: float
    by_hand: float  # 3cos(36), from math.cos


@dataclass(eq=False)
class Explanation(Record):
    """The forward pass and the chain-rule terms of one sample (or a small batch), as numbers.

    ``print(expl)`` shows it as text; ``expl.to_html()`` renders a self-contained HTML fragment
    (Jupyter shows it). The records are there for programs and tests.

    Attributes
    ----------
    title : str
    kind : str
        'neuron' (one linear unit Σ, maybe an activation σ, then the loss: printed as the notes'
        equation 3), 'network' (terms layer by layer) or 'composition' (a chain of functions).
    forward : list of ForwardStep
        One per unit in forward order (``step``, ``kind``, ``unit``, ``layer``, ``name``,
        ``symbol``, ``formula``, ``input``, ``output``, ``shape``; ``target`` for the loss).
    layers : list of LayerStep
        Back-propagation, from the loss back: ``upstream`` (∂L/∂ its output), ``local`` (for
        elementwise activations), ``handed_on`` (∂L/∂ its input), their symbols, ``params``.
    terms : list of ParameterTerms
        One per parameter: ``parameter``, ``symbol``, ``chain`` (ChainTerm: ``symbol``,
        ``unit``, ``text`` and, where measured per sample, ``value``), ``equation``,
        ``product``, ``autodiff``, ``check`` (GradientCheck: ``checked``, ``numeric``,
        ``autodiff``, ``sampled``, ``max_abs_diff``, ``ok``; also read as ``t["numeric"]``...).
    loss : float
    seconds : float
        Time taken to measure the explanation.
    loss_tensor : Tensor
        The float64 loss whose record was explained (draw it with ``cr.viz.graph``).
    graph_params, graph_names
        The parameters (name, tensor) and the symbols by tensor id that label its drawing.
    """

    title: str
    kind: str
    forward: list[ForwardStep]
    layers: list[LayerStep]
    terms: list[ParameterTerms]
    loss: float
    view: NeuronView | NetworkView | CompositionView
    notes: list[str] = field(default_factory=list)
    loss_tensor: Any = None
    graph_params: list[tuple[str, Any]] | None = None
    graph_names: dict[int, str] | None = None
    seconds: float = 0.0
    heading: str = ""  # the text's first line (the title, unless a demo renamed the title)
    preface: list[str] = field(default_factory=list)  # text lines before the view's own
    afterword: list[str] = field(default_factory=list)  # and after

    # --- summary numbers ------------------------------------------------------------------
    @property
    def max_abs_diff(self) -> float:
        """The largest |autodiff − central difference| over every checked entry (nan if none)."""
        diffs = [t.check.max_abs_diff for t in self.terms if t.check is not None]
        return max(diffs) if diffs else float("nan")

    @property
    def ok(self) -> bool:
        """True when every checked entry agrees (|a − n| <= 1e-6 + 1e-4·|n|)."""
        return all(t.ok for t in self.terms)

    def term(self, parameter: str) -> ParameterTerms:
        """The terms of one parameter, by name ('0.weight') or symbol ('w', 'W¹')."""
        for t in self.terms:
            if parameter in (t.parameter, t.symbol):
                return t
        have = ", ".join(t.parameter for t in self.terms)
        raise KeyError(f"explain: no parameter {parameter!r}; have {have}")

    # --- views ----------------------------------------------------------------------------
    def __str__(self) -> str:
        from .text import render

        return render(self)

    def __repr__(self) -> str:
        return (
            f"<Explanation {self.kind}: {len(self.forward)} forward rows, "
            f"{len(self.terms)} parameters, loss {self.loss:.6g}>"
        )

    def to_html(self) -> str:
        """A self-contained HTML fragment (its own <style>; no external resources)."""
        from .html import render

        return render(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def graph(self, **kwargs: Any) -> Any:
        """The recorded graph of the explained loss (``cr.viz.graph``), parameters labelled."""
        from ..viz.graph import graph

        if self.loss_tensor is None:
            raise ChainruleError("explain: this explanation keeps no record to draw")
        kwargs.setdefault("params", self.graph_params)
        if self.graph_names:
            kwargs.setdefault("names", self.graph_names)
        kwargs.setdefault("title", self.title)
        return graph(self.loss_tensor, **kwargs)
