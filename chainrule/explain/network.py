"""The records of a network, layer by layer: symbols in the notes' notation (z¹ = W¹x + b¹,
a¹ = σ(z¹), …), the forward steps, back-propagation through each layer from the loss back,
and the chain of local terms for every parameter. The numbers come from a Measurement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tensor import Tensor
from ._format import sup
from .labels import (
    act_derivative,
    layer_desc,
    loss_derivative,
    loss_formula,
    loss_name,
    reduction_note,
    role,
    scaled,
)
from .measure import ELEMENTWISE_UNITS, LossAt, Measurement, UnitCall, check_gradient, elementwise
from .records import ChainTerm, Explanation, ForwardStep, LayerStep, NetworkView, ParameterTerms

__all__ = ["build"]


@dataclass(eq=False)
class _Step:
    """A layer call with the names the views give it."""

    call: UnitCall
    kind_name: str  # 'Linear', 'tanh'
    name: str  # its path, or '(function)'
    in_sym: str
    sym: str
    kind: str
    unit: str
    formula: str
    params: list[tuple[str, Any]]
    lin_k: int  # how many linear units up to and including this one


class _Namer:
    """Symbols in forward order: z^l and a^l per linear layer l (no superscript with one
    linear layer), h¹, h², … for other layers, u¹, … for values from outside the layers."""

    def __init__(self, m: Measurement):
        self.m = m
        self.sym_of = {id(m.x): "x"}
        n_lin = sum(not c.is_function and role(c.module) == "linear" for c in m.calls)
        self.lin_sup: Callable[[int], str] = sup if n_lin > 1 else (lambda k: "")
        self.lin_k = self.other_k = self.unknown_k = 0

    def input_symbol(self, inp: Any) -> str:
        if isinstance(inp, Tensor) and id(inp) not in self.sym_of:
            self.unknown_k += 1
            self.sym_of[id(inp)] = "u" + sup(self.unknown_k)
        return self.sym_of.get(id(inp), "?")

    def other(self, kind_name: str, in_sym: str) -> tuple[str, str, str, str]:
        self.other_k += 1
        s = "h" + sup(self.other_k)
        return s, "layer", kind_name, f"{s} = {kind_name}({in_sym})"

    def name(self, c: UnitCall) -> _Step:
        """(symbol, kind, unit, formula) of one call, in the notes' notation."""
        mod = c.module
        kind_name = mod.unit_name if c.is_function else type(mod).__name__
        in_sym = self.input_symbol(c.input)
        r = "function" if c.is_function else role(mod)
        if c.is_function and kind_name not in ELEMENTWISE_UNITS | {"softmax", "log_softmax"}:
            s, kind, unit, formula = self.other(kind_name, in_sym)
        elif r in ("function", "activation"):
            s, kind, unit = "a" + self.lin_sup(self.lin_k), "activation", "activation σ"
            formula = f"{s} = {kind_name}({in_sym})"
        elif r == "linear":
            self.lin_k += 1
            s, kind, unit = "z" + self.lin_sup(self.lin_k), "linear", "linear unit Σ"
            wsym, bsym = "W" + self.lin_sup(self.lin_k), "b" + self.lin_sup(self.lin_k)
            formula = f"{s} = {wsym}{in_sym}" + (f" + {bsym}" if mod.bias is not None else "")
        elif r == "passthrough" and c.output is c.input:
            s, kind, unit = in_sym, "layer", "pass-through"
            formula = f"{kind_name}: {s} unchanged (eval mode)"
        else:
            s, kind, unit, formula = self.other(kind_name, in_sym)
        if isinstance(c.output, Tensor) and id(c.output) not in self.sym_of:
            self.sym_of[id(c.output)] = s
        own = [(nm, p) for nm, p in self.m.params if any(p is q for q in mod._parameters.values())]
        path = "(function)" if c.is_function else self.m.names.get(id(mod), "")
        return _Step(c, kind_name, path, in_sym, s, kind, unit, formula, own, self.lin_k)


def _forward(m: Measurement, steps: list[_Step], out_sym: str, lform: str) -> list[ForwardStep]:
    rows = [ForwardStep(0, "input", "input", "", "", "x", "x", None, m.x.data.copy(), m.x.shape)]
    for st in steps:
        inp, o = st.call.input, st.call.output
        rows.append(
            ForwardStep(
                step=len(rows),
                kind=st.kind,
                unit=st.unit,
                layer=st.kind_name,
                name=st.name,
                symbol=st.sym,
                formula=st.formula,
                input=None if inp is None else np.asarray(inp.data).copy(),
                output=np.asarray(o.data).copy(),
                shape=tuple(o.shape),
            )
        )
    loss = ForwardStep(
        step=len(rows),
        kind="loss",
        unit="loss unit",
        layer=loss_name(m.loss_fn),
        name="",
        symbol="L",
        formula=f"L({out_sym}, y) = {lform}",
        input=m.out.data.copy(),
        output=np.asarray(float(m.loss.data)),
        shape=(),
        target=np.asarray(m.y).copy(),
    )
    return rows + [loss]


class _Backward:
    """Back-propagation layer by layer from the loss, and every parameter's chain of terms."""

    def __init__(
        self, m: Measurement, namer: _Namer, loss_at: LossAt | None, out_sym: str, loss_text: str
    ):
        self.m, self.lin_sup, self.loss_at = m, namer.lin_sup, loss_at
        self.n_params = sum(p.data.size for _, p in m.params)
        self.rng = np.random.default_rng(0)
        self.terms: list[ParameterTerms] = []
        self.chain = [ChainTerm(f"∂L/∂{out_sym}", "loss unit", loss_text)]

    def _checked(self, t: ParameterTerms, p: Any) -> ParameterTerms:
        if self.loss_at is not None:
            t.check = check_gradient(self.loss_at, p, self.n_params, self.rng, self.loss_at.eps)
        return t

    def layer(self, st: _Step) -> LayerStep:
        """One layer: what it receives, its local term, what it gives its parameters and what
        it hands on; the chain grows by its local term."""
        c = st.call
        entry = LayerStep(
            name=st.name,
            layer=st.kind_name,
            kind=st.kind,
            upstream=self.m.grad(c.output),
            upstream_symbol=f"∂L/∂{st.sym}",
            local=None,
            local_symbol=f"∂{st.sym}/∂{st.in_sym}",
            local_text=None,
            handed_on=self.m.grad(c.input),
            handed_symbol=f"∂L/∂{st.in_sym}",
            params=[nm for nm, _ in st.params],
            symbol=st.sym,
            in_symbol=st.in_sym,
            formula=st.formula,
            desc=layer_desc(c.module, st.kind_name, c.is_function),
        )
        if st.kind == "activation" and elementwise(c):
            entry.local, entry.elementwise = self.m.local(c), True
            squared = f"({st.sym})²" if len(st.sym) > 1 else st.sym + "²"
            entry.local_text = act_derivative(
                c.module, st.kind_name, st.sym, st.in_sym, squared, "·"
            )
        elif st.kind == "linear":
            wsym = "W" + self.lin_sup(st.lin_k)
            entry.local_text = f"{wsym} (∂L/∂{st.in_sym} = ∂L/∂{st.sym} · {wsym})"
        elif st.kind == "activation":
            entry.local_text = f"the {st.kind_name} Jacobian (not elementwise)"
        entry.terms = [self._checked(self.parameter(st, nm, p), p) for nm, p in st.params]
        self.terms += entry.terms
        if not (st.kind == "layer" and st.unit == "pass-through"):
            term = ChainTerm(f"∂{st.sym}/∂{st.in_sym}", st.unit, entry.local_text or "")
            self.chain = self.chain + [term]
        return entry

    def parameter(self, st: _Step, nm: str, p: Any) -> ParameterTerms:
        """The chain from the loss back to one of the layer's parameters; the product is what
        the layer's unit handed back to it (measured), else autodiff's gradient."""
        mod, sym = st.call.module, st.sym
        if st.kind == "linear":
            psym = ("W" if p is mod.weight else "b") + self.lin_sup(st.lin_k)
            local_txt = st.in_sym if psym[0] == "W" else "1"
        elif role(mod) == "normalization":
            psym = ("γ" if p is mod.weight else "β") + sym[1:]
            local_txt = "x̂ (the normalized input)" if psym[0] == "γ" else "1"
        else:
            psym, local_txt = nm, f"{st.kind_name}'s local term"
        chain = self.chain + [ChainTerm(f"∂{sym}/∂{psym}", st.unit, local_txt)]
        auto = _autodiff(p)
        product = None
        if self.m.grad(st.call.output) is not None:
            product = self.m.handed(st.call.output, p)
        if st.kind == "linear" and psym[0] == "W":
            how = f"(∂L/∂{sym})ᵀ · {st.in_sym}"
        elif st.kind == "linear" and psym[0] == "b":
            how = f"Σ over the batch of ∂L/∂{sym}" if self.m.x.shape[0] > 1 else f"∂L/∂{sym}"
        else:
            how = f"{st.kind_name} backward of ∂L/∂{sym}"
        return ParameterTerms(
            parameter=nm,
            layer=st.name,
            symbol=psym,
            chain=chain,
            equation=f"∂L/∂{psym} = " + " · ".join(c.symbol for c in chain),
            product=np.asarray(auto.copy() if product is None else product, dtype=np.float64),
            product_text=how,
            autodiff=auto,
            n_entries=p.data.size,
        )

    def unowned(self, nm: str, p: Any) -> ParameterTerms:
        """A parameter no layer owns (used directly in a custom forward): autodiff and the check."""
        auto = _autodiff(p)
        t = ParameterTerms(
            parameter=nm,
            layer="",
            symbol=nm,
            chain=self.chain + [ChainTerm(f"∂(…)/∂{nm}", "unit", "units outside the layers")],
            equation=f"∂L/∂{nm} = … (used outside the layers)",
            product=auto.copy(),
            product_text="back-propagation through the record",
            autodiff=auto,
            n_entries=p.data.size,
        )
        return self._checked(t, p)


def _autodiff(p: Any) -> np.ndarray:
    g = p.grad if p.grad is not None else np.zeros_like(p.data)
    return np.asarray(g, dtype=np.float64).copy()


def _notes(check: bool, terms: list[ParameterTerms], n_params: int) -> list[str]:
    from .measure import CHECK_ALL_UP_TO, SAMPLED_ENTRIES

    notes = []
    if check and any(t.sampled for t in terms):
        notes.append(
            f"The model has {n_params:,} parameters (more than {CHECK_ALL_UP_TO:,}): "
            f"central differences were taken on {SAMPLED_ENTRIES} sampled entries per "
            "parameter (the largest |gradient| and random others), not on every entry."
        )
    if not check:
        notes.append("Central differences were not computed (check=False).")
    return notes


def build(m: Measurement, loss_at: LossAt | None) -> Explanation:
    """The records of a network: forward steps, layers from the loss back, parameter terms."""
    namer = _Namer(m)
    steps = [namer.name(c) for c in m.calls]
    out_sym = namer.sym_of.get(id(m.out), "ŷ")
    lname = loss_name(m.loss_fn)
    n_mean, red = reduction_note(m.loss_fn, m.out)
    loss_text = scaled(red, loss_derivative(m.loss_fn, out_sym))
    forward = _forward(m, steps, out_sym, loss_formula(m.loss_fn, lname, out_sym))
    loss_step = LayerStep(
        name="",
        layer=lname,
        kind="loss",
        upstream=np.ones(()),
        upstream_symbol="∂L/∂L",
        local=None,
        local_symbol=None,
        local_text=loss_text,
        handed_on=m.grad(m.out),
        handed_symbol=f"∂L/∂{out_sym}",
        params=[],
    )
    back = _Backward(m, namer, loss_at, out_sym, loss_text)
    if steps and steps[-1].call.output is not m.out:  # units after the last layer: not split
        back.chain.append(
            ChainTerm(f"∂{out_sym}/∂{steps[-1].sym}", "unit", "units after the last layer")
        )
    layers = [loss_step] + [back.layer(st) for st in reversed(steps)]
    covered = {t.parameter for t in back.terms}
    terms = back.terms + [back.unowned(nm, p) for nm, p in m.params if nm not in covered]
    order = {nm: i for i, (nm, _) in enumerate(m.params)}
    terms.sort(key=lambda t: order.get(t.parameter, 0))  # forward order reads better in tables
    desc = " → ".join(layer_desc(st.call.module, st.kind_name, st.call.is_function) for st in steps)
    names = {id(m.x): "x", id(m.loss): "L"}
    for st in steps:
        if isinstance(st.call.output, Tensor):
            names.setdefault(id(st.call.output), st.sym)
    view = NetworkView(
        m.x.shape[0],
        back.n_params,
        namer.lin_k,
        n_mean,
        _notes(loss_at is not None, terms, back.n_params),
    )
    return Explanation(
        title=f"{type(m.model).__name__}: x → {desc} → [loss unit L: {lname}]",
        kind="network",
        forward=forward,
        layers=layers,
        terms=terms,
        loss=float(m.loss.data),
        view=view,
        notes=view.notes,
        loss_tensor=m.loss,
        graph_params=m.params,
        graph_names=names,
    )
