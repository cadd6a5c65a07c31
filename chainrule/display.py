"""How chainrule's objects show themselves in a notebook: HTML views and the notebook test.

Jupyter displays an object through its ``_repr_html_`` / ``_repr_png_`` / ``_repr_svg_``
methods. This module holds the HTML of the views that are tables (a model's ``summary()``, a
training :class:`~chainrule.train.History`, the metadata of a model file) so that the core keeps
no markup: ``Module.summary()`` returns a :class:`Summary` (a ``str``, printed as before, shown
as a table in a notebook), ``History._repr_html_`` and :class:`ModelInfo` (the ``dict`` that
``cr.load(..., with_info=True)`` returns) call the functions here. The core does not import
this module: it provides them to ``chainrule._views`` (bottom of the file) and the core asks for
them there by name.

It needs the standard library and numpy; the training curves inside the History and model-file
views are drawn with matplotlib when it is installed (a note says so when it is not).
Everything is escaped; the HTML has its own scoped ``<style>`` and no scripts or external links.
"""

from __future__ import annotations

import html
import math
import sys

from . import registry
from ._views import provide

__all__ = ["Summary", "ModelInfo", "history_html", "summary_html", "info_html", "in_notebook"]

# the doubled class outranks JupyterLab's ':not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td'
# (which right-aligns every cell of an HTML output)
_CSS = """
.cr-view{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;
 font-size:13px;line-height:1.4;color:#212529}
.cr-view h4{font-size:14px;margin:8px 0 4px 0;color:#1d3557}
.cr-view table{border-collapse:collapse;margin:2px 0 6px 0}
.cr-view.cr-view table th,.cr-view.cr-view table td{border:1px solid #dee2e6;padding:2px 8px;
 text-align:left;vertical-align:top}
.cr-view.cr-view table th{background:#f1f3f5;font-weight:600}
.cr-view.cr-view table td.num{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
 'DejaVu Sans Mono',monospace;text-align:right}
.cr-view .note{color:#495057}
.cr-view .cols{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.cr-view img{max-width:100%;height:auto}
"""


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _num(v) -> str:
    """A number as a table shows it: thousands separators for counts, 4-5 significant digits."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iu"):
        return f"{int(v):,}"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return "nan"
    return f"{f:.5g}" if f == 0 or 1e-4 <= abs(f) < 1e6 else f"{f:.3e}"


def _view(title: str | None, body: str) -> str:
    head = f"<h4>{_esc(title)}</h4>" if title else ""
    return f'<div class="cr-view"><style>{_CSS}</style>{head}{body}</div>'


def _value(v) -> str:
    """Any JSON-like value as HTML: dicts as nested tables, long lists shortened."""
    if isinstance(v, dict):
        if not v:
            return '<span class="note">(empty)</span>'
        return _kv(v)
    if isinstance(v, (list, tuple)):
        items = [_num(x) if not isinstance(x, str) else x for x in v]
        if len(items) > 12:
            return _esc(f"{len(items)} values: " + ", ".join(items[:10]) + ", …")
        return _esc(", ".join(items)) if items else '<span class="note">none</span>'
    return _esc(v if isinstance(v, str) else _num(v))


def _kv(d: dict) -> str:
    return (
        "<table>"
        + "".join(f"<tr><th>{_esc(k)}</th><td>{_value(v)}</td></tr>" for k, v in d.items())
        + "</table>"
    )


def _curves_img(history) -> str:
    """The loss and metric curves as an inline PNG, or a note when they cannot be drawn."""
    try:
        from .viz.plots import loss_curves

        fig = loss_curves(history)
    except ImportError:
        return "<p class=\"note\">(curves need matplotlib: pip install 'chainrule[viz]')</p>"
    except ValueError:
        return ""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, facecolor="white")  # one drawing pass, laid out
    fig.clear()
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="loss and metric curves" src="{uri}">'


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel attached), False elsewhere."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython is not a notebook
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


# ------------------------------------------------------------------------------------------------
# Module.summary()
# ------------------------------------------------------------------------------------------------


unit_word = registry.unit_word  # which of the course's units a layer is


class Summary(str):
    """The text of ``Module.summary()`` (a ``str``: print it, compare it, write it), which a
    notebook shows as a table.

    ``model_name`` is the model's class name; ``rows`` holds one dict per layer: ``name``,
    ``type``, ``settings``, ``unit`` (the course's linear unit Σ or activation σ),
    ``output_shape``, ``params``; ``total`` and ``trainable`` count parameters.
    """

    model_name: str
    rows: list
    total: int
    trainable: int

    def __new__(cls, text: str, model_name: str = "", rows=(), total: int = 0, trainable: int = 0):
        self = super().__new__(cls, text)
        self.model_name, self.rows = model_name, list(rows)
        self.total, self.trainable = int(total), int(trainable)
        return self

    def _repr_pretty_(self, p, cycle):  # IPython's text view (a str subclass is quoted otherwise)
        p.text(str(self))

    def _repr_html_(self) -> str:
        return summary_html(self)


def summary_html(s: Summary) -> str:
    body = [
        "<table><tr><th>layer</th><th>type</th><th>settings</th><th>unit</th>"
        "<th>output shape</th><th>parameters</th></tr>"
    ]
    for r in s.rows:
        body.append(
            f"<tr><td>{_esc(r['name'])}</td><td>{_esc(r['type'])}</td>"
            f"<td>{_esc(r['settings'])}</td><td>{_esc(r['unit'])}</td>"
            f'<td class="num">{_esc(r["output_shape"])}</td>'
            f'<td class="num">{r["params"]:,}</td></tr>'
        )
    body.append(f'<tr><th colspan="5">total parameters</th><td class="num">{s.total:,}</td></tr>')
    if s.trainable != s.total:
        body.append(f'<tr><th colspan="5">trainable</th><td class="num">{s.trainable:,}</td></tr>')
    body.append("</table>")
    return _view(f'Model: "{s.model_name}"', "".join(body))


# ------------------------------------------------------------------------------------------------
# History
# ------------------------------------------------------------------------------------------------


def _shown_epochs(n: int, head: int = 2, tail: int = 5) -> list:
    """Row indices of a short table: all when few, else the first ``head``, a gap, the last."""
    if n <= head + tail + 1:
        return list(range(n))
    return list(range(head)) + [None] + list(range(n - tail, n))


def history_html(history) -> str:
    """A History as a small table (first and last epochs) with its curves beside it."""
    hist, epochs = history.history, list(history.epochs)
    if not epochs:
        return _view("History", '<p class="note">no epochs recorded</p>')
    keys = list(hist)
    rows = ["<table><tr><th>epoch</th>" + "".join(f"<th>{_esc(k)}</th>" for k in keys) + "</tr>"]
    for i in _shown_epochs(len(epochs)):
        if i is None:
            rows.append(f'<tr><td colspan="{len(keys) + 1}" class="note">…</td></tr>')
            continue
        mark = " ★" if history.best_epoch == epochs[i] else ""
        rows.append(
            f"<tr><td>{epochs[i]}{mark}</td>"
            + "".join(
                f'<td class="num">{_num(hist[k][i]) if i < len(hist[k]) else "–"}</td>'
                for k in keys
            )
            + "</tr>"
        )
    rows.append("</table>")
    notes = [f"{len(epochs)} epochs in {history.seconds:.2f} s"]
    if history.best_epoch is not None:
        notes.append(f"best epoch {history.best_epoch} (★)")
    if history.stop_reason:
        notes.append(history.stop_reason)
    table = "".join(rows) + f'<p class="note">{_esc("; ".join(notes))}</p>'
    return _view(
        "History", f'<div class="cols"><div>{table}</div><div>{_curves_img(history)}</div></div>'
    )


# ------------------------------------------------------------------------------------------------
# model-file metadata
# ------------------------------------------------------------------------------------------------


def _arch_words(spec) -> str:
    """'2 → Linear(16) → ReLU → Linear(2)' from a model file's architecture entry."""
    words: list[str] = []

    def walk(s):
        if not isinstance(s, dict):
            return
        if "children" in s:
            for c in s["children"]:
                walk(c)
            return
        cfg = s.get("config") or {}
        if s.get("type") == "Linear":
            if not words and "in_features" in cfg:
                words.append(str(cfg["in_features"]))
            words.append(f"Linear({cfg.get('out_features', '?')})")
        else:
            words.append(str(s.get("type", "?")))

    walk(spec)
    return " → ".join(words)


class ModelInfo(dict):
    """The metadata of a model file (``architecture``, ``preprocessing``, ``training``,
    ``metrics``, ``format_version``): a plain ``dict`` that a notebook shows as tables."""

    def _repr_html_(self) -> str:
        return info_html(self)


def info_html(info: dict) -> str:
    parts = []
    arch = info.get("architecture")
    head = {
        "architecture": _arch_words(arch) if arch else "(weights only)",
        "format version": info.get("format_version"),
    }
    parts.append(_kv(head))
    cols = []
    pre = dict(info.get("preprocessing") or {})
    if pre:
        std = pre.pop("standardizer", None)
        block = _kv(pre)
        if isinstance(std, dict) and "mean" in std:
            names = pre.get("feature_names") or [f"x{i + 1}" for i in range(len(std["mean"]))]
            block += (
                "<table><tr><th>feature</th><th>mean</th><th>scale</th></tr>"
                + "".join(
                    f'<tr><td>{_esc(n)}</td><td class="num">{_num(m)}</td>'
                    f'<td class="num">{_num(s)}</td></tr>'
                    for n, m, s in list(
                        zip(names, std["mean"], std.get("scale", []), strict=False)
                    )[:12]
                )
                + "</table>"
            )
        cols.append("<div><h4>Preprocessing</h4>" + block + "</div>")
    training = dict(info.get("training") or {})
    history = training.pop("history", None)
    if training:
        cols.append("<div><h4>Training</h4>" + _kv(training) + "</div>")
    if info.get("metrics"):
        cols.append("<div><h4>Metrics</h4>" + _kv(info["metrics"]) + "</div>")
    if cols:
        parts.append('<div class="cols">' + "".join(cols) + "</div>")
    if isinstance(history, dict) and history:
        parts.append(_curves_img(history))
    return _view("Model file", "".join(parts))


# the core returns these (Module.summary(), load(with_info=True), History) without importing
# this module: it asks chainrule._views for them by name
provide("summary", Summary)
provide("model_info", ModelInfo)
provide("history_html", history_html)
