"""One self-contained HTML report of a trained model.

``write_report(path, model, info, X, y)`` writes a single file that opens anywhere without a
network: pictures are inline PNG (data: URIs) and inline SVG, the styles are in the page, there
are no scripts, web fonts or links to other sites. Its sections (each an ``id`` that tests and
links use):

- ``#settings``: how the model was trained and how its inputs are prepared;
- ``#summary``: the layers, their output shapes and parameter counts; the final metrics;
- ``#curves``: loss and metric curves, training and validation;
- ``#decision-boundary``: the Playground-style picture, for two features;
- ``#weights``: the network drawn as neurons and weighted edges;
- ``#grad-norms``: the gradient norm of each parameter over training;
- ``#explanation``: the forward pass and every chain-rule term for one sample
  (:func:`chainrule.explain.explain`);
- ``#graph``: the recorded computation graph of that sample's loss (:func:`chainrule.viz.graph`).

A section whose picture cannot be drawn (no history in the file, more than two features) says why
instead. matplotlib is needed (``pip install 'chainrule[viz]'``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import registry
from ._files import write_atomic
from .errors import OutputError
from .metrics import output_kind

__all__ = ["write_report", "render_report", "SECTIONS"]

SECTIONS = (
    "settings",
    "summary",
    "curves",
    "decision-boundary",
    "weights",
    "grad-norms",
    "explanation",
    "graph",
)


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


# ------------------------------------------------------------------------------------------------
# reading what the model file says, whatever is there
# ------------------------------------------------------------------------------------------------


def _section(info, key) -> dict:
    v = (info or {}).get(key)
    return v if isinstance(v, dict) else {}


def _loss_from(info, model, n_out: int, task: str | None):
    """The loss module the model was trained with (from the file; else a sensible guess)."""
    from . import nn

    pre, tr = _section(info, "preprocessing"), _section(info, "training")
    name = pre.get("loss") or tr.get("loss") or (info or {}).get("loss")
    if isinstance(name, dict):
        name = name.get("type") or name.get("name")
    cls = registry.by_short_name(name, role="loss") if isinstance(name, str) else None
    if cls is None:
        last = None
        for m in model.modules():
            last = m
        if task == "regression":
            cls = nn.MSELoss
        elif n_out > 1:
            cls = nn.CrossEntropyLoss
        elif registry.facts_of(last).output_kind == "probability":  # ends in a Sigmoid
            cls = nn.BCELoss
        else:
            cls = nn.BCEWithLogitsLoss
    return cls(), cls.__name__


def _targets(y, loss_cls: str, n_out: int, pre: dict, task: str | None):
    """The labels as the loss wants them: class indices, or a float column (standardized when
    the model was trained on a standardized target)."""
    y = np.asarray(y)
    names = pre.get("label_names")
    if y.dtype.kind in "OUS":
        if names:
            index = {str(n): i for i, n in enumerate(names)}
            y = np.asarray([index.get(str(v), -1) for v in y.tolist()], dtype=np.int64)
        else:
            from .data import encode_labels

            y, _ = encode_labels(y)
    if registry.facts_of(loss_cls).target == "index":
        return y.astype(np.int64).reshape(-1), y
    yf = y.astype(np.float64).reshape(-1)
    if task == "regression" and isinstance(pre.get("target_standardizer"), dict):
        from .data import Standardizer

        yf = Standardizer.from_dict(pre["target_standardizer"]).transform(yf.reshape(-1, 1))[:, 0]
    return yf.astype(np.float32).reshape(
        -1, n_out if yf.size % max(n_out, 1) == 0 and n_out > 1 else 1
    ), y


def _model_dtype(model):
    return next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))


# ------------------------------------------------------------------------------------------------
# HTML pieces
# ------------------------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f8f9fa;color:#212529;
 font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;
 line-height:1.5}
header{background:#1d3557;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:24px}
header p{margin:4px 0 0 0;color:#dee2e6}
nav{background:#fff;border-bottom:1px solid #dee2e6;padding:8px 32px;position:sticky;top:0;
 z-index:2}
nav a{margin-right:14px;color:#1c7ed6;text-decoration:none;font-size:14px}
main{max-width:1200px;margin:0 auto;padding:8px 24px 40px 24px}
section{background:#fff;border:1px solid #dee2e6;border-radius:8px;margin:18px 0;
 padding:14px 20px}
section h2{margin:0 0 8px 0;font-size:19px;color:#1d3557}
table.kv,table.grid{border-collapse:collapse;margin:6px 0 10px 0}
table.kv td,table.kv th,table.grid td,table.grid th{border:1px solid #dee2e6;padding:3px 9px;
 text-align:left;vertical-align:top}
table.kv th,table.grid th{background:#f1f3f5;font-weight:600}
td.num{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,'DejaVu Sans Mono',monospace;
 text-align:right}
figure{margin:6px 0}
figure img{max-width:100%;height:auto;display:block}
figcaption{color:#495057;font-size:13px;margin-top:4px}
.note{color:#495057;font-size:14px}
.missing{color:#868e96;font-style:italic}
.graph-box{overflow:auto;border:1px solid #e9ecef;border-radius:6px;padding:6px;
 max-height:900px}
.graph-box svg{display:block;max-width:100%;height:auto}
.cols{display:flex;flex-wrap:wrap;gap:28px}
.kvgrid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:2px 18px;
 margin:4px 0 10px 0;font-size:14px}
.kvgrid .k{color:#495057;font-weight:600;margin-right:4px}
.kvgrid table.kv{display:inline-table;margin:0}
"""


def _kv_table(d: dict, cls="kv") -> str:
    rows = []
    for k, v in d.items():
        rows.append(f"<tr><th>{_esc(k)}</th><td>{_value_html(v)}</td></tr>")
    return f'<table class="{cls}">' + "".join(rows) + "</table>"


def _fmt_num(v) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: "–"}[v]
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v != v:
            return "nan"
        return f"{v:.6g}" if abs(v) >= 1e-4 or v == 0 else f"{v:.3e}"
    return str(v)


def _value_html(v) -> str:
    if isinstance(v, dict):
        if not v:
            return '<span class="missing">(empty)</span>'
        return _kv_table(v)
    if isinstance(v, (list, tuple)):
        if len(v) > 12:
            shown = ", ".join(_fmt_num(x) for x in v[:10])
            return _esc(f"{len(v)} values: {shown}, …")
        return _esc(", ".join(_fmt_num(x) for x in v)) if v else '<span class="missing">none</span>'
    return _esc(_fmt_num(v))


def _figure_html(fig, alt: str, caption: str, name: str) -> str:
    from .viz.plots import png_data_uri

    uri = png_data_uri(fig, dpi=100)
    fig.clear()  # release the figure's memory
    return (
        f'<figure id="fig-{name}"><img alt="{_esc(alt)}" src="{uri}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _missing(text: str) -> str:
    return f'<p class="missing">{_esc(text)}</p>'


def _strip_svg(svg: str) -> str:
    """Inline SVG without an XML prolog or namespace URLs (HTML knows <svg> without them)."""
    if "<svg" in svg:
        svg = svg[svg.index("<svg") :]
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)


# ------------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------------


def _settings_section(info, pre, tr, std) -> str:
    out = ["<h2>Settings</h2>"]
    settings = {k: v for k, v in tr.items() if k != "history"}
    if settings:
        cells = "".join(
            f'<div><span class="k">{_esc(k)}</span> {_value_html(v)}</div>'
            for k, v in settings.items()
        )
        out.append(f'<h3>Training</h3><div class="kvgrid">{cells}</div>')
    else:
        out.append(_missing("The model file records no training settings."))
    prep = {}
    for key in ("task", "target", "loss", "output", "feature_names", "label_names", "id_columns"):
        if key in pre:
            prep[key] = pre[key]
    for k, v in pre.items():
        if k not in prep and k not in ("standardizer", "target_standardizer"):
            prep[k] = v
    cols = []
    if prep:
        cols.append("<div><h3>Preprocessing</h3>" + _kv_table(prep) + "</div>")
    if std is not None:
        names = pre.get("feature_names") or [f"x{i + 1}" for i in range(len(std.mean_))]
        if len(names) <= 20:
            rows = "".join(
                f'<tr><td>{_esc(n)}</td><td class="num">{m:.6g}</td>'
                f'<td class="num">{s:.6g}</td></tr>'
                for n, m, s in zip(names, std.mean_, std.scale_, strict=False)
            )
            cols.append(
                '<div><h3>Standardizer</h3><p class="note">Each feature is '
                "standardized before it reaches the network: (x − mean) / scale.</p>"
                '<table class="grid"><tr><th>feature</th><th>mean</th><th>scale</th>'
                "</tr>" + rows + "</table></div>"
            )
        else:
            cols.append(
                f'<div><h3>Standardizer</h3><p class="note">Each of the {len(names)} '
                "features is standardized before it reaches the network: "
                "(x − mean) / scale.</p></div>"
            )
    else:
        cols.append(
            "<div><h3>Standardizer</h3>"
            + _missing("No standardizer in the model file: the features go in as they are.")
            + "</div>"
        )
    out.append('<div class="cols">' + "".join(cols) + "</div>")
    extra = {
        k: v
        for k, v in (info or {}).items()
        if k not in ("architecture", "preprocessing", "training", "metrics")
    }
    if extra:
        out.append("<h3>Model file</h3>" + _kv_table(extra))
    return "\n".join(out)


def _summary_section(model, n_features, metrics, evaluation, hist_last) -> str:
    from .nn.module import leaf_modules, probe_shapes

    rows: list[str] = []
    leafs = leaf_modules(model, own_parameters=True)
    found: dict[int, tuple[int, ...]] = {}
    with contextlib.suppress(Exception):  # the shapes not found stay unknown
        probe_shapes(model, [m for _, m in leafs], (n_features,), found)
    shapes = {k: "(None, " + ", ".join(str(s) for s in v) + ")" for k, v in found.items()}
    total = 0
    for name, m in leafs:
        n = sum(p.data.size for p in m._parameters.values() if p is not None)
        total += n
        unit = {"linear": "linear unit Σ", "activation": "activation σ"}.get(
            registry.facts_of(m).role, ""
        )
        rows.append(
            f"<tr><td>{_esc(name)}</td><td>{_esc(type(m).__name__)}</td>"
            f"<td>{_esc(m.extra_repr())}</td><td>{_esc(unit)}</td>"
            f'<td class="num">{_esc(shapes.get(id(m), "?"))}</td>'
            f'<td class="num">{n:,}</td></tr>'
        )
    out = [
        "<h2>Model summary</h2>",
        '<table class="grid" id="summary-table"><tr><th>layer</th><th>type</th>'
        "<th>settings</th><th>unit</th><th>output shape</th><th>parameters</th></tr>"
        + "".join(rows)
        + f'<tr><th colspan="5">total parameters</th><td class="num">{total:,}</td></tr>'
        "</table>",
    ]
    cols = []
    if metrics:
        cols.append(
            "<div><h3>Final metrics (from the model file)</h3>" + _metrics_table(metrics) + "</div>"
        )
    if hist_last:
        cols.append("<div><h3>Last epoch</h3>" + _kv_table(hist_last) + "</div>")
    if evaluation:
        cols.append(
            "<div><h3>On the data given to the report</h3>" + _kv_table(evaluation) + "</div>"
        )
    if cols:
        out.append('<div class="cols">' + "".join(cols) + "</div>")
    else:
        out.append(_missing("No metrics recorded."))
    return "\n".join(out)


def _metrics_table(metrics: dict) -> str:
    # {'train': {...}, 'validation': {...}}: one column per split
    if metrics and all(isinstance(v, dict) for v in metrics.values()):
        keys = []
        for v in metrics.values():
            keys += [k for k in v if k not in keys]
        head = "".join(f"<th>{_esc(s)}</th>" for s in metrics)
        body = "".join(
            "<tr><th>"
            + _esc(k)
            + "</th>"
            + "".join(f'<td class="num">{_esc(_fmt_num(metrics[s].get(k)))}</td>' for s in metrics)
            + "</tr>"
            for k in keys
        )
        return f'<table class="grid"><tr><th>metric</th>{head}</tr>{body}</table>'
    return _kv_table(metrics)


# ------------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Subject:
    """What the report is about, read once from the arguments and the model file's info."""

    model: Any
    info: dict
    pre: dict  # the file's preprocessing section
    tr: dict  # its training section
    X: np.ndarray  # raw features, float64
    y: np.ndarray  # labels or targets as given
    Xs: np.ndarray  # the features as the network sees them (standardized, the model's dtype)
    std: Any  # the Standardizer, or None
    history: Any
    task: str
    feature_names: list
    label_names: list | None
    loss_fn: Any
    loss_cls: str
    targets: np.ndarray  # as the loss wants them
    y_codes: np.ndarray  # class indices (classification)
    kind: str | None  # how the outputs are read ('logits', 'probability', ...)


def _check_rows(X, y, sample_index: int) -> tuple:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    X = X.astype(np.float64)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"write_report: X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise ValueError("write_report: no data rows to report on")
    if not 0 <= sample_index < len(X):
        raise ValueError(
            f"write_report: sample_index {sample_index} is out of range for {len(X)} rows"
        )
    return X, y


def _subject(model, info, X, y, history, sample_index: int, loss_fn) -> _Subject:
    """The rows checked, the standardizer applied, the task, the loss and the targets."""
    from .data import Standardizer
    from .train import predict

    info = info if isinstance(info, dict) else {}
    pre, tr = _section(info, "preprocessing"), _section(info, "training")
    X, y = _check_rows(X, y, sample_index)
    std = None
    if isinstance(pre.get("standardizer"), dict):
        std = Standardizer.from_dict(pre["standardizer"])
    Xs = (std.transform(X) if std is not None else X).astype(_model_dtype(model))
    task = pre.get("task") or tr.get("task")
    out_all = predict(model, Xs[:1])
    n_out = int(np.prod(out_all.shape[1:])) if out_all.ndim > 1 else 1
    if loss_fn is None:
        loss_fn, loss_cls = _loss_from(info, model, n_out, task)
    else:
        loss_cls = type(loss_fn).__name__
    if task is None:
        task = "regression" if output_kind(loss_cls) == "value" else "classification"
    targets, y_codes = _targets(y, loss_cls, n_out, pre, task)
    return _Subject(
        model=model,
        info=info,
        pre=pre,
        tr=tr,
        X=X,
        y=y,
        Xs=Xs,
        std=std,
        history=tr.get("history") if history is None else history,
        task=task,
        feature_names=pre.get("feature_names") or [f"x{i + 1}" for i in range(X.shape[1])],
        label_names=pre.get("label_names"),
        loss_fn=loss_fn,
        loss_cls=loss_cls,
        targets=targets,
        y_codes=y_codes,
        kind=pre.get("output") or output_kind(loss_cls),
    )


def _summary(r: _Subject, parts: tuple) -> str:
    """The layers and the final metrics: the file's, the ones measured on the given rows, and
    the last epoch's."""
    from .train import evaluate

    evaluation: dict[str, Any]
    try:
        ms = ("accuracy",) if r.task == "classification" else ("r2",)
        scores = evaluate(r.model, r.loss_fn, r.Xs, r.targets, metrics=ms)
        evaluation = {"rows": len(r.X), **scores}
    except Exception as err:  # noqa: BLE001 - the report goes on without these numbers
        evaluation = {"not measured": str(err).splitlines()[0]}
    epochs, hist, _, _ = parts
    hist_last = {k: v[-1] for k, v in hist.items() if v}
    if hist_last and epochs:
        hist_last = {"epoch": epochs[-1], **hist_last}
    metrics = _section(r.info, "metrics")
    return _summary_section(r.model, r.X.shape[1], metrics, evaluation, hist_last)


def _curves(r: _Subject, parts: tuple) -> str:
    from .viz import plots

    epochs, hist, _, _ = parts
    if not hist:
        return "<h2>Training curves</h2>" + _missing(
            "No training history in the model file (it is saved by 'chainrule train', or pass "
            "history=History.to_dict())."
        )
    fig = plots.loss_curves(r.history)
    caption = (
        f"{len(epochs)} epochs; solid: training (measured on the "
        "mini-batches as they were trained), dashed: validation."
    )
    return "<h2>Training curves</h2>" + _figure_html(
        fig, "loss and metric curves", caption, "curves"
    )


def _decision_boundary(r: _Subject) -> str:
    from .viz import plots

    if r.X.shape[1] != 2:
        return "<h2>Decision boundary</h2>" + _missing(
            f"Drawn for two features only; this model has {r.X.shape[1]}."
        )
    fig = plots.decision_boundary(
        r.model,
        r.X,
        r.y_codes if r.task == "classification" else r.y,
        standardizer=r.std,
        label_names=r.label_names,
        output_kind=r.kind,
        feature_names=r.feature_names,
    )
    caption = (
        "Background: what the model predicts at "
        "each point of the plane (orange class 0, blue class 1, paler where it is unsure); "
        f"dots: the {len(r.X)} rows given to the report."
    )
    return "<h2>Decision boundary</h2>" + _figure_html(
        fig, "decision boundary with the data", caption, "decision-boundary"
    )


def _weights(r: _Subject) -> str:
    from .viz import plots

    try:
        fig = plots.network_picture(
            r.model, feature_names=r.feature_names, label_names=r.label_names
        )
    except ValueError as err:
        return "<h2>Weights</h2>" + _missing(str(err))
    caption = (
        "Each circle is a neuron (fill: "
        "its bias), each line a weight: blue positive, orange negative, thicker and darker "
        "for larger |w|."
    )
    return "<h2>Weights</h2>" + _figure_html(
        fig, "the network as neurons and weighted edges", caption, "weights"
    )


def _grad_norms(r: _Subject, parts: tuple) -> str:
    from .viz import plots

    gn = parts[2]
    if not (any(gn.values()) if gn else False):
        return "<h2>Gradient norms during training</h2>" + _missing(
            "Not recorded (train with fit(..., track_grad_norms=True); 'chainrule train' "
            "records them)."
        )
    fig = plots.grad_norms(r.history)
    caption = (
        "The mean L2 norm of ∂L/∂θ over "
        "each epoch's mini-batches, for every parameter θ (log scale): back-propagation's "
        "output, layer by layer."
    )
    return "<h2>Gradient norms during training</h2>" + _figure_html(
        fig, "gradient norm of each parameter per epoch", caption, "grad-norms"
    )


def _sample_words(r: _Subject, i: int) -> str:
    """Row i's raw features, its label and what the model predicts for it."""
    from .train import predict
    from .viz import plots

    raw = ", ".join(f"{n} = {v:g}" for n, v in zip(r.feature_names, r.X[i], strict=False))
    lab = r.y[i]
    if r.task == "classification" and r.label_names and str(r.y_codes[i]).lstrip("-").isdigit():
        code = int(r.y_codes[i])
        if 0 <= code < len(r.label_names):
            lab = f"{r.label_names[code]} (class {code})"
    pred_txt = ""
    if r.task == "classification":
        out_i = predict(r.model, r.Xs[i : i + 1])[0]
        probs = plots._probabilities(
            out_i[None, :] if np.ndim(out_i) else np.array([[out_i]]), r.kind or "value"
        )
        if probs is not None:
            c = int(probs[0].argmax())
            nm = r.label_names[c] if r.label_names and c < len(r.label_names) else f"class {c}"
            pred_txt = f"; the model predicts {nm} with probability {probs[0, c]:.3f}"
    return f"Raw features: {_esc(raw)}; label: {_esc(lab)}{_esc(pred_txt)}."


def _explained(r: _Subject, i: int) -> list[tuple[str, str]]:
    """Row i explained (the explainer's records, shown by its HTML view) and the recorded
    graph of its loss, labelled with the explanation's own symbols."""
    from .explain import explain
    from .viz.graph import graph as draw_graph

    expl = explain(r.model, r.Xs[i : i + 1], r.targets[i : i + 1], r.loss_fn)
    words = _sample_words(r, i)
    g = draw_graph(
        expl.loss_tensor,
        params=expl.graph_params,
        names=expl.graph_names,
        title=f"the recorded graph of row {i + 1}'s loss",
    )
    return [
        (
            "explanation",
            f"<h2>One sample explained: row {i + 1}</h2>"
            f'<p class="note">{words}'
            " The network sees the features standardized; the numbers below are computed "
            "in float64 on a copy of the model.</p>" + expl.to_html(),
        ),
        (
            "graph",
            "<h2>Computation graph of this sample's loss</h2>"
            '<p class="note">Boxes are units (values forward, solid arrows); dashed orange '
            "arrows carry ∂L/∂· back (back-propagation). The picture is scaled to the "
            "page; it is vector graphics, so zoom in to read the numbers.</p>"
            f'<div class="graph-box">{_strip_svg(g.svg)}</div>',
        ),
    ]


def _page(r: _Subject, body: list[tuple[str, str]], title: str | None) -> str:
    """The sections in one page: header, navigation, the sections; no web address in it."""
    heading = title or "chainrule model report"
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    arch = " → ".join(_arch_words(r.model))
    nav = "".join(f'<a href="#{sid}">{_esc(_NAV[sid])}</a>' for sid, _ in body)
    sections = "\n".join(f'<section id="{sid}">\n{content}\n</section>' for sid, content in body)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(heading)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{_esc(heading)}</h1><p>{_esc(arch)} · loss {_esc(r.loss_cls)} · "
        f"{len(r.X)} rows · written {when} by chainrule</p></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{sections}\n</main>\n</body>\n</html>\n"
    )
    return _no_urls(page)


def render_report(
    model, info, X, y, history=None, sample_index: int = 0, loss_fn=None, title: str | None = None
) -> str:
    """The report as one HTML string (what :func:`write_report` writes)."""
    from .viz import plots

    r = _subject(model, info, X, y, history, sample_index, loss_fn)
    parts = plots.history_parts(r.history)  # epochs, curves, gradient norms, best epoch
    body = [
        ("settings", _settings_section(r.info, r.pre, r.tr, r.std)),
        ("summary", _summary(r, parts)),
        ("curves", _curves(r, parts)),
        ("decision-boundary", _decision_boundary(r)),
        ("weights", _weights(r)),
        ("grad-norms", _grad_norms(r, parts)),
    ]
    body += _explained(r, sample_index)
    return _page(r, body, title)


_NAV = {
    "settings": "Settings",
    "summary": "Summary",
    "curves": "Curves",
    "decision-boundary": "Decision boundary",
    "weights": "Weights",
    "grad-norms": "Gradient norms",
    "explanation": "Explanation",
    "graph": "Graph",
}


def _arch_words(model) -> list:
    words: list[str] = []
    for m in model.modules():
        if any(True for _ in m.children()):
            continue
        name = type(m).__name__
        if registry.facts_of(m).role == "linear" and hasattr(m, "out_features"):
            if not words:
                words.append(str(m.in_features))
            words.append(f"{name} {m.out_features}")
        else:
            words.append(name)
    return words


def _no_urls(page: str) -> str:
    """Make sure no text can be read as a web address (user data included): the file must
    never reach the network."""
    return re.sub(r"(?i)\b(https?|wss?|ftp):/(?=/)", lambda m: m.group(1) + ":&#47;", page)


def write_report(
    path,
    model,
    info,
    X,
    y,
    history=None,
    sample_index: int = 0,
    loss_fn=None,
    title: str | None = None,
):
    """Write the HTML report of ``model`` to ``path`` (atomically) and return the path.

    Parameters
    ----------
    path : str or Path
    model : Module
    info : dict
        The model file's metadata, as ``chainrule.io.load(path, with_info=True)[1]``: keys
        ``architecture``, ``preprocessing`` (feature_names, standardizer {mean, scale},
        label_names, task, loss, ...), ``training`` (settings, and ``history``:
        ``History.to_dict()``) and ``metrics``. Missing keys are fine: the report shows what
        exists.
    X : ndarray of shape (n_samples, n_features)
        Raw features (the file's standardizer is applied before they reach the model).
    y : ndarray of shape (n_samples,)
        Labels (class indices, or names from ``label_names``) or regression targets in their
        own units.
    history : History or dict, optional
        Default: ``info['training']['history']``.
    sample_index : int
        The row (0-based) whose forward pass and chain-rule terms are explained.
    loss_fn : optional
        The loss unit; by default the one the file names (``preprocessing['loss']``).
    """
    page = render_report(
        model, info, X, y, history=history, sample_index=sample_index, loss_fn=loss_fn, title=title
    )
    path = os.fspath(path)
    write_atomic(path, page, OutputError)
    return path
