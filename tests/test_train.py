"""The training loop, and what it must show: a logistic classifier, a spiral, digits."""

import itertools
import json

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import load_dataset, standardize, train_test_split


def _mlp(sizes, act=cr.nn.Tanh, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(cr.nn.Linear(a, b, rng=rng))
        if i < len(sizes) - 2:
            layers.append(act())
    return cr.nn.Sequential(*layers)


def test_logistic_classifier_separates_a_linearly_separable_set():
    """The notes' one neuron: Linear(2, 1) -> Sigmoid -> BCELoss, plain gradient descent."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X @ np.array([1.5, -2.0]) + 0.3 > 0).astype(np.float32)
    X += (
        np.where(y[:, None] > 0, 0.2, -0.2) * np.array([1.5, -2.0], dtype=np.float32) / 2.5
    )  # a margin
    model = cr.nn.Sequential(cr.nn.Linear(2, 1, rng=rng), cr.nn.Sigmoid())
    opt = cr.optim.SGD(model.parameters(), lr=0.5)
    h = cr.fit(
        model, cr.nn.BCELoss(), opt, X, y.reshape(-1, 1), epochs=300, batch_size=200, shuffle=False
    )
    assert h["accuracy"][-1] == 1.0
    assert h["loss"][-1] < h["loss"][0]


def test_mlp_fits_a_two_arm_spiral():
    d = load_dataset("spiral", seed=0)
    cr.manual_seed(0)
    model = _mlp([2, 32, 32, 2])
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    h = cr.fit(model, cr.nn.CrossEntropyLoss(), opt, d.X, d.y, epochs=150, batch_size=32, seed=0)
    out = cr.predict(model, d.X)
    train_acc = float(np.mean(out.argmax(1) == d.y))
    assert train_acc >= 0.99, train_acc
    assert h["accuracy"][-1] >= 0.97


def test_mlp_on_digits_reaches_97_percent_test_accuracy():
    sk = pytest.importorskip("sklearn")  # noqa: F841 - digits ship with scikit-learn
    d = load_dataset("digits")
    X_tr, X_te, y_tr, y_te = train_test_split(d.X, d.y, test_size=0.25, seed=0)
    _, X_tr, X_te = standardize(X_tr, X_te)
    model = _mlp([64, 64, 10], act=cr.nn.ReLU, seed=0)
    opt = cr.optim.Adam(model.parameters(), lr=1e-3)
    cr.fit(model, cr.nn.CrossEntropyLoss(), opt, X_tr, y_tr, epochs=40, batch_size=32, seed=0)
    test = cr.evaluate(model, cr.nn.CrossEntropyLoss(), X_te, y_te)
    assert test["accuracy"] >= 0.97, test


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def test_history_records_train_and_validation_per_epoch_as_plain_lists():
    X, y = _data()
    model = _mlp([3, 8, 2])
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    h = cr.fit(
        model,
        cr.nn.CrossEntropyLoss(),
        opt,
        X,
        y,
        epochs=5,
        batch_size=16,
        validation=0.25,
        track_grad_norms=True,
    )
    assert set(h.keys()) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 5 for v in h.history.values())
    assert h.epochs == [1, 2, 3, 4, 5]
    assert set(h.grad_norms) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert all(v > 0 for v in h.grad_norms["0.weight"])
    json.dumps(h.to_dict())  # pandas-free and JSON-ready


def test_validation_as_a_pair_and_the_same_seed_gives_the_same_run():
    X, y = _data()
    runs = []
    for _ in range(2):
        model = _mlp([3, 8, 2], seed=1)
        opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        h = cr.fit(
            model,
            cr.nn.CrossEntropyLoss(),
            opt,
            X[:100],
            y[:100],
            epochs=3,
            batch_size=10,
            validation=(X[100:], y[100:]),
            seed=7,
        )
        runs.append((h["loss"], h["val_loss"]))
    assert runs[0] == runs[1]


def test_early_stopping_stops_and_restores_the_best_weights():
    X, y = _data()
    model = _mlp([3, 16, 2])
    opt = cr.optim.SGD(model.parameters(), lr=0.05)
    seen = {}

    class Spy(cr.Callback):
        def on_epoch_end(self, state):
            seen[state.epoch] = model.state_dict()

    # noise labels for validation: the validation loss soon stops improving
    rng = np.random.default_rng(3)
    Xv, yv = rng.normal(size=(50, 3)).astype(np.float32), rng.integers(0, 2, 50)
    stop = cr.EarlyStopping(monitor="val_loss", patience=3)
    h = cr.fit(
        model,
        cr.nn.CrossEntropyLoss(),
        opt,
        X,
        y,
        epochs=200,
        batch_size=8,
        validation=(Xv, yv),
        callbacks=[Spy(), stop],
    )
    assert h.stopped_epoch is not None and h.stopped_epoch < 200
    assert h.stopped_epoch - h.best_epoch == 3
    assert "did not improve for 3 epochs" in h.stop_reason
    best = seen[h.best_epoch]
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, best[k])


def test_a_nan_loss_stops_training_with_a_clear_message():
    X, y = _data()
    X = X * 1e3
    model = _mlp([3, 16, 1])
    opt = cr.optim.SGD(model.parameters(), lr=1e6)
    # targets of 1e30: the loss overflows at once; the message blames the targets, not the rate
    with pytest.raises(
        cr.errors.TrainingError, match=r"epoch 1, step 1 of \d+.*targets are too large"
    ) as info:
        cr.fit(
            model,
            cr.nn.MSELoss(),
            opt,
            X,
            y.astype(np.float32).reshape(-1, 1) * 1e30,
            epochs=50,
            batch_size=10,
            metrics=["mse"],
        )
    assert isinstance(info.value.history, cr.History)


def test_scheduler_steps_once_per_epoch_and_lr_is_recorded():
    X, y = _data()
    model = _mlp([3, 4, 2])
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    sched = cr.optim.StepLR(opt, step_size=2, gamma=0.5)
    h = cr.fit(model, cr.nn.CrossEntropyLoss(), opt, X, y, epochs=5, batch_size=30, scheduler=sched)
    assert h["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_regression_metrics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X @ np.array([2.0, -1.0], dtype=np.float32) + 0.5).reshape(-1, 1)
    model = cr.nn.Linear(2, 1, rng=rng)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    h = cr.fit(model, cr.nn.MSELoss(), opt, X, y, epochs=30, batch_size=20, metrics=["mse", "r2"])
    assert h["r2"][-1] > 0.999 and h["mse"][-1] < 1e-3


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "epochs must be a positive whole number, got 0"),
        ({"batch_size": -4}, "batch_size must be a positive whole number, got -4"),
        ({"validation": 1.5}, "validation must be a fraction between 0 and 1, got 1.5"),
        ({"metrics": ["f2"]}, "unknown metric 'f2'"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    X, y = _data()
    model = _mlp([3, 4, 2])
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(cr.ChainruleError, match=message):
        cr.fit(model, cr.nn.CrossEntropyLoss(), opt, X, y, **kwargs)


def test_mismatched_rows_are_a_clear_error():
    X, y = _data()
    model = _mlp([3, 4, 2])
    with pytest.raises(cr.DataError, match="X has 120 rows but y has 100"):
        cr.fit(
            model, cr.nn.CrossEntropyLoss(), cr.optim.SGD(model.parameters(), lr=0.1), X, y[:100]
        )
