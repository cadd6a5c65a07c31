"""Write the reference fixtures: small models trained by `chainrule train` with fixed seeds and
options, with what `chainrule predict` and `chainrule evaluate` printed for them.

Run once with the code before the estimators took over the command's preprocessing (commit
dd8f867); tests/test_reference.py checks that today's code still gives the same results for
the same seeds and options, and still loads these files. Do not rerun it to "fix" a failing
test: a difference is the thing the test is there to catch.

    python tests/data/reference/make.py
"""

import csv
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

#: name -> (data file or None, train options, predict data file or None)
RUNS = {
    "colours": (
        "colours.csv",
        [
            "--data",
            "colours.csv",
            "--target",
            "colour",
            "--id-column",
            "name",
            "--hidden",
            "8",
            "--epochs",
            "25",
            "--seed",
            "3",
        ],
    ),
    "houses": (
        "houses.csv",
        [
            "--data",
            "houses.csv",
            "--target",
            "price",
            "--hidden",
            "6,4",
            "--activation",
            "relu",
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--epochs",
            "20",
            "--batch-size",
            "16",
            "--seed",
            "5",
        ],
    ),
    "xor": (
        None,
        [
            "--dataset",
            "xor",
            "--samples",
            "120",
            "--noise",
            "0.1",
            "--hidden",
            "8",
            "--loss",
            "bce_with_logits",
            "--epochs",
            "15",
            "--validation",
            "0.25",
            "--patience",
            "5",
            "--seed",
            "1",
        ],
    ),
    "twoclass": (
        "twoclass.csv",
        [
            "--data",
            "twoclass.csv",
            "--target",
            "label",
            "--hidden",
            "none",
            "--loss",
            "bce",
            "--optimizer",
            "rmsprop",
            "--epochs",
            "12",
            "--validation",
            "0",
            "--seed",
            "7",
        ],
    ),
}


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def make_data():
    rng = np.random.default_rng(0)
    centres = {"red": (-3, 0), "green": (3, 0), "blue": (0, 4)}
    rows = []
    for i in range(60):
        label = list(centres)[i % 3]
        cx, cy = centres[label]
        rows.append(
            [f"p{i}", f"{cx + 1.5 * rng.normal():.4f}", f"{cy + 1.5 * rng.normal():.4f}", label]
        )
    write_csv(os.path.join(HERE, "colours.csv"), ["name", "x", "y", "colour"], rows)
    X = rng.uniform(-2, 2, size=(50, 2))
    t = 1000 + 30 * X[:, 0] - 20 * X[:, 1] ** 2 + rng.normal(scale=3, size=50)
    write_csv(
        os.path.join(HERE, "houses.csv"),
        ["size", "age", "price"],
        [[f"{a:.4f}", f"{b:.4f}", f"{v:.3f}"] for (a, b), v in zip(X, t, strict=True)],
    )
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=40) > 0, "yes", "no")
    write_csv(
        os.path.join(HERE, "twoclass.csv"),
        ["a", "b", "c", "label"],
        [[f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", v] for (a, b, c), v in zip(X, y, strict=True)],
    )


def chainrule(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *args],
        cwd=HERE,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    if proc.returncode:
        raise SystemExit(f"chainrule {' '.join(args)}:\n{proc.stderr}")
    return proc.stdout


def main():
    make_data()
    for name, (data, options) in RUNS.items():
        model = f"{name}.safetensors"
        chainrule("train", *options, "--out", model, "--quiet")
        source = ["--data", data] if data else ["--dataset", "xor"]
        if data:
            proba = ["--proba"] if name != "houses" else []
            chainrule(
                "predict", model, "--data", data, "--output", f"{name}.predictions.csv", *proba
            )
        with open(os.path.join(HERE, f"{name}.evaluate.txt"), "w") as f:
            f.write(chainrule("evaluate", model, *source))


if __name__ == "__main__":
    main()
