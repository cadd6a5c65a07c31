"""Explain back-propagation with numbers: the forward pass and every chain-rule term.

The course notes draw a neuron as units in a row, values flowing forward and derivative terms
flowing back and multiplying:

    ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w        (the notes' equation 3)

``explain(model, x, y, loss_fn)`` makes that picture real for a chainrule model and one sample
(or a small batch):

1. the **forward pass**: every unit in order, with its input and output values (z, a and
   L(a, y) for the logistic classifier);
2. **back-propagation**: for every parameter, the chain of local terms from the loss back to it,
   each named after its unit (loss unit, activation σ, linear unit Σ), with its value, the
   product, the gradient autodiff computed and a central-difference check beside it. For a
   deeper network the terms are shown layer by layer: the gradient each layer receives
   (∂L/∂ its output), its local term, and what it hands on to the layer before it.

Nothing here knows a derivative formula. The numbers come from the record the forward pass left
behind: the model runs once (on a float64 copy, so that the central differences are exact),
forward hooks on its layers keep each layer's input and output and ``retain_grad()`` keeps the
gradient back-propagation delivered to them; a layer's local term is its own unit's backward
applied to the gradient it received. The formulas printed beside the numbers (``a(1 − a)``,
``(a − y)/(a(1 − a))``) are labels for the reader.

``demo('llc')`` and ``demo('composition')`` walk through the notes' two examples.
"""

from __future__ import annotations

import copy
import html
import math
import time

import numpy as np

from .errors import ChainruleError
from .gradcheck import central_differences
from .registry import facts_of
from .tensor import Tensor, _backprop, no_grad

__all__ = ["explain", "demo", "Explanation", "DEMOS"]

DEMOS = ("llc", "composition")

# every entry of every parameter is checked by central differences up to this many parameters;
# above it, a few sampled entries per parameter (the largest |gradient| and random others)
_CHECK_ALL_UP_TO = 2000
_SAMPLED_ENTRIES = 4
_ATOL, _RTOL = 1e-6, 1e-4

_ELEMENTWISE = {
    "relu",
    "sigmoid",
    "tanh",
    "leaky_relu",
    "gelu",
    "abs",
    "sqrt",
    "exp",
    "log",
    "sin",
    "cos",
    "neg",
    "clip",
}

_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _sup(n) -> str:
    return str(n).translate(_SUP)


# ------------------------------------------------------------------------------------------------
# numbers as text
# ------------------------------------------------------------------------------------------------


def _s(v) -> str:
    """One number, signed, 6 decimals (scientific when tiny or huge)."""
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return f"{v:+.6f}"
    return f"{v:+.4e}"


def _g(v) -> str:
    """One number, signed, 4 significant digits (for vectors)."""
    v = float(v)
    s = f"{v:+.4g}"
    return "+0" if s in ("+0", "-0") else s


def _norm(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.vdot(a, a)))


def _vec(a, full: bool = False, limit: int = 8) -> str:
    """An array as text: every number when small (or ``full``), else the first few and ‖·‖."""
    a = np.asarray(a)
    if a.ndim == 0:
        return _s(a) if full else _g(a)
    flat = a.reshape(-1)
    fmt = _s if full else _g
    if flat.size <= limit:
        if a.ndim == 2 and a.shape[0] > 1:
            return "[" + ", ".join("[" + ", ".join(fmt(v) for v in row) + "]" for row in a) + "]"
        return "[" + ", ".join(fmt(v) for v in flat) + "]"
    rows_are_vector = a.ndim == 1 or (a.ndim == 2 and a.shape[0] == 1)
    if rows_are_vector:
        head = ", ".join(_g(v) for v in flat[:6])
        return f"[{head}, … {_g(flat[-1])}]  ({flat.size} values, ‖·‖ = {_norm(a):.4g})"
    return f"{_shape(a.shape)} array, ‖·‖ = {_norm(a):.4g}, min {_g(a.min())}, max {_g(a.max())}"


def _labels(y) -> str:
    """Targets as text: integers plainly (class labels), else as numbers."""
    y = np.asarray(y)
    if y.dtype.kind in "biu" or (y.dtype.kind == "f" and y.size and np.all(y == np.round(y))):
        flat = [str(int(v)) for v in y.reshape(-1)]
        if len(flat) <= 8:
            return "[" + ", ".join(flat) + "]"
        return "[" + ", ".join(flat[:8]) + f", …]  ({len(flat)} labels)"
    return _vec(y)


def _full(a) -> str:
    """Every number, 6 decimals; one number without brackets."""
    a = np.asarray(a)
    return _s(a.reshape(-1)[0]) if a.size == 1 else _vec(a, full=True, limit=64)


def _shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


# ------------------------------------------------------------------------------------------------
# the Explanation
# ------------------------------------------------------------------------------------------------


class Explanation:
    """The forward pass and the chain-rule terms of one sample (or a small batch), as numbers.

    ``print(expl)`` shows it as text; ``expl.to_html()`` renders a self-contained HTML fragment
    (Jupyter shows it). The structured data is there for programs and tests.

    Attributes
    ----------
    title : str
    kind : str
        'neuron' (one linear unit Σ, maybe an activation σ, then the loss: printed as the notes'
        equation 3), 'network' (terms layer by layer) or 'composition' (a chain of functions).
    forward : list of dict
        One row per unit in forward order: ``step``, ``kind`` ('input' | 'linear' |
        'activation' | 'layer' | 'loss'), ``unit`` (e.g. 'linear unit Σ'), ``layer`` (the
        module's type), ``name`` (its path in the model, e.g. '0'), ``symbol`` ('z¹', 'a', 'L'),
        ``formula``, ``input`` and ``output`` (numpy arrays), ``shape``.
    layers : list of dict
        Back-propagation, from the loss back: ``name``, ``layer``, ``kind``, ``upstream`` (the
        gradient the layer received, ∂L/∂ its output) with ``upstream_symbol``, ``local`` (the
        local term, for elementwise activations) with ``local_symbol`` and ``local_text``,
        ``handed_on`` (∂L/∂ its input) with ``handed_symbol``, and ``params`` (names).
    terms : list of dict
        One per parameter: ``parameter`` ('0.weight'), ``layer``, ``symbol`` ('W¹', 'w'),
        ``chain`` (the local terms from the loss back, each a dict with ``symbol``, ``unit``
        and, where it is a vector, ``value``), ``equation``, ``product`` (the chain applied by
        the layer's own unit), ``autodiff`` (the parameter's ``.grad``), ``checked`` (the
        entries compared with central differences), ``numeric`` and ``autodiff_checked`` (their
        values), ``sampled`` (True when only some entries were checked), ``n_entries``,
        ``max_abs_diff`` and ``ok``.
    loss : float
    seconds : float
        Time taken to build the explanation.
    loss_tensor : Tensor
        The float64 loss whose record was explained (draw it with ``cr.viz.graph``).
    """

    def __init__(
        self,
        title,
        kind,
        forward,
        layers,
        terms,
        loss,
        text_lines,
        html_body,
        notes=(),
        loss_tensor=None,
        params=None,
        names=None,
        seconds=0.0,
    ):
        self.title = title
        self.kind = kind
        self.forward = forward
        self.layers = layers
        self.terms = terms
        self.loss = loss
        self.notes = list(notes)
        self.loss_tensor = loss_tensor
        self._params = params
        self._names = names
        self._text = "\n".join(text_lines)
        self._html = html_body
        self.seconds = seconds

    # --- summary numbers ------------------------------------------------------------------
    @property
    def max_abs_diff(self) -> float:
        """The largest |autodiff − central difference| over every checked entry (nan if none)."""
        diffs = [t["max_abs_diff"] for t in self.terms if t.get("max_abs_diff") is not None]
        return max(diffs) if diffs else float("nan")

    @property
    def ok(self) -> bool:
        """True when every checked entry agrees (|a − n| <= 1e-6 + 1e-4·|n|)."""
        return all(t.get("ok", True) for t in self.terms)

    def term(self, parameter: str) -> dict:
        """The terms of one parameter, by name ('0.weight') or symbol ('w', 'W¹')."""
        for t in self.terms:
            if parameter in (t["parameter"], t["symbol"]):
                return t
        raise KeyError(
            f"explain: no parameter {parameter!r}; have "
            f"{', '.join(t['parameter'] for t in self.terms)}"
        )

    # --- rendering ------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return (
            f"<Explanation {self.kind}: {len(self.forward)} forward rows, "
            f"{len(self.terms)} parameters, loss {self.loss:.6g}>"
        )

    def to_html(self) -> str:
        """A self-contained HTML fragment (its own <style>; no external resources)."""
        return (
            '<div class="cr-explain">\n<style>' + _CSS + "</style>\n"
            f"<h3>{_esc(self.title)}</h3>\n" + self._html + "\n</div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def graph(self, **kwargs):
        """The recorded graph of the explained loss (``cr.viz.graph``), parameters labelled."""
        from .viz.graph import graph

        if self.loss_tensor is None:
            raise ChainruleError("explain: this explanation keeps no record to draw")
        kwargs.setdefault("params", self._params)
        if self._names:
            kwargs.setdefault("names", self._names)
        kwargs.setdefault("title", self.title)
        return graph(self.loss_tensor, **kwargs)


_CSS = """
.cr-explain{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;
 font-size:14px;line-height:1.45;color:#212529}
.cr-explain h3{font-size:17px;margin:0 0 6px 0}
.cr-explain h4{font-size:15px;margin:14px 0 4px 0}
.cr-explain table{border-collapse:collapse;margin:4px 0 8px 0}
.cr-explain th,.cr-explain td{border:1px solid #dee2e6;padding:3px 7px;text-align:left;
 vertical-align:top}
.cr-explain th{background:#f1f3f5;font-weight:600}
.cr-explain .nw{white-space:nowrap}
.cr-explain .num,.cr-explain code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
 'DejaVu Sans Mono',monospace;font-size:12.5px}
.cr-explain .eq{font-size:15px;margin:6px 0;padding:6px 10px;background:#f8f9fa;
 border-left:4px solid #3b6ea8;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
 'DejaVu Sans Mono',monospace;white-space:pre-wrap}
.cr-explain .t-loss{color:#c92a2a;font-weight:600}
.cr-explain .t-act{color:#7048e8;font-weight:600}
.cr-explain .t-lin{color:#1c7ed6;font-weight:600}
.cr-explain .ok{color:#2b8a3e}.cr-explain .bad{color:#c92a2a;font-weight:700}
.cr-explain .note{color:#495057;font-size:13px}
"""

_UNIT_CLASS = {"loss unit": "t-loss", "activation σ": "t-act", "linear unit Σ": "t-lin"}


def _span(sym: str, unit: str) -> str:
    cls = _UNIT_CLASS.get(unit, "")
    return f'<span class="{cls}" title="{_esc(unit)}">{_esc(sym)}</span>' if cls else _esc(sym)


# ------------------------------------------------------------------------------------------------
# the model run: a float64 copy, hooks on its layers, retained gradients
# ------------------------------------------------------------------------------------------------


def _leaf_modules(model):
    out = []
    for name, m in model.named_modules():
        if not any(True for _ in m.children()):
            out.append((name, m))
    return out


def _as_float64_copy(model):
    """A float64 deep copy of the model in eval mode (the original is left as it is)."""
    try:
        m = copy.deepcopy(model)
    except Exception:  # noqa: BLE001 - an uncopyable attribute: use the model itself
        return model, False
    if hasattr(m, "to"):
        m.to(np.float64)
    if hasattr(m, "eval"):
        m.eval()
    return m, True


def _loss_copy(loss_fn):
    if hasattr(loss_fn, "to") and hasattr(loss_fn, "named_modules"):
        try:
            lf = copy.deepcopy(loss_fn)
            lf.to(np.float64)
            return lf
        except Exception:  # noqa: BLE001
            return loss_fn
    return loss_fn


def _call_loss(loss_fn, out, y):
    """loss_fn(out, y), reshaping float targets like (n,) to an output of shape (n, 1)."""
    from .errors import ShapeError

    try:
        return loss_fn(out, y), y
    except ShapeError:
        ya = np.asarray(y.data if isinstance(y, Tensor) else y)
        if ya.size == out.data.size and ya.shape != out.shape:
            ya = ya.reshape(out.shape)
            return loss_fn(out, ya), ya
        raise


def _sample_entries(grad: np.ndarray, k: int, rng) -> list:
    """The entry with the largest |gradient| and k − 1 others drawn at random (flat indices)."""
    n = grad.size
    if n <= k:
        return list(range(n))
    first = int(np.argmax(np.abs(grad).reshape(-1)))
    others = [int(i) for i in rng.choice(n, size=min(n, k + 2), replace=False) if i != first]
    return [first] + others[: k - 1]


def _central_differences(loss_value, p: Tensor, flat_indices, eps: float) -> np.ndarray:
    if not p.data.flags.c_contiguous:  # perturbed in place: work on a contiguous copy
        p.data = np.ascontiguousarray(p.data)
    return central_differences(p.data, flat_indices, lambda: loss_value(p), eps)


# the symbolic labels of local terms (for the reader: the numbers come from the units) are
# facts of each layer and loss class: ``formula`` and ``derivative`` (see chainrule.registry)


def _role(mod) -> str:
    return facts_of(mod).role


def _loss_formula(lf, name, o) -> str:
    return (facts_of(lf).formula or name).format(o=o)


def _loss_derivative(lf, o) -> str:
    return (facts_of(lf).derivative or "∂L/∂" + o).format(o=o)


def _act_derivative(mod, name, o, i, o2, unknown) -> str:
    return (facts_of(mod).derivative or f"{name}′({unknown})").format(o=o, i=i, o2=o2)


def _loss_name(loss_fn) -> str:
    return (
        type(loss_fn).__name__
        if not callable(loss_fn) or hasattr(loss_fn, "forward")
        else getattr(loss_fn, "__name__", type(loss_fn).__name__)
    )


def explain(model, x, y, loss_fn, check: bool = True) -> Explanation:
    """Explain the forward pass and back-propagation of ``model`` on one sample or a small batch.

    Parameters
    ----------
    model : Module
        Any chainrule model; a Sequential of Linear and activation layers reads best. It is not
        changed: a float64 copy in eval mode runs.
    x : ndarray of shape (n, d) or (d,)
        The input (already preprocessed as the model expects).
    y : labels or targets, as ``loss_fn`` expects them (a number for one sample is fine)
    loss_fn : the loss unit L, e.g. ``cr.nn.BCELoss()`` or ``cr.nn.CrossEntropyLoss()``
    check : bool
        Compare each gradient with central differences (every entry for models of up to
        2,000 parameters; the largest and three random entries per parameter above that).

    Returns
    -------
    Explanation
        ``print(...)`` it, ``.to_html()``, or read ``.forward``, ``.layers``, ``.terms``.
    """
    start = time.perf_counter()
    if not hasattr(model, "named_parameters"):
        raise ChainruleError(
            f"explain: expected a chainrule Module as the model, got {type(model).__name__}"
        )
    xa = np.asarray(x.data if isinstance(x, Tensor) else x)
    if xa.dtype.kind not in "biuf":
        raise ChainruleError(f"explain: x must hold numbers, got dtype {xa.dtype}")
    if xa.ndim == 1:
        xa = xa[None, :]
        if np.ndim(y) == 0:
            y = np.asarray([y])
    ya = y.data if isinstance(y, Tensor) else np.asarray(y)
    if xa.ndim >= 1 and ya.ndim >= 1 and len(ya) != len(xa):
        raise ChainruleError(f"explain: x has {len(xa)} rows but y has {len(ya)}")

    m64, copied = _as_float64_copy(model)
    saved_grads = None
    if copied:
        for p in m64.parameters():  # a copy of a model in training carries its last .grad
            p.grad = None
    else:
        saved_grads = [(p, p.grad) for p in m64.parameters()]
        for p, _ in saved_grads:
            p.grad = None
    dtype = (
        np.float64
        if copied
        else next((p.data.dtype for p in m64.parameters()), np.dtype(np.float64))
    )
    eps = 1e-6 if dtype == np.float64 else 1e-3
    lf = _loss_copy(loss_fn) if copied else loss_fn
    was_training = None
    if not copied and hasattr(m64, "training"):
        was_training = m64.training
        m64.eval()

    xt = Tensor(xa.astype(dtype), requires_grad=True, name="x")
    calls = []

    def hook(mod, inputs, out):
        inp = inputs[0] if inputs else None
        calls.append((mod, inp, out))

    handles = []
    leafs = _leaf_modules(m64)
    name_of = {id(m): n for n, m in leafs}
    try:
        for _, m in leafs:
            handles.append(m.register_forward_hook(hook))
        out = m64(xt)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(out, Tensor):
        raise ChainruleError(f"explain: the model returned {type(out).__name__}, not a Tensor")
    calls = _fill_gaps(calls, xt, out)
    for mod, inp, o in calls:
        for t in (inp, o):
            if isinstance(t, Tensor) and t._ctx is not None:
                t.retain_grad()
    if out._ctx is not None:
        out.retain_grad()
    loss, y_used = _call_loss(lf, out, ya)
    if not isinstance(loss, Tensor) or loss.data.size != 1:
        raise ChainruleError("explain: the loss must be one number (reduction 'mean' or 'sum')")
    loss.backward(retain_graph=True)  # the record is walked again (hand-backs, the graph)

    params = list(m64.named_parameters())

    # central differences re-run the forward pass from the layer that owns the parameter: the
    # layers before it are not affected, so their outputs are computed once (Sequential models)
    children = list(m64) if facts_of(m64).chained else None
    owner, inputs = {}, []
    if children:
        with no_grad():
            h = xa.astype(dtype)
            for k, c in enumerate(children):
                inputs.append(h)
                for q in c.parameters():
                    owner.setdefault(id(q), k)
                h = c(h)
                h = h.data if isinstance(h, Tensor) else h

    def loss_value(p=None):
        with no_grad():
            if children:
                k = owner.get(id(p), 0)
                o = inputs[k]
                for c in children[k:]:
                    o = c(o)
            else:
                o = m64(xa.astype(dtype))
            return float(np.asarray(lf(o, y_used).data))

    ctx = dict(
        model=m64,
        x=xt,
        xa=xa,
        y=np.asarray(y_used),
        out=out,
        loss=loss,
        loss_fn=lf,
        calls=calls,
        name_of=name_of,
        params=params,
        check=check,
        eps=eps,
        loss_value=loss_value,
        copied=copied,
    )
    try:
        if _is_neuron(calls, xt, out):
            expl = _explain_neuron(ctx)
        else:
            expl = _explain_network(ctx)
    finally:
        if was_training:
            m64.train()
        if saved_grads is not None:
            for p, g in saved_grads:
                p.grad = g
    expl.seconds = time.perf_counter() - start
    return expl


# ------------------------------------------------------------------------------------------------
# shared pieces
# ------------------------------------------------------------------------------------------------


class _Functional:
    """A unit called between layers (``cr.relu(self.l1(x))``), shown as a row of its own."""

    def __init__(self, unit_name: str):
        self.unit_name = unit_name
        self._parameters = {}


def _fill_gaps(calls, xt, out):
    """The layer calls, with rows added for single-input units applied between layers (and
    after the last one), so that the chain from the loss back to x has no holes."""
    known = {id(xt)}

    def trace(t):
        path, cur = [], t
        for _ in range(12):
            if id(cur) in known:
                pairs, prev = [], cur
                for nxt in reversed(path):
                    pairs.append((_Functional(nxt._ctx.unit.name), prev, nxt))
                    prev = nxt
                return pairs
            c = getattr(cur, "_ctx", None)
            if c is None:
                return []
            tins = [q for q in c.inputs if isinstance(q, Tensor) and q._rg]
            if len(tins) != 1:
                return []
            path.append(cur)
            cur = tins[0]
        return []

    full = []
    for mod, inp, o in calls:
        if isinstance(inp, Tensor) and id(inp) not in known:
            full.extend(trace(inp))
        full.append((mod, inp, o))
        if isinstance(o, Tensor):
            known.add(id(o))
    if id(out) not in known:
        full.extend(trace(out))
    return full


def _unit_of(out: Tensor, inp) -> tuple:
    """(ctx, index) when ``out`` was made by one unit directly from ``inp``, else (None, None)."""
    c = getattr(out, "_ctx", None)
    if c is None:
        return None, None
    for i, t in enumerate(c.inputs):
        if t is inp:
            return c, i
    return None, None


def _handed_back(out: Tensor, grad, target) -> np.ndarray | None:
    """What back-propagation from ``out``, given dL/d(out) = ``grad``, delivers to ``target``
    (a tensor below it): measured by the engine itself, in its tracing mode, which stores
    nothing on the tensors (so the same unbroadcast and dtype cast apply as in training)."""
    trace = {}
    _backprop(out, np.asarray(grad, dtype=out.data.dtype), trace)
    g = trace["grads"].get(id(target))
    return None if g is None else np.asarray(g)


def _elementwise(mod, c) -> bool:
    """An activation applied to each number on its own: by its facts, or by its one unit."""
    return facts_of(mod).elementwise or (c is not None and c.unit.name in _ELEMENTWISE)


def _check_param(ctx, name, p, rng):
    """Central differences for some or all entries of parameter p: (indices, numeric, auto)."""
    total = sum(q.data.size for _, q in ctx["params"])
    grad = p.grad if p.grad is not None else np.zeros_like(p.data)
    if total <= _CHECK_ALL_UP_TO:
        flat_idx = list(range(p.data.size))
        sampled = False
    else:
        flat_idx = _sample_entries(grad, _SAMPLED_ENTRIES, rng)
        sampled = True
    numeric = _central_differences(ctx["loss_value"], p, flat_idx, ctx["eps"])
    auto = np.asarray(grad, dtype=np.float64).reshape(-1)[flat_idx]
    diff = np.abs(auto - numeric)
    ok = bool(np.all(diff <= _ATOL + _RTOL * np.abs(numeric)))
    idx = [tuple(int(v) for v in np.unravel_index(i, p.data.shape)) for i in flat_idx]
    return idx, numeric, auto, float(diff.max()) if diff.size else 0.0, ok, sampled


def _scaled(red: str, txt: str) -> str:
    """'1/n · ' in front of a formula, with parentheses when the formula is a sum."""
    if not red:
        return txt
    if " − " in txt or " + " in txt or "where" in txt:
        if not (txt.startswith("(") and txt.endswith(")") and txt.count("(") == 1):
            txt = f"({txt})"
    return red + txt


def _reduction_note(lf, out) -> tuple:
    """(n, text): the number of values the loss averages, and a note when n > 1."""
    red = getattr(lf, "reduction", "mean")
    if red != "mean":
        return 1, ""
    per_sample = facts_of(lf).target == "index"  # class-index targets: one per sample
    n = out.shape[0] if per_sample and out.ndim >= 1 else out.data.size
    return n, (f"1/{n} · " if n > 1 else "")


# ------------------------------------------------------------------------------------------------
# one neuron: linear unit Σ, activation σ, loss unit L  (the notes' equation 3)
# ------------------------------------------------------------------------------------------------


def _is_neuron(calls, xt, out) -> bool:
    if not calls or _role(calls[0][0]) != "linear" or calls[0][1] is not xt:
        return False
    lin = calls[0][0]
    if getattr(lin, "out_features", None) != 1:
        return False
    if len(calls) == 1:
        return calls[0][2] is out
    act = facts_of(calls[1][0]) if len(calls) == 2 else None
    if act is not None and act.role == "activation" and act.elementwise:
        return calls[1][1] is calls[0][2] and calls[1][2] is out
    return False


def _explain_neuron(ctx) -> Explanation:
    calls, xt, out, lf = ctx["calls"], ctx["x"], ctx["out"], ctx["loss_fn"]
    lin, _, z = calls[0]
    act = calls[1] if len(calls) == 2 else None
    a = act[2] if act else z
    o = "a" if act else "z"
    act_name = type(act[0]).__name__ if act else None
    loss_name = _loss_name(lf)
    n = xt.shape[0]
    X = xt.data
    w, b = lin.weight, lin.bias
    names = {id(w): "w", id(xt): "x", id(z): "z", id(ctx["loss"]): "L"}
    if b is not None:
        names[id(b)] = "w₀"
    if act:
        names[id(a)] = "a"
    yv = np.asarray(ctx["y"], dtype=np.float64).reshape(-1)
    zv, av, L = z.data.reshape(-1), a.data.reshape(-1), float(ctx["loss"].data)

    # --- forward pass -------------------------------------------------------------------------
    lin_name = ctx["name_of"].get(id(lin), "")
    forward = [
        dict(
            step=0,
            kind="input",
            unit="input",
            layer="",
            name="",
            symbol="x",
            formula="x",
            input=None,
            output=X.copy(),
            shape=X.shape,
        )
    ]
    forward.append(
        dict(
            step=1,
            kind="linear",
            unit="linear unit Σ",
            layer=type(lin).__name__,
            name=lin_name,
            symbol="z",
            formula="z = wᵀx + w₀" if b is not None else "z = wᵀx",
            input=X.copy(),
            output=z.data.copy(),
            shape=z.shape,
        )
    )
    if act:
        forward.append(
            dict(
                step=2,
                kind="activation",
                unit="activation σ",
                layer=act_name,
                name=ctx["name_of"].get(id(act[0]), ""),
                symbol="a",
                formula=f"a = σ(z) = {act_name}(z)",
                input=z.data.copy(),
                output=a.data.copy(),
                shape=a.shape,
            )
        )
    lform = _loss_formula(lf, loss_name, o)
    forward.append(
        dict(
            step=len(forward),
            kind="loss",
            unit="loss unit",
            layer=loss_name,
            name="",
            symbol="L",
            formula=f"L({o}, y) = {lform}",
            input=a.data.copy(),
            output=np.asarray(L),
            shape=(),
            target=yv.copy(),
        )
    )

    # --- back-propagation: local terms, per sample ---------------------------------------------
    dL_do = np.asarray(a.grad, dtype=np.float64).reshape(-1)  # loss unit
    if act:
        c, i = _unit_of(a, z)
        if _elementwise(act[0], c):  # activation σ: its (diagonal) local term
            da_dz = _handed_back(a, np.ones_like(a.data), z).reshape(-1)
        else:
            da_dz = np.asarray(z.grad).reshape(-1) / np.where(dL_do == 0, np.nan, dL_do)
    else:
        da_dz = np.ones_like(dL_do)
    dL_dz = dL_do * da_dz
    lin_ctx, xi = _unit_of(z, xt)
    rn, red = _reduction_note(lf, out)
    loss_grad_txt = _scaled(red, _loss_derivative(lf, o))
    act_grad_txt = _act_derivative(act[0], act_name, "a", "z", "a²", "z") if act else ""

    rng = np.random.default_rng(0)
    terms, layers = [], []
    layers.append(
        dict(
            name="",
            layer=loss_name,
            kind="loss",
            upstream=np.ones(()),
            upstream_symbol="∂L/∂L",
            local=None,
            local_symbol=None,
            local_text=None,
            handed_on=dL_do.reshape(a.shape),
            handed_symbol=f"∂L/∂{o}",
            params=[],
        )
    )
    if act:
        layers.append(
            dict(
                name=ctx["name_of"].get(id(act[0]), ""),
                layer=act_name,
                kind="activation",
                upstream=dL_do.reshape(a.shape),
                upstream_symbol="∂L/∂a",
                local=da_dz.reshape(a.shape),
                local_symbol="∂a/∂z",
                local_text=act_grad_txt,
                handed_on=np.asarray(z.grad).copy(),
                handed_symbol="∂L/∂z",
                params=[],
            )
        )
    pnames = {id(p): nm for nm, p in ctx["params"]}
    layers.append(
        dict(
            name=lin_name,
            layer=type(lin).__name__,
            kind="linear",
            upstream=np.asarray(z.grad).copy(),
            upstream_symbol="∂L/∂z",
            local=None,
            local_symbol="∂z/∂w",
            local_text="x",
            handed_on=None if xt.grad is None else xt.grad.copy(),
            handed_symbol="∂L/∂x",
            params=[pnames[id(w)]] + ([pnames[id(b)]] if b is not None else []),
        )
    )

    for p, sym, dz_dp in ((w, "w", X), (b, "w₀", np.ones((n, 1)))):
        if p is None:
            continue
        chain = [dict(symbol=f"∂L/∂{o}", unit="loss unit", text=loss_grad_txt, value=dL_do)]
        if act:
            chain.append(dict(symbol="∂a/∂z", unit="activation σ", text=act_grad_txt, value=da_dz))
        chain.append(
            dict(
                symbol=f"∂z/∂{sym}",
                unit="linear unit Σ",
                text="x" if sym == "w" else "1",
                value=dz_dp.copy(),
            )
        )
        # the product, sample by sample: (scalar chain) · ∂z/∂p, summed over the batch
        product = (dL_dz[:, None] * dz_dp).sum(axis=0).reshape(p.data.shape)
        # and the linear unit's own backward applied to ∂L/∂z gives the same
        auto = np.asarray(p.grad, dtype=np.float64).copy()
        t = dict(
            parameter=pnames[id(p)],
            layer=lin_name,
            symbol=sym,
            chain=chain,
            equation=f"∂L/∂{sym} = " + " · ".join(c["symbol"] for c in chain),
            product=product,
            autodiff=auto,
            n_entries=p.data.size,
            checked=[],
            numeric=None,
            autodiff_checked=None,
            sampled=False,
            max_abs_diff=None,
            ok=True,
        )
        if lin_ctx is not None:
            pi = list(lin_ctx.inputs).index(p) if any(q is p for q in lin_ctx.inputs) else None
            if pi is not None:
                t["unit_product"] = _handed_back(z, np.asarray(z.grad), p)
        if ctx["check"]:
            idx, num, au, md, ok, sampled = _check_param(ctx, pnames[id(p)], p, rng)
            t.update(
                checked=idx,
                numeric=num,
                autodiff_checked=au,
                max_abs_diff=md,
                ok=ok,
                sampled=sampled,
            )
        terms.append(t)

    # --- text ---------------------------------------------------------------------------------
    title = (
        "One neuron: x → [linear unit Σ: z = wᵀx + w₀] → "
        + ("[activation σ: a = σ(z)] → " if act else "")
        + f"[loss unit L({o}, y)]"
    )

    def per_sample(v):
        """One number per sample: the number itself for one sample, else a vector."""
        v = np.asarray(v).reshape(-1)
        return _s(v[0]) if n == 1 else _vec(v, full=True, limit=16)

    def table(rows):
        """Rows (label, formula, value) with the formulas and '=' signs lined up."""
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        return [f"  {r[0].ljust(w0)}   {r[1].ljust(w1)} = {r[2]}" for r in rows]

    lines = [title, ""]
    lines.append("Forward pass (each unit's output is the next unit's input):")
    if n == 1:
        lines.append(f"  x = {_vec(X[0], full=True)}   y = {yv[0]:g}")
    else:
        for s in range(n):
            lines.append(f"  sample {s}: x = {_vec(X[s], full=True)}   y = {yv[s]:g}")
    wb = f"  w = {_vec(w.data.reshape(-1), full=True)}"
    if b is not None:
        wb += f"   w₀ = {_s(b.data.reshape(-1)[0])}"
    lines.append(wb)
    rows_ = [("linear unit Σ", "z = wᵀx" + (" + w₀" if b is not None else ""), per_sample(zv))]
    if act:
        rows_.append(("activation σ", f"a = σ(z) = {act_name}(z)", per_sample(av)))
    mean_txt = f"mean over {rn} values of " if rn > 1 else ""
    rows_.append(("loss unit", f"L({o}, y) = {mean_txt}{lform}", f"{_s(L)}   ({loss_name})"))
    lines += table(rows_)
    lines.append("")
    chain_txt = " · ".join(c["symbol"] for c in terms[0]["chain"])
    lines.append(
        "Back-propagation, from the loss back to w" + (" (the notes' equation 3):" if act else ":")
    )
    lines.append(f"  ∂L/∂w = {chain_txt}")
    rows_ = [("loss unit", f"∂L/∂{o} = {loss_grad_txt}", per_sample(dL_do))]
    if act:
        rows_.append(("activation σ", f"∂a/∂z = {act_grad_txt}", per_sample(da_dz)))
    rows_.append(
        ("linear unit Σ", "∂z/∂w = x", _vec(X[0], full=True) if n == 1 else "x (each sample's row)")
    )
    lines += table(rows_)
    lines.append("")
    for t in terms:
        sym = t["symbol"]
        lead = f"  ∂L/∂{sym} "
        pad = " " * len(lead)
        lines.append(f"{lead}= " + " · ".join(c["symbol"] for c in t["chain"]))
        last_sym = "x" if sym == "w" else "1"
        if n == 1:
            factors = " · ".join(f"({_s(c['value'][0])})" for c in t["chain"][:-1])
            last = _vec(X[0], full=True) if sym == "w" else "1"
            lines.append(
                f"{pad}= {factors} · {last_sym}" if sym == "w" else f"{pad}= {factors} · 1"
            )
            if sym == "w":
                lines.append(f"{pad}= {factors} · {last}")
        else:
            lines.append(
                f"{pad}= Σ over the {n} samples of " + " · ".join(c["symbol"] for c in t["chain"])
            )
            for s in range(n):
                factors = " · ".join(f"({_s(c['value'][s])})" for c in t["chain"][:-1])
                last = _vec(X[s], full=True) if sym == "w" else "1"
                lines.append(f"{pad}  sample {s}: {factors} · {last}")
        lines.append(f"{pad}= {_full(t['product'])}")
        checks = []
        # a probability out of the activation into a loss of probabilities (sigmoid and
        # binary cross-entropy): the product of the two local terms is a − y
        if (
            act
            and facts_of(act[0]).output_kind == "probability"
            and facts_of(lf).role == "loss"
            and facts_of(lf).output_kind == "probability"
        ):
            hand = ((av - yv)[:, None] * (X if sym == "w" else np.ones((n, 1)))).sum(0)
            lab = f"by hand (a − y)·{last_sym}"
            if rn > 1:
                hand = hand / rn
                lab = f"by hand 1/{rn} Σ (a − y)·{last_sym}"
            checks.append((lab, _full(hand)))
        checks.append(("autodiff (.grad)", _full(t["autodiff"])))
        if t["numeric"] is not None:
            num = np.asarray(t["numeric"]).reshape(t["autodiff"].shape)
            mark = "agree" if t["ok"] else "DISAGREE"
            checks.append(
                (
                    "central difference",
                    f"{_full(num)}   max |difference| {t['max_abs_diff']:.1e}: {mark}",
                )
            )
        wl = max(len(c[0]) for c in checks)
        lines += [f"{pad}  {c[0].ljust(wl)}   {c[1]}" for c in checks]
    lines.append("")
    lines.append(
        f"The linear unit Σ also hands on ∂L/∂x = ∂L/∂z · w = {_vec(xt.grad, full=n == 1)}"
    )
    lines.append("(the input is not learned; shown for completeness)")

    # --- html -----------------------------------------------------------------------------------
    h = [
        "<h4>Forward pass</h4>",
        '<table class="cr-forward"><tr><th>unit</th><th>value</th>'
        '<th>formula</th><th class="num">number(s)</th></tr>',
    ]
    for r in forward:
        val = _full(r["output"])
        if r["kind"] == "input":
            val += f"   y = {_labels(yv)}"
        h.append(
            f'<tr><td class="nw">{_span(r["unit"], r["unit"])}</td><td>{_esc(r["symbol"])}</td>'
            f'<td>{_esc(r["formula"])}</td><td class="num">{_esc(val)}</td></tr>'
        )
    h.append("</table>")
    h.append("<h4>Back-propagation</h4>")
    for t in terms:
        sym = t["symbol"]
        eq = f"∂L/∂{_esc(sym)} = " + " · ".join(_span(c["symbol"], c["unit"]) for c in t["chain"])
        rows = []
        for s in range(n):
            factors = " · ".join(f"({_s(c['value'][s])})" for c in t["chain"][:-1])
            last = _vec(X[s], full=True) if sym == "w" else "1"
            rows.append(f"{' ' * 7}= {_esc(factors)} · {_esc(last)}")
        rows.append(f"{' ' * 7}= {_esc(_full(t['product']))}")
        h.append(f'<div class="eq">{eq}\n' + "\n".join(rows) + "</div>")
        h.append(
            '<table class="cr-terms"><tr><th>term</th><th>unit</th><th>formula</th>'
            '<th class="num">value</th></tr>'
        )
        for c in t["chain"]:
            v = c["value"]
            vt = _full(v[0]) if n == 1 else "; ".join(_vec(r, full=True) for r in v)
            h.append(
                f"<tr><td>{_span(c['symbol'], c['unit'])}</td><td>{_esc(c['unit'])}</td>"
                f'<td>{_esc(c["text"])}</td><td class="num">{_esc(vt)}</td></tr>'
            )
        h.append(
            f"<tr><td>∂L/∂{_esc(sym)}</td><td>autodiff (.grad)</td><td></td>"
            f'<td class="num">{_esc(_full(t["autodiff"]))}</td></tr>'
        )
        if t["numeric"] is not None:
            cls = "ok" if t["ok"] else "bad"
            num = np.asarray(t["numeric"]).reshape(t["autodiff"].shape)
            h.append(
                f"<tr><td>∂L/∂{_esc(sym)}</td><td>central difference</td>"
                f'<td class="{cls}">max |difference| {t["max_abs_diff"]:.1e}</td>'
                f'<td class="num">{_esc(_full(num))}</td></tr>'
            )
        h.append("</table>")
    return Explanation(
        title=title,
        kind="neuron",
        forward=forward,
        layers=layers,
        terms=terms,
        loss=L,
        text_lines=lines,
        html_body="\n".join(h),
        loss_tensor=ctx["loss"],
        params=ctx["params"],
        names=names,
    )


# ------------------------------------------------------------------------------------------------
# a network: terms layer by layer
# ------------------------------------------------------------------------------------------------


def _explain_network(ctx) -> Explanation:
    calls, xt, out, lf = ctx["calls"], ctx["x"], ctx["out"], ctx["loss_fn"]
    name_of, params = ctx["name_of"], ctx["params"]
    loss_name = _loss_name(lf)
    n_lin = sum(_role(m) == "linear" for m, _, _ in calls)
    sup = (lambda k: _sup(k)) if n_lin > 1 else (lambda k: "")
    n = xt.shape[0]

    # --- symbols and the forward pass ----------------------------------------------------------
    sym_of = {id(xt): "x"}
    forward = [
        dict(
            step=0,
            kind="input",
            unit="input",
            layer="",
            name="",
            symbol="x",
            formula="x",
            input=None,
            output=xt.data.copy(),
            shape=xt.shape,
        )
    ]
    rows = []  # per call: dict with module info and symbols
    lin_k = 0
    other_k = 0
    unknown_k = 0
    for mod, inp, o in calls:
        functional = isinstance(mod, _Functional)
        kind_name = mod.unit_name if functional else type(mod).__name__
        if isinstance(inp, Tensor) and id(inp) not in sym_of:
            unknown_k += 1
            sym_of[id(inp)] = "u" + _sup(unknown_k)
        in_sym = sym_of.get(id(inp), "?")
        if functional:
            if kind_name in _ELEMENTWISE or kind_name in ("softmax", "log_softmax"):
                s = "a" + sup(lin_k)
                kind, unit = "activation", "activation σ"
            else:
                other_k += 1
                s = "h" + _sup(other_k)
                kind, unit = "layer", kind_name
            formula = f"{s} = {kind_name}({in_sym})"
        elif _role(mod) == "linear":
            lin_k += 1
            s = "z" + sup(lin_k)
            kind, unit = "linear", "linear unit Σ"
            wsym, bsym = "W" + sup(lin_k), "b" + sup(lin_k)
            formula = (
                f"{s} = {wsym}{in_sym} + {bsym}"
                if mod.bias is not None
                else f"{s} = {wsym}{in_sym}"
            )
        elif _role(mod) == "activation":
            s = "a" + sup(lin_k)
            kind, unit = "activation", "activation σ"
            formula = f"{s} = {kind_name}({in_sym})"
        elif _role(mod) == "passthrough" and o is inp:
            s = in_sym
            kind, unit = "layer", "pass-through"
            formula = f"{kind_name}: {s} unchanged (eval mode)"
        else:
            other_k += 1
            s = "h" + _sup(other_k)
            kind, unit = "layer", kind_name
            formula = f"{s} = {kind_name}({in_sym})"
        if isinstance(o, Tensor) and id(o) not in sym_of:
            sym_of[id(o)] = s
        own = [(nm, p) for nm, p in params if any(p is q for q in mod._parameters.values())]
        row = dict(
            module=mod,
            kind_name=kind_name,
            name=name_of.get(id(mod), "") if not functional else "(function)",
            inp=inp,
            out=o,
            in_sym=in_sym,
            sym=s,
            kind=kind,
            unit=unit,
            formula=formula,
            params=own,
            lin_k=lin_k,
        )
        rows.append(row)
        forward.append(
            dict(
                step=len(forward),
                kind=kind,
                unit=unit,
                layer=kind_name,
                name=row["name"],
                symbol=s,
                formula=formula,
                input=None if inp is None else np.asarray(inp.data).copy(),
                output=np.asarray(o.data).copy(),
                shape=tuple(o.shape),
            )
        )
    out_sym = sym_of.get(id(out), "ŷ")
    L = float(ctx["loss"].data)
    lform = _loss_formula(lf, loss_name, out_sym)
    rn, red = _reduction_note(lf, out)
    forward.append(
        dict(
            step=len(forward),
            kind="loss",
            unit="loss unit",
            layer=loss_name,
            name="",
            symbol="L",
            formula=f"L({out_sym}, y) = {lform}",
            input=out.data.copy(),
            output=np.asarray(L),
            shape=(),
            target=np.asarray(ctx["y"]).copy(),
        )
    )

    # --- back-propagation, layer by layer from the loss --------------------------------------
    def grad_of(t):
        if t is None or not isinstance(t, Tensor):
            return None
        return None if t.grad is None else np.asarray(t.grad)

    loss_grad_txt = _scaled(red, _loss_derivative(lf, out_sym))
    layers = [
        dict(
            name="",
            layer=loss_name,
            kind="loss",
            upstream=np.ones(()),
            upstream_symbol="∂L/∂L",
            local=None,
            local_symbol=None,
            local_text=loss_grad_txt,
            handed_on=grad_of(out),
            handed_symbol=f"∂L/∂{out_sym}",
            params=[],
        )
    ]
    rng = np.random.default_rng(0)
    terms = []
    # the chain of symbols from the loss back to each row's output
    chain_after = {}  # row index -> list of chain dicts (from the loss down to that row's output)
    chain = [dict(symbol=f"∂L/∂{out_sym}", unit="loss unit", text=loss_grad_txt)]
    if rows and rows[-1]["out"] is not out:  # units after the last layer that we cannot split
        chain.append(
            dict(
                symbol=f"∂{out_sym}/∂{rows[-1]['sym']}",
                unit="unit",
                text="units after the last layer",
            )
        )
    for ri in range(len(rows) - 1, -1, -1):
        r = rows[ri]
        chain_after[ri] = list(chain)
        up = grad_of(r["out"])
        handed = grad_of(r["inp"])
        c, _ = _unit_of(r["out"], r["inp"])
        entry = dict(
            name=r["name"],
            layer=r["kind_name"],
            kind=r["kind"],
            upstream=up,
            upstream_symbol=f"∂L/∂{r['sym']}",
            local=None,
            local_symbol=f"∂{r['sym']}/∂{r['in_sym']}",
            local_text=None,
            handed_on=handed,
            handed_symbol=f"∂L/∂{r['in_sym']}",
            params=[nm for nm, _ in r["params"]],
            elementwise=False,
            symbol=r["sym"],
            in_symbol=r["in_sym"],
            formula=r["formula"],
            desc=_layer_desc(r),
        )
        if r["kind"] == "activation" and _elementwise(r["module"], c):
            entry["local"] = _handed_back(r["out"], np.ones_like(r["out"].data), r["inp"])
            entry["elementwise"] = True
            entry["local_text"] = _act_derivative(
                r["module"],
                r["kind_name"],
                r["sym"],
                r["in_sym"],
                f"({r['sym']})²" if len(r["sym"]) > 1 else r["sym"] + "²",
                "·",
            )
        elif r["kind"] == "linear":
            wsym = "W" + sup(r["lin_k"])
            entry["local_text"] = f"{wsym} (∂L/∂{r['in_sym']} = ∂L/∂{r['sym']} · {wsym})"
        elif r["kind"] == "activation":
            entry["local_text"] = f"the {r['kind_name']} Jacobian (not elementwise)"
        # parameters of this layer
        for nm, p in r["params"]:
            if r["kind"] == "linear":
                psym = ("W" if p is r["module"].weight else "b") + sup(r["lin_k"])
                local_sym = f"∂{r['sym']}/∂{psym}"
                local_txt = r["in_sym"] if psym[0] == "W" else "1"
            elif _role(r["module"]) == "normalization":
                psym = ("γ" if p is r["module"].weight else "β") + r["sym"][1:]
                local_sym = f"∂{r['sym']}/∂{psym}"
                local_txt = "x̂ (the normalized input)" if psym[0] == "γ" else "1"
            else:
                psym = nm
                local_sym = f"∂{r['sym']}/∂{nm}"
                local_txt = f"{r['kind_name']}'s local term"
            pchain = list(chain) + [dict(symbol=local_sym, unit=r["unit"], text=local_txt)]
            auto = np.asarray(
                p.grad if p.grad is not None else np.zeros_like(p.data), dtype=np.float64
            ).copy()
            product = None
            cp = r["out"]._ctx
            if cp is not None and up is not None and any(q is p for q in cp.inputs):
                product = _handed_back(r["out"], up, p)
            if product is None:
                product = auto.copy()
            if psym[0] == "W" and r["kind"] == "linear":
                prod_txt = f"(∂L/∂{r['sym']})ᵀ · {r['in_sym']}"
            elif psym[0] == "b" and r["kind"] == "linear":
                prod_txt = f"Σ over the batch of ∂L/∂{r['sym']}" if n > 1 else f"∂L/∂{r['sym']}"
            else:
                prod_txt = f"{r['kind_name']} backward of ∂L/∂{r['sym']}"
            t = dict(
                parameter=nm,
                layer=r["name"],
                symbol=psym,
                chain=pchain,
                equation=f"∂L/∂{psym} = " + " · ".join(c_["symbol"] for c_ in pchain),
                product=np.asarray(product, dtype=np.float64),
                product_text=prod_txt,
                autodiff=auto,
                n_entries=p.data.size,
                checked=[],
                numeric=None,
                autodiff_checked=None,
                sampled=False,
                max_abs_diff=None,
                ok=True,
            )
            if ctx["check"]:
                idx_, num, au, md, ok, sampled = _check_param(ctx, nm, p, rng)
                t.update(
                    checked=idx_,
                    numeric=num,
                    autodiff_checked=au,
                    max_abs_diff=md,
                    ok=ok,
                    sampled=sampled,
                )
            terms.append(t)
        entry["terms"] = [t for t in terms if t["parameter"] in entry["params"]]
        layers.append(entry)
        if r["kind"] == "layer" and r["unit"] == "pass-through":
            continue
        chain = chain + [
            dict(
                symbol=f"∂{r['sym']}/∂{r['in_sym']}", unit=r["unit"], text=entry["local_text"] or ""
            )
        ]

    # parameters no layer owns (used directly in a custom forward): autodiff and the check
    covered = {t["parameter"] for t in terms}
    for nm, p in params:
        if nm in covered:
            continue
        auto = np.asarray(
            p.grad if p.grad is not None else np.zeros_like(p.data), dtype=np.float64
        ).copy()
        t = dict(
            parameter=nm,
            layer="",
            symbol=nm,
            chain=list(chain)
            + [dict(symbol=f"∂(…)/∂{nm}", unit="unit", text="units outside the layers")],
            equation=f"∂L/∂{nm} = … (used outside the layers)",
            product=auto.copy(),
            product_text="back-propagation through the record",
            autodiff=auto,
            n_entries=p.data.size,
            checked=[],
            numeric=None,
            autodiff_checked=None,
            sampled=False,
            max_abs_diff=None,
            ok=True,
        )
        if ctx["check"]:
            idx_, num, au, md, ok, sampled = _check_param(ctx, nm, p, rng)
            t.update(
                checked=idx_,
                numeric=num,
                autodiff_checked=au,
                max_abs_diff=md,
                ok=ok,
                sampled=sampled,
            )
        terms.append(t)

    # terms in forward order (first layer first) read better in tables
    order = {nm: i for i, (nm, _) in enumerate(params)}
    terms.sort(key=lambda t: order.get(t["parameter"], 0))

    # --- text ---------------------------------------------------------------------------------
    desc = " → ".join(_layer_desc(r) for r in rows)
    title = f"{type(ctx['model']).__name__}: x → {desc} → [loss unit L: {loss_name}]"
    total = sum(p.data.size for _, p in params)
    lines = [title, f"{n} sample{'s' if n > 1 else ''}, {total:,} parameters, float64", ""]
    lines.append("Forward pass (every unit in order; each unit's output is the next unit's input):")
    w_unit = max(len(_row_label(r)) for r in forward)
    w_form = max(len(r["formula"]) for r in forward)
    for r in forward:
        val = _vec(r["output"])
        if r["kind"] == "loss":
            val = (
                f"{_s(L)}   (y = {_labels(r['target'])}"
                f"{', mean over ' + str(rn) + ' values' if rn > 1 else ''})"
            )
        lines.append(
            f"  {_row_label(r).ljust(w_unit)}  {r['formula'].ljust(w_form)}  "
            f"{_shape(r['shape']) if r['kind'] != 'loss' else '':>10}  {val}"
        )
    lines.append("")
    lines.append(
        "Back-propagation (start at the loss; each unit receives ∂L/∂ its output, "
        "multiplies in its local term"
    )
    lines.append("and hands the product on to the unit before it):")
    for e in layers:
        if e["kind"] == "loss":
            lines.append(f"  loss unit {e['layer']}")
            lines.append(f"      hands on   {e['handed_symbol']} = {e['local_text']}")
            lines.append(f"                 = {_vec(e['handed_on'])}")
            continue
        lay = e.get("desc", e["layer"])
        head = (
            f"  {lay} (a function called in forward)"
            if e["name"] == "(function)"
            else f"  layer {e['name']} ({lay})"
            if e["name"]
            else f"  {lay}"
        )
        lines.append(f"{head}, {_unit_word(e)}: {e['formula']}")
        lines.append(f"      receives   {e['upstream_symbol']} = {_vec(e['upstream'])}")
        if e["kind"] == "activation":
            if e["elementwise"]:
                lines.append(
                    f"      local term {e['local_symbol']} = {e['local_text']}   (elementwise)"
                )
                lines.append(f"                 = {_vec(e['local'])}")
                lines.append(
                    f"      hands on   {e['handed_symbol']} = {e['upstream_symbol']}"
                    f" ⊙ {e['local_symbol']} = {_vec(e['handed_on'])}"
                )
            else:
                lines.append(f"      local term {e['local_symbol']}: {e['local_text']}")
                lines.append(
                    f"      hands on   {e['handed_symbol']} = {e['upstream_symbol']}"
                    f" · {e['local_symbol']} = {_vec(e['handed_on'])}"
                )
            continue
        for t in e["terms"]:
            lines.append(
                f"      ∂L/∂{t['symbol']} = {e['upstream_symbol']} · "
                f"{t['chain'][-1]['symbol']} = {t['product_text']}"
                f"   {_shape(t['product'].shape)}"
            )
            lines.append(f"                 = {_vec(t['product'])}")
        if e["kind"] == "layer" and e.get("symbol") == e.get("in_symbol"):
            lines.append(f"      passes {e['upstream_symbol']} on unchanged")
            continue
        if e["handed_on"] is not None:
            via = (
                f"{e['upstream_symbol']} · {e['local_symbol']} = "
                f"{e['upstream_symbol']} · W{_sup(_lin_number(e))}"
                if e["kind"] == "linear" and n_lin > 1
                else f"{e['upstream_symbol']} · {e['local_symbol']}"
            )
            first = e["in_symbol"] == "x"
            lines.append(
                f"      hands on   {e['handed_symbol']} = {via} = "
                f"{_vec(e['handed_on'])}" + ("   (the input: not learned)" if first else "")
            )
    lines.append("")
    lines.append(
        "Chain rule for every parameter (local terms from the loss back), the product "
        "the layer's unit computed,"
    )
    lines.append("the gradient autodiff left in .grad and central differences:")
    for t in terms:
        lines.append(
            f"  {t['parameter']} ({t['symbol']}, {_shape(t['autodiff'].shape)}):  {t['equation']}"
        )
        diff = np.abs(t["product"] - t["autodiff"]).max() if t["product"].size else 0.0
        lines.append(
            f"      product ‖·‖ = {_norm(t['product']):.6g}   autodiff ‖·‖ = "
            f"{_norm(t['autodiff']):.6g}   (max |product − autodiff| {diff:.1e})"
        )
        if t["numeric"] is not None:
            k = len(t["checked"])
            what = (
                f"{k} sampled entries of {t['n_entries']:,}" if t["sampled"] else f"all {k} entries"
            )
            mark = "agree" if t["ok"] else "DISAGREE"
            lines.append(
                f"      central differences on {what}: max |difference| "
                f"{t['max_abs_diff']:.1e} ({mark})"
            )
            # the checked entries with the largest gradients (zeros say little)
            for j in sorted(range(k), key=lambda j_: -abs(t["autodiff_checked"][j_]))[:3]:
                ix = ",".join(str(v) for v in t["checked"][j])
                lines.append(
                    f"        {t['symbol']}[{ix}]: autodiff {_s(t['autodiff_checked'][j])}"
                    f"   central difference {_s(t['numeric'][j])}"
                )
    notes = []
    if ctx["check"] and any(t["sampled"] for t in terms):
        notes.append(
            f"The model has {total:,} parameters (more than {_CHECK_ALL_UP_TO:,}): "
            f"central differences were taken on {_SAMPLED_ENTRIES} sampled entries per "
            "parameter (the largest |gradient| and random others), not on every entry."
        )
    if not ctx["check"]:
        notes.append("Central differences were not computed (check=False).")
    if notes:
        lines.append("")
        lines.extend("Note: " + s for s in notes)

    # --- html -----------------------------------------------------------------------------------
    h = [
        f'<p class="note">{_esc(lines[1])}</p>',
        "<h4>Forward pass</h4>",
        '<table class="cr-forward"><tr><th>#</th><th>unit</th><th>layer</th><th>formula</th>'
        '<th>shape</th><th class="num">values</th></tr>',
    ]
    for r in forward:
        val = _vec(r["output"]) if r["kind"] != "loss" else f"{_s(L)}  (y = {_labels(r['target'])})"
        lay = f"{r['name']} {r['layer']}".strip()
        h.append(
            f'<tr><td>{r["step"]}</td><td class="nw">{_span(r["unit"], r["unit"])}</td>'
            f'<td class="nw">{_esc(lay)}</td><td>{_esc(r["formula"])}</td>'
            f'<td class="num nw">{_esc(_shape(r["shape"]))}</td>'
            f'<td class="num">{_esc(val)}</td></tr>'
        )
    h.append("</table>")
    h.append("<h4>Back-propagation, layer by layer</h4>")
    h.append(
        '<table class="cr-layers"><tr><th>layer</th><th>receives</th><th>local term</th>'
        "<th>gives its parameters</th><th>hands on</th></tr>"
    )
    for e in layers:
        if e["kind"] == "loss":
            h.append(
                f"<tr><td>{_span('loss unit', 'loss unit')} {_esc(e['layer'])}</td>"
                f'<td class="num">∂L/∂L = 1</td><td>{_esc(e["local_text"])}</td><td></td>'
                f'<td class="num">{_esc(e["handed_symbol"])} = '
                f"{_esc(_vec(e['handed_on']))}</td></tr>"
            )
            continue
        unit = {"linear": "linear unit Σ", "activation": "activation σ"}.get(e["kind"], "")
        head = (_span(unit, unit) + " " if unit else "") + _esc(f"{e['name']} {e['layer']}")
        local = f"{_esc(e['local_symbol'])} = {_esc(e['local_text'] or '')}" + (
            f'<br><span class="num">{_esc(_vec(e["local"]))}</span>'
            if e.get("local") is not None
            else ""
        )
        ps = "<br>".join(
            f"∂L/∂{_esc(t['symbol'])} = {_esc(t['product_text'])}<br>"
            f'<span class="num">{_esc(_vec(t["product"]))}</span>'
            for t in e["terms"]
        )
        handed = (
            ""
            if e["handed_on"] is None
            else f'{_esc(e["handed_symbol"])}<br><span class="num">'
            f"{_esc(_vec(e['handed_on']))}</span>"
        )
        h.append(
            f"<tr><td>{head}<br><code>{_esc(e['formula'])}</code></td>"
            f'<td>{_esc(e["upstream_symbol"])}<br><span class="num">'
            f"{_esc(_vec(e['upstream']))}</span></td><td>{local}</td><td>{ps}</td>"
            f"<td>{handed}</td></tr>"
        )
    h.append("</table>")
    h.append("<h4>Chain rule for every parameter</h4>")
    h.append(
        '<table class="cr-terms"><tr><th>parameter</th><th>chain of local terms</th>'
        '<th class="num">‖product‖</th><th class="num">‖autodiff‖</th>'
        "<th>central differences</th></tr>"
    )
    for t in terms:
        eq = f"∂L/∂{_esc(t['symbol'])} = " + " · ".join(
            _span(c["symbol"], c["unit"]) for c in t["chain"]
        )
        if t["numeric"] is not None:
            k = len(t["checked"])
            what = f"{k} sampled of {t['n_entries']:,}" if t["sampled"] else f"all {k}"
            cls = "ok" if t["ok"] else "bad"
            chk = f'<span class="{cls}">{what}: max |diff| {t["max_abs_diff"]:.1e}</span>'
        else:
            chk = "not computed"
        h.append(
            f'<tr><td class="nw"><code>{_esc(t["parameter"])}</code> '
            f"{_esc(_shape(t['autodiff'].shape))}</td><td>{eq}</td>"
            f'<td class="num">{_norm(t["product"]):.6g}</td>'
            f'<td class="num">{_norm(t["autodiff"]):.6g}</td><td>{chk}</td></tr>'
        )
    h.append("</table>")
    for s in notes:
        h.append(f'<p class="note">{_esc(s)}</p>')
    names = {id(xt): "x", id(ctx["loss"]): "L"}
    for r in rows:
        if isinstance(r["out"], Tensor):
            names.setdefault(id(r["out"]), r["sym"])
    return Explanation(
        title=title,
        kind="network",
        forward=forward,
        layers=layers,
        terms=terms,
        loss=L,
        text_lines=lines,
        html_body="\n".join(h),
        notes=notes,
        loss_tensor=ctx["loss"],
        params=params,
        names=names,
    )


def _lin_number(e) -> str:
    """The layer number l of a linear entry, from its output symbol z^l."""
    s = e.get("symbol", "")
    digits = "".join(ch for ch in s if ch in "⁰¹²³⁴⁵⁶⁷⁸⁹")
    back = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
    return digits.translate(back)


def _row_label(r) -> str:
    if r["kind"] == "input":
        return "input"
    if r["kind"] == "loss":
        return f"loss unit ({r['layer']})"
    lay = f"{r['name']} {r['layer']}".strip()
    return f"{r['unit']} ({lay})"


def _unit_word(e) -> str:
    return {"linear": "linear unit Σ", "activation": "activation σ"}.get(e["kind"], "unit")


def _layer_desc(r) -> str:
    m = r["module"]
    if isinstance(m, _Functional):
        return m.unit_name
    if _role(m) == "linear" and hasattr(m, "out_features"):
        return f"{r['kind_name']} {m.in_features}→{m.out_features}"
    return r["kind_name"]


# ------------------------------------------------------------------------------------------------
# the notes' two examples
# ------------------------------------------------------------------------------------------------


def demo(name: str) -> Explanation:
    """Walk through one of the notes' examples: 'llc' (the logistic classifier as one neuron,
    equation 3) or 'composition' (f(x) = x + 2, g(f) = 3f, h(g) = sin(g) at x = 10)."""
    if name == "llc":
        return _demo_llc()
    if name == "composition":
        return _demo_composition()
    raise ChainruleError(f"explain: unknown demo {name!r}; choose 'llc' or 'composition'")


def _demo_llc() -> Explanation:
    from . import nn
    from .examples.llc import llc

    r = llc()  # the example's numbers: x, y, w, w0 (and its own chain-rule values)
    model = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
    with no_grad():
        model[0].weight.data = np.asarray(r["w"], dtype=np.float64).reshape(1, 3)
        model[0].bias.data = np.asarray([r["w0"]], dtype=np.float64)
    expl = explain(model, r["x"][None, :], np.array([[r["y"]]]), nn.BCELoss())
    head = [
        "The notes' logistic linear classifier (LLC) as one neuron, with numbers",
        "(x, y, w and w₀ of chainrule.examples.llc; the loss unit is BCELoss, the "
        "negative log-likelihood)",
        "",
        "",
    ]
    tail = [
        "",
        "Each earlier unit receives the product of the terms after it: the activation σ "
        "receives ∂L/∂a,",
        f"the linear unit Σ receives ∂L/∂a · ∂a/∂z = ∂L/∂z = a − y = {_s(r['a'] - r['y'])}.",
    ]
    expl._text = "\n".join(head) + expl._text + "\n" + "\n".join(tail)
    expl.title = "The notes' LLC as one neuron: ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w"
    return expl


def _demo_composition() -> Explanation:
    from .examples.composition import forward_backward

    start = time.perf_counter()
    x, f, g, h = forward_backward()

    steps = [
        ("f", f, "x", x, "f(x) = x + 2", "df/dx", "1"),
        ("g", g, "f", f, "g(f) = 3f", "dg/df", "3"),
        ("h", h, "g", g, "h(g) = sin(g)", "dh/dg", "cos(g)"),
    ]
    # local terms from the units' own backward (scalars: backward of 1 is the derivative)
    local = {}
    for sym, t, _, inp, _, dsym, _ in steps:
        local[sym] = float(_handed_back(t, np.ones_like(t.data), inp))
    xv, fv, gv, hv = (float(v.data) for v in (x, f, g, h))
    product = local["h"] * local["g"] * local["f"]

    def hx(v):
        with no_grad():
            return float(np.sin(3 * (v + 2)))

    eps = 1e-6
    numeric = (hx(xv + eps) - hx(xv - eps)) / (2 * eps)
    auto = float(x.grad)

    forward = [
        dict(
            step=0,
            kind="input",
            unit="input",
            layer="",
            name="",
            symbol="x",
            formula="x",
            input=None,
            output=np.asarray(xv),
            shape=(),
        )
    ]
    forward.append(
        dict(
            step=1,
            kind="layer",
            unit="add",
            layer="add",
            name="f",
            symbol="f",
            formula=f"f(x) = x + 2:  f({xv:g}) = {xv:g} + 2 = {fv:g}",
            input=np.asarray(xv),
            output=np.asarray(fv),
            shape=(),
        )
    )
    forward.append(
        dict(
            step=2,
            kind="layer",
            unit="mul",
            layer="mul",
            name="g",
            symbol="g",
            formula=f"g(f) = 3f:  g({fv:g}) = 3 · {fv:g} = {gv:g}",
            input=np.asarray(fv),
            output=np.asarray(gv),
            shape=(),
        )
    )
    forward.append(
        dict(
            step=3,
            kind="layer",
            unit="sin",
            layer="sin",
            name="h",
            symbol="h",
            formula=f"h(g) = sin(g):  h({gv:g}) = sin({gv:g}) = {hv:.6f}",
            input=np.asarray(gv),
            output=np.asarray(hv),
            shape=(),
        )
    )
    chain = [
        dict(
            symbol="dh/dg", unit="sin", text=f"cos(g) = cos({gv:g})", value=np.asarray(local["h"])
        ),
        dict(symbol="dg/df", unit="mul", text="3", value=np.asarray(local["g"])),
        dict(symbol="df/dx", unit="add", text="1", value=np.asarray(local["f"])),
    ]
    terms = [
        dict(
            parameter="x",
            layer="",
            symbol="x",
            chain=chain,
            equation="dh/dx = dh/dg · dg/df · df/dx",
            product=np.asarray(product),
            autodiff=np.asarray(auto),
            n_entries=1,
            checked=[()],
            numeric=np.asarray([numeric]),
            autodiff_checked=np.asarray([auto]),
            sampled=False,
            max_abs_diff=abs(auto - numeric),
            ok=abs(auto - numeric) <= _ATOL + _RTOL * abs(numeric),
            by_hand=3 * math.cos(36.0),
        )
    ]
    layers = [
        dict(
            name="h",
            layer="sin",
            kind="layer",
            upstream=np.asarray(1.0),
            upstream_symbol="dh/dh",
            local=np.asarray(local["h"]),
            local_symbol="dh/dg",
            local_text="cos(g)",
            handed_on=np.asarray(g.grad),
            handed_symbol="dh/dg",
            params=[],
        ),
        dict(
            name="g",
            layer="mul",
            kind="layer",
            upstream=np.asarray(g.grad),
            upstream_symbol="dh/dg",
            local=np.asarray(local["g"]),
            local_symbol="dg/df",
            local_text="3",
            handed_on=np.asarray(f.grad),
            handed_symbol="dh/df",
            params=[],
        ),
        dict(
            name="f",
            layer="add",
            kind="layer",
            upstream=np.asarray(f.grad),
            upstream_symbol="dh/df",
            local=np.asarray(local["f"]),
            local_symbol="df/dx",
            local_text="1",
            handed_on=np.asarray(x.grad),
            handed_symbol="dh/dx",
            params=[],
        ),
    ]
    g36 = f"{gv:g}"
    lines = [
        f"The notes' forward pass: f(x) = x + 2, g(f) = 3f, h(g) = sin(g), at x = {xv:g}",
        "",
        "Forward pass (function by function; each output is the next function's input):",
        f"  x = {xv:g}",
        f"  f(x) = x + 2     f({xv:g}) = {xv:g} + 2 = {fv:g}".ljust(50) + "(unit add)",
        f"  g(f) = 3f        g({fv:g}) = 3 · {fv:g} = {gv:g}".ljust(50) + "(unit mul)",
        f"  h(g) = sin(g)    h({g36}) = sin({g36}) = {hv:+.6f}".ljust(50) + "(unit sin)",
        "",
        "Back-propagation (start at h; each unit multiplies in its local derivative and hands "
        "the product back):",
        f"  dh/dg = cos(g) = cos({g36})".ljust(28) + f"= {local['h']:+.6f}     (unit sin)",
        "  dg/df = 3".ljust(28) + f"= {local['g']:+.6f}     (unit mul)",
        "  df/dx = 1".ljust(28) + f"= {local['f']:+.6f}     (unit add)",
        "",
        f"  dh/dx = dh/dg · dg/df · df/dx = cos({g36}) · 3 · 1 = 3cos({g36})",
        f"        = ({local['h']:+.6f}) · ({local['g']:+.6f}) · ({local['f']:+.6f})"
        f" = {product:+.10f}",
        f"  autodiff (x.grad)        {auto:+.10f}",
        f"  by hand 3cos({g36})         {3 * math.cos(36.0):+.10f}",
        f"  central difference       {numeric:+.10f}   (|difference| {abs(auto - numeric):.1e})",
    ]
    hrows = "".join(
        f"<tr><td>{_esc(r['symbol'])}</td><td>{_esc(r['formula'])}</td>"
        f'<td class="num">{_esc(_s(r["output"]))}</td></tr>'
        for r in forward
    )
    trows = "".join(
        f"<tr><td>{_esc(c['symbol'])}</td><td>unit {_esc(c['unit'])}</td>"
        f'<td>{_esc(c["text"])}</td><td class="num">{_esc(_s(c["value"]))}</td></tr>'
        for c in chain
    )
    body = (
        '<h4>Forward pass</h4><table class="cr-forward"><tr><th>value</th><th>function</th>'
        f'<th class="num">number</th></tr>{hrows}</table>'
        '<h4>Back-propagation</h4><table class="cr-terms"><tr><th>term</th><th>unit</th>'
        f'<th>formula</th><th class="num">value</th></tr>{trows}</table>'
        f'<div class="eq">dh/dx = dh/dg · dg/df · df/dx = cos({g36}) · 3 · 1 = 3cos({g36})'
        f" = {product:+.10f}\nautodiff {auto:+.10f}   central difference {numeric:+.10f}"
        "</div>"
    )
    return Explanation(
        title="The notes' composition: h(g(f(x))) = sin(3(x + 2)) at x = 10",
        kind="composition",
        forward=forward,
        layers=layers,
        terms=terms,
        loss=hv,
        text_lines=lines,
        html_body=body,
        loss_tensor=h,
        params=[("x", x)],
        names={id(x): "x", id(f): "f", id(g): "g", id(h): "h"},
        seconds=time.perf_counter() - start,
    )
