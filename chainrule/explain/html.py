"""The explanation as a self-contained HTML fragment (Jupyter shows it): reads the records only.

Its style is scoped to ``.cr-explain`` and states text alignment, margins and borders with a
selector that outweighs the notebook's own rules for output tables (JupyterLab right-aligns
and centres them), so it reads left-aligned in JupyterLab, Jupyter Notebook, VS Code and the
report alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._format import esc, full, labels, norm, num, shape_text, vec
from .text import counts_line

if TYPE_CHECKING:
    from .records import (
        ChainTerm,
        CompositionView,
        Explanation,
        LayerStep,
        NetworkView,
        NeuronView,
        ParameterTerms,
    )

__all__ = ["render", "CSS"]

# ".cr-explain.cr-explain" and "div" weigh (0,2,2) and more: above JupyterLab's
# ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td" (0,2,1), which right-aligns cells, and
# its ".jp-RenderedHTMLCommon table" margins, which centre tables
CSS = """
div.cr-explain.cr-explain{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,
 sans-serif;font-size:14px;line-height:1.45;color:#212529;text-align:left}
div.cr-explain.cr-explain h3{font-size:17px;margin:0 0 6px 0}
div.cr-explain.cr-explain h4{font-size:15px;margin:14px 0 4px 0}
div.cr-explain.cr-explain table{border-collapse:collapse;margin:4px 0 8px 0;table-layout:auto}
div.cr-explain.cr-explain th,div.cr-explain.cr-explain td,div.cr-explain.cr-explain tr{
 text-align:left;vertical-align:top}
div.cr-explain.cr-explain th,div.cr-explain.cr-explain td{border:1px solid #dee2e6;
 padding:3px 7px;line-height:1.45}
div.cr-explain.cr-explain th{background:#f1f3f5;font-weight:600}
div.cr-explain.cr-explain .nw{white-space:nowrap}
div.cr-explain.cr-explain .num,div.cr-explain.cr-explain code{font-family:ui-monospace,
 SFMono-Regular,Menlo,Consolas,'DejaVu Sans Mono',monospace;font-size:12.5px}
div.cr-explain.cr-explain .eq{font-size:15px;margin:6px 0;padding:6px 10px;background:#f8f9fa;
 border-left:4px solid #3b6ea8;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
 'DejaVu Sans Mono',monospace;white-space:pre-wrap}
div.cr-explain.cr-explain .t-loss{color:#c92a2a;font-weight:600}
div.cr-explain.cr-explain .t-act{color:#7048e8;font-weight:600}
div.cr-explain.cr-explain .t-lin{color:#1c7ed6;font-weight:600}
div.cr-explain.cr-explain .ok{color:#2b8a3e}
div.cr-explain.cr-explain .bad{color:#c92a2a;font-weight:700}
div.cr-explain.cr-explain .note{color:#495057;font-size:13px}
"""

_UNIT_CLASS = {"loss unit": "t-loss", "activation σ": "t-act", "linear unit Σ": "t-lin"}


def render(e: Explanation) -> str:
    """The fragment: its style, the title, then the view of its kind."""
    if e.kind == "neuron":
        body = _neuron(e, e.view)  # type: ignore[arg-type]
    elif e.kind == "network":
        body = _network(e, e.view)  # type: ignore[arg-type]
    else:
        body = _composition(e, e.view)  # type: ignore[arg-type]
    return (
        '<div class="cr-explain">\n<style>' + CSS + "</style>\n"
        f"<h3>{esc(e.title)}</h3>\n" + body + "\n</div>"
    )


def _span(sym: str, unit: str) -> str:
    cls = _UNIT_CLASS.get(unit, "")
    return f'<span class="{cls}" title="{esc(unit)}">{esc(sym)}</span>' if cls else esc(sym)


def _equation(sym: str, chain: list[ChainTerm]) -> str:
    return f"∂L/∂{esc(sym)} = " + " · ".join(_span(c.symbol, c.unit) for c in chain)


# ------------------------------------------------------------------------------------------------
# one neuron
# ------------------------------------------------------------------------------------------------


def _neuron_forward(e: Explanation, v: NeuronView) -> list[str]:
    h = [
        "<h4>Forward pass</h4>",
        '<table class="cr-forward"><tr><th>unit</th><th>value</th>'
        '<th>formula</th><th class="num">number(s)</th></tr>',
    ]
    for r in e.forward:
        val = full(r.output)
        if r.kind == "input":
            val += f"   y = {labels(v.y)}"
        h.append(
            f'<tr><td class="nw">{_span(r.unit, r.unit)}</td><td>{esc(r.symbol)}</td>'
            f'<td>{esc(r.formula)}</td><td class="num">{esc(val)}</td></tr>'
        )
    return h + ["</table>"]


def _neuron_term(t: ParameterTerms, v: NeuronView) -> list[str]:
    n, X, sym = v.x.shape[0], v.x, t.symbol
    rows = []
    for s in range(n):
        factors = " · ".join(f"({num(np.asarray(c.value)[s])})" for c in t.chain[:-1])
        last = vec(X[s], full=True) if sym == "w" else "1"
        rows.append(f"{' ' * 7}= {esc(factors)} · {esc(last)}")
    rows.append(f"{' ' * 7}= {esc(full(t.product))}")
    h = [f'<div class="eq">{_equation(sym, t.chain)}\n' + "\n".join(rows) + "</div>"]
    h.append(
        '<table class="cr-terms"><tr><th>term</th><th>unit</th><th>formula</th>'
        '<th class="num">value</th></tr>'
    )
    for c in t.chain:
        val = np.asarray(c.value)
        vt = full(val[0]) if n == 1 else "; ".join(vec(r, full=True) for r in val)
        h.append(
            f"<tr><td>{_span(c.symbol, c.unit)}</td><td>{esc(c.unit)}</td>"
            f'<td>{esc(c.text)}</td><td class="num">{esc(vt)}</td></tr>'
        )
    h.append(
        f"<tr><td>∂L/∂{esc(sym)}</td><td>autodiff (.grad)</td><td></td>"
        f'<td class="num">{esc(full(t.autodiff))}</td></tr>'
    )
    if t.check is not None:
        cls = "ok" if t.check.ok else "bad"
        numeric = t.check.numeric.reshape(t.autodiff.shape)
        h.append(
            f"<tr><td>∂L/∂{esc(sym)}</td><td>central difference</td>"
            f'<td class="{cls}">max |difference| {t.check.max_abs_diff:.1e}</td>'
            f'<td class="num">{esc(full(numeric))}</td></tr>'
        )
    return h + ["</table>"]


def _neuron(e: Explanation, v: NeuronView) -> str:
    h = _neuron_forward(e, v) + ["<h4>Back-propagation</h4>"]
    for t in e.terms:
        h += _neuron_term(t, v)
    return "\n".join(h)


# ------------------------------------------------------------------------------------------------
# a network
# ------------------------------------------------------------------------------------------------


def _network_forward(e: Explanation) -> list[str]:
    h = [
        "<h4>Forward pass</h4>",
        '<table class="cr-forward"><tr><th>#</th><th>unit</th><th>layer</th><th>formula</th>'
        '<th>shape</th><th class="num">values</th></tr>',
    ]
    for r in e.forward:
        val = vec(r.output) if r.kind != "loss" else f"{num(e.loss)}  (y = {labels(r.target)})"
        lay = f"{r.name} {r.layer}".strip()
        h.append(
            f'<tr><td>{r.step}</td><td class="nw">{_span(r.unit, r.unit)}</td>'
            f'<td class="nw">{esc(lay)}</td><td>{esc(r.formula)}</td>'
            f'<td class="num nw">{esc(shape_text(r.shape))}</td>'
            f'<td class="num">{esc(val)}</td></tr>'
        )
    return h + ["</table>"]


def _layer_row(e: LayerStep) -> str:
    if e.kind == "loss":
        return (
            f"<tr><td>{_span('loss unit', 'loss unit')} {esc(e.layer)}</td>"
            f'<td class="num">∂L/∂L = 1</td><td>{esc(e.local_text)}</td><td></td>'
            f'<td class="num">{esc(e.handed_symbol)} = {esc(vec(e.handed_on))}</td></tr>'
        )
    unit = {"linear": "linear unit Σ", "activation": "activation σ"}.get(e.kind, "")
    head = (_span(unit, unit) + " " if unit else "") + esc(f"{e.name} {e.layer}")
    local = f"{esc(e.local_symbol)} = {esc(e.local_text or '')}"
    if e.local is not None:
        local += f'<br><span class="num">{esc(vec(e.local))}</span>'
    gives = "<br>".join(
        f"∂L/∂{esc(t.symbol)} = {esc(t.product_text)}<br>"
        f'<span class="num">{esc(vec(t.product))}</span>'
        for t in e.terms
    )
    handed = ""
    if e.handed_on is not None:
        handed = f'{esc(e.handed_symbol)}<br><span class="num">{esc(vec(e.handed_on))}</span>'
    return (
        f"<tr><td>{head}<br><code>{esc(e.formula)}</code></td>"
        f'<td>{esc(e.upstream_symbol)}<br><span class="num">'
        f"{esc(vec(e.upstream))}</span></td><td>{local}</td><td>{gives}</td>"
        f"<td>{handed}</td></tr>"
    )


def _parameter_row(t: ParameterTerms) -> str:
    c = t.check
    if c is not None:
        k = len(c.checked)
        what = f"{k} sampled of {t.n_entries:,}" if c.sampled else f"all {k}"
        cls = "ok" if c.ok else "bad"
        chk = f'<span class="{cls}">{what}: max |diff| {c.max_abs_diff:.1e}</span>'
    else:
        chk = "not computed"
    return (
        f'<tr><td class="nw"><code>{esc(t.parameter)}</code> '
        f"{esc(shape_text(t.autodiff.shape))}</td><td>{_equation(t.symbol, t.chain)}</td>"
        f'<td class="num">{norm(t.product):.6g}</td>'
        f'<td class="num">{norm(t.autodiff):.6g}</td><td>{chk}</td></tr>'
    )


def _network(e: Explanation, v: NetworkView) -> str:
    h = [f'<p class="note">{esc(counts_line(v))}</p>'] + _network_forward(e)
    h.append("<h4>Back-propagation, layer by layer</h4>")
    h.append(
        '<table class="cr-layers"><tr><th>layer</th><th>receives</th><th>local term</th>'
        "<th>gives its parameters</th><th>hands on</th></tr>"
    )
    h += [_layer_row(step) for step in e.layers] + ["</table>"]
    h.append("<h4>Chain rule for every parameter</h4>")
    h.append(
        '<table class="cr-terms"><tr><th>parameter</th><th>chain of local terms</th>'
        '<th class="num">‖product‖</th><th class="num">‖autodiff‖</th>'
        "<th>central differences</th></tr>"
    )
    h += [_parameter_row(t) for t in e.terms] + ["</table>"]
    h += [f'<p class="note">{esc(s)}</p>' for s in e.notes]
    return "\n".join(h)


# ------------------------------------------------------------------------------------------------
# the notes' composition
# ------------------------------------------------------------------------------------------------


def _composition(e: Explanation, v: CompositionView) -> str:
    hrows = "".join(
        f"<tr><td>{esc(r.symbol)}</td><td>{esc(r.formula)}</td>"
        f'<td class="num">{esc(num(r.output))}</td></tr>'
        for r in e.forward
    )
    trows = "".join(
        f"<tr><td>{esc(c.symbol)}</td><td>unit {esc(c.unit)}</td>"
        f'<td>{esc(c.text)}</td><td class="num">{esc(num(c.value))}</td></tr>'
        for c in e.terms[0].chain
    )
    g36 = f"{v.g:g}"
    return (
        '<h4>Forward pass</h4><table class="cr-forward"><tr><th>value</th><th>function</th>'
        f'<th class="num">number</th></tr>{hrows}</table>'
        '<h4>Back-propagation</h4><table class="cr-terms"><tr><th>term</th><th>unit</th>'
        f'<th>formula</th><th class="num">value</th></tr>{trows}</table>'
        f'<div class="eq">dh/dx = dh/dg · dg/df · df/dx = cos({g36}) · 3 · 1 = 3cos({g36})'
        f" = {v.product:+.10f}\nautodiff {v.autodiff:+.10f}   central difference {v.numeric:+.10f}"
        "</div>"
    )
