"""chainrule.explain: the forward pass and every chain-rule term, checked against hand-derived
values and central differences."""

import itertools
import math

import numpy as np
import pytest
from browser import chromium

import chainrule as cr
import chainrule.nn as nn
from chainrule.errors import ChainruleError
from chainrule.examples.llc import llc
from chainrule.explain import Explanation, demo, explain


def _neuron(w, w0, act=nn.Sigmoid):
    d = len(w)
    layers = [nn.Linear(d, 1)] + ([act()] if act else [])
    model = nn.Sequential(*layers)
    model[0].weight.data = np.asarray(w, dtype=np.float32).reshape(1, d)
    model[0].bias.data = np.asarray([w0], dtype=np.float32)
    return model


# ------------------------------------------------------------------------------------------------
# the notes' logistic classifier: equation (3) with numbers
# ------------------------------------------------------------------------------------------------


def test_demo_llc_reads_like_equation_3_with_the_examples_numbers():
    r = llc()
    e = demo("llc")
    assert isinstance(e, Explanation) and e.kind == "neuron"
    text = str(e)
    assert "∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w" in text
    assert "(the notes' equation 3)" in text
    for unit in ("loss unit", "activation σ", "linear unit Σ"):
        assert unit in text
    a, y, x = r["a"], r["y"], r["x"]
    t = e.term("w")
    loss_term, act_term, lin_term = t["chain"]
    assert (loss_term["unit"], act_term["unit"], lin_term["unit"]) == (
        "loss unit",
        "activation σ",
        "linear unit Σ",
    )
    assert loss_term["value"][0] == pytest.approx((a - y) / (a * (1 - a)), rel=1e-12)
    assert act_term["value"][0] == pytest.approx(a * (1 - a), rel=1e-12)
    np.testing.assert_allclose(lin_term["value"][0], x)
    # the product is the hand-derived (a − y)·x, and so are autodiff and central differences
    hand = (a - y) * x
    np.testing.assert_allclose(t["product"].reshape(-1), hand, rtol=1e-12)
    np.testing.assert_allclose(t["autodiff"].reshape(-1), hand, rtol=1e-12)
    np.testing.assert_allclose(t["numeric"], hand, rtol=1e-7, atol=1e-9)
    assert t["ok"] and not t["sampled"]
    # and the printed line shows those numbers in eq. (3)'s order
    line = (
        f"= ({loss_term['value'][0]:+.6f}) · ({act_term['value'][0]:+.6f}) · "
        "[+1.000000, +2.000000, -1.000000]"
    )
    assert line in text
    assert "[" + ", ".join(f"{v:+.6f}" for v in hand) + "]" in text
    assert e.term("w₀")["product"].reshape(-1)[0] == pytest.approx(a - y, rel=1e-12)
    # the forward pass: z, a, L as the example computed them
    kinds = [row["kind"] for row in e.forward]
    assert kinds == ["input", "linear", "activation", "loss"]
    assert float(e.forward[1]["output"].reshape(-1)[0]) == pytest.approx(r["z"], rel=1e-12)
    assert float(e.forward[2]["output"].reshape(-1)[0]) == pytest.approx(a, rel=1e-12)
    assert e.loss == pytest.approx(r["L"], rel=1e-12)
    assert f"{r['z']:+.6f}" in text and f"{a:+.6f}" in text and f"{r['L']:+.6f}" in text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_neuron_terms_equal_hand_derivation(seed):
    rng = np.random.default_rng(seed)
    d = 4
    w, w0 = rng.normal(size=d), float(rng.normal())
    x = rng.normal(size=d)
    y = float(seed % 2)
    model = _neuron(w, w0)
    e = explain(model, x, y, nn.BCELoss())
    z = float(np.float32(w).astype(np.float64) @ x + np.float32(w0))
    a = 1 / (1 + math.exp(-z))
    t = e.term("0.weight")
    np.testing.assert_allclose(t["product"].reshape(-1), (a - y) * x, rtol=1e-6)
    np.testing.assert_allclose(t["autodiff"].reshape(-1), t["product"].reshape(-1), rtol=1e-12)
    np.testing.assert_allclose(t["numeric"], t["autodiff_checked"], rtol=1e-6, atol=1e-9)
    assert e.ok and e.max_abs_diff < 1e-8


def test_neuron_batch_sums_each_samples_chain_with_the_mean():
    model = _neuron([0.3, -0.7], 0.1)
    X = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]])
    y = np.array([[1.0], [0.0], [1.0]])
    e = explain(model, X, y, nn.BCELoss())
    w = np.float32([0.3, -0.7]).astype(np.float64)
    a = 1 / (1 + np.exp(-(X @ w + np.float32(0.1))))
    hand = ((a - y[:, 0])[:, None] * X).mean(axis=0)
    np.testing.assert_allclose(e.term("w")["product"].reshape(-1), hand, rtol=1e-9)
    assert e.ok
    text = str(e)
    assert "Σ over the 3 samples" in text and "1/3" in text
    assert "sample 2:" in text


def test_targets_of_shape_n_fit_an_output_of_shape_n_1():
    model = _neuron([0.3, -0.7], 0.1)
    X = np.array([[1.0, 2.0], [0.5, -1.0]])
    e = explain(model, X, np.array([1.0, 0.0]), nn.BCELoss())
    assert e.ok


def test_neuron_without_activation_uses_the_loss_units_term():
    model = _neuron([0.5, -0.25], 0.2, act=None)
    x = np.array([1.0, 2.0])
    e = explain(model, x, np.array([[1.0]]), nn.BCEWithLogitsLoss())
    assert e.kind == "neuron"
    t = e.term("w")
    assert [c["symbol"] for c in t["chain"]] == ["∂L/∂z", "∂z/∂w"]
    z = 0.5 * 1 - 0.25 * 2 + 0.2
    s = 1 / (1 + math.exp(-z))
    np.testing.assert_allclose(t["product"].reshape(-1), (s - 1) * x, rtol=1e-6)
    assert "σ(z) − y" in str(e)


# ------------------------------------------------------------------------------------------------
# deeper networks: terms layer by layer
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def net_2_16_16_2():
    cr.manual_seed(0)
    return nn.Sequential(
        nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2)
    )


def test_network_lists_per_layer_terms(net_2_16_16_2):
    x = np.array([[0.5, -1.2]], dtype=np.float32)
    e = explain(net_2_16_16_2, x, np.array([1]), nn.CrossEntropyLoss())
    assert e.kind == "network"
    assert [r["kind"] for r in e.forward] == [
        "input",
        "linear",
        "activation",
        "linear",
        "activation",
        "linear",
        "loss",
    ]
    assert [r["symbol"] for r in e.forward] == ["x", "z¹", "a¹", "z²", "a²", "z³", "L"]
    # back-propagation from the loss: what each layer hands on is what the next one receives
    assert [ly["kind"] for ly in e.layers] == [
        "loss",
        "linear",
        "activation",
        "linear",
        "activation",
        "linear",
    ]
    for later, earlier in itertools.pairwise(e.layers):
        np.testing.assert_allclose(later["handed_on"], earlier["upstream"])
    # an elementwise activation: hands on = receives ⊙ local term
    for ly in e.layers:
        if ly["kind"] == "activation":
            assert ly["elementwise"]
            np.testing.assert_allclose(ly["handed_on"], ly["upstream"] * ly["local"], rtol=1e-12)
    tanh = e.layers[2]
    np.testing.assert_allclose(tanh["local"], 1 - e.forward[4]["output"] ** 2, rtol=1e-12)
    relu = e.layers[4]
    np.testing.assert_allclose(relu["local"], (e.forward[2]["output"] > 0).astype(float))
    # a linear layer: ∂L/∂W = (∂L/∂z)ᵀ · its input, ∂L/∂b = ∂L/∂z
    lin = e.layers[1]
    W3 = e.term("4.weight")
    np.testing.assert_allclose(
        W3["product"], lin["upstream"].T @ e.forward[4]["output"], rtol=1e-12
    )
    np.testing.assert_allclose(e.term("4.bias")["product"], lin["upstream"].sum(axis=0))
    # every parameter: the chain from the loss back, autodiff and central differences agree
    assert [t["parameter"] for t in e.terms] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    W1 = e.term("0.weight")
    assert W1["equation"] == ("∂L/∂W¹ = ∂L/∂z³ · ∂z³/∂a² · ∂a²/∂z² · ∂z²/∂a¹ · ∂a¹/∂z¹ · ∂z¹/∂W¹")
    assert [c["unit"] for c in W1["chain"]] == [
        "loss unit",
        "linear unit Σ",
        "activation σ",
        "linear unit Σ",
        "activation σ",
        "linear unit Σ",
    ]
    for t in e.terms:
        np.testing.assert_allclose(t["product"], t["autodiff"], rtol=1e-12, atol=1e-15)
        assert len(t["checked"]) == t["n_entries"] and not t["sampled"]
        assert t["ok"], t["parameter"]
    assert e.max_abs_diff < 1e-8
    text = str(e)
    for piece in (
        "Forward pass",
        "Back-propagation",
        "layer 4 (Linear 16→2)",
        "layer 3 (Tanh), activation σ",
        "receives   ∂L/∂z³",
        "hands on   ∂L/∂a²",
        "local term ∂a²/∂z² = 1 − (a²)²",
        "0.weight (W¹, (16, 2))",
        "central differences on all 32 entries",
    ):
        assert piece in text, piece
    assert max(len(line) for line in text.splitlines()) < 200


def test_gradients_match_pytorch(net_2_16_16_2):
    torch = pytest.importorskip("torch")
    x = np.array([[0.5, -1.2], [1.0, 0.3]])
    y = np.array([1, 0])
    e = explain(net_2_16_16_2, x, y, nn.CrossEntropyLoss())
    tm = torch.nn.Sequential(
        torch.nn.Linear(2, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 2),
    ).double()
    with torch.no_grad():
        for name, p in net_2_16_16_2.named_parameters():
            dict(tm.named_parameters())[name].copy_(torch.from_numpy(p.data.astype(np.float64)))
    loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(e.term(name)["autodiff"], p.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert e.loss == pytest.approx(loss.item(), rel=1e-12)


def test_the_model_is_left_as_it_was_even_with_gradients_from_training(net_2_16_16_2):
    model = net_2_16_16_2
    X = np.array([[0.5, -1.2], [1.0, 0.3]], dtype=np.float32)
    y = np.array([1, 0])
    loss = nn.CrossEntropyLoss()(model(X), y)
    loss.backward()  # a model fresh from training carries .grad
    stale = {n: p.grad.copy() for n, p in model.named_parameters()}
    model.train()
    e = explain(model, X[:1], y[:1], nn.CrossEntropyLoss())
    assert e.ok  # the copy's gradients started from zero
    for n, p in model.named_parameters():
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(p.grad, stale[n])
    assert model.training


def test_big_network_checks_sampled_entries_and_says_so():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    X = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
    e = explain(model, X, np.arange(8) % 10, nn.CrossEntropyLoss())
    w = e.term("0.weight")
    assert w["sampled"] and len(w["checked"]) == 4 and w["n_entries"] == 64 * 48
    # the largest |gradient| is among the checked entries
    big = np.unravel_index(np.argmax(np.abs(w["autodiff"])), w["autodiff"].shape)
    assert tuple(int(v) for v in big) in w["checked"]
    assert e.ok
    assert "sampled entries" in str(e) and "not on every entry" in str(e)


def test_check_false_skips_central_differences(net_2_16_16_2):
    e = explain(
        net_2_16_16_2, np.array([0.1, 0.2]), np.array([0]), nn.CrossEntropyLoss(), check=False
    )
    assert all(t["numeric"] is None for t in e.terms)
    assert math.isnan(e.max_abs_diff)
    assert "check=False" in str(e)


def test_functions_called_between_layers_get_rows_of_their_own():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(3, 4)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(cr.tanh(self.hidden(x)))

    cr.manual_seed(3)
    e = explain(Net(), np.array([0.2, -0.4, 1.0]), np.array([1]), nn.CrossEntropyLoss())
    assert [r["layer"] for r in e.forward[1:-1]] == ["Linear", "tanh", "Linear"]
    assert e.term("hidden.weight")["equation"] == "∂L/∂W¹ = ∂L/∂z² · ∂z²/∂a¹ · ∂a¹/∂z¹ · ∂z¹/∂W¹"
    assert e.ok


def test_other_layers_and_losses_explain_and_check():
    cr.manual_seed(1)
    model = nn.Sequential(
        nn.Linear(3, 5),
        nn.Dropout(0.5),
        nn.LeakyReLU(),
        nn.BatchNorm1d(5),
        nn.Linear(5, 3),
        nn.LogSoftmax(),
    )
    X = np.random.default_rng(1).normal(size=(4, 3))
    e = explain(model, X, np.array([0, 1, 2, 1]), nn.NLLLoss())
    assert e.ok
    assert "passes ∂L/∂z¹ on unchanged" in str(e)  # Dropout in eval mode
    assert "the LogSoftmax Jacobian (not elementwise)" in str(e)
    reg = nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1))
    e = explain(reg, np.array([[0.3, 0.1], [1.0, -2.0]]), np.array([[0.5], [1.5]]), nn.MSELoss())
    assert e.ok and "2(z² − y)" in str(e)


def test_html_is_a_self_contained_fragment(net_2_16_16_2):
    e = explain(net_2_16_16_2, np.array([0.1, 0.2]), np.array([0]), nn.CrossEntropyLoss())
    h = e.to_html()
    assert h.startswith('<div class="cr-explain">') and h.endswith("</div>")
    assert "http" not in h and "<script" not in h and "url(" not in h
    assert h.count("<table") == 3
    assert "∂L/∂W¹" in h and 'class="t-loss"' in h
    assert e._repr_html_() == h
    hn = demo("llc").to_html()
    assert "∂L/∂w" in hn and "central difference" in hn and "http" not in hn


def test_graph_of_the_explained_loss(net_2_16_16_2):
    e = explain(net_2_16_16_2, np.array([0.1, 0.2]), np.array([0]), nn.CrossEntropyLoss())
    g = e.graph()
    assert g.svg.startswith("<svg")
    names = {n["name"] for n in g.nodes}
    assert {"0.weight", "4.bias"} <= names


# ------------------------------------------------------------------------------------------------
# the notes' composition, and errors
# ------------------------------------------------------------------------------------------------


def test_demo_composition_shows_sin36_and_3cos36():
    e = demo("composition")
    text = str(e)
    assert "sin(36)" in text and "3cos(36)" in text
    assert "f(10) = 10 + 2 = 12" in text and "g(12) = 3 · 12 = 36" in text
    t = e.terms[0]
    assert [c["symbol"] for c in t["chain"]] == ["dh/dg", "dg/df", "df/dx"]
    assert [float(c["value"]) for c in t["chain"]] == pytest.approx([math.cos(36), 3, 1])
    assert float(t["product"]) == pytest.approx(3 * math.cos(36), rel=1e-12)
    assert float(t["autodiff"]) == pytest.approx(3 * math.cos(36), rel=1e-12)
    assert t["ok"]
    assert e.loss == pytest.approx(math.sin(36), rel=1e-12)
    assert f"{math.sin(36):+.6f}" in text and f"{3 * math.cos(36):+.10f}" in text
    assert "sin(36)" in e.to_html()


def test_errors_are_clear():
    with pytest.raises(ChainruleError, match="unknown demo 'xor'"):
        demo("xor")
    with pytest.raises(ChainruleError, match="x has 2 rows but y has 3"):
        explain(_neuron([1.0], 0.0), np.ones((2, 1)), np.ones(3), nn.BCELoss())
    with pytest.raises(ChainruleError, match="Module"):
        explain(lambda x: x, np.ones((1, 1)), np.ones(1), nn.BCELoss())


def test_cr_explain_stays_the_function_after_the_module_is_imported():
    import importlib

    import chainrule as cr

    importlib.import_module("chainrule.explain")
    from chainrule.explain import demo  # noqa: F401 - importing the submodule again

    assert callable(cr.explain) and cr.explain.__module__ == "chainrule.explain"
    net = cr.nn.Sequential(cr.nn.Linear(2, 1), cr.nn.Sigmoid())
    for _ in range(2):
        assert cr.explain(net, [[0.5, -1.0]], [[1.0]], cr.nn.BCELoss()).ok


# ------------------------------------------------------------------------------------------------
# measured through the engine; the records; the notebook view
# ------------------------------------------------------------------------------------------------


class _CubeUnit(cr.Unit):
    """x³, whose backward leaves two jobs to the engine: it returns float32 with a leading
    axis of one, which the engine sums away (unbroadcast) and casts to the input's dtype."""

    name = "cube_for_test"

    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return a**3

    @staticmethod
    def backward(ctx, grad):
        return (3 * ctx.a**2 * grad).astype(np.float32)[None]


class _Cube(nn.Module, role="activation", elementwise=True, keeps_shape=True, derivative="3{i}²"):
    def forward(self, x):
        return _CubeUnit.apply(x)


def test_local_terms_are_measured_through_the_engine_with_its_unbroadcast_and_cast():
    cr.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 4), _Cube(), nn.Linear(4, 2))
    x = np.array([[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]])
    e = explain(model, x, np.array([1, 0]), nn.CrossEntropyLoss())
    cube = next(ly for ly in e.layers if ly["layer"] == "_Cube")
    z1 = e.forward[1]["output"]
    # the unit's own backward would give a (1, 2, 4) float32 array; the engine hands back (2, 4)
    assert cube.elementwise and cube.local.shape == z1.shape and cube.local.dtype == np.float64
    np.testing.assert_allclose(cube.local, 3 * z1**2, rtol=1e-6)
    np.testing.assert_allclose(cube.handed_on, cube.upstream * cube.local, rtol=1e-6)
    assert cube.local_text == "3z¹²" and e.ok


def test_records_are_typed_and_read_like_the_documented_dicts(net_2_16_16_2):
    from chainrule.explain.records import ChainTerm, ForwardStep, LayerStep, ParameterTerms

    e = explain(net_2_16_16_2, np.array([0.1, 0.2]), np.array([0]), nn.CrossEntropyLoss())
    assert all(isinstance(r, ForwardStep) for r in e.forward)
    assert all(isinstance(ly, LayerStep) for ly in e.layers)
    t = e.term("2.weight")
    assert isinstance(t, ParameterTerms) and all(isinstance(c, ChainTerm) for c in t.chain)
    assert t["numeric"] is t.check.numeric and t["ok"] is t.check.ok and "chain" in t
    assert e.forward[1]["symbol"] == e.forward[1].symbol == "z¹"
    with pytest.raises(KeyError):
        e.forward[0]["no such field"]
    # the gradient each layer receives is what the engine's own backward delivers there
    out = e.forward[-2]
    np.testing.assert_allclose(e.layers[0].handed_on, e.layers[1].upstream)
    assert out.symbol == "z³"


def test_html_reads_left_aligned_under_jupyterlabs_output_styles(net_2_16_16_2):
    """JupyterLab right-aligns the cells of output tables and centres the tables
    (@jupyterlab/rendermime's rules below); the explanation keeps its own alignment."""
    jupyterlab_css = (
        ".jp-RenderedHTMLCommon table{border-collapse:collapse;border-spacing:0;border:none;"
        "table-layout:fixed;margin-left:auto;margin-bottom:1em;margin-right:auto}"
        ".jp-RenderedHTMLCommon td,.jp-RenderedHTMLCommon th,.jp-RenderedHTMLCommon tr{"
        "vertical-align:middle;padding:0.5em;line-height:normal;white-space:normal;"
        "max-width:none;border:none}"
        ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td,"
        ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon th,"
        ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon tr{text-align:right}"
    )
    e = explain(net_2_16_16_2, np.array([0.1, 0.2]), np.array([0]), nn.CrossEntropyLoss())
    page_html = (
        f"<html><head><style>{jupyterlab_css}</style></head><body style='width:1400px'>"
        f'<div class="jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output">'
        f"{e.to_html()}</div></body></html>"
    )
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.set_content(page_html)
        aligns = page.eval_on_selector_all(
            ".cr-explain td, .cr-explain th",
            "els => els.map(e => getComputedStyle(e).textAlign)",
        )
        assert aligns and set(aligns) == {"left"}, set(aligns)
        box = page.locator(".cr-explain").bounding_box()
        for i in range(page.locator(".cr-explain table").count()):
            t = page.locator(".cr-explain table").nth(i).bounding_box()
            assert t["x"] - box["x"] < 2, "a table is not at the left edge"
