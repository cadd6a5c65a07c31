"""Draw the recorded graph behind a tensor: units in a row, values forward, gradients back.

``graph(loss)`` walks the record that the forward pass left behind (each tensor's ``_ctx``: the
unit that made it and that unit's inputs) and draws it the way the course notes draw a neuron:
leaves (parameters and inputs) on the left, one box per unit application, the loss on the right.
Each box shows the unit's name, the output's shape and its forward value; after ``backward()`` it
also shows the gradient ∂L/∂· that back-propagation delivered there.

- Solid grey arrows point **forward** (input → unit): the forward pass, values.
- Dashed orange arrows point **backward** (unit → input): back-propagation, each unit handing
  the chain-rule product on to its inputs.

The picture is plain SVG made in pure Python (no Graphviz needed): a layered layout, one column
per depth from the leaves to the loss, with a few barycenter sweeps to reduce crossings and a
least-squares placement that keeps arrows short and straight. Graphviz DOT text is available too
(:meth:`Graph.to_dot`), and ``layout="dot"`` uses the ``dot`` binary when it is installed.

Nothing here imports matplotlib; numpy and the standard library suffice.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from .._files import write_atomic
from ..errors import ChainruleError
from ..tensor import Tensor, _backprop, _freed_error, _is_freed

__all__ = ["graph", "Graph"]

_SMALL = 4  # tensors with at most this many elements show every number
_EDGE_LABEL_NODES = 40  # gradient numbers are written on backward arrows only in graphs this small
_IDS = itertools.count(1)

# ------------------------------------------------------------------------------------------------
# style
# ------------------------------------------------------------------------------------------------

_MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
_SANS = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
_FWD = "#495057"  # forward arrows: values
_BWD = "#e8590c"  # backward arrows and gradient numbers: ∂L/∂·
_ROLE_STYLE = {  # fill, stroke, stroke width
    "intermediate": ("#e7f0fb", "#3b6ea8", 1.2),
    "loss": ("#fdecea", "#c92a2a", 2.6),
    "output": ("#fdecea", "#c92a2a", 2.6),
    "parameter": ("#fff4dd", "#c77c0e", 1.2),
    "input": ("#f1f3f5", "#6c757d", 1.2),
    "constant": ("#f8f9fa", "#adb5bd", 1.0),
    "more": ("#ffffff", "#adb5bd", 1.0),
}
_HEAD_PX, _LINE_PX = 18, 15  # line heights: header, other lines
_HEAD_CHAR, _MONO_CHAR = 7.9, 6.9  # generous average glyph widths (13px bold sans, 11.5px mono)
_PAD_X, _PAD_Y = 10, 7
_COL_GAP, _ROW_GAP, _DUMMY_GAP = 64, 20, 8
_MARGIN = 16


# ------------------------------------------------------------------------------------------------
# text helpers
# ------------------------------------------------------------------------------------------------


def _xml(text) -> str:
    """Escape text for XML content and double-quoted attributes; drop characters XML forbids."""
    s = str(text)
    if any(ord(c) < 32 and c not in "\t\n\r" for c in s):
        s = "".join(c for c in s if ord(c) >= 32 or c in "\t\n\r")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _dot_str(text) -> str:
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return s.replace("\n", "\\l") + ("\\l" if "\n" in s else "")


def _num(x, integer=False, digits=4) -> str:
    if integer:
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    s = f"{x:.{digits}g}"
    return "0" if s == "-0" else s


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _summary(a):
    """(lines, one-line text, stats) describing an array: every number when small, else stats."""
    a = np.asarray(a)
    if a.dtype.kind == "c":
        a = np.abs(a)
    if a.dtype.kind not in "biuf":
        return [f"{a.dtype} array"], f"{a.dtype} array", None
    integer = a.dtype.kind in "biu"
    if a.size == 0:
        return ["empty"], "empty", None
    if a.size <= _SMALL:
        vals = [_num(v, integer) for v in a.ravel().tolist()]
        text = vals[0] if a.ndim == 0 else "[" + ", ".join(vals) + "]"
        return [text], text, None
    with np.errstate(all="ignore"):
        af = a.astype(np.float64) if integer else a
        stats = {
            "mean": float(af.mean(dtype=np.float64)),
            "std": float(af.std(dtype=np.float64)),
            "min": float(a.min()),
            "max": float(a.max()),
        }
    lines = [
        f"mean {_num(stats['mean'])}  std {_num(stats['std'])}",
        f"min {_num(stats['min'], integer)}  max {_num(stats['max'], integer)}",
    ]
    return lines, "  ".join(lines), stats


def _const_text(c) -> str:
    """How a constant input (a number or an array that is not a tensor) reads inside a label."""
    if isinstance(c, (bool, int, float, np.number, np.bool_)):
        return _num(c, isinstance(c, (bool, int, np.integer, np.bool_)), digits=8)
    a = np.asarray(c) if isinstance(c, (np.ndarray, list, tuple)) else None
    if a is None:
        return type(c).__name__
    if a.size <= _SMALL and a.dtype.kind in "biuf":
        return _summary(a)[1]
    return f"{a.dtype}{_shape_text(a.shape)}"


# ------------------------------------------------------------------------------------------------
# the result
# ------------------------------------------------------------------------------------------------


class Graph:
    """The drawn record behind a tensor.

    Attributes
    ----------
    nodes : list of dict
        One per unit application, leaf, constant (when drawn) or elision marker, with keys
        ``id`` ("n0", …), ``kind`` ('unit' | 'leaf' | 'constant' | 'more'), ``role``
        ('loss' | 'output' | 'intermediate' | 'parameter' | 'input' | 'constant' | 'more'),
        ``unit`` (the unit's name, None for a leaf), ``name``, ``title``, ``label`` (every line
        of the box, joined by newlines), ``shape``, ``dtype``, ``value`` and ``stats`` (the
        forward value: the numbers, or mean/std/min/max), ``grad`` and ``grad_stats`` (∂L/∂·,
        None where unknown), ``grad_from`` ('stored': the tensor's ``.grad``; 'computed': a
        walk of the record for intermediate tensors), ``requires_grad``, ``collapsed`` (the unit
        names merged into a 'linear' box), ``layer`` and the box geometry ``x``, ``y`` (centre),
        ``width``, ``height``.
    edges : list of dict
        One per forward arrow, ``source`` → ``target`` (node ids), ``arg`` (which input of the
        unit), ``backward`` (True when a gradient flows back along it) and ``grad`` (the
        chain-rule product that unit handed back to that input, when computed, else None).
    svg : str
        The picture (an ``<svg>`` element, no XML declaration).
    truncated : bool
        True when ``max_nodes`` cut the drawing; ``total_nodes`` says how many the record had.
    elapsed : float
        Seconds taken to build the graph and the picture.
    """

    def __init__(self, nodes, edges, svg, title, truncated, total_nodes, root_id, elapsed):
        self.nodes = nodes
        self.edges = edges
        self.svg = svg
        self.title = title
        self.truncated = truncated
        self.total_nodes = total_nodes
        self.root = root_id
        self.elapsed = elapsed

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        cut = f", truncated from {self.total_nodes}" if self.truncated else ""
        return f"<Graph: {len(self.nodes)} nodes, {len(self.edges)} edges{cut}>"

    def node(self, key) -> dict:
        """The node with this id ("n3"), name or title (first match); KeyError if none."""
        if key is None:
            raise KeyError("graph: node() needs an id, a name or a title, got None")
        for n in self.nodes:
            if key in (n["id"], n["name"], n["title"]):
                return n
        raise KeyError(f"graph: no node with id, name or title {key!r}")

    def save(self, path) -> Path:
        """Write the picture: ``.svg`` (the drawing), ``.html`` (a page around it) or ``.dot``."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".svg":
            text = '<?xml version="1.0" encoding="UTF-8"?>\n' + self.svg + "\n"
        elif suffix in (".html", ".htm"):
            head = _xml(self.title or "chainrule graph")
            text = (
                '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f"<title>{head}</title>\n<style>body{{margin:16px;font-family:{_SANS};}}"
                "</style>\n</head>\n<body>\n" + self.svg + "\n</body>\n</html>\n"
            )
        elif suffix == ".dot" or suffix == ".gv":
            text = self.to_dot()
        else:
            raise ValueError(
                f"Graph.save: unknown file type {path.suffix!r} in {str(path)!r}; "
                "use .svg, .html or .dot"
            )
        write_atomic(path, text)  # all or nothing, as every writer of the package
        return path

    def to_dot(self) -> str:
        """Graphviz DOT text of the same graph (forward edges solid, backward edges dashed)."""
        out = [
            "digraph chainrule {",
            "  rankdir=LR;",
            '  bgcolor="white";',
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
            f'  edge [color="{_FWD}", arrowsize=0.7];',
        ]
        if self.title:
            out.append(f'  label="{_dot_str(self.title)}"; labelloc=t;')
        for n in self.nodes:
            fill, stroke, width = _ROLE_STYLE[n["role"]]
            extra = ', style="rounded,dashed"' if n["kind"] == "more" else ""
            out.append(
                f'  {n["id"]} [label="{_dot_str(n["label"])}", fillcolor="{fill}", '
                f'color="{stroke}", penwidth={width}{extra}];'
            )
        for e in self.edges:
            out.append(f"  {e['source']} -> {e['target']};")
        for e in self.edges:
            if e["backward"]:
                lab = f', label="{_dot_str(e["grad"])}"' if e["grad"] else ""
                out.append(
                    f'  {e["target"]} -> {e["source"]} [style=dashed, color="{_BWD}", '
                    f'fontcolor="{_BWD}", constraint=false{lab}];'
                )
        out.append("}")
        return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------
# walking the record
# ------------------------------------------------------------------------------------------------


def _walk(root: Tensor):
    """Every tensor behind ``root``, nearest first (breadth-first, iterative), and use counts."""
    order = [root]
    seen = {id(root)}
    uses: dict[int, int] = {}
    i = 0
    while i < len(order):
        ctx = order[i]._ctx
        if _is_freed(order[i]):  # backward() freed the record: nothing left to draw
            raise _freed_error(order[i], traced=True)
        i += 1
        if ctx is None:
            continue
        for inp in ctx.inputs:
            if isinstance(inp, Tensor):
                k = id(inp)
                uses[k] = uses.get(k, 0) + 1
                if k not in seen:
                    seen.add(k)
                    order.append(inp)
    return order, uses


def _intermediate_grads(root: Tensor):
    """∂root/∂t for every tensor t behind a scalar ``root``, and each unit's hand-back per input.

    Back-propagation's own walk (``tensor._backprop``) in tracing mode: every unit's backward
    runs exactly as in ``backward()``, but nothing is stored on the tensors (no ``.grad``
    changes).
    """
    trace: dict = {}
    try:
        _backprop(root, np.ones_like(root.data), trace=trace)
    except Exception as err:  # a unit that freed what its backward needs, say
        raise ChainruleError(
            f"graph: cannot recompute intermediate gradients: a unit's backward failed "
            f"({type(err).__name__}: {err}); pass all_grads=False"
        ) from err
    return trace["grads"], trace["handed"]


def _name_map(names, params):
    out: dict[int, str] = {}
    if params is not None:
        if hasattr(params, "named_parameters"):
            params = params.named_parameters()
        for pair in params:
            ok = isinstance(pair, (tuple, list)) and len(pair) == 2
            if not ok or not isinstance(pair[1], Tensor):
                raise TypeError(
                    "graph: params= takes an iterable of (name, tensor) pairs, such "
                    "as model.named_parameters(); got an item of type "
                    f"{type(pair).__name__}"
                )
            pname, t = pair
            out[id(t)] = str(pname)
    if names is not None:
        for k, v in dict(names).items():
            if isinstance(k, str) and isinstance(v, Tensor):  # {"w": w} reads naturally too
                k, v = v, k
            if isinstance(k, Tensor):
                out[id(k)] = str(v)
            elif isinstance(k, (int, np.integer)):
                out[int(k)] = str(v)
            else:
                raise TypeError(
                    "graph: names= maps tensors (or id(tensor)) to strings; got a "
                    f"key of type {type(k).__name__}"
                )
    return out


# ------------------------------------------------------------------------------------------------
# layout: layers, crossing reduction, coordinates
# ------------------------------------------------------------------------------------------------


def _count_crossings(layers, succ_adj, pos) -> int:
    total = 0
    for col in range(len(layers) - 1):
        pairs = []
        nxt = layers[col + 1]
        nxt_set = set(nxt)
        for v in layers[col]:
            pv = pos[v]
            for w in succ_adj[v]:
                if w in nxt_set:
                    pairs.append((pv, pos[w]))
        if len(pairs) < 2:
            continue
        pairs.sort()
        # count inversions among the targets with a Fenwick tree
        size = len(nxt) + 1
        tree = [0] * (size + 1)

        for seen, (_, q) in enumerate(pairs):
            i = q + 1
            le = 0
            while i > 0:
                le += tree[i]
                i -= i & -i
            total += seen - le
            i = q + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
    return total


def _isotonic(desired, seps, weights):
    """Positions y_i close to ``desired`` (weighted least squares) with y_{i+1} - y_i >= seps[i].

    Pool-adjacent-violators on y_i - (the sum of the separations above i): O(n).
    """
    n = len(desired)
    offs = [0.0] * n
    for i in range(1, n):
        offs[i] = offs[i - 1] + seps[i - 1]
    blocks = []  # [weighted sum, weight, count]
    for i in range(n):
        w = weights[i]
        blocks.append([(desired[i] - offs[i]) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] > blocks[-1][0] * blocks[-2][1]:
            s, w, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += w
            blocks[-1][2] += c
    out = []
    for s, w, c in blocks:
        out.extend([s / w] * c)
    return [z + o for z, o in zip(out, offs, strict=True)]


def _assign_layers(n_real, preds, succs) -> list:
    """A column per node: units as soon as their inputs allow; sources (leaves) just before
    their first use."""
    layer = [0] * n_real
    indeg = [len(p) for p in preds]
    queue = [v for v in range(n_real) if indeg[v] == 0]
    topo = []
    while queue:
        v = queue.pop()
        topo.append(v)
        for w in succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                queue.append(w)
    for v in topo:
        if preds[v]:
            layer[v] = 1 + max(layer[u] for u in preds[v])
    for v in topo:
        if not preds[v] and succs[v]:
            layer[v] = max(0, min(layer[w] for w in succs[v]) - 1)
    return layer


class _SplitGraph:
    """The graph with every edge that skips columns split by dummy vertices, one per skipped
    column. Edges from one source share their dummies (one "bus" per source, branching off
    where each consumer sits), so a tensor used by many later units draws one line, not a
    cable. Past a budget, long edges go direct. Vertices below ``n_real`` are the real nodes.
    """

    def __init__(self, n_real, sizes, edge_list, layer):
        budget = 2000 + 3 * n_real
        self.n_real = n_real
        self.vlayer = list(layer)
        self.vsize = list(sizes)
        self.adj_s: list = [list() for _ in range(n_real)]  # successors in the split graph
        self.adj_p: list = [list() for _ in range(n_real)]
        linked: set = set()
        bus: dict[tuple, int] = {}
        self.chains: list = [None] * len(edge_list)
        for e in sorted(
            range(len(edge_list)), key=lambda e: layer[edge_list[e][1]] - layer[edge_list[e][0]]
        ):
            s, t = edge_list[e]
            chain = []
            if layer[t] - layer[s] > 1:
                new = sum(1 for col in range(layer[s] + 1, layer[t]) if (s, col) not in bus)
                if new <= budget:
                    budget -= new
                    chain = [self._dummy(bus, s, col) for col in range(layer[s] + 1, layer[t])]
            path = [s] + chain + [t]
            for a, b in zip(path, path[1:], strict=False):
                if (a, b) not in linked:
                    linked.add((a, b))
                    self.adj_s[a].append(b)
                    self.adj_p[b].append(a)
            self.chains[e] = chain
        self.nv = len(self.vlayer)

    def _dummy(self, bus, s, col) -> int:
        """The dummy vertex of source ``s``'s bus in column ``col`` (made on first use)."""
        d = bus.get((s, col))
        if d is None:
            d = bus[(s, col)] = len(self.vlayer)
            self.vlayer.append(col)
            self.vsize.append((0.0, 4.0))
            self.adj_s.append([])
            self.adj_p.append([])
        return d


def _order_columns(sg, n_layers, edge_list, order_key) -> list:
    """Each column's vertices top to bottom: the order key (depth-first from the root; dummies
    follow their source), then up to six pairs of barycenter sweeps keeping the order with the
    fewest crossings."""
    nv = sg.nv
    key = list(order_key) + [0.0] * (nv - sg.n_real)
    for e, chain in enumerate(sg.chains):
        for d in chain:
            key[d] = order_key[edge_list[e][0]]
    layers: list = [[] for _ in range(n_layers)]
    for v in range(nv):
        layers[sg.vlayer[v]].append(v)
    for L in layers:
        L.sort(key=lambda v: key[v])

    pos = [0] * nv
    posn = [0.0] * nv

    def refresh(L):
        m = len(L)
        for i, v in enumerate(L):
            pos[v] = i
            posn[v] = (i + 0.5) / m

    for L in layers:
        refresh(L)
    best = [list(L) for L in layers]
    best_c = _count_crossings(layers, sg.adj_s, pos)
    for _ in range(6):
        if best_c == 0:
            break
        for direction in (1, -1):
            rng = range(1, n_layers) if direction == 1 else range(n_layers - 2, -1, -1)
            nbrs = sg.adj_p if direction == 1 else sg.adj_s
            for col in rng:
                L = layers[col]
                keys = {}
                for v in L:
                    nb = nbrs[v]
                    keys[v] = (sum(posn[u] for u in nb) / len(nb)) if nb else posn[v]
                L.sort(key=lambda v: (keys[v], pos[v]))
                refresh(L)
            c = _count_crossings(layers, sg.adj_s, pos)
            if c < best_c:
                best_c, best = c, [list(L) for L in layers]
    return best


def _place_rows(sg, layers) -> list:
    """Each vertex's y: stacked in its column's order, then pulled towards its neighbours
    (weighted least squares, order and separations kept)."""
    n_real, nv, vsize, adj_p, adj_s = sg.n_real, sg.nv, sg.vsize, sg.adj_p, sg.adj_s
    y = [0.0] * nv

    def seps(L):
        out = []
        for a, b in zip(L, L[1:], strict=False):
            gap = _DUMMY_GAP if (a >= n_real or b >= n_real) else _ROW_GAP
            out.append((vsize[a][1] + vsize[b][1]) / 2 + gap)
        return out

    for L in layers:
        acc = 0.0
        for i, v in enumerate(L):
            if i:
                acc += seps(L[i - 1 : i + 1])[0]
            y[v] = acc
    # A unit lines up with the units feeding it (its leaves gather around it afterwards): pulling
    # units towards their parameters too would make a deep net drift down column by column.
    inner = [bool(adj_p[v]) for v in range(nv)]
    main_p = []
    for v in range(nv):
        ps = [u for u in adj_p[v] if inner[u] and u < n_real]  # units first, then dummies
        ps = ps or [u for u in adj_p[v] if inner[u]]
        main_p.append(ps or adj_p[v])
    rank_w = [1.0 if v < n_real and inner[v] else (0.3 if inner[v] else 0.05) for v in range(nv)]
    n_layers = len(layers)
    for sweep in range(5):
        for which in ((main_p,), (adj_s,)) if sweep < 4 else ((main_p, adj_s),):
            rng = range(n_layers) if which[0] is main_p else range(n_layers - 1, -1, -1)
            for col in rng:
                L = layers[col]
                if not L:
                    continue
                desired = []
                for v in L:
                    nb = [u for adj in which for u in adj[v]]
                    desired.append(sum(y[u] for u in nb) / len(nb) if nb else y[v])
                weights = [rank_w[v] for v in L]
                for v, yy in zip(L, _isotonic(desired, seps(L), weights), strict=True):
                    y[v] = yy
    top = min((y[v] - vsize[v][1] / 2 for v in range(nv)), default=0.0)
    for v in range(nv):
        y[v] += _MARGIN - top
    return y


def _layout(n_real, sizes, edge_list, order_key):
    """Sugiyama-style layered layout, left to right.

    ``sizes[v] = (w, h)``, ``edge_list`` of (source, target) real node indices, ``order_key[v]``
    an initial vertical order. Returns (centres, routes, layer, width, height): ``centres[v] =
    (x, y)`` for every real node, ``routes[e]`` the list of (x, y) waypoints (dummy columns) of
    edge ``e``, ``layer[v]`` its column.
    """
    preds: list = [[] for _ in range(n_real)]
    succs: list = [[] for _ in range(n_real)]
    for s, t in edge_list:
        preds[t].append(s)
        succs[s].append(t)
    layer = _assign_layers(n_real, preds, succs)
    n_layers = max(layer) + 1 if n_real else 0
    sg = _SplitGraph(n_real, sizes, edge_list, layer)
    layers = _order_columns(sg, n_layers, edge_list, order_key)
    # x: one column per layer, as wide as its widest box
    col_w = [max((sg.vsize[v][0] for v in L), default=0.0) for L in layers]
    col_x = []
    x = float(_MARGIN)
    for w in col_w:
        col_x.append(x)
        x += w + _COL_GAP
    y = _place_rows(sg, layers)
    centres = [(col_x[sg.vlayer[v]] + col_w[sg.vlayer[v]] / 2, y[v]) for v in range(n_real)]
    routes = []
    for chain in sg.chains:
        pts = []
        for d in chain:
            col = sg.vlayer[d]
            pts.append((col_x[col], y[d]))
            pts.append((col_x[col] + col_w[col], y[d]))
        routes.append(pts)
    width = (col_x[-1] + col_w[-1] + _MARGIN) if n_layers else 2 * _MARGIN
    height = max((y[v] + sg.vsize[v][1] / 2 for v in range(sg.nv)), default=0.0) + _MARGIN
    return centres, routes, layer, width, height


# ------------------------------------------------------------------------------------------------
# drawing
# ------------------------------------------------------------------------------------------------


def _path(points) -> str:
    """A smooth path through ``points``: horizontal-tangent curves between columns."""
    (x0, y0) = points[0]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for (xa, ya), (xb, yb) in zip(points, points[1:], strict=False):
        if abs(yb - ya) < 0.5:
            parts.append(f"L{xb:.1f},{yb:.1f}")
        else:
            dx = max(abs(xb - xa) / 2, 12.0)
            parts.append(f"C{xa + dx:.1f},{ya:.1f} {xb - dx:.1f},{yb:.1f} {xb:.1f},{yb:.1f}")
    return "".join(parts)


def _svg_legend(y, uid) -> list:
    """The legend row at height ``y``: the two arrow kinds and the four box roles."""
    ly = y + 2
    lg = [f'<g class="legend" font-family="{_xml(_SANS)}" font-size="12" fill="#343a40">']
    x = _MARGIN
    lg.append(
        f'<path d="M{x},{ly}h34" stroke="{_FWD}" stroke-width="1.4" marker-end="url(#{uid}-fwd)"/>'
    )
    lg.append(f'<text x="{x + 42}" y="{ly + 4}">forward: values</text>')
    x += 150
    lg.append(
        f'<path d="M{x + 34},{ly}h-34" stroke="{_BWD}" stroke-width="1.3" '
        f'stroke-dasharray="5 3" marker-end="url(#{uid}-bwd)"/>'
    )
    lg.append(f'<text x="{x + 42}" y="{ly + 4}" fill="{_BWD}">backward: ∂L/∂·</text>')
    x += 170
    for role, text in (
        ("intermediate", "unit"),
        ("parameter", "parameter"),
        ("input", "input / data"),
        ("loss", "loss / output"),
    ):
        fill, stroke, sw = _ROLE_STYLE[role]
        lg.append(
            f'<rect x="{x}" y="{ly - 7}" width="22" height="14" rx="4" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{sw}"/>'
        )
        lg.append(f'<text x="{x + 28}" y="{ly + 4}">{text}</text>')
        x += 40 + 7 * len(text)
    lg.append("</g>")
    return lg


def _svg_head(W, H, title, note, uid) -> list:
    """The opening tag, arrow markers, background, title, truncation note and legend."""
    o = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W:.0f}" height="{H:.0f}" '
        f'viewBox="0 0 {W:.0f} {H:.0f}" class="chainrule-graph" id="{uid}">',
        f"<title>{_xml(title or 'chainrule graph')}</title>",
        "<defs>"
        f'<marker id="{uid}-fwd" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,1L10,5L0,9z" fill="{_FWD}"/></marker>'
        f'<marker id="{uid}-bwd" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,1L10,5L0,9z" fill="{_BWD}"/></marker>'
        "</defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    y = 22
    if title:
        o.append(
            f'<text x="{_MARGIN}" y="{y}" font-family="{_xml(_SANS)}" font-size="16" '
            f'font-weight="bold" fill="#212529">{_xml(title)}</text>'
        )
        y += 20
    if note:
        o.append(
            f'<text class="note" x="{_MARGIN}" y="{y}" font-family="{_xml(_SANS)}" '
            f'font-size="13" font-weight="bold" fill="#c92a2a">{_xml(note)}</text>'
        )
        y += 20
    o.extend(_svg_legend(y, uid))
    return o


def _port_heights(byid, edges, routes) -> dict:
    """Where each edge enters its target: a unit's inputs enter its left side in the vertical
    order of where they come from."""
    in_edges: dict[str, list] = {}
    for k, e in enumerate(edges):
        in_edges.setdefault(e["target"], []).append(k)
    port_y = {}
    for tid, ks in in_edges.items():
        t = byid[tid]

        def came_from(k):
            r = routes[k]
            return r[-1][1] if r else byid[edges[k]["source"]]["y"]

        ks = sorted(ks, key=came_from)
        top, h = t["y"] - t["height"] / 2, t["height"]
        for i, k in enumerate(ks):
            port_y[k] = top + h * (i + 1) / (len(ks) + 1)
    return port_y


def _svg_edges(nodes, edges, routes, uid) -> list:
    """The forward arrows, the backward (dashed) arrows and, in small graphs, the gradient
    numbers on the backward arrows."""
    byid = {n["id"]: n for n in nodes}
    port_y = _port_heights(byid, edges, routes)
    label_edges = len(nodes) <= _EDGE_LABEL_NODES
    # edges from one source share a bus: draw the longest in full, the others from where they
    # leave it (the picture is the same, the file much smaller)
    longest: dict[str, int] = {}
    for k, e in enumerate(edges):
        j = longest.get(e["source"])
        if j is None or len(routes[k]) > len(routes[j]):
            longest[e["source"]] = k
    fwd, bwd, labels = [], [], []
    for k, e in enumerate(edges):
        s, t = byid[e["source"]], byid[e["target"]]
        full = not routes[k] or longest[e["source"]] == k
        start = [(s["x"] + s["width"] / 2, s["y"])] + routes[k] if full else [routes[k][-1]]
        pts = start + [(t["x"] - t["width"] / 2 - 1.5, port_y[k])]
        fwd.append(f'<path d="{_path(pts)}" marker-end="url(#{uid}-fwd)"/>')
        if e["backward"]:
            back = [(px, py + 5) for px, py in reversed(pts)]
            back[0] = (back[0][0] + 1.5, back[0][1])
            if full:
                back[-1] = (back[-1][0] + 1.5, back[-1][1])
                bwd.append(f'<path d="{_path(back)}" marker-end="url(#{uid}-bwd)"/>')
            else:
                bwd.append(f'<path d="{_path(back)}"/>')
            if label_edges and e["grad"] and len(e["grad"]) <= 24:
                (xa, ya), (xb, yb) = pts[-2], pts[-1]
                labels.append(
                    f'<text x="{(xa + xb) / 2:.1f}" y="{(ya + yb) / 2 + 18:.1f}">'
                    f"{_xml(e['grad'])}</text>"
                )
    o = [f'<g class="edges forward" fill="none" stroke="{_FWD}" stroke-width="1.3">']
    o.extend(fwd)
    o.append("</g>")
    o.append(
        f'<g class="edges backward" fill="none" stroke="{_BWD}" stroke-width="1.1" '
        f'stroke-dasharray="5 3" stroke-opacity="0.85">'
    )
    o.extend(bwd)
    o.append("</g>")
    if labels:
        o.append(
            f'<g class="edge-labels" font-family="{_xml(_MONO)}" font-size="10.5" '
            f'fill="{_BWD}" text-anchor="middle">'
        )
        o.extend(labels)
        o.append("</g>")
    return o


_LINE_COLOR = {"shape": "#6c757d", "value": "#212529", "grad": _BWD, "const": "#6c757d"}


def _svg_node(n, uid) -> list:
    """One box: its rectangle (dashed for constants and the "not drawn" marker), a tooltip and
    its lines of text (the bold head, then shape, value, gradient in monospace)."""
    fill, stroke, sw = _ROLE_STYLE[n["role"]]
    x0, y0 = n["x"] - n["width"] / 2, n["y"] - n["height"] / 2
    dash = ' stroke-dasharray="4 3"' if n["kind"] in ("more", "constant") else ""
    tip = n["label"] + (f"\n{n['dtype']}" if n.get("dtype") else "")
    o = [
        f'<g class="node {n["kind"]} {n["role"]}" id="{uid}-{n["id"]}">'
        f"<title>{_xml(tip)}</title>"
        f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{n["width"]:.1f}" '
        f'height="{n["height"]:.1f}" rx="8" ry="8" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{sw}"{dash}/>'
    ]
    ty = y0 + _PAD_Y
    tx = x0 + _PAD_X
    for kind, text in n["_lines"]:
        if kind == "head":
            ty += 13
            o.append(
                f'<text x="{tx:.1f}" y="{ty:.1f}" font-family="{_xml(_SANS)}" '
                f'font-size="13" font-weight="bold" fill="#212529">{_xml(text)}</text>'
            )
            ty += _HEAD_PX - 13
        else:
            ty += 11.5
            o.append(
                f'<text x="{tx:.1f}" y="{ty:.1f}" font-family="{_xml(_MONO)}" '
                f'font-size="11.5" fill="{_LINE_COLOR[kind]}">{_xml(text)}</text>'
            )
            ty += _LINE_PX - 11.5
    o.append("</g>")
    return o


def _svg(nodes, edges, routes, width, height, title, note, uid):
    """The picture: header (title, note, legend) above the edges and the boxes."""
    header_lines = (1 if title else 0) + (1 if note else 0)
    head_h = 40 + 20 * header_lines
    legend_w = 760
    W = max(width, legend_w + 2 * _MARGIN)
    H = height + head_h
    o = _svg_head(W, H, title, note, uid)
    o.append(f'<g transform="translate(0,{head_h})">')
    o.extend(_svg_edges(nodes, edges, routes, uid))
    for n in nodes:
        o.extend(_svg_node(n, uid))
    o.append("</g></svg>")
    return "\n".join(o)


# ------------------------------------------------------------------------------------------------
# graph()
# ------------------------------------------------------------------------------------------------


def _check_graph_args(tensor, max_nodes, layout, all_grads):
    if not isinstance(tensor, Tensor):
        raise TypeError(
            f"graph: expected a chainrule Tensor (the loss, say), got {type(tensor).__name__}"
        )
    if max_nodes is not None and int(max_nodes) < 1:
        raise ValueError(f"graph: max_nodes must be at least 1, got {max_nodes!r}")
    if layout not in ("python", "dot"):
        raise ValueError(f"graph: layout must be 'python' or 'dot', got {layout!r}")
    if all_grads not in (True, False, "auto"):
        raise ValueError(f"graph: all_grads must be True, False or 'auto', got {all_grads!r}")


def _grads_beyond_stored(tensor, kept, all_grads):
    """(computed, handed): gradients beyond the stored .grad, from a second walk of the record
    (no side effects): ∂L/∂· per intermediate tensor, and each unit's hand-back per input."""
    if all_grads == "auto":
        all_grads = (
            tensor._rg
            and tensor.data.size == 1
            and any(t._ctx is None and t.grad is not None for t in kept)
        )
    if not all_grads:
        return {}, {}
    if tensor.data.size != 1:
        raise ChainruleError(
            f"graph: all_grads=True needs a scalar tensor (a loss); this one "
            f"has shape {tensor.data.shape}"
        )
    if tensor._rg:
        return _intermediate_grads(tensor)
    return {}, {}


def _collapse_linear(kept, kept_ids, uses, label_of):
    """(absorbed, fused): ``x @ W (+ transpose) + b`` drawn as one "linear" box. ``absorbed``
    maps id(tensor) -> id(the add output whose box it joined); ``fused`` maps id(add output)
    -> (inputs, collapsed unit names, formula, where each input's hand-back is recorded)."""
    from .. import units as U

    absorbed: dict[int, int] = {}
    fused: dict[int, tuple] = {}

    def alone(m, unit):  # made by ``unit``, used once, drawn, not named, not yet absorbed
        return (
            isinstance(m, Tensor)
            and m._ctx is not None
            and m._ctx.unit is unit
            and uses.get(id(m)) == 1
            and id(m) in kept_ids
            and id(m) not in absorbed
            and id(m) not in label_of
        )

    for t in kept:
        ctx = t._ctx
        if ctx is None or ctx.unit is not U.Add or len(ctx.inputs) != 2:
            continue
        for k in (0, 1):
            m, b = ctx.inputs[k], ctx.inputs[1 - k]
            if not alone(m, U.MatMul):
                continue
            x, w = m._ctx.inputs
            names_ = ["matmul", "add"]
            formula = "x @ W + b"
            absorbed[id(m)] = id(t)
            # where each input's hand-back is recorded: (id(unit output), argument)
            hands = [(id(m), 0), (id(m), 1), (id(t), 1 - k)]
            if alone(w, U.Transpose) and w.data.ndim == 2:
                absorbed[id(w)] = id(t)
                hands[1] = (id(w), 0)
                w = w._ctx.inputs[0]
                names_.insert(0, "transpose")
                formula = "x @ Wᵀ + b"
            fused[id(t)] = ((x, w, b), names_, formula, hands)
            break
    return absorbed, fused


def _node_head(t, kind, unit, name, inputs, collapsed, show_constants):
    """A box's first line: the leaf's name, or the unit (with its constants written in)."""
    if kind == "leaf":
        return name or ("parameter" if t._rg else "input")
    head = unit
    consts = [c for c in inputs if not isinstance(c, Tensor) and c is not None]
    if consts and not show_constants and not collapsed:
        shown = ", ".join(
            "·" if isinstance(c, Tensor) else _const_text(c) for c in inputs if c is not None
        )
        head += f"({shown})"
    if name:
        head += f" : {name}"
    return head


def _tensor_node(t, tensor, name, fused, computed, show_constants, dL):
    """(node, inputs): the box of one recorded tensor (a leaf or a unit's output) and the
    tensors/constants it was made from."""
    ctx = t._ctx
    if ctx is None:
        kind, unit = "leaf", None
        role = "parameter" if t._rg else "input"
    else:
        kind, unit = "unit", ctx.unit.name
        role = "intermediate"
    if t is tensor:
        role = "loss" if t.data.size == 1 else "output"
    collapsed = None
    inputs = ctx.inputs if ctx is not None else ()
    if id(t) in fused:
        inputs, collapsed, formula, _ = fused[id(t)]
        unit = "linear"
    head = _node_head(t, kind, unit, name, inputs, collapsed, show_constants)
    if t is tensor:
        head += "  [loss]" if role == "loss" else "  [output]"
    lines = [("head", head)]
    if collapsed:
        lines.append(("const", formula))
    if collapsed and not show_constants:
        lines.extend(
            ("const", f"{sym} = {_const_text(c)}")
            for sym, c in zip("xWb", inputs, strict=False)
            if not isinstance(c, Tensor) and c is not None
        )
    dt = str(t.data.dtype)
    lines.append(
        ("shape", "shape " + _shape_text(t.data.shape) + ("" if dt == "float32" else f" {dt}"))
    )
    vlines, vtext, vstats = _summary(t.data)
    lines.extend(
        ("value", ("= " + s) if i == 0 and len(vlines) == 1 else s) for i, s in enumerate(vlines)
    )
    g, gfrom = None, None
    if t.grad is not None and (ctx is None or t._retain):
        g, gfrom = t.grad, "stored"
    elif id(t) in computed:
        g, gfrom = computed[id(t)], "computed"
    gtext = gstats = None
    if g is not None:
        glines, gtext, gstats = _summary(g)
        sym = dL + (name if name and len(name) <= 12 else "·")
        if len(glines) == 1:
            lines.append(("grad", f"{sym} = {glines[0]}"))
        else:
            lines.append(("grad", sym))
            lines.extend(("grad", s) for s in glines)
    node = {
        "kind": kind,
        "role": role,
        "unit": unit,
        "name": name,
        "title": head,
        "shape": tuple(t.data.shape),
        "dtype": dt,
        "value": vtext,
        "stats": vstats,
        "grad": gtext,
        "grad_stats": gstats,
        "grad_from": gfrom,
        "requires_grad": bool(t._rg),
        "collapsed": collapsed,
        "_lines": lines,
    }
    return node, inputs


def _marker_node(i, kind, text, lines, shape=None, dtype=None) -> dict:
    """A box for no recorded tensor: a constant's ("constant") or the elision marker ("more")."""
    return {
        "id": f"n{i}",
        "kind": kind,
        "role": kind,
        "unit": None,
        "name": None,
        "title": text,
        "shape": shape,
        "dtype": dtype,
        "value": text if kind == "constant" else None,
        "stats": None,
        "grad": None,
        "grad_stats": None,
        "grad_from": None,
        "requires_grad": False,
        "collapsed": None,
        "_lines": lines,
    }


def _add_edges(nodes, node_tensors, index_of, fused, handed, show_constants, hidden_text):
    """(edges, edge_pairs): one per drawn input of every box, adding a constant's box (with
    ``show_constants``) and a "not drawn" marker where inputs fell past max_nodes."""
    edges, edge_pairs = [], []

    def link(si, ti, arg, backward=False, grad=None):
        edges.append(
            {
                "source": nodes[si]["id"],
                "target": nodes[ti]["id"],
                "arg": arg,
                "backward": backward,
                "grad": grad,
            }
        )
        edge_pairs.append((si, ti))

    for t, inputs in node_tensors:
        ti = index_of[id(t)]
        missing = 0
        for k, inp in enumerate(inputs):
            if inp is None:
                continue
            if isinstance(inp, Tensor):
                if id(inp) not in index_of:
                    missing += 1
                    continue
                hand = handed.get(fused[id(t)][3][k] if id(t) in fused else (id(t), k))
                backward = bool(inp._rg and t._ctx is not None)
                grad = _summary(hand)[1] if hand is not None else None
                link(index_of[id(inp)], ti, k, backward, grad)
            elif show_constants:
                text = _const_text(inp)
                shape, dtype = tuple(np.shape(inp)), str(np.asarray(inp).dtype)
                nodes.append(
                    _marker_node(len(nodes), "constant", text, [("head", text)], shape, dtype)
                )
                link(len(nodes) - 1, ti, k)
        if missing:
            text, lines = hidden_text
            nodes.append(_marker_node(len(nodes), "more", text, [("head", text), lines]))
            link(len(nodes) - 1, ti, None)
    return edges, edge_pairs


def _size_boxes(nodes) -> list:
    """Each box's (width, height) from its lines (also stored on the node with its label)."""
    sizes = []
    for n in nodes:
        w = 0.0
        h = 2 * _PAD_Y
        for kind, text in n["_lines"]:
            if kind == "head":
                w = max(w, len(text) * _HEAD_CHAR)
                h += _HEAD_PX
            else:
                w = max(w, len(text) * _MONO_CHAR)
                h += _LINE_PX
        w = max(w + 2 * _PAD_X, 64.0)
        n["width"], n["height"] = w, h
        n["label"] = "\n".join(text for _, text in n["_lines"])
        sizes.append((w, h))
    return sizes


def _depth_first_order(n, edge_pairs) -> list:
    """The initial vertical order: depth-first (post-order) from the root, node 0, inputs in
    argument order."""
    order_key = [0.0] * n
    preds: list = [[] for _ in range(n)]
    for s, t in edge_pairs:
        preds[t].append(s)
    counter = 0
    seen = set()
    stack = [(0, False)] if n else []
    while stack:
        v, done = stack.pop()
        if done:
            order_key[v] = counter
            counter += 1
            continue
        if v in seen:
            continue
        seen.add(v)
        stack.append((v, True))
        for u in reversed(preds[v]):
            if u not in seen:
                stack.append((u, False))
    return order_key


def graph(
    tensor,
    collapse_linear: bool = False,
    max_nodes: int | None = 500,
    title: str | None = None,
    names=None,
    params=None,
    show_constants: bool = False,
    all_grads="auto",
    layout: str = "python",
) -> Graph:
    """Draw the recorded graph behind ``tensor`` (typically the loss).

    Parameters
    ----------
    tensor : Tensor
        Where the drawing ends (the loss, on the right). Everything the forward pass recorded
        behind it is drawn: one box per unit application, one per leaf tensor.
    collapse_linear : bool
        Draw ``x @ W + b`` (a matmul whose only use is an add; ``x @ W.T + b`` absorbs the
        transpose too) as one "linear" box. The fused ``linear`` unit is one box anyway.
    max_nodes : int or None
        Draw at most this many tensors, those nearest ``tensor``; the rest become a "⋯ not drawn"
        marker and a note at the top of the picture. None draws everything.
    title : str, optional
        A heading for the picture.
    names : dict, optional
        Labels for tensors: ``{tensor: "w"}`` or ``{id(tensor): "w"}`` (``{"w": tensor}`` works
        too). Tensors without one use their ``.name``.
    params : iterable of (name, tensor), optional
        For example ``model.named_parameters()`` (or the model itself): labels leaves "0.weight".
    show_constants : bool
        Draw numbers and arrays that entered a unit as small constant boxes; by default they are
        written into the unit's label instead, as in ``mul(3, ·)``.
    all_grads : bool or "auto"
        Also show ∂L/∂· on intermediate tensors (leaves and retained tensors show their
        ``.grad``) and the chain-rule product on each backward arrow, by walking the record once
        more with each unit's backward (no ``.grad`` is changed). "auto" does so when
        ``tensor`` is a scalar and ``backward()`` has visibly run (some leaf has a ``.grad``).
    layout : "python" or "dot"
        "python" (the default) needs nothing; "dot" renders the SVG with Graphviz's ``dot``
        binary, which must be on PATH.

    Returns
    -------
    Graph
        ``.svg``, ``_repr_svg_()`` (Jupyter shows it), ``.save(path)``, ``.nodes``, ``.edges``,
        ``.to_dot()``.
    """
    start = time.perf_counter()
    _check_graph_args(tensor, max_nodes, layout, all_grads)
    order, uses = _walk(tensor)
    total = len(order)
    kept = order if max_nodes is None else order[: int(max_nodes)]
    kept_ids = {id(t): t for t in kept}
    truncated = len(kept) < total
    label_of = _name_map(names, params)
    for t in kept:
        if id(t) not in label_of and getattr(t, "name", None):
            label_of[id(t)] = str(t.name)
    computed, handed = _grads_beyond_stored(tensor, kept, all_grads)
    absorbed, fused = ({}, {})
    if collapse_linear:
        absorbed, fused = _collapse_linear(kept, kept_ids, uses, label_of)

    root_name = label_of.get(id(tensor))
    dL = f"∂{root_name}/∂" if root_name and len(root_name) <= 6 else "∂L/∂"
    nodes: list[dict] = []
    index_of: dict[int, int] = {}
    node_tensors: list[tuple] = []
    for t in kept:
        if id(t) in absorbed:
            continue
        node, inputs = _tensor_node(
            t, tensor, label_of.get(id(t)), fused, computed, show_constants, dL
        )
        index_of[id(t)] = len(nodes)
        node_tensors.append((t, inputs))
        nodes.append({"id": f"n{len(nodes)}", **node})
    hidden = (f"⋯ {total - len(kept):,} not drawn", ("const", f"max_nodes={max_nodes}"))
    edges, edge_pairs = _add_edges(
        nodes, node_tensors, index_of, fused, handed, show_constants, hidden
    )
    sizes = _size_boxes(nodes)
    order_key = _depth_first_order(len(nodes), edge_pairs)

    note = None
    if truncated:
        note = (
            f"Truncated: drawing the {len(kept):,} tensors nearest the output, of {total:,} "
            f"recorded (max_nodes={max_nodes}); pass a larger max_nodes to see more."
        )
    uid = f"crg{next(_IDS)}"
    centres, routes, layers, width, height = _layout(len(nodes), sizes, edge_pairs, order_key)
    for n, (cx, cy), col in zip(nodes, centres, layers, strict=True):
        n["x"], n["y"], n["layer"] = cx, cy, col
    svg_text = _svg(nodes, edges, routes, width, height, title, note, uid)
    for n in nodes:
        n.pop("_lines", None)
    g = Graph(nodes, edges, svg_text, title, truncated, total, nodes[0]["id"], 0.0)
    if layout == "dot":
        g.svg = _render_dot(g.to_dot())
    g.elapsed = time.perf_counter() - start
    return g


def _render_dot(dot_text: str) -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise ChainruleError(
            "graph: layout='dot' needs Graphviz's `dot` binary on PATH; the "
            "default layout='python' needs nothing"
        )
    res = subprocess.run(
        [exe, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=60
    )
    if res.returncode != 0:
        raise ChainruleError(f"graph: dot failed: {res.stderr.decode('utf-8', 'replace')[:500]}")
    text = res.stdout.decode("utf-8")
    i = text.find("<svg")
    return text[i:] if i >= 0 else text
