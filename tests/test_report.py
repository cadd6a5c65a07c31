"""The training pictures and the HTML report, and a headless browser that opens the report."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser import chromium

import chainrule as cr
import chainrule.nn as nn

pytest.importorskip("matplotlib")

from chainrule.data import Standardizer, load_dataset  # noqa: E402
from chainrule.report import SECTIONS, write_report  # noqa: E402
from chainrule.train import fit  # noqa: E402
from chainrule.viz import plots  # noqa: E402


def _train_spiral(epochs=12, n=300, seed=0):
    """A small 2-16-16-2 model on the spiral, with the metadata 'chainrule train' writes."""
    ds = load_dataset("spiral", n_samples=n, seed=seed)
    scaler = Standardizer().fit(ds.X)
    Xs = scaler.transform(ds.X)
    cr.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2)
    )
    opt = cr.optim.Adam(model.parameters(), lr=0.02)
    hist = fit(
        model,
        nn.CrossEntropyLoss(),
        opt,
        Xs,
        ds.y,
        epochs=epochs,
        batch_size=32,
        validation=0.2,
        seed=seed,
        track_grad_norms=True,
    )
    info = {
        "architecture": {"type": "Sequential"},
        "preprocessing": {
            "feature_names": ds.feature_names,
            "standardizer": scaler.to_dict(),
            "task": "classification",
            "target": "class",
            "label_names": ds.target_names,
            "output": "logits",
            "loss": "cross_entropy",
        },
        "training": {
            "dataset": "spiral",
            "hidden": [16, 16],
            "activation": "tanh",
            "optimizer": "adam",
            "lr": 0.02,
            "epochs": epochs,
            "seed": seed,
            "history": hist.to_dict(),
        },
        "metrics": {
            "train": {"loss": hist["loss"][-1], "accuracy": hist["accuracy"][-1]},
            "validation": {"loss": hist["val_loss"][-1], "accuracy": hist["val_accuracy"][-1]},
        },
        "format_version": "1",
    }
    return model, info, ds


import chainrule.optim  # noqa: E402,F401  (cr.optim for the fixture)


@pytest.fixture(scope="module")
def spiral():
    return _train_spiral()


@pytest.fixture(scope="module")
def spiral_report(spiral, tmp_path_factory):
    model, info, ds = spiral
    path = tmp_path_factory.mktemp("report") / "report.html"
    out = write_report(path, model, info, ds.X, ds.y, sample_index=3)
    assert out == str(path)
    return path


# ------------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------------


def test_plots_return_figures_and_inline_forms(spiral):
    model, info, ds = spiral
    hist = info["training"]["history"]
    figs = [
        plots.loss_curves(hist),
        plots.grad_norms(hist),
        plots.decision_boundary(
            model,
            ds.X,
            ds.y,
            standardizer=info["preprocessing"]["standardizer"],
            label_names=ds.target_names,
        ),
        plots.network_picture(model, feature_names=ds.feature_names, label_names=ds.target_names),
    ]
    for fig in figs:
        png = plots.to_png(fig)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"matplotlib.org" not in png
        assert plots.png_data_uri(fig).startswith("data:image/png;base64,")
        svg = plots.to_svg(fig)
        assert svg.startswith("<svg") and "http" not in svg
    # loss panel + accuracy panel
    assert len(plots.loss_curves(hist).axes) == 2
    # the History object, its to_dict() and its plain dict all work
    assert plots.history_parts(hist)[1]["loss"] == hist["history"]["loss"]
    assert plots.history_parts(hist["history"])[1]["loss"] == hist["history"]["loss"]


def test_network_picture_caps_wide_layers():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    fig = plots.network_picture(model, max_neurons=12, max_edges=100)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "12 of 784 shown" in texts and "12 of 256 shown" in texts
    segs = sum(len(c.get_segments()) for c in fig.axes[0].collections if hasattr(c, "get_segments"))
    assert segs <= 200


def test_plot_errors():
    with pytest.raises(ValueError, match="track_grad_norms"):
        plots.grad_norms({"history": {"loss": [1.0]}, "grad_norms": {}})
    with pytest.raises(ValueError, match="2 features"):
        plots.decision_boundary(nn.Sequential(nn.Linear(3, 2)), np.zeros((4, 3)), np.zeros(4))


def test_import_viz_does_not_import_matplotlib():
    code = "import sys, chainrule.viz; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------
# the report file
# ------------------------------------------------------------------------------------------------


def test_report_has_every_section_and_is_self_contained(spiral_report):
    text = spiral_report.read_text(encoding="utf-8")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text, sid
    # nothing that could reach the network: no URL of any kind, no script, no CSS url()
    assert not re.search(r"(?i)(https?|wss?|ftp)://", text)
    assert "<script" not in text and "@import" not in text
    assert not re.search(r"url\((?!#)", text)  # only in-page references such as url(#arrow)
    assert "<link" not in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert text.count("<svg") >= 1
    # the settings, the summary table and the explanation of row 4
    assert "adam" in text and "arm-0" in text and "354" in text
    assert "One sample explained: row 4" in text
    assert "∂L/∂W¹" in text and "central differences" in text
    assert "the recorded graph of row 4" in text


def test_report_copes_with_missing_metadata(spiral, tmp_path):
    model, _, ds = spiral
    path = write_report(tmp_path / "bare.html", model, {}, ds.X[:50], ds.y[:50])
    text = Path(path).read_text(encoding="utf-8")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text
    assert "No training history" in text and "Not recorded" in text
    assert "No standardizer" in text
    assert not re.search(r"(?i)https?://", text)


def test_report_for_many_features_and_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)) * 3 + 1
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 10
    scaler = Standardizer().fit(X)
    ys = Standardizer().fit(y.reshape(-1, 1))
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
    fit(
        model,
        nn.MSELoss(),
        cr.optim.Adam(model.parameters(), lr=0.01),
        scaler.transform(X),
        ys.transform(y.reshape(-1, 1)).astype(np.float32),
        epochs=3,
        metrics=("r2",),
    )
    info = {
        "preprocessing": {
            "feature_names": list("abcde"),
            "task": "regression",
            "standardizer": scaler.to_dict(),
            "loss": "mse",
            "target_standardizer": ys.to_dict(),
            "output": "value",
        }
    }
    path = write_report(tmp_path / "reg.html", model, info, X, y, sample_index=5)
    text = Path(path).read_text(encoding="utf-8")
    assert "Drawn for two features only; this model has 5." in text
    assert "MSELoss" in text and "r2" in text
    assert "One sample explained: row 6" in text


def test_report_maps_label_names_and_checks_arguments(spiral, tmp_path):
    model, info, ds = spiral
    names = np.array(ds.target_names)[ds.y]  # labels as their names
    path = write_report(tmp_path / "names.html", model, info, ds.X, names)
    assert "arm-" in Path(path).read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="out of range"):
        write_report(tmp_path / "x.html", model, info, ds.X, ds.y, sample_index=len(ds.X))
    with pytest.raises(ValueError, match="rows but y has"):
        write_report(tmp_path / "x.html", model, info, ds.X, ds.y[:3])


# ------------------------------------------------------------------------------------------------
# a real browser opens the report
# ------------------------------------------------------------------------------------------------


def test_report_in_headless_chromium(spiral_report, tmp_path):
    requests = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("websocket", lambda ws: requests.append(ws.url))
        page.goto(spiral_report.resolve().as_uri(), wait_until="load")
        # every section and every picture is there, visible and not empty
        for sid in SECTIONS:
            loc = page.locator(f"section#{sid}")
            assert loc.count() == 1, sid
            assert loc.is_visible(), sid
            box = loc.bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, sid
        images = page.locator("img")
        assert images.count() == 4
        for i in range(images.count()):
            img = images.nth(i)
            img.scroll_into_view_if_needed()
            assert img.is_visible()
            assert img.evaluate("e => e.complete && e.naturalWidth > 0 && e.naturalHeight > 0")
            box = img.bounding_box()
            assert box["width"] > 50 and box["height"] > 50
        svgs = page.locator("section svg")
        assert svgs.count() >= 1
        for i in range(svgs.count()):
            box = svgs.nth(i).bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0
        assert page.locator("#graph svg").is_visible()
        assert page.locator("#explanation table").count() == 3
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    # only the file itself (and inline data: images) was loaded: nothing from the network
    assert requests, "the page load was not recorded"
    bad = [u for u in requests if not (u.startswith("file:") or u.startswith("data:"))]
    assert not bad, f"the report tried to load {bad[:3]}"
    assert not [u for u in requests if re.match(r"(?i)(https?|wss?):", u)]
