"""cr.viz.graph: the recorded graph behind a tensor, as data, SVG and DOT."""

import itertools
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule import units
from chainrule.errors import ChainruleError
from chainrule.viz import Graph, graph

SVG = "{http://www.w3.org/2000/svg}"


def node_groups(svg_text):
    root = ET.fromstring(svg_text)
    return [g for g in root.iter(SVG + "g") if (g.get("class") or "").split()[:1] == ["node"]]


def kinds(g):
    return sorted((n["kind"], n["unit"]) for n in g.nodes)


def seed_example():
    """The course's example: f = x + 2, g = 3 f, h = sin(g) at x = 10."""
    x = cr.tensor(10.0, requires_grad=True)
    x.name = "x"
    h = cr.sin(3 * (x + 2))
    return x, h


# ------------------------------------------------------------------------------------------------
# nodes and edges of known expressions
# ------------------------------------------------------------------------------------------------


def test_seed_expression_nodes_edges_and_values():
    x, h = seed_example()
    g = graph(h)
    assert isinstance(g, Graph)
    assert kinds(g) == [("leaf", None), ("unit", "add"), ("unit", "mul"), ("unit", "sin")]
    assert len(g.edges) == 3
    ids = {n["id"] for n in g.nodes}
    assert all(e["source"] in ids and e["target"] in ids for e in g.edges)
    # forward values in the labels (before backward: no gradients anywhere)
    assert "= 12" in g.node("add(·, 2)")["label"]
    assert "= 36" in g.node("mul(3, ·)")["label"]
    sin = g.nodes[0]
    assert sin["unit"] == "sin" and sin["role"] == "loss" and sin["id"] == g.root
    assert sin["value"] == f"{math.sin(36):.4g}"
    assert all(n["grad"] is None for n in g.nodes)
    leaf = g.node("x")
    assert leaf["kind"] == "leaf" and leaf["role"] == "parameter" and leaf["shape"] == ()


def test_after_backward_labels_show_gradients_and_nothing_changes():
    x, h = seed_example()
    h.backward(retain_graph=True)
    before = x.grad.copy()
    g = graph(h)
    leaf = g.node("x")
    assert leaf["grad_from"] == "stored"
    assert leaf["grad"] == f"{3 * math.cos(36):.4g}"
    assert f"∂L/∂x = {3 * math.cos(36):.4g}" in leaf["label"]
    # intermediate gradients come from a second walk with each unit's backward
    mul = g.node("mul(3, ·)")
    assert mul["grad_from"] == "computed" and mul["grad"] == f"{math.cos(36):.4g}"
    assert g.nodes[0]["grad"] == "1"
    # the chain-rule product handed back along each arrow
    into_add = [e for e in g.edges if e["source"] == leaf["id"]][0]
    assert into_add["backward"] and into_add["grad"] == f"{3 * math.cos(36):.4g}"
    # drawing does not touch .grad
    np.testing.assert_array_equal(x.grad, before)
    assert h.grad is None
    # and without the second walk only stored gradients show
    g2 = graph(h, all_grads=False)
    assert g2.node("x")["grad"] is not None
    assert g2.node("mul(3, ·)")["grad"] is None


def test_retained_gradient_is_shown_without_the_second_walk():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    z = (x * 2).retain_grad()
    L = (z**2).sum()
    L.backward(retain_graph=True)
    g = graph(L, names={z: "z"}, all_grads=False)
    n = g.node("z")
    assert n["grad_from"] == "stored" and n["grad"] == "[4, 8]"  # dL/dz = 2 z, z = 2 x
    assert "∂L/∂z = [4, 8]" in n["label"]


def logistic(y=1.0):
    """The course's logistic classifier: z = w·x + b, a = σ(z), L = NLL(a, y)."""
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.normal(size=3).astype(np.float32))
    w = cr.tensor(rng.normal(size=3).astype(np.float32), requires_grad=True)
    b = cr.tensor(0.1, requires_grad=True)
    z = (w * x).sum() + b
    a = cr.sigmoid(z)
    L = -(y * cr.log(a) + (1 - y) * cr.log(1 - a))
    return x, w, b, z, a, L


def test_logistic_classifier_graph():
    x, w, b, z, a, L = logistic()
    L.backward(retain_graph=True)
    g = graph(L, names={w: "w", b: "b", x: "x", z: "z", a: "a", L: "L"})
    # leaves w, x, b; units mul, sum, add (z), sigmoid (a), then the loss expression
    assert len(g.nodes) == 14 and len(g.edges) == 14
    assert sorted(n["name"] for n in g.nodes if n["kind"] == "leaf") == ["b", "w", "x"]
    assert g.node("x")["role"] == "input" and g.node("x")["grad"] is None
    assert g.node("w")["role"] == "parameter"
    a_node = g.node("a")
    assert a_node["unit"] == "sigmoid"
    # a is used twice (log a and 1 - a): one node, two outgoing edges
    assert sum(e["source"] == a_node["id"] for e in g.edges) == 2
    # the gradient at z is a - y, as the notes derive
    av = float(a.data)
    assert g.node("z")["grad"] == f"{av - 1.0:.4g}"
    assert "∂L/∂w = [" in g.node("w")["label"]
    assert g.node("L")["role"] == "loss"
    # inputs that need no gradient get no backward arrow
    assert not any(e["backward"] for e in g.edges if e["source"] == g.node("x")["id"])


def test_fused_bce_unit_is_one_node():
    x, w, b, z, a, _ = logistic()
    L = units.BCEProb.apply(a, np.float32(1.0))
    g = graph(L)
    assert kinds(g).count(("unit", "bce")) == 1
    assert len(g.nodes) == 8  # w, x, b, mul, sum, add, sigmoid, bce


def test_tensor_used_twice_is_one_node_with_two_edges():
    x = cr.tensor(3.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    g = graph(y, names={x: "x"})
    assert len(g.nodes) == 2 and len(g.edges) == 2
    xs = g.node("x")
    assert [e["source"] for e in g.edges] == [xs["id"], xs["id"]]
    assert sorted(e["arg"] for e in g.edges) == [0, 1]
    assert xs["grad"] == "6"


def test_leaf_root_and_untracked_root():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    g = graph(x)
    assert len(g.nodes) == 1 and g.edges == [] and g.nodes[0]["kind"] == "leaf"
    with cr.no_grad():
        y = x * 2
    g = graph(y)
    assert len(g.nodes) == 1 and g.nodes[0]["role"] == "output"
    node_groups(g.svg)


def test_value_summaries_small_and_big():
    rng = np.random.default_rng(1)
    big = rng.normal(size=(64, 32)).astype(np.float32)
    t = cr.tensor(big, requires_grad=True)
    L = cr.relu(t).mean()
    L.backward(retain_graph=True)
    g = graph(L)
    leaf = [n for n in g.nodes if n["kind"] == "leaf"][0]
    st = leaf["stats"]
    assert st["mean"] == pytest.approx(big.mean(), rel=1e-5)
    assert st["std"] == pytest.approx(big.std(), rel=1e-4)
    assert st["min"] == pytest.approx(big.min()) and st["max"] == pytest.approx(big.max())
    assert "mean" in leaf["label"] and "max" in leaf["label"] and "shape (64, 32)" in leaf["label"]
    assert leaf["grad_stats"]["max"] == pytest.approx(1 / big.size)
    assert g.nodes[0]["stats"] is None and g.nodes[0]["value"] == f"{float(L.data):.4g}"


def test_constants_folded_or_drawn():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (2.0 - x) * np.array([1.0, 2.0, 3.0], dtype=np.float32)
    g = graph(y)
    assert len(g.nodes) == 3
    assert g.node("sub(2, ·)")["unit"] == "sub"
    assert g.nodes[0]["title"] == "mul(·, [1, 2, 3])  [output]"
    gc = graph(y, show_constants=True)
    consts = [n for n in gc.nodes if n["kind"] == "constant"]
    assert sorted(n["value"] for n in consts) == ["2", "[1, 2, 3]"]
    assert len(gc.edges) == 4
    assert not any(e["backward"] for e in gc.edges if e["source"] in {c["id"] for c in consts})


# ------------------------------------------------------------------------------------------------
# names
# ------------------------------------------------------------------------------------------------


def test_names_by_tensor_by_id_by_params_and_by_name_attribute():
    rng = np.random.default_rng(0)
    X = cr.tensor(rng.normal(size=(4, 3)).astype(np.float32))
    W = cr.tensor(rng.normal(size=(2, 3)).astype(np.float32), requires_grad=True)
    b = cr.tensor(np.zeros(2, np.float32), requires_grad=True)
    X.name = "X"
    L = cr.linear(X, W, b).sum()
    L.backward(retain_graph=True)
    g = graph(L, params=[("0.weight", W), ("0.bias", b)])
    assert {n["name"] for n in g.nodes if n["kind"] == "leaf"} == {"X", "0.weight", "0.bias"}
    assert "∂L/∂0.weight" in g.node("0.weight")["label"]
    g = graph(L, names={id(W): "W", b: "b"})
    assert g.node("W")["kind"] == "leaf" and g.node("b")["kind"] == "leaf"
    g = graph(L, names={"W": W})
    assert g.node("W")["kind"] == "leaf"

    class Model:  # anything with named_parameters() works, as a chainrule.nn Module will
        def named_parameters(self):
            return iter([("lin.weight", W), ("lin.bias", b)])

    g = graph(L, params=Model())
    assert g.node("lin.weight")["shape"] == (2, 3)
    with pytest.raises(TypeError):
        graph(L, params=[W])
    with pytest.raises(TypeError):
        graph(L, names={3.5: "w"})


def test_root_name_sets_the_gradient_symbol():
    x = cr.tensor(2.0, requires_grad=True)
    J = x * x
    J.backward(retain_graph=True)
    g = graph(J, names={x: "x", J: "J"})
    assert "∂J/∂x = 4" in g.node("x")["label"]


# ------------------------------------------------------------------------------------------------
# collapse_linear
# ------------------------------------------------------------------------------------------------


def two_layer(rng=None):
    rng = rng or np.random.default_rng(0)
    X = cr.tensor(rng.normal(size=(8, 5)).astype(np.float32))
    W1 = cr.tensor(rng.normal(size=(4, 5)).astype(np.float32), requires_grad=True)
    b1 = cr.tensor(np.zeros(4, np.float32), requires_grad=True)
    W2 = cr.tensor(rng.normal(size=(1, 4)).astype(np.float32), requires_grad=True)
    b2 = cr.tensor(np.zeros(1, np.float32), requires_grad=True)
    out = cr.tanh(X @ W1.T + b1) @ W2.T + b2
    L = ((out - 1.0) ** 2).mean()
    return (X, W1, b1, W2, b2), L


def test_collapse_linear_merges_transpose_matmul_add():
    (X, W1, b1, W2, b2), L = two_layer()
    L.backward(retain_graph=True)
    names = {X: "X", W1: "W1", b1: "b1", W2: "W2", b2: "b2"}
    g = graph(L, names=names)
    assert [n["unit"] for n in g.nodes].count("matmul") == 2
    assert [n["unit"] for n in g.nodes].count("transpose") == 2
    gc = graph(L, names=names, collapse_linear=True)
    assert len(gc.nodes) == len(g.nodes) - 4  # two (transpose, matmul, add) became two boxes
    lin = [n for n in gc.nodes if n["unit"] == "linear"]
    assert len(lin) == 2
    assert all(n["collapsed"] == ["transpose", "matmul", "add"] for n in lin)
    assert all("x @ Wᵀ + b" in n["label"] for n in lin)
    assert not any(n["unit"] in ("matmul", "transpose") for n in gc.nodes)
    # the weights feed the linear boxes directly, in the order x, W, b
    first = [
        n
        for n in lin
        if any(e["source"] == gc.node("W1")["id"] and e["target"] == n["id"] for e in gc.edges)
    ][0]
    ins = sorted((e["arg"], e["source"]) for e in gc.edges if e["target"] == first["id"])
    assert ins == [(0, gc.node("X")["id"]), (1, gc.node("W1")["id"]), (2, gc.node("b1")["id"])]
    # value and gradient are the add's: the linear unit's output
    expected = X.data @ W1.data.T + b1.data
    assert first["shape"] == expected.shape
    assert first["stats"]["mean"] == pytest.approx(float(expected.mean()), rel=1e-5)
    w1_edge = [e for e in gc.edges if e["source"] == gc.node("W1")["id"]][0]
    assert w1_edge["grad"] == gc.node("W1")["grad"]
    node_groups(gc.svg)


def test_collapse_keeps_a_matmul_used_elsewhere_and_plain_matmul_collapses():
    x = cr.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    W = cr.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    b = cr.tensor(np.ones(4, np.float32), requires_grad=True)
    m = x @ W
    L = ((m + b) * m).sum()  # m is used twice: the add cannot absorb it
    g = graph(L, collapse_linear=True)
    assert "matmul" in [n["unit"] for n in g.nodes] and "linear" not in [n["unit"] for n in g.nodes]
    L2 = (x @ W + b).sum()
    g2 = graph(L2, collapse_linear=True)
    lin = [n for n in g2.nodes if n["unit"] == "linear"]
    assert len(lin) == 1 and lin[0]["collapsed"] == ["matmul", "add"]


def test_fused_linear_unit_is_one_node():
    X = cr.tensor(np.ones((2, 3), np.float32))
    W = cr.tensor(np.ones((4, 3), np.float32), requires_grad=True)
    b = cr.tensor(np.ones(4, np.float32), requires_grad=True)
    L = cr.relu(cr.linear(X, W, b)).sum()
    for c in (False, True):
        g = graph(L, collapse_linear=c)
        assert [n["unit"] for n in g.nodes].count("linear") == 1
        assert len(g.nodes) == 6


# ------------------------------------------------------------------------------------------------
# SVG, HTML, DOT
# ------------------------------------------------------------------------------------------------


def test_svg_parses_with_one_group_per_node_legend_and_both_arrow_kinds():
    x, w, b, z, a, L = logistic()
    L.backward(retain_graph=True)
    g = graph(L, title="logistic classifier", names={w: "w"})
    root = ET.fromstring(g.svg)
    assert root.tag == SVG + "svg"
    groups = node_groups(g.svg)
    assert len(groups) == len(g.nodes)
    assert {grp.get("id").rsplit("-", 1)[1] for grp in groups} == {n["id"] for n in g.nodes}
    text = "".join(root.itertext())
    assert "forward: values" in text and "backward: ∂L/∂·" in text
    assert "logistic classifier" in text
    fwd = [
        p
        for grp in root.iter(SVG + "g")
        if "forward" in (grp.get("class") or "")
        for p in grp.iter(SVG + "path")
    ]
    bwd = [
        p
        for grp in root.iter(SVG + "g")
        if "backward" in (grp.get("class") or "")
        for p in grp.iter(SVG + "path")
    ]
    assert len(fwd) == len(g.edges)
    assert len(bwd) == sum(e["backward"] for e in g.edges)
    assert g._repr_svg_() == g.svg
    # the loss box is highlighted
    loss_group = [grp for grp in groups if "loss" in grp.get("class").split()]
    assert len(loss_group) == 1


def test_text_is_escaped_for_xml():
    x = cr.tensor(1.0, requires_grad=True)
    y = x * 2
    g = graph(y, names={x: 'a<b & "c">'}, title="<title> & 'quotes'")
    ET.fromstring(g.svg)
    assert 'a<b & "c">' in "".join(ET.fromstring(g.svg).itertext())
    assert "&lt;title&gt;" in g.svg


def test_two_graphs_in_one_page_do_not_share_marker_ids():
    _, h = seed_example()
    a, b = graph(h), graph(h)
    assert ET.fromstring(a.svg).get("id") != ET.fromstring(b.svg).get("id")
    assert f'id="{ET.fromstring(a.svg).get("id")}-fwd"' in a.svg


def test_save_svg_html_dot(tmp_path):
    _, h = seed_example()
    h.backward(retain_graph=True)
    g = graph(h, title="h = sin(3(x + 2))")
    p = g.save(tmp_path / "h.svg")
    ET.parse(p)
    html = g.save(tmp_path / "h.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "</html>" in html
    dot = g.save(tmp_path / "h.dot").read_text(encoding="utf-8")
    assert dot == g.to_dot()
    with pytest.raises(ValueError, match=r"\.png"):
        g.save(tmp_path / "h.png")


def test_to_dot_has_every_node_and_both_edge_directions():
    x, w, b, z, a, L = logistic()
    L.backward(retain_graph=True)
    g = graph(L)
    dot = g.to_dot()
    assert dot.startswith("digraph") and "rankdir=LR" in dot and dot.rstrip().endswith("}")
    for n in g.nodes:
        assert f"  {n['id']} [label=" in dot
    for e in g.edges:
        assert f"  {e['source']} -> {e['target']};" in dot
    assert dot.count("style=dashed") == sum(e["backward"] for e in g.edges)


def test_dot_layout_needs_the_binary(monkeypatch):
    import shutil

    _, h = seed_example()
    if shutil.which("dot") is None:
        with pytest.raises(ChainruleError, match="dot"):
            graph(h, layout="dot")
    else:
        ET.fromstring(graph(h, layout="dot").svg)
    with pytest.raises(ValueError):
        graph(h, layout="neato")


# ------------------------------------------------------------------------------------------------
# layout
# ------------------------------------------------------------------------------------------------


def test_layout_columns_run_from_leaves_to_the_loss():
    x, w, b, z, a, L = logistic()
    g = graph(L, names={w: "w", x: "x", b: "b", z: "z", a: "a", L: "L"})
    by = {n["id"]: n for n in g.nodes}
    for e in g.edges:
        s, t = by[e["source"]], by[e["target"]]
        assert s["layer"] < t["layer"]
        assert s["x"] + s["width"] / 2 < t["x"] - t["width"] / 2  # left to right
    assert g.node("L")["layer"] == max(n["layer"] for n in g.nodes)
    # leaves sit just before their first use, like b beside the add of z = w·x + b
    assert g.node("b")["layer"] == g.node("z")["layer"] - 1
    # boxes in one column do not overlap
    cols = {}
    for n in g.nodes:
        cols.setdefault(n["layer"], []).append(n)
    for col in cols.values():
        col.sort(key=lambda n: n["y"])
        for p, q in itertools.pairwise(col):
            assert p["y"] + p["height"] / 2 <= q["y"] - q["height"] / 2


def test_crossings_are_reduced_on_a_simple_case():
    # two independent branches joined at the end: a good order has no crossing at all
    rng = np.random.default_rng(0)
    ps = [cr.tensor(rng.normal(size=3).astype(np.float32), requires_grad=True) for _ in range(4)]
    left = cr.tanh(ps[0] * ps[1])
    right = cr.sigmoid(ps[2] + ps[3])
    L = (left * right).sum()
    g = graph(L)
    by = {n["id"]: n for n in g.nodes}
    segs = [(by[e["source"]], by[e["target"]]) for e in g.edges]
    crossings = 0
    for i, (s1, t1) in enumerate(segs):
        for s2, t2 in segs[i + 1 :]:
            if (
                s1["layer"] == s2["layer"]
                and t1["layer"] == t2["layer"]
                and s1 is not s2
                and t1 is not t2
                and (s1["y"] - s2["y"]) * (t1["y"] - t2["y"]) < 0
            ):
                crossings += 1
    assert crossings == 0


def big_mlp_graph(layers=20, width=8):
    """Raw-tensor MLP with matmul + add + tanh per layer: 5 nodes per layer."""
    rng = np.random.default_rng(0)
    X = cr.tensor(rng.normal(size=(4, width)).astype(np.float32))
    h = X
    for i in range(layers):
        W = cr.tensor(rng.normal(size=(width, width)).astype(np.float32) * 0.3, requires_grad=True)
        b = cr.tensor(np.zeros(width, np.float32), requires_grad=True)
        h = cr.tanh(h @ W.T + b)
        if i % 3 == 2:
            h = h + X  # skip connections: long edges
    return (h**2).mean()


def test_400_node_graph_renders_and_parses():
    # (its speed is measured in docs/graph.md, never asserted: the machine is shared)
    L = big_mlp_graph(layers=66)
    L.backward(retain_graph=True)
    g = graph(L)
    assert len(g.nodes) >= 400 and not g.truncated
    assert len(node_groups(g.svg)) == len(g.nodes)


def test_500_node_unrolled_expression_with_a_shared_input():
    x = cr.tensor(0.5, requires_grad=True)
    y = x
    for _ in range(166):
        y = cr.sin(y) * x + 0.1  # x feeds every step: one node, a bus of edges
    y.backward(retain_graph=True)
    g = graph(y, names={x: "x"}, max_nodes=None)
    assert len(g.nodes) == 3 * 166 + 1
    assert sum(e["source"] == g.node("x")["id"] for e in g.edges) == 167  # first sin, 166 muls
    ET.fromstring(g.svg)


def test_5000_unit_chain_is_walked_without_recursion_and_truncated_with_a_note():
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    assert sys.getrecursionlimit() < 5000
    g = graph(y, max_nodes=300)
    assert g.truncated and g.total_nodes == 5001
    assert len([n for n in g.nodes if n["kind"] != "more"]) == 300
    more = [n for n in g.nodes if n["kind"] == "more"]
    assert len(more) == 1 and "4,701 not drawn" in more[0]["label"]
    svg_text = "".join(ET.fromstring(g.svg).itertext())
    assert "Truncated" in svg_text and "max_nodes=300" in svg_text
    # the drawn part is the part nearest the output
    assert g.nodes[0]["role"] == "output" or g.nodes[0]["role"] == "loss"
    full = graph(y, max_nodes=None)
    assert len(full.nodes) == 5001 and not full.truncated


def test_bad_arguments_fail_loudly():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="ndarray"):
        graph(np.ones(3))
    with pytest.raises(ValueError, match="max_nodes"):
        graph(x * 2, max_nodes=0)
    with pytest.raises(ChainruleError, match="scalar"):
        graph(x * 2, all_grads=True)


def test_import_is_light():
    code = (
        "import sys, chainrule.viz; from chainrule.viz import graph; "
        "assert callable(graph); assert 'matplotlib' not in sys.modules, 'matplotlib'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mlp_784_256_128_10_after_backward():
    rng = np.random.default_rng(0)
    X = cr.tensor(rng.normal(size=(128, 784)).astype(np.float32))
    y = rng.integers(0, 10, size=128)
    dims = [784, 256, 128, 10]
    params = []
    h = X
    for i in range(3):
        W = cr.tensor(
            rng.normal(size=(dims[i + 1], dims[i])).astype(np.float32) * 0.05, requires_grad=True
        )
        b = cr.tensor(np.zeros(dims[i + 1], np.float32), requires_grad=True)
        params += [(f"{2 * i}.weight", W), (f"{2 * i}.bias", b)]
        h = cr.linear(h, W, b)
        if i < 2:
            h = cr.relu(h)
    L = units.SoftmaxCrossEntropy.apply(h, y).mean()
    L.backward(retain_graph=True)
    g = graph(L, params=params, title="784-256-128-10")
    assert len(g.nodes) == 14  # X, 6 parameters, 3 linear, 2 relu, cross-entropy, mean
    w0 = g.node("0.weight")
    assert w0["shape"] == (256, 784) and w0["grad_stats"] is not None
    assert w0["grad_stats"]["max"] == pytest.approx(float(params[0][1].grad.max()))
    ce = [n for n in g.nodes if n["unit"] == "softmax_cross_entropy"][0]
    assert "int64(128,)" in ce["title"] and ce["grad"] is not None
    assert len(node_groups(g.svg)) == 14


def test_drawing_after_a_freeing_backward_is_a_clear_error():
    # backward() frees the record as it walks (PyTorch's rule): the drawing says what to do,
    # with or without the second walk, and drawing before backward still works
    x, h = seed_example()
    graph(h)
    h.backward()
    for all_grads in (True, False):
        with pytest.raises(ChainruleError, match=r"draw or explain the graph before calling"):
            graph(h, all_grads=all_grads)
    x, h = seed_example()
    h.backward(retain_graph=True)
    assert graph(h).node("x")["grad"] is not None
