"""chainrule.sklearn: NetClassifier and NetRegressor follow scikit-learn's conventions.

Every scikit-learn estimator check passes on both; they work in Pipeline, cross_val_score and
GridSearchCV (also on a Dask cluster); a model trained by `chainrule train` loads as an
estimator that predicts what `chainrule predict` writes; partial_fit and warm_start go on from
the fitted network; save and load round-trip.
"""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from chainrule.sklearn import NetClassifier, NetRegressor, load  # noqa: E402

# small but real: scikit-learn's checks train dozens of times on up to 300 rows, and two of
# them ask for a good score (accuracy > 0.83 on blobs, R² > 0.5), which these settings reach
CHECKED = [
    NetClassifier(hidden=(8,), epochs=20, random_state=0),
    NetRegressor(hidden=(8,), epochs=40, random_state=0),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --- in scikit-learn's tools ------------------------------------------------------------------


def test_cross_val_score_pipeline_breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NetClassifier(hidden=(16,), epochs=30, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9, scores


# --- the estimator's own behaviour ------------------------------------------------------------


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = np.array([[0, 0], [4, 0], [0, 4]])[y] + rng.normal(size=(n, 2))
    return X, y


def test_text_labels_dataframe_names_and_save_load_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _blobs()
    df = pd.DataFrame(X, columns=["width", "height"])
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = NetClassifier(hidden=(8,), epochs=30, random_state=1).fit(df, labels)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    assert list(clf.feature_names_in_) == ["width", "height"] and clf.n_features_in_ == 2
    assert clf.score(df, labels) > 0.9
    assert clf.predict_proba(df).shape == (120, 3)
    np.testing.assert_allclose(clf.predict_proba(df).sum(axis=1), 1)
    assert clf.history_["loss"][-1] < clf.history_["loss"][0] and clf.n_iter_ == 30
    path = clf.save(tmp_path / "m.safetensors")
    back = load(path)
    assert type(back) is NetClassifier and back.get_params() == {
        **clf.get_params(),
        "loss": "cross_entropy",
        "lr": 0.01,
    }
    assert list(back.feature_names_in_) == ["width", "height"]
    np.testing.assert_array_equal(back.predict(df), clf.predict(df))
    np.testing.assert_allclose(back.predict_proba(df), clf.predict_proba(df))
    assert back.history_["loss"] == clf.history_["loss"]


def test_integer_labels_come_back_as_integers(tmp_path):
    X, y = _blobs()
    clf = NetClassifier(hidden=(8,), epochs=10, random_state=0).fit(X, y + 10)
    back = load(clf.save(tmp_path / "m.safetensors"))
    assert back.classes_.tolist() == [10, 11, 12]
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


def test_same_seed_same_model_and_global_generator_untouched():
    import chainrule as cr

    X, y = _blobs()
    cr.manual_seed(5)
    before = cr.default_rng().bit_generator.state
    a = NetClassifier(hidden=(8,), epochs=5, random_state=3).fit(X, y)
    assert cr.default_rng().bit_generator.state == before
    b = NetClassifier(hidden=(8,), epochs=5, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.model_[0].weight.data, b.model_[0].weight.data)
    c = NetClassifier(hidden=(8,), epochs=5, random_state=4).fit(X, y)
    assert not np.array_equal(a.model_[0].weight.data, c.model_[0].weight.data)


def test_binary_losses_probabilities_and_decision():
    X, y = _blobs()
    keep = y < 2
    X, y = X[keep], np.where(y[keep] == 1, "yes", "no")
    for loss in ("cross_entropy", "bce_with_logits", "bce", "hinge"):
        clf = NetClassifier(hidden=(8,), epochs=20, loss=loss, random_state=0).fit(X, y)
        d = clf.decision_function(X)
        assert d.shape == (len(X),)
        np.testing.assert_array_equal(clf.predict(X), np.where(d > 0, "yes", "no"))
        assert clf.score(X, y) > 0.9, loss
        if loss == "hinge":
            assert not hasattr(clf, "predict_proba")
        else:
            p = clf.predict_proba(X)
            assert p.shape == (len(X), 2)
            np.testing.assert_array_equal(
                np.argsort(d, kind="stable"), np.argsort(p[:, 1], kind="stable")
            )
    with pytest.raises(ValueError, match="two classes"):
        NetClassifier(loss="hinge", epochs=1).fit(*_blobs())
    with pytest.raises(ValueError, match="regression"):
        NetClassifier(loss="mse", epochs=1).fit(*_blobs())


def test_regressor_units_and_two_targets(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(200, 2))
    y = 1000 + 30 * X[:, 0] - 20 * X[:, 1]
    reg = NetRegressor(hidden=(16,), epochs=60, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.95 and abs(reg.predict(X).mean() - 1000) < 10
    assert reg.predict(X).dtype == np.float64 and reg.predict(X).shape == (200,)
    back = load(reg.save(tmp_path / "r.safetensors"))
    np.testing.assert_allclose(back.predict(X), reg.predict(X))
    Y = np.stack([y, -y / 100], axis=1)
    reg2 = NetRegressor(hidden=(16,), epochs=60, random_state=0).fit(X, Y)
    assert reg2.predict(X).shape == (200, 2) and reg2.score(X, Y) > 0.95
    back2 = load(reg2.save(tmp_path / "r2.safetensors"))
    np.testing.assert_allclose(back2.predict(X), reg2.predict(X))


def test_partial_fit_and_warm_start_go_on_from_the_network():
    X, y = _blobs()
    clf = NetClassifier(hidden=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:60], y[:60], classes=[0, 1, 2])
    w = clf.model_[0].weight.data.copy()
    losses = []
    for _ in range(15):
        clf.partial_fit(X, y)
        losses.append(clf.history_["loss"][-1])
    assert clf.n_iter_ == 16 and losses[-1] < losses[0]
    assert not np.array_equal(w, clf.model_[0].weight.data)
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :1], y)
    # warm_start: a second fit continues; without it, fit starts anew (same seed, same model)
    cold = NetClassifier(hidden=(8,), epochs=5, random_state=0)
    first = cold.fit(X, y).model_[0].weight.data.copy()
    np.testing.assert_array_equal(cold.fit(X, y).model_[0].weight.data, first)
    warm = NetClassifier(hidden=(8,), epochs=5, random_state=0, warm_start=True).fit(X, y)
    np.testing.assert_array_equal(warm.model_[0].weight.data, first)
    warm.fit(X, y)
    assert not np.array_equal(warm.model_[0].weight.data, first)
    reg = NetRegressor(hidden=(8,), random_state=0)
    for _ in range(3):
        reg.partial_fit(X, X[:, 0] + X[:, 1])
    assert reg.n_iter_ == 3


def test_bad_hyperparameters_are_one_line_errors():
    X, y = _blobs()
    for kwargs, words in (
        ({"hidden": (8, 0)}, "hidden"),
        ({"activation": "swish"}, "activation"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"lr": -1}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"validation": 1.0}, "validation"),
        ({"patience": 0}, "patience"),
        ({"momentum": 1.5}, "momentum"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"compile": "yes"}, "compile"),
        ({"progress": "bar"}, "progress"),
    ):
        with pytest.raises(ValueError) as err:
            NetClassifier(**kwargs).fit(X, y)
        assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="one class"):
        NetClassifier(epochs=1).fit(X, np.zeros(len(X)))


def test_load_refuses_a_file_without_preprocessing(tmp_path):
    import chainrule as cr

    net = cr.nn.Sequential(cr.nn.Linear(2, 2))
    cr.save(net, tmp_path / "bare.safetensors")
    with pytest.raises(ValueError, match="without preprocessing"):
        load(tmp_path / "bare.safetensors")


def test_model_trained_by_the_command_loads_and_predicts_what_predict_writes(tmp_path):
    import csv
    import subprocess
    import sys

    pytest.importorskip("click")
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = [n.replace(" (cm)", "").replace(" ", "_") for n in iris.feature_names]
    with open(tmp_path / "iris.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names + ["species"])
        w.writerows(
            [*map(str, row), iris.target_names[t]]
            for row, t in zip(iris.data, iris.target, strict=True)
        )

    def chainrule(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "chainrule.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    chainrule(
        "train",
        "--data",
        "iris.csv",
        "--target",
        "species",
        "--epochs",
        "20",
        "--out",
        "iris.safetensors",
        "--quiet",
    )
    chainrule(
        "predict", "iris.safetensors", "--data", "iris.csv", "--output", "pred.csv", "--proba"
    )
    with open(tmp_path / "pred.csv") as f:
        rows = list(csv.DictReader(f))
    clf = load(tmp_path / "iris.safetensors")
    assert type(clf) is NetClassifier and list(clf.classes_) == list(iris.target_names)
    assert list(clf.feature_names_in_) == names
    pd = pytest.importorskip("pandas")
    X = pd.read_csv(tmp_path / "iris.csv")[names]
    assert clf.predict(X).tolist() == [r["prediction"] for r in rows]
    proba = np.array([[float(r[f"p_{c}"]) for c in clf.classes_] for r in rows])
    np.testing.assert_allclose(clf.predict_proba(X), proba, atol=1e-6)
    assert clf.score(X, iris.target_names[iris.target]) > 0.8


def test_compile_and_progress_reach_fit_and_compile_changes_no_number(monkeypatch, capsys):
    from sklearn.base import clone

    import chainrule.train as train

    seen = []
    real_fit = train.fit

    def spy(*args, **kwargs):
        seen.append((kwargs["compile"], kwargs["progress"]))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", spy)
    X, y = _blobs()
    compiled = NetClassifier(hidden=(8,), epochs=3, random_state=0).fit(X, y)
    eager = NetClassifier(hidden=(8,), epochs=3, random_state=0, compile=False).fit(X, y)
    assert seen == [(True, False), (False, False)]
    # the replay runs the eager step's numpy calls: the same weights, bit for bit
    for a, b in zip(compiled.model_.parameters(), eager.model_.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    # hyperparameters like any other: get_params, set_params, clone
    assert compiled.get_params()["compile"] is True and compiled.get_params()["progress"] is False
    est = clone(eager).set_params(progress="rich", compile=True)
    assert est.get_params()["compile"] is True and est.get_params()["progress"] == "rich"
    capsys.readouterr()
    est.fit(X, y)
    assert seen[-1] == (True, "rich")
    out = capsys.readouterr()
    assert "epoch" in out.err and "val_accuracy" in out.err  # rich drew the bar
    NetRegressor(hidden=(4,), epochs=2, random_state=0, compile=False).fit(X, y.astype(float))
    assert seen[-1] == (False, False)
