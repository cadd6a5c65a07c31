"""Training pictures with matplotlib: curves, the decision boundary, the weights, gradient norms.

Every function returns a ``matplotlib.figure.Figure`` drawn with the Agg canvas (no window, no
pyplot state, no change to the user's matplotlib backend); it is a small subclass that Jupyter
displays as a PNG by itself (no ``%matplotlib inline`` needed). ``to_png`` / ``to_svg`` /
``png_data_uri`` turn a figure into bytes or text for files and for the HTML report.

    from chainrule.viz import plots
    fig = plots.loss_curves(history)          # a History, History.to_dict(), or its 'history' dict
    fig.savefig("curves.png")
    fig = plots.decision_boundary(model, X, y, standardizer=scaler, label_names=["a", "b"])

matplotlib is optional (``pip install 'chainrule[viz]'``); it is imported inside the functions,
so importing this module costs nothing.

Colours follow the TensorFlow Playground: orange for negative values and class 0, blue for
positive values and class 1 (more classes take further colours).
"""

from __future__ import annotations

import base64
import io
import math
import re

import numpy as np

from .._views import provide
from ..metrics import class_probabilities
from ..registry import facts_of

__all__ = [
    "loss_curves",
    "curve_panels",
    "decision_boundary",
    "network_picture",
    "grad_norms",
    "to_png",
    "to_svg",
    "png_data_uri",
    "history_parts",
]

ORANGE = "#f59322"  # Playground: negative, class 0
BLUE = "#0877bd"  # Playground: positive, class 1
CLASS_COLORS = [
    ORANGE,
    BLUE,
    "#2f9e44",
    "#c2255c",
    "#7048e8",
    "#e8590c",
    "#0c8599",
    "#5c940d",
    "#862e9c",
    "#495057",
]
TRAIN_COLOR, VAL_COLOR = "#1c7ed6", "#e8590c"


def _mpl():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "chainrule.viz.plots needs matplotlib: pip install 'chainrule[viz]'"
        ) from None
    return Figure, FigureCanvasAgg


def _figure(width: float, height: float, **kwargs):
    """A figure that also shows itself in Jupyter (``_repr_png_``): see ``viz/_figure.py``."""
    _mpl()  # the friendly error when matplotlib is missing
    from ._figure import new_figure

    return new_figure(width, height, **kwargs)


# ------------------------------------------------------------------------------------------------
# figure -> bytes / text
# ------------------------------------------------------------------------------------------------


def to_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (no metadata text, tight bounding box)."""
    buf = io.BytesIO()
    fig.savefig(
        buf,
        format="png",
        dpi=dpi,
        bbox_inches="tight",
        metadata={"Software": None},
        facecolor="white",
    )
    return buf.getvalue()


def png_data_uri(fig, dpi: int = 100) -> str:
    """``data:image/png;base64,...``: the figure for an ``<img src=...>`` needing no file."""
    return "data:image/png;base64," + base64.b64encode(to_png(fig, dpi)).decode("ascii")


def to_svg(fig) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, no metadata, no URLs."""
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        facecolor="white",
    )
    s = buf.getvalue()
    s = s[s.index("<svg") :]
    s = re.sub(r"<metadata>.*?</metadata>", "", s, flags=re.S)
    s = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", s)
    return s


# ------------------------------------------------------------------------------------------------
# history
# ------------------------------------------------------------------------------------------------


def history_parts(history):
    """(epochs, per-epoch numbers, gradient norms, best epoch) from any form of a history.

    Accepts a :class:`chainrule.train.History`, its ``to_dict()``, or a plain dict of lists
    such as ``History.history``.
    """
    if history is None:
        return [], {}, {}, None
    if hasattr(history, "history") and hasattr(history, "grad_norms"):
        hist, gn = dict(history.history), dict(history.grad_norms)
        epochs, best = list(history.epochs), history.best_epoch
    elif isinstance(history, dict) and isinstance(history.get("history"), dict):
        hist = dict(history["history"])
        gn = dict(history.get("grad_norms") or {})
        epochs, best = list(history.get("epochs") or []), history.get("best_epoch")
    elif isinstance(history, dict):
        hist = {
            k: v
            for k, v in history.items()
            if isinstance(v, (list, tuple, np.ndarray)) and k != "epochs"
        }
        gn = (
            dict(history.get("grad_norms") or {})
            if isinstance(history.get("grad_norms"), dict)
            else {}
        )
        hist.pop("grad_norms", None)
        epochs, best = list(history.get("epochs") or []), history.get("best_epoch")
    else:
        raise TypeError(f"plots: cannot read a history from {type(history).__name__}")
    hist = {k: [float(x) if x is not None else math.nan for x in v] for k, v in hist.items()}
    n = max((len(v) for v in hist.values()), default=0)
    if len(epochs) != n:
        epochs = list(range(1, n + 1))
    return epochs, hist, gn, best


def _metric_names(hist) -> list:
    names = []
    for k in hist:
        base = k[4:] if k.startswith("val_") else k
        if base in ("loss", "lr") or base in names:
            continue
        names.append(base)
    return names


def curve_panels(history) -> list:
    """The panels :func:`loss_curves` draws: 'loss', each metric, and 'lr' when it changed."""
    _, hist, _, _ = history_parts(history)
    panels = ["loss"] + _metric_names(hist)
    lr = hist.get("lr")
    if lr and len(set(lr)) > 1:
        panels.append("lr")
    return panels


def loss_curves(history, title: str | None = None, axes=None, xlabel: str = "epoch"):
    """Loss and metric curves over the epochs, training (solid) and validation (dashed).

    One panel for the loss, one per metric (accuracy, r2, ...) and one for the learning rate
    when it changed. The best epoch (early stopping) is marked with a dotted line. ``axes``
    (one per panel of :func:`curve_panels`) draws into an existing figure instead of a new one;
    ``xlabel`` names the horizontal axis (a plain list of losses per step: ``xlabel="step"``).
    """
    epochs, hist, _, best = history_parts(history)
    if not hist:
        raise ValueError("loss_curves: the history is empty")
    panels = curve_panels(history)
    ncol = len(panels)
    own = axes is None
    if own:
        fig = _figure(max(4.6, 4.1 * ncol), 3.3)
        axes = fig.subplots(1, ncol, squeeze=False)[0]
    else:
        axes = list(axes)
        if len(axes) < ncol:
            raise ValueError(
                f"loss_curves: needs {ncol} axes ({', '.join(panels)}), got {len(axes)}"
            )
        fig = axes[0].figure
    for ax, key in zip(axes, panels, strict=False):
        tr = hist.get(key)
        va = hist.get("val_" + key)
        if tr:
            ax.plot(epochs[: len(tr)], tr, color=TRAIN_COLOR, lw=1.8, label="training")
        if va:
            ax.plot(epochs[: len(va)], va, color=VAL_COLOR, lw=1.8, ls="--", label="validation")
        if best:
            ax.axvline(best, color="#868e96", lw=1, ls=":", label=f"best epoch {best}")
        ax.set_xlabel(xlabel)
        ax.set_title({"lr": "learning rate"}.get(key, key))
        if key == "loss" and tr and min(v for v in tr if v == v) > 0:
            vals = [v for v in (tr + (va or [])) if v == v and v > 0]
            if vals and max(vals) / min(vals) > 30:
                ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if tr or va:
            ax.legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    if own:
        fig.tight_layout()
    return fig


def grad_norms(history, title: str | None = None):
    """Per-parameter gradient L2 norms over the epochs (log scale): one colour per layer,
    weights solid and biases dashed. Vanishing or exploding gradients show up at a glance."""
    epochs, _, gn, _ = history_parts(history)
    gn = {k: v for k, v in gn.items() if v}
    if not gn:
        raise ValueError(
            "grad_norms: no gradient norms in the history (train with "
            "fit(..., track_grad_norms=True))"
        )
    fig = _figure(6.8, 3.6)
    ax = fig.subplots()
    layers = []
    for name in gn:
        layer = name.rsplit(".", 1)[0] if "." in name else name
        if layer not in layers:
            layers.append(layer)
    positive = True
    for name, values in gn.items():
        layer = name.rsplit(".", 1)[0] if "." in name else name
        color = CLASS_COLORS[(layers.index(layer) + 1) % len(CLASS_COLORS)]
        ls = "--" if name.endswith("bias") else "-"
        vals = [float(v) for v in values]
        positive &= all(v > 0 for v in vals)
        ax.plot(
            range(1, len(vals) + 1) if len(epochs) != len(vals) else epochs,
            vals,
            color=color,
            ls=ls,
            lw=1.6,
            label=name,
        )
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean ‖∂L/∂θ‖ per batch")
    ax.set_title(title or "gradient norm of each parameter")
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=8,
        frameon=False,
        ncol=2 if len(gn) > 6 else 1,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
    )
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# the decision boundary (Playground style)
# ------------------------------------------------------------------------------------------------


def _rgb(hex_color) -> np.ndarray:
    h = hex_color.lstrip("#")
    return np.array([int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)])


def _guess_kind(model, out: np.ndarray) -> str:
    if out.ndim == 2 and out.shape[1] > 1:
        return "logits"
    last = None
    for m in getattr(model, "modules", lambda: [])():
        last = m
    return "probability" if facts_of(last).output_kind == "probability" else "logit"


_probabilities = class_probabilities  # (n, k) class probabilities, None for regression values


def _plane_grid(X, resolution):
    """(lo, hi, GX, GY, grid): the features' range with an 8% margin, and a resolution x
    resolution grid over it (``grid`` holds its points as rows)."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    gx = np.linspace(lo[0], hi[0], resolution)
    gy = np.linspace(lo[1], hi[1], resolution)
    GX, GY = np.meshgrid(gx, gy)
    return lo, hi, GX, GY, np.column_stack([GX.ravel(), GY.ravel()])


def _draw_values(ax, fig, out, shape, X, y, extent):
    """Regression: the predicted value as the background, orange (low) to blue (high)."""
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("playground", [ORANGE, "#ffffff", BLUE])
    val = np.asarray(out, dtype=np.float64).reshape(len(out), -1)[:, 0].reshape(shape)
    im = ax.imshow(val, origin="lower", extent=extent, aspect="auto", cmap=cmap, alpha=0.75)
    fig.colorbar(im, ax=ax, shrink=0.8, label="prediction")
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y.astype(np.float64),
        cmap=cmap,
        s=16,
        edgecolors="white",
        linewidths=0.6,
    )


def _draw_classes(ax, probs, GX, GY, X, y, label_names, extent):
    """Classification: each class's colour, pale where the model is unsure, the line where the
    predicted class changes, and the points coloured by their class."""
    k = probs.shape[1]
    colors = np.array([_rgb(CLASS_COLORS[i % len(CLASS_COLORS)]) for i in range(k)])
    if k == 2:
        p1 = probs[:, 1]
        # Playground: white when undecided, full colour when sure
        strength = np.abs(2 * p1 - 1)[:, None]
        base = np.where((p1 >= 0.5)[:, None], colors[1], colors[0])
    else:
        strength = ((probs.max(axis=1) - 1 / k) / (1 - 1 / k))[:, None]
        base = probs @ colors
    light = 1 - 0.62 * strength * (1 - base)  # keep it pale so the points stand out
    img = (light).reshape(GX.shape + (3,))
    ax.imshow(
        np.clip(img, 0, 1),
        origin="lower",
        extent=extent,
        aspect="auto",
        interpolation="bilinear",
    )
    pred = probs.argmax(axis=1).reshape(GX.shape)
    if len(np.unique(pred)) > 1:
        ax.contour(GX, GY, pred, levels=np.arange(k) + 0.5, colors="#212529", linewidths=0.9)
    yi = y.astype(np.int64) if y.dtype.kind in "biuf" else np.zeros(len(y), dtype=int)
    for c in np.unique(yi):
        sel = yi == c
        name = (
            label_names[c]
            if label_names is not None and 0 <= c < len(label_names)
            else f"class {c}"
        )
        ax.scatter(
            X[sel, 0],
            X[sel, 1],
            s=16,
            color=CLASS_COLORS[int(c) % len(CLASS_COLORS)],
            edgecolors="white",
            linewidths=0.6,
            label=str(name),
        )
    ax.legend(fontsize=8, loc="upper right", framealpha=0.85)


def decision_boundary(
    model,
    X,
    y,
    standardizer=None,
    label_names=None,
    output_kind=None,
    feature_names=None,
    resolution: int = 160,
    title: str | None = None,
    ax=None,
):
    """The model's prediction over the plane of two features, with the data on top.

    Parameters
    ----------
    model : Module
        Takes (n, 2) standardized features.
    X : ndarray of shape (n, 2)
        The raw features (the plot's axes are in their units).
    y : ndarray of shape (n,)
        Class indices (classification) or values (regression).
    standardizer : Standardizer or dict, optional
        Applied to the grid and the points before they reach the model (as in training).
    label_names : list of str, optional
    output_kind : 'logits' | 'logit' | 'probability' | 'value', optional
        How to read the outputs (guessed from their shape and a final Sigmoid when not given).
    feature_names : two str, optional
    ax : matplotlib Axes, optional
        Draw into this panel of an existing figure (returned) instead of a new figure.

    Colours: background from orange (class 0) through white (undecided) to blue (class 1), as the
    TensorFlow Playground; with more classes, each class's colour weighted by its probability.
    The thin black line is where the predicted class changes.
    """
    from ..train import predict

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary: needs exactly 2 features, got X of shape {X.shape}")
    y = np.asarray(y).reshape(-1)
    if standardizer is not None and isinstance(standardizer, dict):
        from ..data import Standardizer

        standardizer = Standardizer.from_dict(standardizer)
    lo, hi, GX, GY, grid = _plane_grid(X, resolution)
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    feed = standardizer.transform(grid) if standardizer is not None else grid
    out = predict(model, np.asarray(feed, dtype=dtype))
    kind = output_kind or _guess_kind(model, out)
    probs = _probabilities(out, kind)

    own = ax is None
    if own:
        fig = _figure(5.4, 4.8)
        ax = fig.subplots()
    else:
        fig = ax.figure
    extent = (lo[0], hi[0], lo[1], hi[1])
    if probs is None:
        _draw_values(ax, fig, out, GX.shape, X, y, extent)
    else:
        _draw_classes(ax, probs, GX, GY, X, y, label_names, extent)
    names = list(feature_names) if feature_names is not None else ["x₁", "x₂"]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title or "decision boundary (background: the model; dots: the data)", fontsize=10)
    if own:
        fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# the network as neurons and weighted edges
# ------------------------------------------------------------------------------------------------


def _linear_layers(model):
    """[(linear module, the activation name after it or '')] in forward order (the layers in
    between that leave the neurons as they are, such as Dropout or BatchNorm, are skipped)."""
    from ..nn.module import leaf_modules

    mods = [m for _, m in leaf_modules(model)]
    out = []
    for i, m in enumerate(mods):
        if facts_of(m).role == "linear" and hasattr(m, "out_features"):
            act = ""
            for nxt in mods[i + 1 :]:
                role = facts_of(nxt).role
                if role == "linear":
                    break
                if role not in ("passthrough", "normalization"):
                    act = type(nxt).__name__
                    break
            out.append((m, act))
    return out


def _shown(importance: np.ndarray, cap: int) -> np.ndarray:
    """Indices of the neurons to draw: all when few, else the ``cap`` most important, in order."""
    n = len(importance)
    if n <= cap:
        return np.arange(n)
    return np.sort(np.argsort(-importance, kind="stable")[:cap])


def _importance(Ws, sizes) -> list:
    """Each neuron's importance per column: summed |weight| of its incoming and outgoing edges."""
    imp = []
    for li, n in enumerate(sizes):
        v = np.zeros(n)
        if li > 0:
            v += np.abs(Ws[li - 1]).sum(axis=1)
        if li < len(Ws):
            v += np.abs(Ws[li]).sum(axis=0)
        imp.append(v)
    return imp


def _draw_weights(ax, Ws, shown, pos_col, max_edges):
    """The edges between each pair of columns: the ``max_edges`` strongest, coloured by sign,
    wider and more opaque with |weight| (relative to the layer's largest)."""
    from matplotlib.collections import LineCollection

    blue, orange = _rgb(BLUE), _rgb(ORANGE)
    for li, W in enumerate(Ws):
        src, dst = shown[li], shown[li + 1]
        sub = W[np.ix_(dst, src)]  # (out shown, in shown)
        scale = np.abs(W).max() or 1.0
        flat = np.abs(sub).ravel()
        order = np.argsort(-flat, kind="stable")[:max_edges]
        segs, cols, widths = [], [], []
        for f in order[::-1]:  # strongest drawn last (on top)
            o, i = divmod(int(f), len(src))
            w = sub[o, i]
            r = abs(w) / scale
            segs.append([pos_col[li][int(src[i])], pos_col[li + 1][int(dst[o])]])
            c = blue if w >= 0 else orange
            cols.append((*c, 0.15 + 0.75 * r))
            widths.append(0.3 + 3.2 * r)
        ax.add_collection(LineCollection(segs, colors=cols, linewidths=widths, zorder=1))


def _neuron_faces(b, shown_idx) -> np.ndarray:
    """A column's fill colours: its bias as blue (positive) or orange (negative), grey without."""
    blue, orange = _rgb(BLUE), _rgb(ORANGE)
    faces = []
    for idx in shown_idx:
        if b is None:
            faces.append(_rgb("#e9ecef"))
        else:
            bscale = np.abs(b).max() or 1.0
            r = min(1.0, abs(b[idx]) / bscale)
            base = blue if b[idx] >= 0 else orange
            faces.append(1 - 0.8 * r * (1 - base))
    return np.array(faces)


def _name_neurons(ax, points, shown_idx, names, dx, ha):
    """Write ``names[idx]`` beside each shown neuron (left of the inputs, right of the outputs)."""
    for j, idx in enumerate(shown_idx):
        ax.text(points[j][0] + dx, points[j][1], str(names[idx]), ha=ha, va="center", fontsize=7)


def _column_notes(ax, x, top, head, n_shown, size):
    """A column's heading above it and, when neurons are hidden, how many are shown below it."""
    ax.text(x, top + 0.8, head, ha="center", va="bottom", fontsize=8)
    if n_shown < size:
        ax.text(
            x,
            -top - 0.8,
            f"{n_shown} of {size} shown",
            ha="center",
            va="top",
            fontsize=7,
            color="#495057",
        )


def network_picture(
    model,
    max_neurons: int = 16,
    max_edges: int = 400,
    feature_names=None,
    label_names=None,
    title: str | None = None,
):
    """The network drawn as neurons (circles) and weights (edges).

    Edge colour is the weight's sign (blue positive, orange negative, as the Playground) and its
    width and opacity grow with |weight| (relative to the largest in that layer). A neuron's fill
    shows its bias the same way. Layers wider than ``max_neurons`` show their most connected
    neurons (largest summed |weight| in and out) with a note of how many are hidden; at most
    ``max_edges`` of the strongest edges are drawn between two layers.
    """
    layers = _linear_layers(model)
    if not layers:
        raise ValueError("network_picture: the model has no Linear layers to draw")
    Ws = [np.asarray(m.weight.data, dtype=np.float64) for m, _ in layers]
    bs = [None if m.bias is None else np.asarray(m.bias.data, dtype=np.float64) for m, _ in layers]
    sizes = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    imp = _importance(Ws, sizes)
    shown = [_shown(imp[li], max_neurons) for li in range(len(sizes))]
    n_cols = len(sizes)
    tall = max(len(s) for s in shown)
    gap = max(2.5, 0.55 * tall)  # horizontal distance between layers
    fig = _figure(max(5.0, 1.7 * n_cols + 1.6), max(3.4, 0.3 * tall + 1.8))
    ax = fig.subplots()
    ax.set_axis_off()
    pos = []
    for li, s in enumerate(shown):
        k = len(s)
        ys = (np.arange(k) - (k - 1) / 2)[::-1]
        pos.append(np.column_stack([np.full(k, float(li) * gap), ys]))
    pos_col = [{int(idx): pos[li][j] for j, idx in enumerate(shown[li])} for li in range(n_cols)]
    _draw_weights(ax, Ws, shown, pos_col, max_edges)
    size = 110 if tall <= 16 else 60
    off = 0.035 * gap + 0.25  # how far a neuron's name sits from its centre
    for li in range(n_cols):
        faces = _neuron_faces(bs[li - 1] if li > 0 else None, shown[li])
        ax.scatter(
            pos[li][:, 0],
            pos[li][:, 1],
            s=size,
            c=faces,
            edgecolors="#343a40",
            linewidths=0.8,
            zorder=3,
        )
        if li == 0 and feature_names is not None and len(shown[0]) <= 16:
            _name_neurons(ax, pos[0], shown[0], feature_names, -off, "right")
        if li == n_cols - 1 and label_names is not None and len(label_names) == sizes[-1]:
            _name_neurons(ax, pos[li], shown[li], label_names, off, "left")
        if li == 0:
            head = f"input\n{sizes[0]}"
        else:
            act = layers[li - 1][1]
            head = f"Linear {sizes[li]}" + (f"\n+ {act}" if act else "\n(output)")
        _column_notes(ax, pos[li][0][0], (len(shown[li]) - 1) / 2, head, len(shown[li]), sizes[li])
    ax.set_xlim(-0.45 * gap - 0.8, gap * (n_cols - 1) + 0.45 * gap + 0.8)
    ax.set_ylim(-tall / 2 - 1.3, tall / 2 + 1.7)
    ax.set_title(title or "weights: blue positive, orange negative, width ∝ |w|", fontsize=10)
    fig.tight_layout()
    return fig


provide("loss_curves", loss_curves)  # History.plot() asks chainrule._views for it
