"""The ``chainrule`` command, run as a subprocess on generated files, as a user runs it.

Covers: each command on a classification CSV with text labels and on a regression CSV; the
round trip train -> save -> load -> predict; the default spiral run reaching 95%; and every bad
input of the issue, each ending in one line on stderr with no traceback.
"""

import csv
import importlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("click")
pytest.importorskip("rich")
pytest.importorskip("safetensors")

import chainrule.io as crio  # noqa: E402
from chainrule.data import Standardizer  # noqa: E402


def run(*args, cwd=None, ok=True):
    """Run ``chainrule ARGS`` in a fresh interpreter; return the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    if ok:
        assert proc.returncode == 0, f"chainrule {' '.join(map(str, args))}:\n{proc.stderr}"
    return proc


def fails(*args, code=1, cwd=None):
    """Run a command that must fail: one 'error: ...' line on stderr, no traceback."""
    proc = run(*args, cwd=cwd, ok=False)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err, err
    assert "Traceback" not in proc.stderr
    return err


def write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_csv(path_or_text, from_text=False):
    text = path_or_text if from_text else Path(path_or_text).read_text()
    rows = list(csv.reader(text.splitlines()))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A classification CSV (text labels, an id column) and a regression CSV."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    centres = {"red": (-3, 0), "green": (3, 0), "blue": (0, 4)}
    rows = []
    for i in range(150):
        label = list(centres)[i % 3]
        cx, cy = centres[label]
        rows.append(
            [f"p{i}", f"{cx + 0.7 * rng.normal():.4f}", f"{cy + 0.7 * rng.normal():.4f}", label]
        )
    cls = write_csv(d / "colours.csv", ["name", "x", "y", "colour"], rows)
    X = rng.uniform(-2, 2, size=(200, 2))
    target = 1000 + 30 * X[:, 0] - 20 * X[:, 1] + rng.normal(scale=1, size=200)
    reg = write_csv(
        d / "houses.csv",
        ["size", "age", "price"],
        [[f"{a:.4f}", f"{b:.4f}", f"{t:.3f}"] for (a, b), t in zip(X, target, strict=True)],
    )
    return {"dir": d, "cls": cls, "reg": reg, "X_reg": X, "y_reg": target}


@pytest.fixture(scope="module")
def cls_model(files):
    out = files["dir"] / "colours.safetensors"
    proc = run(
        "train",
        "--data",
        files["cls"],
        "--target",
        "colour",
        "--id-column",
        "name",
        "--epochs",
        "30",
        "--out",
        out,
    )
    return out, proc


@pytest.fixture(scope="module")
def reg_model(files):
    out = files["dir"] / "houses.safetensors"
    proc = run("train", "--data", files["reg"], "--target", "price", "--epochs", "60", "--out", out)
    return out, proc


# --- the commands ---------------------------------------------------------------------------


def test_entry_point_and_help():
    exe = os.path.join(os.path.dirname(sys.executable), "chainrule")
    if os.path.exists(exe):
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
        assert proc.returncode == 0 and "chainrule" in proc.stdout
    out = run("--help").stdout
    for cmd in ("datasets", "train", "evaluate", "predict", "summary", "explain", "report"):
        assert cmd in out
    assert "train" in run().stdout  # no arguments: the help, not an error
    assert "--hidden" in run("train", "--help").stdout


def test_datasets_lists_every_builtin_set():
    out = run("datasets").stdout
    for name in (
        "circle",
        "xor",
        "gauss",
        "spiral",
        "moons",
        "digits",
        "iris",
        "wine",
        "breast-cancer",
        "mnist1d",
    ):
        assert name in out
    assert "1797" in out and "Playground" in out


def test_train_spiral_with_defaults_reaches_95_percent(tmp_path):
    proc = run("train", "--dataset", "spiral", cwd=tmp_path)
    info = crio.read_info(tmp_path / "model.safetensors")
    assert info["metrics"]["train"]["accuracy"] >= 0.95
    assert "accuracy" in proc.stdout and "validation" in proc.stdout
    assert "saved model.safetensors" in proc.stdout
    hist = info["training"]["history"]
    assert len(hist["history"]["loss"]) == info["training"]["epochs"]
    assert hist["grad_norms"] and all(
        len(v) == len(hist["epochs"]) for v in hist["grad_norms"].values()
    )


def test_train_classification_csv_with_text_labels(cls_model):
    out, proc = cls_model
    assert "3 classes: blue, green, red" in proc.stdout
    assert "epoch 30/30" in proc.stdout
    info = crio.read_info(out)
    pre = info["preprocessing"]
    assert pre["feature_names"] == ["x", "y"]  # the id column is not a feature
    assert pre["label_names"] == ["blue", "green", "red"]
    assert pre["task"] == "classification" and pre["target"] == "colour"
    assert pre["loss"] == "cross_entropy" and pre["output"] == "logits"
    assert set(pre["standardizer"]) == {"mean", "scale"}
    assert info["metrics"]["validation"]["accuracy"] > 0.9
    assert info["training"]["epochs_run"] == 30 and info["training"]["seed"] == 0


def test_evaluate_classification(files, cls_model):
    out = run("evaluate", cls_model[0], "--data", files["cls"], "--id-column", "name").stdout
    assert "accuracy" in out and "precision" in out and "recall" in out
    assert "confusion matrix" in out
    for label in ("blue", "green", "red"):
        assert label in out


def test_predict_writes_label_names_and_keeps_id_columns(files, cls_model, tmp_path):
    dest = tmp_path / "pred.csv"
    run(
        "predict",
        cls_model[0],
        "--data",
        files["cls"],
        "--id-column",
        "name",
        "--output",
        dest,
        "--proba",
    )
    header, rows = read_csv(dest)
    assert header == ["name", "prediction", "p_blue", "p_green", "p_red"]
    assert len(rows) == 150 and rows[0][0] == "p0"
    _, truth = read_csv(files["cls"])
    acc = np.mean([r[1] == t[3] for r, t in zip(rows, truth, strict=True)])
    assert acc > 0.9
    p = np.array([[float(v) for v in r[2:]] for r in rows])
    assert np.allclose(p.sum(axis=1), 1, atol=1e-5)
    # without --output the CSV goes to stdout; the id column named at training is kept
    header2, rows2 = read_csv(
        run("predict", cls_model[0], "--data", files["cls"]).stdout, from_text=True
    )
    assert header2 == ["name", "prediction"] and [r[:2] for r in rows] == rows2


def test_regression_csv(files, reg_model, tmp_path):
    out, proc = reg_model
    assert "regression on 'price'" in proc.stdout
    info = crio.read_info(out)
    pre = info["preprocessing"]
    assert pre["task"] == "regression" and pre["label_names"] is None
    assert "target_standardizer" in pre and info["metrics"]["validation"]["r2"] > 0.9
    ev = run("evaluate", out, "--data", files["reg"]).stdout
    for key in ("mse", "mae", "r2"):
        assert key in ev
    dest = tmp_path / "prices.csv"
    run("predict", out, "--data", files["reg"], "--output", dest)
    header, rows = read_csv(dest)
    assert header == ["prediction"]
    pred = np.array([float(r[0]) for r in rows])
    assert np.mean(np.abs(pred - files["y_reg"])) < 10  # in the target's own units (~1000)
    err = fails("predict", out, "--data", files["reg"], "--proba")
    assert "regression" in err


def test_round_trip_train_save_load_predict_identical(files, cls_model, tmp_path):
    """The CLI's predictions equal those of the model loaded in Python, bit for bit."""
    import chainrule.train as crtrain
    from chainrule.metrics import predict_classes

    model, info = crio.load(cls_model[0], with_info=True)
    pre = info["preprocessing"]
    X = np.loadtxt(files["cls"], delimiter=",", skiprows=1, usecols=(1, 2), dtype=np.float32)
    outputs = crtrain.predict(model, Standardizer.from_dict(pre["standardizer"]).transform(X))
    labels = np.asarray(pre["label_names"])[predict_classes(outputs)]
    dest = tmp_path / "p.csv"
    run("predict", cls_model[0], "--data", files["cls"], "--output", dest)
    _, rows = read_csv(dest)
    assert [r[1] for r in rows] == labels.tolist()
    # saving the loaded model again and loading it gives exactly the same outputs
    again = crio.save(model, tmp_path / "again.safetensors", preprocessing=pre)
    assert np.array_equal(crtrain.predict(crio.load(again), X), crtrain.predict(model, X))
    assert crio.read_info(again)["preprocessing"] == pre


def test_same_seed_same_model(files, tmp_path):
    paths = []
    for i, seed in enumerate((3, 3, 4)):
        p = tmp_path / f"m{i}.safetensors"
        run(
            "train",
            "--data",
            files["cls"],
            "--target",
            "colour",
            "--id-column",
            "name",
            "--epochs",
            "3",
            "--seed",
            seed,
            "-q",
            "--out",
            p,
        )
        paths.append(p)
    from safetensors.numpy import load_file

    a, b, c = (load_file(p) for p in paths)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_summary(cls_model):
    out = run("summary", cls_model[0]).stdout
    assert "Linear(2 -> 16)" in out and "total" in out
    assert "colour" in out and "blue, green, red" in out
    assert "adam" in out and "accuracy" in out


def test_file_formats_npz_parquet_semicolon(files, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = run(
        "train",
        "--data",
        tmp_path / "d.npz",
        "--epochs",
        "3",
        "--out",
        tmp_path / "npz.safetensors",
    ).stdout
    assert "2 classes: 0, 1" in out  # the target defaults to y in an NPZ file
    write_csv(
        tmp_path / "semi.csv",
        ["a", "b", "c", "label"],
        [
            [*(f"{v:.3f}".replace(".", ",") for v in row), int(t)]
            for row, t in zip(X, y, strict=True)
        ],
        delimiter=";",
    )
    run(
        "train",
        "--data",
        tmp_path / "semi.csv",
        "--target",
        "label",
        "--epochs",
        "3",
        "--out",
        tmp_path / "semi.safetensors",
    )
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": np.where(y == 1, "yes", "no")}
        ),
        tmp_path / "d.parquet",
    )
    run(
        "train",
        "--data",
        tmp_path / "d.parquet",
        "--target",
        "label",
        "--epochs",
        "3",
        "--out",
        tmp_path / "pq.safetensors",
    )
    run(
        "predict",
        tmp_path / "pq.safetensors",
        "--data",
        tmp_path / "d.parquet",
        "--output",
        tmp_path / "pred.parquet",
    )
    assert set(pq.read_table(tmp_path / "pred.parquet").column("prediction").to_pylist()) <= {
        "yes",
        "no",
    }


def test_options_losses_optimizers_and_early_stopping(files, tmp_path):
    out = tmp_path / "m.safetensors"
    proc = run(
        "train",
        "--dataset",
        "moons",
        "--hidden",
        "8",
        "--activation",
        "relu",
        "--loss",
        "bce_with_logits",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--batch-size",
        "16",
        "--epochs",
        "200",
        "--patience",
        "3",
        "--out",
        out,
    )
    info = crio.read_info(out)
    assert info["preprocessing"]["output"] == "logit"
    assert info["training"]["epochs_run"] < 200 and "early stopping" in proc.stdout
    for opt in ("adamw", "rmsprop", "adagrad"):
        run(
            "train",
            "--dataset",
            "xor",
            "--optimizer",
            opt,
            "--epochs",
            "2",
            "--activation",
            "gelu",
            "-q",
            "--out",
            out,
        )
    run(
        "train",
        "--dataset",
        "gauss",
        "--loss",
        "hinge",
        "--hidden",
        "none",
        "--epochs",
        "2",
        "-q",
        "--out",
        out,
    )
    assert [c["type"] for c in crio.read_info(out)["architecture"]["children"]] == ["Linear"]
    write_csv(tmp_path / "g.csv", ["x1", "x2"], [[1, 2], [-1, -2]])
    assert "probabilities" in fails("predict", out, "--data", tmp_path / "g.csv", "--proba")
    header, rows = read_csv(run("predict", out, "--data", tmp_path / "g.csv").stdout, True)
    assert header == ["prediction"] and len(rows) == 2


def test_explain_and_report(files, cls_model, tmp_path):
    try:
        ex = importlib.import_module("chainrule.explain")  # cr.explain is the function
        have_explain = hasattr(ex, "explain") and hasattr(ex, "demo")
    except ImportError:
        have_explain = False
    if have_explain:
        assert "∂L/∂w" in run("explain", "--demo", "llc").stdout
        out = run(
            "explain", cls_model[0], "--data", files["cls"], "--id-column", "name", "--row", "2"
        ).stdout
        assert "row 2 of" in out and "Back-propagation" in out
        assert "no data row 999" in fails(
            "explain", cls_model[0], "--data", files["cls"], "--id-column", "name", "--row", "999"
        )
    else:
        assert "not available yet" in fails("explain", "--demo", "llc")
    try:
        import chainrule.report as rep

        have_report = hasattr(rep, "write_report")
    except ImportError:
        have_report = False
    if have_report:
        pytest.importorskip("matplotlib")
        dest = tmp_path / "r.html"
        run("report", cls_model[0], "--data", files["cls"], "--id-column", "name", "--out", dest)
        assert dest.read_text().lstrip().lower().startswith("<!doctype html")
    else:
        assert "not available yet" in fails("report", cls_model[0], "--data", files["cls"])


# --- model files ------------------------------------------------------------------------------


def test_interrupted_save_keeps_the_previous_model(cls_model, tmp_path, monkeypatch):
    import errno

    import chainrule._files as files

    model, info = crio.load(cls_model[0], with_info=True)
    path = tmp_path / "model.safetensors"
    crio.save(model, path, preprocessing=info["preprocessing"])
    before = path.read_bytes()
    real_write = os.write

    def broken(fd, data):
        real_write(fd, b"\x10\x00\x00\x00partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "write", broken)
    with pytest.raises(
        crio.ModelFileError,
        match=r"^cannot write .*model.safetensors: no space "
        r"left on device$",
    ):
        crio.save(model, path, preprocessing=info["preprocessing"])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]  # no temporary file left behind
    monkeypatch.undo()
    assert np.array_equal(crio.load(path)[0].weight.data, model[0].weight.data)


# --- bad input: one line, the file/column/row/value, no traceback ----------------------------


def test_bad_data_files(tmp_path):
    d = tmp_path
    assert (
        fails("train", "--data", d / "nope.csv", "--target", "y")
        == f"error: file not found: {d / 'nope.csv'}"
    )
    err = fails("train", "--dataset", "nope")
    assert "unknown dataset 'nope'" in err and "spiral" in err and "iris" in err
    write_csv(d / "t.csv", ["a", "b", "kind"], [[1, 2, "x"], [3, "oops", "y"], [4, 5, "x"]])
    err = fails("train", "--data", d / "t.csv", "--target", "label")
    assert "'label' not found" in err and "a, b, kind" in err
    err = fails("train", "--data", d / "t.csv")
    assert "--target" in err and "a, b, kind" in err
    err = fails("train", "--data", d / "t.csv", "--target", "kind")
    assert "column 'b', row 2" in err and "'oops'" in err and "t.csv" in err
    (d / "empty.csv").write_text("")
    assert "empty" in fails("train", "--data", d / "empty.csv", "--target", "y")
    (d / "header.csv").write_text("a,b,y\n")
    assert "no data rows" in fails("train", "--data", d / "header.csv", "--target", "y")
    write_csv(
        d / "m.csv",
        ["a", "b", "y"],
        [[1, 2, "u"], [3, "", "v"], [5, 6, "u"], [7, 8, "v"], [9, 1, "u"], [2, 2, "v"]],
    )
    err = fails("train", "--data", d / "m.csv", "--target", "y")
    assert "column 'b', row 2" in err and "m.csv" in err and "empty cell" in err
    out = run(
        "train",
        "--data",
        d / "m.csv",
        "--target",
        "y",
        "--drop-missing",
        "--epochs",
        "2",
        "--out",
        d / "m.safetensors",
    ).stdout
    assert "dropped 1 rows" in out
    write_csv(d / "one.csv", ["a", "y"], [[1, "u"], [2, "u"], [3, "u"]])
    assert "one label" in fails("train", "--data", d / "one.csv", "--target", "y")
    write_csv(d / "r.csv", ["a", "y"], [[1, "u"], [2, "w"], [3, "u"]])
    assert "row 1" in fails("train", "--data", d / "r.csv", "--target", "y", "--task", "regression")


def test_bad_options(tmp_path):
    err = fails("train", "--dataset", "spiral", "--hidden", "16,x", code=2)
    assert "--hidden" in err and "'x'" in err
    for opt, value in (
        ("--lr", "0"),
        ("--lr", "-1"),
        ("--epochs", "0"),
        ("--epochs", "-5"),
        ("--batch-size", "0"),
        ("--batch-size", "-32"),
    ):
        err = fails("train", "--dataset", "spiral", opt, value, code=2)
        assert opt in err and "positive" in err
    assert "--validation" in fails("train", "--dataset", "spiral", "--validation", "1", code=2)
    assert "either" in fails("train", "--dataset", "spiral", "--data", "x.csv", code=2)
    assert "--dataset" in fails("train", code=2)
    err = fails("train", "--dataset", "iris", "--loss", "mse")
    assert "regression" in err and "cross_entropy" in err
    assert "two classes" in fails("train", "--dataset", "iris", "--loss", "hinge")
    assert "No such option" in fails("train", "--bogus", code=2)


def test_bad_model_files(tmp_path, cls_model):
    d = tmp_path
    assert "not found" in fails("summary", d / "missing.safetensors")
    (d / "p.safetensors").write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4))
    assert "pickle" in fails("predict", d / "p.safetensors", "--data", "x.csv")
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(2)}, d / "t.pt")
    assert "pickle" in fails("summary", d / "t.pt")
    good = cls_model[0].read_bytes()
    (d / "cut.safetensors").write_bytes(good[: len(good) // 2])
    assert "truncated" in fails("summary", d / "cut.safetensors")
    (d / "cut2.safetensors").write_bytes(good[:100])
    assert "truncated" in fails("evaluate", d / "cut2.safetensors", "--dataset", "iris")
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3)}, str(d / "other.safetensors"))
    assert "not a chainrule model" in fails("summary", d / "other.safetensors")
    (d / "text.safetensors").write_text("hello, I am not a model\n")
    assert "safetensors" in fails("summary", d / "text.safetensors")


def test_predict_columns_must_match(files, cls_model, tmp_path):
    write_csv(tmp_path / "cols.csv", ["name", "x", "z", "w"], [["a", 1, 2, 3]])
    err = fails("predict", cls_model[0], "--data", tmp_path / "cols.csv")
    assert "missing y" in err and "extra z, w" in err


def test_evaluate_unseen_label(files, cls_model, tmp_path):
    write_csv(
        tmp_path / "new.csv",
        ["name", "x", "y", "colour"],
        [["a", -3, 0, "red"], ["b", 0, 0, "purple"]],
    )
    err = fails("evaluate", cls_model[0], "--data", tmp_path / "new.csv")
    assert "'purple'" in err and "row 2" in err and "blue, green, red" in err


def test_debug_shows_the_traceback(tmp_path):
    proc = run("train", "--data", tmp_path / "nope.csv", "--target", "y", "--debug", ok=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_predict_drop_missing_adds_row_numbers(cls_model, tmp_path):
    write_csv(
        tmp_path / "holes.csv",
        ["name", "x", "y"],
        [["a", -3, 0], ["b", "", 0], ["c", 3, "NA"], ["d", 0, 4]],
    )
    err = fails("predict", cls_model[0], "--data", tmp_path / "holes.csv")
    assert "column 'x', row 2" in err and "empty cell" in err
    dest = tmp_path / "p.tsv"
    run(
        "predict",
        cls_model[0],
        "--data",
        tmp_path / "holes.csv",
        "--drop-missing",
        "--output",
        dest,
    )
    lines = dest.read_text().splitlines()
    assert lines[0].split("\t") == ["row", "name", "prediction"]
    assert [ln.split("\t")[:2] for ln in lines[1:]] == [["1", "a"], ["4", "d"]]


def test_no_compile_trains_eagerly_to_the_same_weights(files, tmp_path, monkeypatch, capsys):
    import chainrule.train as train
    from chainrule.cli import main

    seen = []
    real_fit = train.fit

    def spy(*args, **kwargs):
        seen.append(kwargs["compile"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", spy)
    common = ["train", "--data", files["cls"], "--target", "colour", "--id-column", "name"]
    common += ["--epochs", "3", "--seed", "5", "-q", "--out"]
    a, b = tmp_path / "compiled.safetensors", tmp_path / "eager.safetensors"
    assert main([*map(str, common), str(a)]) == 0
    assert main([*map(str, common), str(b), "--no-compile"]) == 0
    assert seen == [True, False]
    from safetensors.numpy import load_file

    wa, wb = load_file(a), load_file(b)
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert "--no-compile" in run("train", "--help").stdout
