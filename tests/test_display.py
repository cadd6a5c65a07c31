"""Notebook display without a kernel: pictures with _repr_png_, HTML views of summary(),
History and model-file info, fit(progress=...), and LivePlot's in-place redraws."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.callbacks import LivePlot, ProgressBar, is_interactive, progress_bar
from chainrule.display import ModelInfo, Summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained():
    ds = cr.data.load_dataset("circle", n_samples=120, seed=0)
    scaler = cr.data.Standardizer().fit(ds.X)
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 2))
    hist = cr.fit(
        model,
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=0.05),
        scaler.transform(ds.X),
        ds.y,
        epochs=12,
        validation=0.25,
        seed=0,
        track_grad_norms=True,
    )
    return ds, scaler, model, hist


def circle_fit(epochs=4, **kw):
    ds = cr.data.load_dataset("circle", n_samples=64, seed=1)
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    return model, cr.fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        ds.X,
        ds.y,
        epochs=epochs,
        batch_size=16,
        **kw,
    )


# ------------------------------------------------------------------------------------------------
# pictures
# ------------------------------------------------------------------------------------------------


def test_every_plot_displays_itself_as_png_and_still_saves(trained, tmp_path):
    pytest.importorskip("matplotlib")
    from chainrule.viz import plots

    ds, scaler, model, hist = trained
    figs = {
        "curves": plots.loss_curves(hist),
        "grad_norms": plots.grad_norms(hist),
        "boundary": plots.decision_boundary(model, ds.X, ds.y, standardizer=scaler, resolution=40),
        "network": plots.network_picture(model),
        "history.plot": hist.plot(),
    }
    for name, fig in figs.items():
        data, meta = fig._repr_png_()
        assert data.startswith(PNG_MAGIC), name
        width = int.from_bytes(data[16:20], "big")
        assert meta["width"] == width // 2 and meta["height"] > 0, name
        assert "chainrule figure" in repr(fig)
    fig = figs["boundary"]  # files are written as before
    fig.savefig(tmp_path / "b.png")
    fig.savefig(tmp_path / "b.svg")
    assert (tmp_path / "b.png").read_bytes().startswith(PNG_MAGIC)
    assert "<svg" in (tmp_path / "b.svg").read_text()


def test_plots_never_touch_pyplot():
    pytest.importorskip("matplotlib")
    code = (
        "import numpy as np, sys, matplotlib; from chainrule.viz import plots; "
        "f = plots.loss_curves({'loss': [1.0, 0.5]}); f._repr_png_(); "
        "print('matplotlib.pyplot' in sys.modules, matplotlib.get_backend() if "
        "'matplotlib.pyplot' in sys.modules else '-')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


def test_curves_draw_into_given_axes_with_an_x_label(trained):
    pytest.importorskip("matplotlib")
    from chainrule.viz import plots

    _, _, _, hist = trained
    assert plots.curve_panels(hist) == ["loss", "accuracy"]
    fig = plots._figure(9, 3)
    axes = fig.subplots(1, 3)
    assert plots.loss_curves(hist, axes=axes[:2], xlabel="step") is fig
    assert axes[0].get_xlabel() == "step" and len(axes[2].lines) == 0
    with pytest.raises(ValueError, match="needs 2 axes"):
        plots.loss_curves(hist, axes=axes[:1])


# ------------------------------------------------------------------------------------------------
# HTML views
# ------------------------------------------------------------------------------------------------


def test_summary_is_the_same_text_and_an_html_table(trained):
    _, _, model, _ = trained
    s = model.summary(input_shape=2)
    assert isinstance(s, str) and isinstance(s, Summary)
    assert s.startswith('Model: "Sequential"') and "Total params: 32" in s
    assert [r["unit"] for r in s.rows] == ["linear unit Σ", "activation σ", "linear unit Σ"]
    assert [r["output_shape"] for r in s.rows] == ["(None, 6)", "(None, 6)", "(None, 2)"]
    html = s._repr_html_()
    assert html.count("<tr>") == 1 + 3 + 1 and "in_features=2, out_features=6" in html
    assert ">32<" in html and "<script" not in html


def test_summary_html_escapes_names():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("<b>x</b>", nn.Linear(1, 1))

        def forward(self, x):
            return x

    html = Odd().summary()._repr_html_()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_history_html_shows_first_and_last_epochs_and_curves(trained):
    _, _, _, hist = trained
    html = hist._repr_html_()
    assert "<th>val_accuracy</th>" in html
    rows = html.split("<tr>")[2:]
    shown = [r.split("</td>")[0].replace("<td>", "") for r in rows]
    assert shown[:2] == ["1", "2"] and "…" in rows[2] and shown[-1].startswith("12")
    assert "12 epochs in" in html and 'src="data:image/png;base64,' in html


def test_history_html_marks_the_best_epoch_and_handles_empty():
    h = cr.History()
    assert "no epochs" in h._repr_html_()
    for e, v in enumerate([0.9, 0.5, 0.7], start=1):
        h.append(e, {"loss": v})
    h.best_epoch, h.stop_reason = 2, "early stopping: loss did not improve for 1 epochs"
    html = h._repr_html_()
    assert "<td>2 ★</td>" in html and "early stopping" in html and "…" not in html


def test_model_file_info_is_a_dict_with_an_html_view(trained, tmp_path):
    pytest.importorskip("safetensors")
    ds, scaler, model, hist = trained
    path = tmp_path / "m.safetensors"
    cr.save(
        model,
        path,
        preprocessing={
            "task": "classification",
            "feature_names": ds.feature_names,
            "standardizer": scaler.to_dict(),
        },
        training={"epochs": 12, "lr": 0.05, "history": hist.to_dict()},
        metrics={"accuracy": 0.875},
    )
    _, info = cr.load(path, with_info=True)
    assert isinstance(info, ModelInfo) and isinstance(info, dict)
    assert json.loads(json.dumps(info))["metrics"] == {"accuracy": 0.875}
    html = info._repr_html_()
    assert "2 → Linear(6) → Tanh → Linear(2)" in html
    assert "<h4>Preprocessing</h4>" in html and "<h4>Metrics</h4>" in html
    assert ">0.875<" in html and "data:image/png;base64," in html
    assert isinstance(cr.io.read_info(path), ModelInfo)


# ------------------------------------------------------------------------------------------------
# progress bars
# ------------------------------------------------------------------------------------------------


def test_progress_true_shows_nothing_when_not_interactive(capsys):
    assert not is_interactive(io.StringIO())
    assert progress_bar(True, file=io.StringIO()) is None
    assert progress_bar(False) is None and progress_bar(None) is None
    circle_fit(progress=True)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_tqdm_when_asked_ends_with_the_last_epochs_numbers(capsys):
    pytest.importorskip("tqdm")
    _, hist = circle_fit(epochs=5, progress="tqdm")
    err = capsys.readouterr().err
    assert "5/5" in err and "100%" in err
    assert f"loss={hist['loss'][-1]:.4g}" in err and "accuracy=" in err


def test_progress_rich_when_asked(capsys):
    pytest.importorskip("rich")
    buf = io.StringIO()
    bar = ProgressBar("rich", file=buf)
    _, hist = circle_fit(epochs=3, callbacks=[bar])
    text = buf.getvalue()
    assert "3/3" in text and f"loss {hist['loss'][-1]:.4g}" in text


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_progress_bad_values_and_a_failed_run_closes_the_bar():
    with pytest.raises(ValueError, match="progress must be"):
        progress_bar("fancy")
    with pytest.raises(ValueError, match="backend must be"):
        ProgressBar("curses")
    pytest.importorskip("tqdm")
    closed = []

    class Bar(ProgressBar):
        def close(self):
            closed.append(True)
            super().close()

    X = np.array([[1e30], [2e30]], dtype=np.float32)
    model = nn.Sequential(nn.Linear(1, 1))
    with pytest.raises(cr.errors.TrainingError):
        cr.fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=1e10),
            X,
            np.array([[1.0], [2.0]], dtype=np.float32),
            epochs=3,
            progress=Bar("tqdm", file=io.StringIO()),
        )
    assert closed


# ------------------------------------------------------------------------------------------------
# LivePlot
# ------------------------------------------------------------------------------------------------


def test_liveplot_redraws_one_output_in_place_in_a_notebook(monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("IPython")
    import IPython.display

    import chainrule.callbacks as cb

    calls = []

    class Handle:
        def update(self, obj):
            calls.append(("update", obj._repr_png_()[0][:8]))

    monkeypatch.setattr(cb, "in_notebook", lambda: True)
    monkeypatch.setattr(
        IPython.display,
        "display",
        lambda obj, display_id=False: calls.append(("display", display_id)) or Handle(),
    )
    live = LivePlot(every=0, resolution=20)
    model, _ = circle_fit(epochs=4, callbacks=[live])
    assert calls[0] == ("display", True)
    assert calls[1:] == [("update", PNG_MAGIC)] * 3 and live.redraws == 4
    assert len(live.figure.axes) == 3  # loss, accuracy, decision boundary
    assert live.figure.axes[2].get_title() == "decision boundary"


def test_liveplot_writes_a_file_outside_a_notebook(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "live.png"
    live = LivePlot(path=path, every=0, resolution=20)
    circle_fit(epochs=3, callbacks=[live])
    assert path.read_bytes().startswith(PNG_MAGIC) and live.redraws == 3
    assert [p.name for p in tmp_path.iterdir()] == ["live.png"]  # no temporary files left


def test_liveplot_without_a_place_to_show_draws_once_and_skips_the_boundary_for_3_features():
    pytest.importorskip("matplotlib")
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(3, 2))
    live = LivePlot(every=0)
    cr.fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        X,
        y,
        epochs=3,
        callbacks=[live],
    )
    assert live.redraws == 1 and len(live.figure.axes) == 2
    with pytest.raises(ValueError, match="exactly 2 features"):
        cr.fit(
            model,
            nn.CrossEntropyLoss(),
            optim.SGD(model.parameters(), lr=0.1),
            X,
            y,
            epochs=1,
            callbacks=[LivePlot(boundary=True)],
        )
