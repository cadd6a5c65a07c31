"""The notes' two examples, measured like any model: 'llc' (the logistic classifier as one
neuron, equation 3) and 'composition' (f(x) = x + 2, g(f) = 3f, h(g) = sin(g) at x = 10)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..errors import ChainruleError
from ..tensor import no_grad
from ._format import num
from .measure import agrees, local_term
from .records import (
    ChainTerm,
    CompositionView,
    Explanation,
    ForwardStep,
    GradientCheck,
    LayerStep,
    ParameterTerms,
)

__all__ = ["DEMOS", "demo"]

DEMOS = ("llc", "composition")


def demo(name: str, explain: Any) -> Explanation:
    """One of the notes' examples (``explain`` is chainrule.explain.explain)."""
    if name == "llc":
        return _llc(explain)
    if name == "composition":
        return _composition()
    raise ChainruleError(f"explain: unknown demo {name!r}; choose 'llc' or 'composition'")


def _llc(explain: Any) -> Explanation:
    from .. import nn
    from ..examples.llc import llc

    r = llc()  # the example's numbers: x, y, w, w0 (and its own chain-rule values)
    model = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
    with no_grad():
        model[0].weight.data = np.asarray(r["w"], dtype=np.float64).reshape(1, 3)
        model[0].bias.data = np.asarray([r["w0"]], dtype=np.float64)
    expl = explain(model, r["x"][None, :], np.array([[r["y"]]]), nn.BCELoss())
    expl.preface = [
        "The notes' logistic linear classifier (LLC) as one neuron, with numbers",
        "(x, y, w and w₀ of chainrule.examples.llc; the loss unit is BCELoss, the "
        "negative log-likelihood)",
        "",
        "",
    ]
    expl.afterword = [
        "",
        "Each earlier unit receives the product of the terms after it: the activation σ "
        "receives ∂L/∂a,",
        f"the linear unit Σ receives ∂L/∂a · ∂a/∂z = ∂L/∂z = a − y = {num(r['a'] - r['y'])}.",
    ]
    expl.title = "The notes' LLC as one neuron: ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w"
    return expl


def _step(step: int, unit: str, sym: str, formula: str, inp: float, out: float) -> ForwardStep:
    return ForwardStep(
        step, "layer", unit, unit, sym, sym, formula, np.asarray(inp), np.asarray(out), ()
    )


def _layer(
    sym: str, unit: str, up: Any, local: float, dsym: str, text: str, handed: Any, hsym: str
) -> LayerStep:
    return LayerStep(
        name=sym,
        layer=unit,
        kind="layer",
        upstream=np.asarray(up),
        upstream_symbol=f"dh/d{sym}",
        local=np.asarray(local),
        local_symbol=dsym,
        local_text=text,
        handed_on=np.asarray(handed),
        handed_symbol=hsym,
        params=[],
    )


def _composition() -> Explanation:
    from ..examples.composition import forward_backward

    start = time.perf_counter()
    x, f, g, h = forward_backward()
    # each local derivative is the unit's hand-back of 1, measured by the engine
    local = {
        sym: float(local_term(t, inp)) for sym, t, inp in (("f", f, x), ("g", g, f), ("h", h, g))
    }
    xv, fv, gv, hv = (float(v.data) for v in (x, f, g, h))

    def h_of(v: float) -> float:
        with no_grad():
            return float(np.sin(3 * (v + 2)))

    eps = 1e-6
    numeric = (h_of(xv + eps) - h_of(xv - eps)) / (2 * eps)
    auto = float(np.asarray(x.grad))
    view = CompositionView(
        x=xv,
        f=fv,
        g=gv,
        h=hv,
        local=local,
        product=local["h"] * local["g"] * local["f"],
        autodiff=auto,
        numeric=numeric,
        by_hand=3 * math.cos(36.0),
    )
    forward = [
        ForwardStep(0, "input", "input", "", "", "x", "x", None, np.asarray(xv), ()),
        _step(1, "add", "f", f"f(x) = x + 2:  f({xv:g}) = {xv:g} + 2 = {fv:g}", xv, fv),
        _step(2, "mul", "g", f"g(f) = 3f:  g({fv:g}) = 3 · {fv:g} = {gv:g}", fv, gv),
        _step(3, "sin", "h", f"h(g) = sin(g):  h({gv:g}) = sin({gv:g}) = {hv:.6f}", gv, hv),
    ]
    chain = [
        ChainTerm("dh/dg", "sin", f"cos(g) = cos({gv:g})", np.asarray(local["h"])),
        ChainTerm("dg/df", "mul", "3", np.asarray(local["g"])),
        ChainTerm("df/dx", "add", "1", np.asarray(local["f"])),
    ]
    term = _composition_term(view, chain)
    layers = [
        _layer("h", "sin", 1.0, local["h"], "dh/dg", "cos(g)", g.grad, "dh/dg"),
        _layer("g", "mul", g.grad, local["g"], "dg/df", "3", f.grad, "dh/df"),
        _layer("f", "add", f.grad, local["f"], "df/dx", "1", x.grad, "dh/dx"),
    ]
    return Explanation(
        title="The notes' composition: h(g(f(x))) = sin(3(x + 2)) at x = 10",
        kind="composition",
        forward=forward,
        layers=layers,
        terms=[term],
        loss=hv,
        view=view,
        loss_tensor=h,
        graph_params=[("x", x)],
        graph_names={id(x): "x", id(f): "f", id(g): "g", id(h): "h"},
        seconds=time.perf_counter() - start,
    )


def _composition_term(view: CompositionView, chain: list[ChainTerm]) -> ParameterTerms:
    """dh/dx: the chain's product, autodiff's x.grad and the central difference beside it."""
    auto, numeric = view.autodiff, view.numeric
    check = GradientCheck(
        checked=[()],
        numeric=np.asarray([numeric]),
        autodiff=np.asarray([auto]),
        sampled=False,
        max_abs_diff=abs(auto - numeric),
        ok=agrees(auto, numeric),
    )
    return ParameterTerms(
        parameter="x",
        layer="",
        symbol="x",
        chain=chain,
        equation="dh/dx = dh/dg · dg/df · df/dx",
        product=np.asarray(view.product),
        autodiff=np.asarray(auto),
        n_entries=1,
        check=check,
        by_hand=view.by_hand,
    )
