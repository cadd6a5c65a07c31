"""The explanation as text (what ``print(explanation)`` shows): reads the records only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._format import full, labels, norm, num, shape_text, sup, unsup, vec

if TYPE_CHECKING:
    from .records import (
        CompositionView,
        Explanation,
        ForwardStep,
        LayerStep,
        NetworkView,
        NeuronView,
        ParameterTerms,
    )

__all__ = ["render", "row_label", "unit_word", "counts_line"]


def render(e: Explanation) -> str:
    """The whole text: the demo's preface, the view of its kind, the demo's afterword."""
    if e.kind == "neuron":
        body = _neuron(e, e.view)  # type: ignore[arg-type]
    elif e.kind == "network":
        body = _network(e, e.view)  # type: ignore[arg-type]
    else:
        body = _composition(e.view)  # type: ignore[arg-type]
    text = "\n".join(body)
    if e.preface:
        text = "\n".join(e.preface) + text
    if e.afterword:
        text = text + "\n" + "\n".join(e.afterword)
    return text


# ------------------------------------------------------------------------------------------------
# one neuron: the notes' equation 3
# ------------------------------------------------------------------------------------------------


def _aligned(rows: list[tuple[str, str, str]]) -> list[str]:
    """Rows (label, formula, value) with the formulas and '=' signs lined up."""
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return [f"  {r[0].ljust(w0)}   {r[1].ljust(w1)} = {r[2]}" for r in rows]


def _per_sample(v: object, n: int) -> str:
    """One number per sample: the number itself for one sample, else a vector."""
    arr = np.asarray(v).reshape(-1)
    return num(arr[0]) if n == 1 else vec(arr, full=True, limit=16)


def _neuron_forward(e: Explanation, v: NeuronView) -> list[str]:
    n, X = v.x.shape[0], v.x
    lines = ["Forward pass (each unit's output is the next unit's input):"]
    if n == 1:
        lines.append(f"  x = {vec(X[0], full=True)}   y = {v.y[0]:g}")
    else:
        lines += [f"  sample {s}: x = {vec(X[s], full=True)}   y = {v.y[s]:g}" for s in range(n)]
    wb = f"  w = {vec(v.w.reshape(-1), full=True)}"
    if v.b is not None:
        wb += f"   w₀ = {num(v.b.reshape(-1)[0])}"
    lines.append(wb)
    rows = [
        ("linear unit Σ", "z = wᵀx" + (" + w₀" if v.b is not None else ""), _per_sample(v.z, n))
    ]
    if v.activation:
        rows.append(("activation σ", f"a = σ(z) = {v.activation}(z)", _per_sample(v.a, n)))
    mean_txt = f"mean over {v.n_mean} values of " if v.n_mean > 1 else ""
    formula = f"L({v.out_symbol}, y) = {mean_txt}{v.loss_formula}"
    rows.append(("loss unit", formula, f"{num(e.loss)}   ({v.loss_name})"))
    return lines + _aligned(rows) + [""]


def _neuron_terms_table(e: Explanation, v: NeuronView) -> list[str]:
    n, o = v.x.shape[0], v.out_symbol
    chain_txt = " · ".join(c.symbol for c in e.terms[0].chain)
    lines = [
        "Back-propagation, from the loss back to w"
        + (" (the notes' equation 3):" if v.activation else ":"),
        f"  ∂L/∂w = {chain_txt}",
    ]
    rows = [("loss unit", f"∂L/∂{o} = {v.loss_derivative}", _per_sample(v.dL_dout, n))]
    if v.activation:
        rows.append(("activation σ", f"∂a/∂z = {v.activation_derivative}", _per_sample(v.local, n)))
    last = vec(v.x[0], full=True) if n == 1 else "x (each sample's row)"
    rows.append(("linear unit Σ", "∂z/∂w = x", last))
    return lines + _aligned(rows) + [""]


def _neuron_term(t: ParameterTerms, v: NeuronView) -> list[str]:
    """∂L/∂w = the chain, its numbers (per sample), the product and the checks beside it."""
    n, X, sym = v.x.shape[0], v.x, t.symbol
    lead = f"  ∂L/∂{sym} "
    pad = " " * len(lead)
    lines = [f"{lead}= " + " · ".join(c.symbol for c in t.chain)]
    last_sym = "x" if sym == "w" else "1"

    def factors(s: int) -> str:
        return " · ".join(f"({num(np.asarray(c.value)[s])})" for c in t.chain[:-1])

    if n == 1:
        lines.append(f"{pad}= {factors(0)} · {last_sym}")
        if sym == "w":
            lines.append(f"{pad}= {factors(0)} · {vec(X[0], full=True)}")
    else:
        lines.append(f"{pad}= Σ over the {n} samples of " + " · ".join(c.symbol for c in t.chain))
        for s in range(n):
            last = vec(X[s], full=True) if sym == "w" else "1"
            lines.append(f"{pad}  sample {s}: {factors(s)} · {last}")
    lines.append(f"{pad}= {full(t.product)}")
    checks = []
    if t.by_hand is not None:
        lab = f"by hand (a − y)·{last_sym}"
        if v.n_mean > 1:
            lab = f"by hand 1/{v.n_mean} Σ (a − y)·{last_sym}"
        checks.append((lab, full(t.by_hand)))
    checks.append(("autodiff (.grad)", full(t.autodiff)))
    if t.check is not None:
        mark = "agree" if t.check.ok else "DISAGREE"
        numeric = full(t.check.numeric.reshape(t.autodiff.shape))
        diff = f"max |difference| {t.check.max_abs_diff:.1e}: {mark}"
        checks.append(("central difference", f"{numeric}   {diff}"))
    wl = max(len(c[0]) for c in checks)
    return lines + [f"{pad}  {c[0].ljust(wl)}   {c[1]}" for c in checks]


def _neuron(e: Explanation, v: NeuronView) -> list[str]:
    lines = [e.heading or e.title, ""] + _neuron_forward(e, v) + _neuron_terms_table(e, v)
    for t in e.terms:
        lines += _neuron_term(t, v)
    n = v.x.shape[0]
    return lines + [
        "",
        f"The linear unit Σ also hands on ∂L/∂x = ∂L/∂z · w = {vec(v.x_grad, full=n == 1)}",
        "(the input is not learned; shown for completeness)",
    ]


# ------------------------------------------------------------------------------------------------
# a network: layer by layer
# ------------------------------------------------------------------------------------------------


def row_label(r: ForwardStep) -> str:
    """A forward step's unit and layer: 'linear unit Σ (0 Linear)', 'loss unit (MSELoss)'."""
    if r.kind == "input":
        return "input"
    if r.kind == "loss":
        return f"loss unit ({r.layer})"
    return f"{r.unit} ({f'{r.name} {r.layer}'.strip()})"


def unit_word(e: LayerStep) -> str:
    return {"linear": "linear unit Σ", "activation": "activation σ"}.get(e.kind, "unit")


def counts_line(v: NetworkView) -> str:
    n = v.n_samples
    return f"{n} sample{'s' if n > 1 else ''}, {v.n_params:,} parameters, float64"


def _network_forward(e: Explanation, v: NetworkView) -> list[str]:
    lines = ["Forward pass (every unit in order; each unit's output is the next unit's input):"]
    w_unit = max(len(row_label(r)) for r in e.forward)
    w_form = max(len(r.formula) for r in e.forward)
    for r in e.forward:
        val, shape = vec(r.output), shape_text(r.shape)
        if r.kind == "loss":
            mean = f", mean over {v.n_mean} values" if v.n_mean > 1 else ""
            val, shape = f"{num(e.loss)}   (y = {labels(r.target)}{mean})", ""
        lines.append(
            f"  {row_label(r).ljust(w_unit)}  {r.formula.ljust(w_form)}  {shape:>10}  {val}"
        )
    return lines + [""]


def _activation_step(e: LayerStep) -> list[str]:
    if e.elementwise:
        return [
            f"      local term {e.local_symbol} = {e.local_text}   (elementwise)",
            f"                 = {vec(e.local)}",
            f"      hands on   {e.handed_symbol} = {e.upstream_symbol} ⊙ {e.local_symbol}"
            f" = {vec(e.handed_on)}",
        ]
    return [
        f"      local term {e.local_symbol}: {e.local_text}",
        f"      hands on   {e.handed_symbol} = {e.upstream_symbol} · {e.local_symbol}"
        f" = {vec(e.handed_on)}",
    ]


def _layer_step(e: LayerStep, v: NetworkView) -> list[str]:
    """One layer from the loss back: receives, local term, its parameters' terms, hands on."""
    if e.kind == "loss":
        return [
            f"  loss unit {e.layer}",
            f"      hands on   {e.handed_symbol} = {e.local_text}",
            f"                 = {vec(e.handed_on)}",
        ]
    lay = e.desc or e.layer
    if e.name == "(function)":
        head = f"  {lay} (a function called in forward)"
    else:
        head = f"  layer {e.name} ({lay})" if e.name else f"  {lay}"
    lines = [
        f"{head}, {unit_word(e)}: {e.formula}",
        f"      receives   {e.upstream_symbol} = {vec(e.upstream)}",
    ]
    if e.kind == "activation":
        return lines + _activation_step(e)
    for t in e.terms:
        lines.append(
            f"      ∂L/∂{t.symbol} = {e.upstream_symbol} · {t.chain[-1].symbol} = "
            f"{t.product_text}   {shape_text(t.product.shape)}"
        )
        lines.append(f"                 = {vec(t.product)}")
    if e.kind == "layer" and e.symbol == e.in_symbol:
        return lines + [f"      passes {e.upstream_symbol} on unchanged"]
    if e.handed_on is not None:
        via = f"{e.upstream_symbol} · {e.local_symbol}"
        if e.kind == "linear" and v.n_linear > 1:
            via += f" = {e.upstream_symbol} · W{sup(unsup(e.symbol or ''))}"
        first = "   (the input: not learned)" if e.in_symbol == "x" else ""
        lines.append(f"      hands on   {e.handed_symbol} = {via} = {vec(e.handed_on)}{first}")
    return lines


def _parameter(t: ParameterTerms) -> list[str]:
    """One parameter's chain, product against autodiff, and its central differences."""
    lines = [
        f"  {t.parameter} ({t.symbol}, {shape_text(t.autodiff.shape)}):  {t.equation}",
        f"      product ‖·‖ = {norm(t.product):.6g}   autodiff ‖·‖ = "
        f"{norm(t.autodiff):.6g}   (max |product − autodiff| {t.product_diff:.1e})",
    ]
    c = t.check
    if c is None:
        return lines
    k = len(c.checked)
    what = f"{k} sampled entries of {t.n_entries:,}" if c.sampled else f"all {k} entries"
    mark = "agree" if c.ok else "DISAGREE"
    lines.append(
        f"      central differences on {what}: max |difference| {c.max_abs_diff:.1e} ({mark})"
    )
    # the checked entries with the largest gradients (zeros say little)
    for j in sorted(range(k), key=lambda j_: -abs(c.autodiff[j_]))[:3]:
        ix = ",".join(str(i) for i in c.checked[j])
        lines.append(
            f"        {t.symbol}[{ix}]: autodiff {num(c.autodiff[j])}"
            f"   central difference {num(c.numeric[j])}"
        )
    return lines


def _network(e: Explanation, v: NetworkView) -> list[str]:
    lines = [e.heading or e.title, counts_line(v), ""] + _network_forward(e, v)
    lines += [
        "Back-propagation (start at the loss; each unit receives ∂L/∂ its output, "
        "multiplies in its local term",
        "and hands the product on to the unit before it):",
    ]
    for step in e.layers:
        lines += _layer_step(step, v)
    lines += [
        "",
        "Chain rule for every parameter (local terms from the loss back), the product "
        "the layer's unit computed,",
        "the gradient autodiff left in .grad and central differences:",
    ]
    for t in e.terms:
        lines += _parameter(t)
    if e.notes:
        lines += [""] + ["Note: " + s for s in e.notes]
    return lines


# ------------------------------------------------------------------------------------------------
# the notes' composition
# ------------------------------------------------------------------------------------------------


def _composition(v: CompositionView) -> list[str]:
    x, f, g, h, loc = v.x, v.f, v.g, v.h, v.local
    g36 = f"{g:g}"
    return [
        f"The notes' forward pass: f(x) = x + 2, g(f) = 3f, h(g) = sin(g), at x = {x:g}",
        "",
        "Forward pass (function by function; each output is the next function's input):",
        f"  x = {x:g}",
        f"  f(x) = x + 2     f({x:g}) = {x:g} + 2 = {f:g}".ljust(50) + "(unit add)",
        f"  g(f) = 3f        g({f:g}) = 3 · {f:g} = {g:g}".ljust(50) + "(unit mul)",
        f"  h(g) = sin(g)    h({g36}) = sin({g36}) = {h:+.6f}".ljust(50) + "(unit sin)",
        "",
        "Back-propagation (start at h; each unit multiplies in its local derivative and hands "
        "the product back):",
        f"  dh/dg = cos(g) = cos({g36})".ljust(28) + f"= {loc['h']:+.6f}     (unit sin)",
        "  dg/df = 3".ljust(28) + f"= {loc['g']:+.6f}     (unit mul)",
        "  df/dx = 1".ljust(28) + f"= {loc['f']:+.6f}     (unit add)",
        "",
        f"  dh/dx = dh/dg · dg/df · df/dx = cos({g36}) · 3 · 1 = 3cos({g36})",
        f"        = ({loc['h']:+.6f}) · ({loc['g']:+.6f}) · ({loc['f']:+.6f}) = {v.product:+.10f}",
        f"  autodiff (x.grad)        {v.autodiff:+.10f}",
        f"  by hand 3cos({g36})         {v.by_hand:+.10f}",
        f"  central difference       {v.numeric:+.10f}   "
        f"(|difference| {abs(v.autodiff - v.numeric):.1e})",
    ]
