"""Sweeps: GridSearchCV over NetClassifier on a Dask cluster (from Python and through
`chainrule tune --scheduler`), and `chainrule tune` locally: the ranked table, and a saved best
model equal to what `chainrule train` makes with the best settings.

The cluster is a distributed.LocalCluster on 127.0.0.1 started here: two worker processes, no
dashboard, closed within bounded time at the end of the module.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("click")

import chainrule as cr  # noqa: E402
from chainrule.sklearn import NetClassifier, load  # noqa: E402


def chainrule(*args, cwd, ok=True):
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "150"},
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as c,
        distributed.Client(c, timeout="60s") as client,
    ):
        client.wait_for_workers(2, timeout=120)
        yield client
        client.shutdown()  # bounded: the scheduler and both workers stop now


def test_grid_search_on_a_local_dask_cluster(cluster):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV

    X, y = load_iris(return_X_y=True)
    grid = {"hidden": [(4,), (8, 8)], "lr": [0.003, 0.03]}
    assert cluster.scheduler.address.startswith("tcp://127.0.0.1:")
    assert len(cluster.scheduler_info(n_workers=-1)["workers"]) == 2
    with joblib.parallel_backend("dask"):
        search = GridSearchCV(NetClassifier(epochs=15, random_state=0), grid, cv=3, n_jobs=-1).fit(
            X, y
        )
    local = GridSearchCV(NetClassifier(epochs=15, random_state=0), grid, cv=3).fit(X, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert search.best_params_ == local.best_params_
    assert search.best_estimator_.score(X, y) > 0.8


def test_tune_on_the_cluster(cluster, tmp_path):
    out = chainrule(
        "tune",
        "--dataset",
        "iris",
        "--hidden",
        "4",
        "8",
        "--lr",
        "0.03",
        "--epochs",
        "10",
        "--cv",
        "2",
        "--scheduler",
        cluster.scheduler.address,
        "--out",
        "best.safetensors",
        cwd=tmp_path,
    ).stdout
    assert "on the Dask cluster at tcp://127.0.0.1:" in out and "saved best.safetensors" in out
    assert load(tmp_path / "best.safetensors").score(*_iris()) > 0.8


def _iris():
    from chainrule.data import load_dataset

    d = load_dataset("iris")
    return d.X, np.asarray(d.target_names, dtype=object)[d.y]


def test_tune_locally_ranks_and_saves_what_train_would(tmp_path):
    proc = chainrule(
        "tune",
        "--dataset",
        "iris",
        "--hidden",
        "4",
        "8,8",
        "none",
        "--lr",
        "0.003",
        "0.03",
        "--activation",
        "relu",
        "--epochs",
        "8",
        "--cv",
        "3",
        "--jobs",
        "1",
        "--out",
        "best.safetensors",
        cwd=tmp_path,
    )
    lines = proc.stdout.splitlines()
    assert "tuning 6 candidates x 3 folds = 18 fits on local worker processes" in proc.stdout
    rows = [ln for ln in lines if ln.startswith("│")]
    assert len(rows) == 6
    ranks = [int(r.split("│")[1]) for r in rows]
    means = [float(r.split("│")[-4]) for r in rows]
    assert ranks == sorted(ranks) and means == sorted(means, reverse=True)
    best = [ln for ln in lines if ln.startswith("best: ")][0]
    info = cr.io.read_info(tmp_path / "best.safetensors")["training"]
    hidden = ",".join(map(str, info["hidden"])) or "none"
    assert f"hidden={hidden}, lr={info['lr']:g} " in best.replace("hidden=,", "hidden=none,")
    # the saved model is what `chainrule train` makes with the best settings (validation 0)
    chainrule(
        "train",
        "--dataset",
        "iris",
        "--hidden",
        hidden,
        "--lr",
        str(info["lr"]),
        "--activation",
        "relu",
        "--epochs",
        "8",
        "--validation",
        "0",
        "--out",
        "train.safetensors",
        "-q",
        cwd=tmp_path,
    )
    a = cr.load(tmp_path / "best.safetensors")
    b = cr.load(tmp_path / "train.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)


def test_tune_bad_input_is_one_line(tmp_path):
    for args, words in (
        (["--hidden", "8,x"], "--hidden"),
        (["--lr", "0"], "--lr"),
        (["--activation", "swish"], "--activation"),
        ([], "settings to try"),
    ):
        proc = chainrule("tune", "--dataset", "iris", *args, cwd=tmp_path, ok=False)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and err.startswith("error: ") and "\n" not in err, err
        assert words in err, err
    proc = chainrule(
        "tune", "--dataset", "iris", "--hidden", "4", "--scoring", "acuracy", cwd=tmp_path, ok=False
    )
    err = proc.stderr.strip()
    assert proc.returncode == 1 and "scoring 'acuracy'" in err and "\n" not in err, err
