"""The command's results stay what they were before the estimators took over its preprocessing.

tests/data/reference/ holds small models that `chainrule train` wrote with fixed seeds and
options (before chainrule.sklearn existed), with what `chainrule predict` and `chainrule
evaluate` printed for them (see make.py there). Today's code must still load those files, give
the same predictions and metrics, and train the same models again from the same options.

"The same" means: labels, the evaluate tables and the model files' settings exactly; numbers
to the precision of the float32 network. (Since the estimators took over, predictions run on a
float64 copy of the network, so that a row's prediction does not depend on its batch; a
float32 regression output printed to 8 digits may then move by an ulp or two.)
"""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("click")
pytest.importorskip("safetensors")

import chainrule as cr  # noqa: E402

REF = os.path.join(os.path.dirname(__file__), "data", "reference")
sys.path.insert(0, REF)
from make import RUNS  # noqa: E402

sys.path.remove(REF)


def chainrule(*args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    for name in os.listdir(REF):
        if not name.endswith(".py"):
            shutil.copy(os.path.join(REF, name), d / name)
    return d


@pytest.mark.parametrize("name", sorted(RUNS))
def test_old_model_files_predict_and_evaluate_as_before(work, name):
    data, _ = RUNS[name]
    model = f"{name}.safetensors"
    if data:
        proba = ["--proba"] if name != "houses" else []
        chainrule("predict", model, "--data", data, "--output", "new.csv", *proba, cwd=work)
        with open(work / "new.csv") as new, open(work / f"{name}.predictions.csv") as old:
            new_rows, old_rows = list(csv.reader(new)), list(csv.reader(old))
        assert new_rows[0] == old_rows[0] and len(new_rows) == len(old_rows)
        for new_row, old_row in zip(new_rows[1:], old_rows[1:], strict=True):
            for column, a, b in zip(old_rows[0], new_row, old_row, strict=True):
                if column == "name" or (column == "prediction" and name != "houses"):
                    assert a == b, (column, a, b)  # ids and labels: exactly
                else:
                    assert float(a) == pytest.approx(float(b), rel=1e-6, abs=1e-6), column
    source = ["--data", data] if data else ["--dataset", "xor"]
    with open(work / f"{name}.evaluate.txt") as old:
        assert chainrule("evaluate", model, *source, cwd=work) == old.read()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_same_options_train_the_same_model(work, name):
    _, options = RUNS[name]
    chainrule("train", *options, "--out", "again.safetensors", "--quiet", cwd=work)
    old, old_info = cr.load(work / f"{name}.safetensors", with_info=True)
    new, new_info = cr.load(work / "again.safetensors", with_info=True)
    for (key, a), (key2, b) in zip(old.state_dict().items(), new.state_dict().items(), strict=True):
        assert key == key2
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=key)
    assert new_info["preprocessing"] == old_info["preprocessing"]
    for split, numbers in old_info["metrics"].items():
        for key, value in numbers.items():
            assert new_info["metrics"][split][key] == pytest.approx(value, rel=1e-4, abs=1e-6)
    keep = (
        "task",
        "hidden",
        "activation",
        "loss",
        "optimizer",
        "lr",
        "momentum",
        "batch_size",
        "epochs",
        "epochs_run",
        "validation",
        "patience",
        "seed",
        "n_train",
        "n_validation",
    )
    assert {k: new_info["training"].get(k) for k in keep} == {
        k: old_info["training"].get(k) for k in keep
    }
