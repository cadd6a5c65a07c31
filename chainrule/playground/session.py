"""One playground session: the data, a chainrule network, its optimizer and all the page shows.

Nothing here knows the web: the server (``server.py``) only turns requests into calls on a
:class:`Session` and its answers into JSON or binary frames, so all of it is testable without a
browser. Training is chainrule's own: ``Sequential`` of ``Linear`` and activation layers, a
chainrule loss, ``backward()`` and a chainrule optimizer. One *epoch* (Playground's "step") is one
pass over the training points in mini-batches; ``phase_begin``/``phase_update`` split one
mini-batch step into its forward, loss, backward and update.

The chain-rule panel (:meth:`Session.chain`) reads every factor from the explainer's one
measuring path (``chainrule.explain.measure.record``): the last step's mini-batch runs again
through a float64 copy of the network *as it was before the update*, forward hooks keep each
layer's input and output, the engine's traced back-propagation gives the gradient delivered to
each of them, and the activation's local term σ′(z) is the engine's hand-back of ones through
its unit (after the engine's unbroadcast and cast). Nothing in this file writes a derivative
formula.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics import class_probabilities
from ..registry import facts_of
from . import datasets as D

__all__ = ["Session", "DEFAULTS", "ACTIVATIONS", "CONTROLS", "parse_settings"]

#: activation setting -> chainrule.nn class
ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "linear": "Identity",
    "leaky_relu": "LeakyReLU",
}
OPTIMIZERS = ("sgd", "adam")
REGULARIZATIONS = ("none", "L1", "L2")

DEFAULTS = {
    "dataset": "circle",
    "problem": "classification",
    "classes": 2,
    "noise": 0,
    "trainRatio": 50,
    "samples": 500,
    "batchSize": 10,
    "seed": 0,
    "features": ["x1", "x2"],
    "networkShape": [4, 2],
    "activation": "tanh",
    "activations": [],
    "learningRate": 0.03,
    "optimizer": "sgd",
    "momentum": 0.0,
    "regularization": "none",
    "regRate": 0.0,
    "stopEpoch": 0,
    "stopLoss": 0.0,
    "showTest": False,
    "discretize": False,
    "gradView": False,
    "hide": [],
}

#: the page's controls that ``hide`` can name (each has data-control="<name>" on the page)
CONTROLS = (
    "dataset",
    "problem",
    "classes",
    "noise",
    "trainRatio",
    "samples",
    "batchSize",
    "regenerate",
    "features",
    "networkShape",
    "activation",
    "learningRate",
    "optimizer",
    "momentum",
    "regularization",
    "regRate",
    "stopEpoch",
    "stopLoss",
    "showTest",
    "discretize",
    "gradView",
    "phase",
    "upload",
    "downloads",
    "chart",
    "gradChart",
    "confusion",
    "flags",
    "play",
    "step",
    "reset",
    "seed",
)

_INT = {
    "classes": (2, 5),
    "noise": (0, 50),
    "trainRatio": (10, 90),
    "samples": (20, 2000),
    "batchSize": (1, 500),
    "seed": (0, 2**31 - 1),
    "stopEpoch": (0, 10**7),
}
_FLOAT = {
    "learningRate": (1e-6, 10.0),
    "momentum": (0.0, 0.999),
    "regRate": (0.0, 10.0),
    "stopLoss": (0.0, 1e6),
}
_BOOL = ("showTest", "discretize", "gradView")
_CHOICE = {
    "dataset": D.CLASSIFICATION + D.REGRESSION,
    "problem": ("classification", "regression"),
    "activation": tuple(ACTIVATIONS),
    "optimizer": OPTIMIZERS,
    "regularization": REGULARIZATIONS,
}

GRID = 64  # cells per side of the output heatmap
THUMB_STEP = 4  # neuron thumbnails take every 4th cell: 16 x 16
_DATA_KEYS = ("dataset", "problem", "classes", "noise", "trainRatio", "samples", "seed")
_MODEL_KEYS = ("features", "networkShape", "activation", "activations")


def _list(value, what):
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    raise ConfigError(f"playground: {what} is expected as a comma-separated list, got {value!r}")


def _choices(value, what, allowed, problem):
    """A list setting whose every item must be one of ``allowed``; ``problem`` names the first
    item that is not (``{!r}`` stands for it)."""
    items = _list(value, what)
    bad = [item for item in items if item not in allowed]
    if bad:
        raise ConfigError(f"playground: {problem.format(bad[0])} {', '.join(allowed)}")
    return items


def _whole_number(key: str, value: Any) -> int:
    lo, hi = _INT[key]
    whole: int | None
    try:
        whole = int(float(value)) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        whole = None
    if whole is None or not lo <= whole <= hi or (not isinstance(value, str) and whole != value):
        raise ConfigError(f"playground: {key}={value!r}; expected a whole number from {lo} to {hi}")
    return whole


def _number(key: str, value: Any) -> float:
    lo, hi = _FLOAT[key]
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    zero_ok = key in ("regRate", "momentum", "stopLoss") and number == 0
    if not (lo <= number <= hi) and not zero_ok:
        raise ConfigError(f"playground: {key}={value!r}; expected a number from {lo:g} to {hi:g}")
    return number


def _true_or_false(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"playground: {key}={value!r}; expected true or false")


def _features(value: Any) -> list[str]:
    feats = _list(value, "features")
    bad = [f for f in feats if f not in D.FEATURES]
    if bad:
        raise ConfigError(
            f"playground: feature {bad[0]!r} is unknown; expected some of "
            f"{', '.join(D.FEATURE_NAMES)}"
        )
    if not feats:
        raise ConfigError(
            "playground: features is empty; the network needs at least one input feature"
        )
    return [f for f in D.FEATURE_NAMES if f in feats]


def _network_shape(value: Any) -> list[int]:
    empty = isinstance(value, (list, tuple)) and not value
    items = [] if empty else _list(value, "networkShape")
    try:
        shape = [int(v) for v in items]
    except ValueError:
        shape = None
    if shape is None or len(shape) > 6 or any(not 1 <= h <= 8 for h in shape):
        raise ConfigError(
            f"playground: networkShape={value!r}; expected 0 to 6 hidden "
            "layers of 1 to 8 neurons, e.g. 4,2"
        )
    return shape


def _setting(key: str, value: Any) -> Any:
    """One setting checked and converted (a one-line error naming it otherwise)."""
    if key in _INT:
        return _whole_number(key, value)
    if key in _FLOAT:
        return _number(key, value)
    if key in _BOOL:
        return _true_or_false(key, value)
    if key in _CHOICE:
        if value not in _CHOICE[key]:
            raise ConfigError(
                f"playground: {key}={value!r}; expected one of {', '.join(_CHOICE[key])}"
            )
        return value
    if key == "features":
        return _features(value)
    if key == "networkShape":
        return _network_shape(value)
    if key == "activations":
        return _choices(value, key, ACTIVATIONS, "activation {!r} is unknown; expected one of")
    if key == "hide":
        return _choices(value, key, CONTROLS, "hide={!r} is not a control; expected some of")
    raise ConfigError(
        f"playground: unknown setting {key!r}; expected some of {', '.join(DEFAULTS)}"
    )


def parse_settings(update: dict) -> dict:
    """Check and convert settings (numbers may come as text, as from a URL); one-line errors."""
    if not isinstance(update, dict):
        raise ConfigError(f"playground: settings are expected as an object, got {update!r:.60}")
    return {key: _setting(key, value) for key, value in update.items()}


#: the settings the script's docstring repeats
_SCRIPT_KEYS = (
    "dataset",
    "problem",
    "classes",
    "noise",
    "trainRatio",
    "samples",
    "batchSize",
    "seed",
    "features",
    "networkShape",
    "activation",
    "activations",
    "learningRate",
    "optimizer",
    "momentum",
    "regularization",
    "regRate",
)

_PARAM = re.compile(r"^(\d+)\.(weight|bias)\[(\d+)(?:,(\d+))?\]$")


def _q(a: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] as bytes 0..255 (clipped)."""
    return np.round((np.clip(a, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _f(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(eq=False)
class _ChainQuestion:
    """What the chain-rule panel was asked: one parameter entry and one training point."""

    name: str
    p_real: Any  # the network's parameter
    idx: tuple  # the entry
    k: int  # the linear unit's index in the Sequential
    kind: str  # 'weight' or 'bias'
    li: int  # which linear unit (0 = the first)
    j: int  # the neuron
    i: int | None  # the input (weights only)
    point: int
    batch: np.ndarray  # the last mini-batch's points
    rows: list[int]  # the points measured: the batch, then the point when it is not in it
    in_batch: bool
    prow: int  # the point's row among them
    bsel: list[int]  # the batch's rows among them


class Session:
    """The playground's state; every page action is one method."""

    order: np.ndarray | None  # this pass's order of the training points (None: draw a new one)

    def __init__(self, **settings):
        self.settings = dict(DEFAULTS)
        self.settings.update(self._merge(parse_settings(settings)))
        self.custom = None  # (X, y) uploaded or edited points replace the generated set
        self.data_version = 0
        self.model_version = 0
        self.playing = False
        self.stop_reason = None
        self._new_data()

    # ---------------------------------------------------------------------------------------
    # settings
    # ---------------------------------------------------------------------------------------
    def _merge(self, upd: dict) -> dict:
        s = dict(self.settings)
        s.update(upd)
        if s["problem"] == "regression" and s["dataset"] not in D.REGRESSION:
            if "dataset" in upd and "problem" in upd:
                raise ConfigError(
                    f"playground: dataset {s['dataset']} is for classification; "
                    f"regression needs one of {', '.join(D.REGRESSION)}"
                )
            if "dataset" in upd:
                s["problem"] = "classification"
            else:
                s["dataset"] = D.REGRESSION[0]
        if s["problem"] == "classification" and s["dataset"] not in D.CLASSIFICATION:
            if "dataset" in upd and "problem" in upd:
                raise ConfigError(
                    f"playground: dataset {s['dataset']} is for regression; "
                    f"classification needs one of {', '.join(D.CLASSIFICATION)}"
                )
            if "dataset" in upd:
                s["problem"] = "regression"
            else:
                s["dataset"] = D.CLASSIFICATION[0]
        multi = s["classes"] > 2 and s["problem"] == "classification"
        if multi and s["dataset"] not in D.MULTICLASS:
            if "dataset" in upd and "classes" not in upd:
                s["classes"] = 2
            elif "classes" in upd and "dataset" not in upd:
                s["dataset"] = "gauss"
            else:
                raise ConfigError(
                    f"playground: dataset {s['dataset']} has 2 classes; "
                    f"classes={s['classes']} needs one of {', '.join(D.MULTICLASS)}"
                )
        if s["activations"] and len(s["activations"]) != len(s["networkShape"]):
            if "activations" in upd:
                raise ConfigError(
                    f"playground: activations lists {len(s['activations'])} "
                    f"layers but networkShape has {len(s['networkShape'])}"
                )
            s["activations"] = []
        if "activation" in upd and "activations" not in upd:
            s["activations"] = []
        return s

    def update(self, update: dict) -> None:
        """Apply changed settings: new data, a new network or a new optimizer as needed."""
        upd = parse_settings(update)
        new = self._merge(upd)
        changed = {k for k in new if new[k] != self.settings.get(k)}
        self.settings = new
        if changed & set(_DATA_KEYS):
            self.custom = None
            self._new_data()
        elif changed & set(_MODEL_KEYS):
            self._new_model()
        elif changed & {"optimizer", "learningRate", "momentum"}:
            if "optimizer" in changed:
                self._new_optimizer()
            else:
                for g in self.opt.param_groups:
                    g["lr"] = self.settings["learningRate"]
                    if "momentum" in g:
                        g["momentum"] = self.settings["momentum"]

    # ---------------------------------------------------------------------------------------
    # data and model
    # ---------------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.settings["problem"]

    @property
    def n_classes(self) -> int:
        return self.settings["classes"] if self.task == "classification" else 0

    def _new_data(self):
        s = self.settings
        if self.custom is not None:
            X, y = self.custom
        else:
            X, y, _ = D.make_points(
                s["dataset"],
                s["samples"],
                s["noise"] / 100.0,
                s["seed"],
                s["classes"] if s["problem"] == "classification" else 2,
            )
        n = len(X)
        n_train = max(1, min(n - 1, int(round(n * s["trainRatio"] / 100.0)))) if n > 1 else n
        order = np.random.default_rng(s["seed"] + 7919).permutation(n)
        self.X_train, self.y_train = X[order[:n_train]], y[order[:n_train]]
        self.X_test, self.y_test = X[order[n_train:]], y[order[n_train:]]
        self.data_version += 1
        self._new_model()

    def add_point(self, x1: float, x2: float, label, split: str = "train") -> None:
        """Add one point (clicked on the heatmap) to the training or the test set."""
        for name, v in (("x1", x1), ("x2", x2)):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > 1e6:
                raise ConfigError(f"playground: point {name}={v!r}; expected a finite number")
        if split not in ("train", "test"):
            raise ConfigError(f"playground: split={split!r}; expected train or test")
        if self.task == "classification":
            if not isinstance(label, int) or not 0 <= label < self.n_classes:
                raise ConfigError(
                    f"playground: label={label!r}; expected a class from 0 to {self.n_classes - 1}"
                )
            yv = np.asarray([label], np.int64)
        else:
            if not isinstance(label, (int, float)) or not math.isfinite(label):
                raise ConfigError(f"playground: value={label!r}; expected a finite number")
            yv = np.asarray([label], np.float32)
        xv = np.asarray([[x1, x2]], np.float32)
        if split == "train":
            self.X_train = np.concatenate([self.X_train, xv])
            self.y_train = np.concatenate([self.y_train, yv])
            self.order = None
        else:
            self.X_test = np.concatenate([self.X_test, xv])
            self.y_test = np.concatenate([self.y_test, yv])
        self.custom = (
            np.concatenate([self.X_train, self.X_test]),
            np.concatenate([self.y_train, self.y_test]),
        )
        self.data_version += 1
        self._refresh_features()
        self._measure()

    def load_csv(self, text: str, name: str = "upload.csv") -> None:
        """Replace the points by a CSV of two feature columns and a label/target column."""
        import os
        import tempfile

        from ..data.files import prepare, read_table
        from ..data.utils import encode_labels

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, os.path.basename(name) or "upload.csv")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            table = read_table(path)
            if len(table.columns) != 3:
                raise ConfigError(
                    f"playground: {name} has {len(table.columns)} columns "
                    f"({', '.join(map(str, table.columns[:6]))}); expected three: "
                    "two features (x1, x2) and the label or target last"
                )
            X, y_raw, _, _ = prepare(table, target=table.columns[-1])
        X = np.asarray(X, np.float64)
        if len(X) < 2:
            raise ConfigError(f"playground: {name} has {len(X)} row; expected at least 2")
        from ..data import infer_task

        task = infer_task(y_raw)
        if task == "classification":
            y, names = encode_labels(y_raw)
            if not 2 <= len(names) <= 5:
                raise ConfigError(
                    f"playground: {name} has {len(names)} labels; the playground "
                    "takes 2 to 5 classes"
                )
            y = np.asarray(y, np.int64)
            self.settings["classes"] = len(names)
        else:
            y = np.asarray(y_raw, np.float64)
            lo, hi = float(y.min()), float(y.max())
            y = ((y - lo) / (hi - lo) * 2 - 1 if hi > lo else y * 0).astype(np.float32)
        span = np.abs(X).max()
        if span > D.DOMAIN:  # shown and trained in the [-6, 6] square, as Playground's points
            X = X / span * (D.DOMAIN - 0.5)
        self.settings["problem"] = task
        self.custom = (X.astype(np.float32), y)
        self._new_data()

    def _refresh_features(self):
        f = self.settings["features"]
        self.F_train = D.make_features(self.X_train, f)
        self.F_test = D.make_features(self.X_test, f)
        if self.task == "classification" and self.n_classes > 2:
            self.t_train = self.y_train.astype(np.int64)
            self.t_test = self.y_test.astype(np.int64)
        else:
            self.t_train = self.y_train.astype(np.float32).reshape(-1, 1)
            self.t_test = self.y_test.astype(np.float32).reshape(-1, 1)
        c = (np.arange(GRID) + 0.5) / GRID * 2 * D.DOMAIN - D.DOMAIN
        gx, gy = np.meshgrid(c, -c)  # row 0 is the top of the picture (x2 = +6)
        self.grid_points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
        self.F_grid = D.make_features(self.grid_points, f)
        allf = D.make_features(self.grid_points, D.FEATURE_NAMES)  # the input thumbnails
        self.input_scale = np.maximum(1e-9, np.abs(allf).max(axis=0))
        self.F_grid_all = allf
        t = np.arange(THUMB_STEP // 2, GRID, THUMB_STEP)
        self.thumb_index = (t[:, None] * GRID + t[None, :]).ravel()

    def layer_activations(self) -> list:
        s = self.settings
        return list(s["activations"]) or [s["activation"]] * len(s["networkShape"])

    def _new_model(self):
        import chainrule as cr

        from .. import nn

        s = self.settings
        self._refresh_features()
        cr.manual_seed(s["seed"])
        layers, width = [], len(s["features"])
        for h, act in zip(s["networkShape"], self.layer_activations(), strict=True):
            layers += [nn.Linear(width, h), getattr(nn, ACTIVATIONS[act])()]
            width = h
        binary = self.task == "classification" and self.n_classes == 2
        n_out = self.n_classes if self.task == "classification" and self.n_classes > 2 else 1
        layers.append(nn.Linear(width, n_out))
        if binary:
            layers.append(nn.Sigmoid())
        self.model = nn.Sequential(*layers)
        self.linear_index = [i for i, m in enumerate(self.model) if facts_of(m).role == "linear"]
        if binary:
            self.loss_name, self.loss_fn = "bce", nn.BCELoss()
        elif self.task == "classification":
            self.loss_name, self.loss_fn = "cross_entropy", nn.CrossEntropyLoss()
        else:
            self.loss_name, self.loss_fn = "mse", nn.MSELoss()
        self.names = [n for n, _ in self.model.named_parameters()]
        self.params = [p for _, p in self.model.named_parameters()]
        self.grads = [np.zeros_like(p.data) for p in self.params]
        self.deltas = [np.zeros_like(p.data) for p in self.params]
        self.epoch = 0
        self.steps = 0
        self.history = {"epoch": [], "lossTrain": [], "lossTest": [], "gradNorms": []}
        self.last = None
        self.pending = None
        self.order, self.cursor = None, 0
        self.rng = np.random.default_rng(s["seed"] + 1)
        self.stop_reason = None
        self.model_version += 1
        self._new_optimizer()
        self._measure()

    def _new_optimizer(self):
        from .. import optim

        s = self.settings
        if s["optimizer"] == "adam":
            self.opt = optim.Adam(self.params, lr=s["learningRate"])
        else:
            self.opt = optim.SGD(self.params, lr=s["learningRate"], momentum=s["momentum"])

    def reset(self) -> None:
        """New initial weights (from the seed), epoch 0; the data stay."""
        self.playing = False
        self._new_model()

    def regenerate(self) -> None:
        """Draw a new data set (the next seed) and start over."""
        self.custom = None
        self.settings["seed"] = (self.settings["seed"] + 1) % (2**31 - 1)
        self._new_data()

    def set_param(self, name: str, value: float) -> None:
        """Edit one weight or bias (the hover card)."""
        p, idx = self._lookup(name)
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"playground: {name}={value!r}; expected a finite number")
        p.data[idx] = value
        self._measure()

    def _lookup(self, name: str):
        m = _PARAM.match(str(name).replace(" ", ""))
        if m is None:
            raise ConfigError(
                f"playground: parameter {name!r} is not a name like 0.weight[2,1] or 0.bias[2]"
            )
        base = f"{m.group(1)}.{m.group(2)}"
        if base not in self.names:
            raise ConfigError(
                f"playground: this network has no parameter {base}; it has {', '.join(self.names)}"
            )
        p = self.params[self.names.index(base)]
        idx = tuple(int(g) for g in (m.group(3), m.group(4)) if g is not None)
        if len(idx) != p.data.ndim or any(i >= n for i, n in zip(idx, p.data.shape, strict=True)):
            raise ConfigError(
                f"playground: {name} is outside {base}, whose shape is {tuple(p.data.shape)}"
            )
        return p, idx

    # ---------------------------------------------------------------------------------------
    # training
    # ---------------------------------------------------------------------------------------
    def _penalty(self, params):
        """The regularization term as chainrule units on the weights (biases are not penalized,
        as in Playground): L1 = rate·Σ|w|, L2 = rate·½Σw²."""
        s = self.settings
        if s["regularization"] == "none" or s["regRate"] == 0:
            return None
        total = None
        for name, p in params:
            if not name.endswith("weight"):
                continue
            term = p.abs().sum() if s["regularization"] == "L1" else (p * p).sum() * 0.5
            total = term if total is None else total + term
        return None if total is None else total * s["regRate"]

    def _next_batch(self) -> np.ndarray:
        n = len(self.F_train)
        if self.order is None or self.cursor >= len(self.order) or len(self.order) != n:
            self.order, self.cursor = self.rng.permutation(n), 0
        b = self.settings["batchSize"]
        idx = self.order[self.cursor : self.cursor + b]
        self.cursor += len(idx)
        return idx

    def _pass_done(self) -> bool:
        """The current pass over the training points has handed out its last mini-batch."""
        return self.order is not None and self.cursor >= len(self.order)

    def _step(self, idx, hooks=None):
        """One mini-batch step: forward, loss (+ penalty), backward, update. Returns the loss."""
        before = [p.data.copy() for p in self.params]
        self.opt.zero_grad()
        out = self.model(self.F_train[idx])
        loss = self.loss_fn(out, self.t_train[idx])
        pen = self._penalty(zip(self.names, self.params, strict=True))
        total = loss if pen is None else loss + pen
        total.backward()
        self.grads = [
            p.grad.copy() if p.grad is not None else np.zeros_like(p.data) for p in self.params
        ]
        self.opt.step()
        self.deltas = [p.data - b for p, b in zip(self.params, before, strict=True)]
        self.last = {"batch": idx.copy(), "before": before, "loss": float(loss.data)}
        self.steps += 1
        return float(loss.data)

    def train_epoch(self) -> None:
        """Finish the current pass over the training points (Playground's one step)."""
        norms = []
        while True:
            idx = self._next_batch()
            self._step(idx)
            norms.append(
                [
                    float(np.linalg.norm(self.grads[self.names.index(f"{k}.weight")]))
                    for k in self.linear_index
                ]
            )
            if self._pass_done():
                break
        self.epoch += 1
        self._measure()
        self.history["epoch"].append(self.epoch)
        self.history["lossTrain"].append(self.loss_train)
        self.history["lossTest"].append(self.loss_test)
        self.history["gradNorms"].append(np.mean(norms, axis=0).tolist())
        s = self.settings
        if s["stopEpoch"] and self.epoch >= s["stopEpoch"]:
            self.stop_reason = f"reached epoch {s['stopEpoch']}"
        elif s["stopLoss"] and self.loss_train <= s["stopLoss"]:
            self.stop_reason = f"training loss {self.loss_train:.4g} <= {s['stopLoss']:g}"
        else:
            self.stop_reason = None
        if self.stop_reason:
            self.playing = False

    def phase_begin(self) -> dict:
        """Forward, loss and backward of the next mini-batch on the real network (not yet the
        update): every unit's value for the batch's first point, the loss, every δ = ∂L/∂z."""
        from ..tensor import Tensor

        if self.pending is not None:
            return self.pending
        idx = self._next_batch()
        before = [p.data.copy() for p in self.params]
        self.opt.zero_grad()
        seen: dict[int, Any] = {}
        handles = [
            m.register_forward_hook(lambda mod, inp, out, k=k: seen.__setitem__(k, out))
            for k, m in enumerate(self.model)
        ]
        try:
            out = self.model(self.F_train[idx])
        finally:
            for h in handles:
                h.remove()
        for t in seen.values():
            if isinstance(t, Tensor) and t._ctx is not None:
                t.retain_grad()
        loss = self.loss_fn(out, self.t_train[idx])
        pen = self._penalty(zip(self.names, self.params, strict=True))
        total = loss if pen is None else loss + pen
        total.backward()
        self.grads = [
            p.grad.copy() if p.grad is not None else np.zeros_like(p.data) for p in self.params
        ]
        layers = []
        for _li, k in enumerate(self.linear_index):
            z = seen[k]
            act = seen.get(k + 1) if k + 1 < len(self.model) else None
            a = act if act is not None else z
            layers.append(
                {
                    "z": np.asarray(z.data[0], np.float64).tolist(),
                    "a": np.asarray(a.data[0], np.float64).tolist(),
                    "delta": (
                        np.asarray(z.grad[0], np.float64).tolist()
                        if z.grad is not None
                        else [0.0] * z.shape[1]
                    ),
                    "deltaSum": (
                        np.asarray(z.grad, np.float64).sum(axis=0).tolist()
                        if z.grad is not None
                        else [0.0] * z.shape[1]
                    ),
                }
            )
        self.pending = {
            "batch": idx.tolist(),
            "point": int(idx[0]),
            "x": self.F_train[idx[0]].astype(np.float64).tolist(),
            "y": self.y_train[idx[0]].item(),
            "loss": float(loss.data),
            "penalty": None if pen is None else float(pen.data),
            "layers": layers,
            "before": before,
            "parameters": self._param_list(),
        }
        return self.pending

    def phase_update(self) -> dict:
        """The optimizer's step for the mini-batch that :meth:`phase_begin` prepared."""
        if self.pending is None:
            raise ConfigError("playground: no step in progress; run the forward phase first")
        before = self.pending["before"]
        self.opt.step()
        self.deltas = [p.data - b for p, b in zip(self.params, before, strict=True)]
        self.last = {
            "batch": np.asarray(self.pending["batch"]),
            "before": before,
            "loss": self.pending["loss"],
        }
        self.steps += 1
        self.pending = None
        if self._pass_done():
            self.epoch += 1
            self._measure()
            self.history["epoch"].append(self.epoch)
            self.history["lossTrain"].append(self.loss_train)
            self.history["lossTest"].append(self.loss_test)
            self.history["gradNorms"].append(
                [
                    float(np.linalg.norm(self.grads[self.names.index(f"{k}.weight")]))
                    for k in self.linear_index
                ]
            )
        else:
            self._measure()
        return {"parameters": self._param_list()}

    # ---------------------------------------------------------------------------------------
    # measuring and drawing
    # ---------------------------------------------------------------------------------------
    def _forward_all(self, F):
        """Outputs of every layer (no record kept): list indexed like the Sequential."""
        from ..tensor import no_grad

        outs = []
        with no_grad():
            h = F
            for m in self.model:
                h = m(h)
                outs.append(np.asarray(h.data if hasattr(h, "data") else h))
        return outs

    def _loss_of(self, out, t) -> float:
        from ..tensor import no_grad

        if len(t) == 0:
            return float("nan")
        with no_grad():
            return float(self.loss_fn(out, t).data)

    def _classes(self, out) -> np.ndarray:
        from ..metrics import predict_classes

        return predict_classes(out, "probability" if self.n_classes == 2 else "logits")

    def _measure(self):
        from ..metrics import accuracy, confusion_matrix

        tr = self._forward_all(self.F_train)
        te = self._forward_all(self.F_test) if len(self.F_test) else None
        self.loss_train = self._loss_of(tr[-1], self.t_train)
        self.loss_test = self._loss_of(te[-1], self.t_test) if te is not None else float("nan")
        self.acc = {}
        self.confusion = None
        if self.task == "classification":
            k = self.n_classes
            self.acc["train"] = accuracy(self.y_train, self._classes(tr[-1]))
            if te is not None:
                pred = self._classes(te[-1])
                self.acc["test"] = accuracy(self.y_test, pred)
                self.confusion = confusion_matrix(self.y_test, pred, n_classes=k).tolist()
        self.flags = self._flags(tr)

    def _flags(self, outs) -> list:
        """Saturated units (tanh/sigmoid at their flat ends on >= 90% of the training points),
        dead ReLUs (zero on every training point), and weights L1 drove to (near) zero."""
        flags = []
        acts = self.layer_activations()
        for li, k in enumerate(self.linear_index[:-1]):
            a = outs[k + 1]
            act = acts[li]
            for j in range(a.shape[1]):
                col = a[:, j]
                node = f"h{li}:{j}"
                if act == "tanh" and np.mean(np.abs(col) > 0.97) >= 0.9:
                    flags.append(
                        {
                            "kind": "saturated",
                            "node": node,
                            "text": f"layer {li + 1} neuron {j + 1}: tanh saturated "
                            f"(|a| > 0.97 on {np.mean(np.abs(col) > 0.97):.0%})",
                        }
                    )
                elif act == "sigmoid" and np.mean((col < 0.03) | (col > 0.97)) >= 0.9:
                    flags.append(
                        {
                            "kind": "saturated",
                            "node": node,
                            "text": f"layer {li + 1} neuron {j + 1}: sigmoid saturated",
                        }
                    )
                elif act in ("relu",) and np.all(col <= 0):
                    flags.append(
                        {
                            "kind": "dead",
                            "node": node,
                            "text": f"layer {li + 1} neuron {j + 1}: dead ReLU (0 on "
                            "every training point: no gradient flows)",
                        }
                    )
        if self.settings["regularization"] == "L1" and self.settings["regRate"] > 0:
            for name, p in zip(self.names, self.params, strict=True):
                if name.endswith("weight"):
                    for idx in zip(*np.nonzero(np.abs(p.data) < 1e-3), strict=True):
                        pname = f"{name}[{','.join(str(int(i)) for i in idx)}]"
                        flags.append(
                            {
                                "kind": "l1zero",
                                "param": pname,
                                "text": f"{pname} ≈ 0 (driven to zero by L1)",
                            }
                        )
        return flags

    def _param_list(self) -> list:
        out = []
        for name, p, g, d in zip(self.names, self.params, self.grads, self.deltas, strict=True):
            for idx in np.ndindex(p.data.shape):
                out.append(
                    {
                        "name": f"{name}[{','.join(map(str, idx))}]",
                        "value": float(p.data[idx]),
                        "grad": float(g[idx]),
                        "delta": float(d[idx]),
                    }
                )
        return out

    def nodes(self) -> list:
        """The network's columns for the page: inputs, each hidden layer, the outputs."""
        s = self.settings
        cols = [
            [
                {
                    "id": f"in:{k}",
                    "label": D.FEATURES[k][1],
                    "feature": k,
                    "active": k in s["features"],
                }
                for k in D.FEATURE_NAMES
            ]
        ]
        acts = self.layer_activations()
        for li, h in enumerate(s["networkShape"]):
            cols.append(
                [
                    {
                        "id": f"h{li}:{j}",
                        "activation": acts[li],
                        "bias": f"{self.linear_index[li]}.bias[{j}]",
                    }
                    for j in range(h)
                ]
            )
        k_out = self.linear_index[-1]
        n_out = self.model[k_out].out_features
        cols.append(
            [
                {
                    "id": f"out:{j}",
                    "activation": "sigmoid"
                    if self.n_classes == 2
                    else ("softmax" if self.task == "classification" else "linear"),
                    "bias": f"{k_out}.bias[{j}]",
                }
                for j in range(n_out)
            ]
        )
        return cols

    def state(self) -> dict:
        """Everything the page (and GET /api/state) shows, as JSON-ready data."""
        s = self.settings
        cls = self.task == "classification"

        def pts(X, y):
            return [
                [float(a), float(b), int(c) if cls else float(c)]
                for (a, b), c in zip(X, y, strict=True)
            ]

        return {
            "settings": dict(s),
            "epoch": self.epoch,
            "steps": self.steps,
            "lossTrain": _f(self.loss_train),
            "lossTest": _f(self.loss_test),
            "accuracy": self.acc,
            "confusion": self.confusion,
            "task": self.task,
            "classes": self.n_classes,
            "loss": self.loss_name,
            "parameters": self._param_list(),
            "nodes": self.nodes(),
            "linearIndex": self.linear_index,
            "points": {
                "train": pts(self.X_train, self.y_train),
                "test": pts(self.X_test, self.y_test),
            },
            "custom": self.custom is not None,
            "history": self.history,
            "flags": self.flags,
            "playing": self.playing,
            "stopReason": self.stop_reason,
            "lastBatch": None if self.last is None else [int(i) for i in self.last["batch"]],
            "pending": self.pending is not None,
            "dataVersion": self.data_version,
            "modelVersion": self.model_version,
            "grid": GRID,
            "thumb": GRID // THUMB_STEP,
            "domain": D.DOMAIN,
        }

    def frame(self) -> bytes:
        """One update for the page as a binary message: a 4-byte little-endian length, a JSON
        header (numbers) and then bytes: the output heatmap (GRID² per channel) and a 16×16
        thumbnail for every input feature, hidden neuron and output (values in [-1, 1] -> 0..255).
        """
        outs = self._forward_all(self.F_grid)
        thumbs = []
        ti = self.thumb_index
        # inputs: each feature scaled by its largest |value| on the grid
        for c in range(self.F_grid_all.shape[1]):
            thumbs.append(_q(self.F_grid_all[ti, c] / self.input_scale[c]))
        for k in self.linear_index[:-1]:
            a = outs[k + 1]
            for j in range(a.shape[1]):
                thumbs.append(_q(a[ti, j]))
        final = outs[-1]
        if self.task == "classification" and self.n_classes == 2:
            heat = [_q(2 * final[:, 0] - 1)]
            thumbs.append(_q(2 * final[ti, 0] - 1))
            kind = "binary"
        elif self.task == "classification":
            p = class_probabilities(final)
            heat = [_q(2 * p[:, j] - 1) for j in range(p.shape[1])]
            thumbs += [_q(2 * p[ti, j] - 1) for j in range(p.shape[1])]
            kind = "multiclass"
        else:
            heat = [_q(final[:, 0])]
            thumbs.append(_q(final[ti, 0]))
            kind = "regression"
        params = self._param_list()
        header = {
            "epoch": self.epoch,
            "steps": self.steps,
            "lossTrain": _f(self.loss_train),
            "lossTest": _f(self.loss_test),
            "accuracy": self.acc,
            "confusion": self.confusion,
            "values": [p["value"] for p in params],
            "grads": [p["grad"] for p in params],
            "deltas": [p["delta"] for p in params],
            "gradNorms": self.history["gradNorms"][-1] if self.history["gradNorms"] else None,
            "flags": self.flags,
            "playing": self.playing,
            "stopReason": self.stop_reason,
            "dataVersion": self.data_version,
            "modelVersion": self.model_version,
            "heat": {"kind": kind, "channels": len(heat), "size": GRID},
            "thumbs": {"count": len(thumbs), "size": GRID // THUMB_STEP},
            "lastBatch": None if self.last is None else [int(i) for i in self.last["batch"]],
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        return b"".join(
            [len(head).to_bytes(4, "little"), head]
            + [h.tobytes() for h in heat]
            + [t.tobytes() for t in thumbs]
        )

    def neuron_grid(self, node: str) -> dict:
        """The full GRID² picture of one node (hover to enlarge), values in [-1, 1]."""
        outs = self._forward_all(self.F_grid)
        m = re.match(r"^(in|h(\d+)|out):(\w+)$", node or "")
        if m is None:
            raise ConfigError(f"playground: node {node!r}; expected in:x1, h0:2 or out:0")
        if m.group(1) == "in":
            if m.group(3) not in D.FEATURES:
                raise ConfigError(f"playground: no input feature {m.group(3)!r}")
            col = D.make_features(self.grid_points, [m.group(3)])[:, 0]
            v = col / max(1e-9, np.abs(col).max())
        elif m.group(1) == "out":
            final = outs[-1]
            j = int(m.group(3))
            if not 0 <= j < final.shape[1]:
                raise ConfigError(f"playground: no output {j}")
            if self.task == "classification" and self.n_classes == 2:
                v = 2 * final[:, 0] - 1
            elif self.task == "classification":
                p = class_probabilities(final)
                v = 2 * p[:, j] - 1
            else:
                v = final[:, 0]
        else:
            li, j = int(m.group(2)), int(m.group(3))
            if li >= len(self.linear_index) - 1:
                raise ConfigError(f"playground: no hidden layer {li}")
            a = outs[self.linear_index[li] + 1]
            if not 0 <= j < a.shape[1]:
                raise ConfigError(f"playground: layer {li} has no neuron {j}")
            v = a[:, j]
        return {"node": node, "size": GRID, "values": np.clip(v, -1, 1).round(4).tolist()}

    # ---------------------------------------------------------------------------------------
    # the chain-rule panel
    # ---------------------------------------------------------------------------------------
    def _float64_before(self):
        m64 = copy.deepcopy(self.model)
        m64.to(np.float64)
        before = self.last["before"] if self.last is not None else [p.data for p in self.params]
        for p, b in zip(m64.parameters(), before, strict=True):
            p.data = np.asarray(b, np.float64).copy()
            p.grad = None
        lf = copy.deepcopy(self.loss_fn)
        return m64, lf

    def _record(self, m64, lf, rows):
        """Measure the training points ``rows`` on the float64 copy with the explainer's one
        measuring path (``chainrule.explain.measure.record``: forward hooks on every layer, the
        engine's back-propagation and its traced walk) for the *summed* loss, so that each
        gradient on record is one point's. Returns the Measurement and the targets as the loss
        wants them in float64."""
        from ..explain.measure import record

        lf_sum = copy.deepcopy(lf)
        lf_sum.reduction = "sum"
        t_rows = self.t_train[rows]
        t64 = t_rows.astype(np.float64) if t_rows.dtype.kind == "f" else t_rows
        return record(m64, self.F_train[rows].astype(np.float64), t64, lf_sum), t64

    @staticmethod
    def _local_terms(m, m64, k, kind, i, n) -> dict:
        """Per point, from the Measurement: the linear unit's input h, z, the activation's a
        and σ′(z) (the engine's hand-back of ones through it), ∂L/∂a as back-propagation
        delivered it, and ∂z/∂w."""
        from ..explain.measure import local_term

        lin = m.call_of(m64[k])  # the linear unit: z = W h + b
        z = lin.output
        act = m.call_of(m64[k + 1]) if k + 1 < len(m64) else None  # its activation, if any
        zv = np.asarray(z.data, np.float64)  # (not the last unit of cross-entropy and MSE)
        if act is not None:
            a = act.output
            av = np.asarray(a.data, np.float64)
            # the activation's own term, measured by the engine; Identity: a is z itself
            sigma = np.asarray(local_term(a, z), np.float64) if a is not z else np.ones_like(av)
            dLda = m.grad(a)
        else:
            av, sigma, dLda = zv, np.ones_like(zv), m.grad(z)
        dLdz = m.grad(z)
        hv = np.asarray(lin.input.data, np.float64)
        return {
            "z": zv,
            "a": av,
            "sigma": sigma,
            "dLda": np.asarray(dLda if dLda is not None else np.zeros_like(av), np.float64),
            "dzdw": hv[:, i] if kind == "weight" else np.ones(n),
            "act": type(act.module).__name__ if act is not None else None,
            "dLdz": np.asarray(dLdz if dLdz is not None else np.zeros_like(zv), np.float64),
        }

    def _backprop_terms(self, m, m64, li, j, prow):
        """How ∂L/∂a_j was made: the next linear unit hands back Σ_k ∂L/∂z_k · w_kj."""
        if li + 1 >= len(self.linear_index):
            return None
        kn = self.linear_index[li + 1]
        W = np.asarray(m64[kn].weight.data, np.float64)
        dz = np.asarray(m.grad(m.call_of(m64[kn]).output), np.float64)
        terms = [
            {
                "k": kk,
                "dLdz": float(dz[prow, kk]),
                "w": float(W[kk, j]),
                "param": f"{kn}.weight[{kk},{j}]",
            }
            for kk in range(W.shape[0])
        ]
        return {"layer": kn, "terms": terms, "sum": float(sum(t["dLdz"] * t["w"] for t in terms))}

    def _checks(self, m64, lf, p64, idx, xp, tp, xb, tb) -> dict:
        """The engine's gradient of one point's loss, central differences of it and of the
        batch loss + penalty, and the penalty's own gradient (all float64, by chainrule)."""
        from ..gradcheck import central_differences
        from ..tensor import Tensor, no_grad

        for q in m64.parameters():
            q.grad = None
        lf(m64(Tensor(xp)), tp).backward()
        engine_point = float(p64.grad[idx])
        for q in m64.parameters():
            q.grad = None
        pen = self._penalty(m64.named_parameters())
        reg = 0.0
        if pen is not None:
            pen.backward()
            reg = float(p64.grad[idx]) if p64.grad is not None else 0.0

        def loss_point():
            with no_grad():
                return float(lf(m64(xp), tp).data)

        def loss_batch():
            with no_grad():
                pn = self._penalty(m64.named_parameters())
                return float(lf(m64(xb), tb).data) + (float(pn.data) if pn is not None else 0.0)

        flat = [int(np.ravel_multi_index(idx, p64.data.shape))]
        return {
            "enginePoint": engine_point,
            "reg": reg,
            "cdPoint": float(central_differences(p64.data, flat, loss_point, 1e-6)[0]),
            "cdBatch": float(central_differences(p64.data, flat, loss_batch, 1e-6)[0]),
        }

    def _optimizer_reading(self, p_real, idx, pi) -> dict:
        """What the optimizer made of the gradient: its state for this entry and the actual Δw."""
        s = self.settings
        grad = float(self.grads[pi][idx])
        before = (
            float(self.last["before"][pi][idx])
            if self.last is not None
            else float(p_real.data[idx])
        )
        opt = {
            "name": s["optimizer"],
            "lr": s["learningRate"],
            "delta": float(self.deltas[pi][idx]),
            "before": before,
            "after": float(p_real.data[idx]),
        }
        st = self.opt.state.get(p_real, {}) if hasattr(self.opt, "state") else {}
        if s["optimizer"] == "sgd":
            buf = st.get("momentum_buffer")
            opt["momentum"] = s["momentum"]
            if buf is not None:
                opt["velocity"] = float(np.asarray(buf)[idx])
            opt["formula"] = "Δw = −lr · v, v = μ·v_prev + g" if s["momentum"] else "Δw = −lr · g"
            opt["plain"] = -s["learningRate"] * grad
        else:
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    opt[key] = float(np.asarray(st[key])[idx])
            opt["step"] = int(np.asarray(st.get("step", 0)))
            opt["formula"] = "Δw = −lr · m̂ / (√v̂ + ε)"
        return opt

    def _chain_question(self, name: str, point: int | None) -> _ChainQuestion:
        """Which parameter entry (a linear unit's weight or bias), which training point, and
        the rows to measure: the last mini-batch, plus the point when it is not in it."""
        p_real, idx = self._lookup(name)
        k = int(name.split(".")[0])
        kind = name.split(".")[1].split("[")[0]
        if k not in self.linear_index:
            raise ConfigError(f"playground: {name} does not belong to a linear unit")
        batch = (
            self.last["batch"]
            if self.last is not None
            else np.arange(min(self.settings["batchSize"], len(self.F_train)))
        )
        if point is None:
            point = int(batch[0])
        if not isinstance(point, int) or not 0 <= point < len(self.F_train):
            raise ConfigError(
                f"playground: point={point!r}; expected a training point from 0 "
                f"to {len(self.F_train) - 1}"
            )
        rows = [int(b) for b in batch]
        in_batch = point in rows
        if not in_batch:
            rows.append(point)
        return _ChainQuestion(
            name=name,
            p_real=p_real,
            idx=idx,
            k=k,
            kind=kind,
            li=self.linear_index.index(k),
            j=idx[0],
            i=idx[1] if kind == "weight" else None,
            point=point,
            batch=batch,
            rows=rows,
            in_batch=in_batch,
            prow=rows.index(point),
            bsel=[rows.index(int(b)) for b in batch],
        )

    def _chain_numbers(self, q: _ChainQuestion) -> dict:
        """Every number of the panel: the measured local terms per point, how ∂L/∂a was made,
        the engine's gradients and central differences, and the optimizer's reading."""
        m64, lf = self._float64_before()
        m, t64 = self._record(m64, lf, q.rows)
        T = self._local_terms(m, m64, q.k, q.kind, q.i, len(q.rows))
        p64 = dict(m64.named_parameters())[f"{q.k}.{q.kind}"]
        chk = self._checks(
            m64,
            lf,
            p64,
            q.idx,
            self.F_train[q.point : q.point + 1].astype(np.float64),
            t64[q.prow : q.prow + 1],
            self.F_train[q.batch].astype(np.float64),
            t64[q.bsel],
        )
        pi = self.names.index(f"{q.k}.{q.kind}")
        return {
            "T": T,
            "dLda": T["dLda"][:, q.j],
            "sigma": T["sigma"][:, q.j],
            "dzdw": T["dzdw"],
            "backprop": self._backprop_terms(m, m64, q.li, q.j, q.prow),
            "chk": chk,
            "pi": pi,
            "opt": self._optimizer_reading(q.p_real, q.idx, pi),
            "names": [n for n, _ in m64.named_parameters()],
        }

    def _chain_batch(self, q: _ChainQuestion, c: dict, products) -> dict:
        """The mini-batch's side: each point's product, their mean (∂L/∂w of the mean loss),
        the regularization term, and the engine's gradient and central difference."""
        s, bsel, chk = self.settings, q.bsel, c["chk"]
        batch_mean = float(np.mean(products[bsel]))
        return {
            "points": q.rows[: len(q.batch)] if q.in_batch else q.rows[:-1],
            "products": [float(products[r]) for r in bsel],
            "factors": {
                "dLda": [float(c["dLda"][r]) for r in bsel],
                "sigmaPrime": [float(c["sigma"][r]) for r in bsel],
                "dzdw": [float(c["dzdw"][r]) for r in bsel],
            },
            "productOfMeans": float(
                np.mean(c["dLda"][bsel]) * np.mean(c["sigma"][bsel]) * np.mean(c["dzdw"][bsel])
            ),
            "mean": batch_mean,
            "reg": chk["reg"],
            "total": batch_mean + chk["reg"],
            "regularization": s["regularization"],
            "regRate": s["regRate"],
            "engineGrad": float(self.grads[c["pi"]][q.idx]),
            "cd": chk["cdBatch"],
        }

    def chain(self, name: str, point: int | None = None) -> dict:
        """∂L/∂w for parameter ``name`` as the product of its local terms, for one training
        point and for the last mini-batch, with the engine's gradient, central differences, the
        regularization term and the optimizer's update. See the module docstring for where each
        number comes from."""
        q = self._chain_question(name, point)
        c = self._chain_numbers(q)
        T, prow, j = c["T"], q.prow, q.j
        products = c["dLda"] * c["sigma"] * c["dzdw"]
        loss_word = {
            "bce": "binary cross-entropy",
            "cross_entropy": "softmax cross-entropy",
            "mse": "squared error",
        }[self.loss_name]
        return {
            "param": name,
            "kind": q.kind,
            "layer": q.li,
            "neuron": j,
            "input": q.i,
            "last": q.li == len(self.linear_index) - 1,
            "loss": loss_word,
            "activation": T["act"],
            "point": q.point,
            "inBatch": q.in_batch,
            "x": self.F_train[q.point].astype(np.float64).tolist(),
            "y": self.y_train[q.point].item(),
            "features": self.settings["features"],
            "value": c["opt"]["before"],
            "terms": {
                "dLda": float(c["dLda"][prow]),
                "sigmaPrime": float(c["sigma"][prow]),
                "dzdw": float(c["dzdw"][prow]),
                "z": float(T["z"][prow, j]),
                "a": float(T["a"][prow, j]),
                "product": float(products[prow]),
                "engineDz": float(T["dLdz"][prow, j]),
            },
            "enginePoint": c["chk"]["enginePoint"],
            "cdPoint": c["chk"]["cdPoint"],
            "backprop": c["backprop"],
            "batch": self._chain_batch(q, c, products),
            "optimizer": c["opt"],
            "names": c["names"],
        }

    # ---------------------------------------------------------------------------------------
    # take it with you
    # ---------------------------------------------------------------------------------------
    def _metadata(self) -> tuple:
        from .. import __version__
        from ..metrics import output_kind

        s = self.settings
        names = [D.FEATURES[f][0] for f in s["features"]]
        n = len(names)
        pre = {
            "feature_names": names,
            "standardizer": {"mean": [0.0] * n, "scale": [1.0] * n},
            "task": self.task,
            "target": "label",
            "label_names": (
                [str(c) for c in range(self.n_classes)] if self.task == "classification" else None
            ),
            "output": output_kind(
                {"bce": "BCELoss", "cross_entropy": "CrossEntropyLoss", "mse": "MSELoss"}[
                    self.loss_name
                ]
            ),
            "loss": self.loss_name,
            "id_columns": [],
        }
        training = {
            "dataset": None if self.custom is not None else s["dataset"],
            "samples": s["samples"],
            "noise": s["noise"] / 100.0,
            "task": self.task,
            "hidden": s["networkShape"],
            "activation": s["activation"],
            "activations": self.layer_activations(),
            "loss": self.loss_name,
            "optimizer": s["optimizer"],
            "lr": s["learningRate"],
            "momentum": s["momentum"] if s["optimizer"] == "sgd" else None,
            "weight_decay": 0.0,
            "regularization": s["regularization"],
            "reg_rate": s["regRate"],
            "batch_size": s["batchSize"],
            "epochs": self.epoch,
            "epochs_run": self.epoch,
            "seed": s["seed"],
            "n_train": len(self.F_train),
            "n_validation": len(self.F_test),
            "features": s["features"],
            "source": "chainrule playground",
            "chainrule_version": __version__,
            "history": {"loss": self.history["lossTrain"], "val_loss": self.history["lossTest"]},
        }
        metrics = {"train": {"loss": self.loss_train}}
        if len(self.F_test):
            metrics["validation"] = {"loss": self.loss_test}
        for part, key in (("train", "train"), ("validation", "test")):
            if key in self.acc and part in metrics:
                metrics[part]["accuracy"] = self.acc[key]
        return pre, training, metrics

    def save_model(self, path) -> str:
        """The network as a chainrule model file that ``chainrule predict/explain/report`` read
        (its features are the playground's columns; :meth:`data_csv` writes them)."""
        from ..io import save

        pre, training, metrics = self._metadata()
        return save(self.model, path, preprocessing=pre, training=training, metrics=metrics)

    def data_csv(self, split: str = "all") -> str:
        """The points as CSV with the network's feature columns and the label (train, then test)."""
        import csv
        import io

        names = [D.FEATURES[f][0] for f in self.settings["features"]]
        parts = {
            "train": [(self.F_train, self.y_train)],
            "test": [(self.F_test, self.y_test)],
            "all": [(self.F_train, self.y_train), (self.F_test, self.y_test)],
        }[split]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names + ["label"])
        for F, y in parts:
            for row, lab in zip(F, y, strict=True):
                w.writerow(
                    [repr(float(v)) for v in row]
                    + [int(lab) if self.task == "classification" else repr(float(lab))]
                )
        return buf.getvalue()

    def _script_network(self) -> tuple[list[str], str, str]:
        """The script's layers, loss and optimizer, as Python source."""
        s = self.settings
        acts = self.layer_activations()
        layers, width = [], len(s["features"])
        for h, act in zip(s["networkShape"], acts, strict=True):
            layers.append(f"cr.nn.Linear({width}, {h}), cr.nn.{ACTIVATIONS[act]}(),")
            width = h
        n_out = self.n_classes if self.task == "classification" and self.n_classes > 2 else 1
        layers.append(f"cr.nn.Linear({width}, {n_out}),")
        if self.loss_name == "bce":
            layers.append("cr.nn.Sigmoid(),")
        loss = {
            "bce": "cr.nn.BCELoss()",
            "cross_entropy": "cr.nn.CrossEntropyLoss()",
            "mse": "cr.nn.MSELoss()",
        }[self.loss_name]
        opt = (
            f"cr.optim.Adam(net.parameters(), lr={s['learningRate']!r})"
            if s["optimizer"] == "adam"
            else f"cr.optim.SGD(net.parameters(), lr={s['learningRate']!r}, "
            f"momentum={s['momentum']!r})"
        )
        return layers, loss, opt

    def _script_notes(self) -> str:
        """What the script cannot repeat: uploaded or edited points, regularization."""
        s = self.settings
        if s["regularization"] != "none" and s["regRate"] > 0:
            reg_note = (
                f"# The playground added {s['regularization']} regularization (rate "
                f"{s['regRate']!r}) on the weights; cr.fit trains without it.\n"
            )
        else:
            reg_note = ""
        if self.custom is not None:
            data_src = (
                "# The points were uploaded or edited in the page: download them with\n"
                "# 'data.csv' and read that file instead of the generator below.\n"
            )
        else:
            data_src = ""
        return data_src + reg_note

    def script(self) -> str:
        """A short Python script that rebuilds and trains the same network with cr.nn and cr.fit."""
        s = self.settings
        layers, loss, opt = self._script_network()
        feats = ", ".join(repr(f) for f in s["features"])
        target = (
            "y_train.astype(np.int64)"
            if self.loss_name == "cross_entropy"
            else "y_train.astype(np.float32).reshape(-1, 1)"
        )
        target_test = target.replace("y_train", "y_test")
        shown = ",\n    ".join(f"{k}={json.dumps(s[k])}" for k in _SCRIPT_KEYS)
        return f'''"""Rebuild and train the playground's network with chainrule (cr.nn + cr.fit).

Settings: {shown}
"""
import numpy as np

import chainrule as cr
from chainrule.playground.datasets import make_features, make_points

{self._script_notes()}X, y, task = make_points({s["dataset"]!r}, n={s["samples"]},
                          noise={s["noise"] / 100.0!r}, seed={s["seed"]}, classes={s["classes"]})
order = np.random.default_rng({s["seed"] + 7919}).permutation(len(X))
n_train = max(1, min(len(X) - 1, round(len(X) * {s["trainRatio"]} / 100)))
X_train, y_train = X[order[:n_train]], y[order[:n_train]]
X_test, y_test = X[order[n_train:]], y[order[n_train:]]
features = [{feats}]
F_train, F_test = make_features(X_train, features), make_features(X_test, features)

cr.manual_seed({s["seed"]})
net = cr.nn.Sequential(
    {(chr(10) + "    ").join(layers)}
)
loss_fn = {loss}
opt = {opt}
history = cr.fit(net, loss_fn, opt, F_train, {target}, epochs={max(self.epoch, 1)},
                 batch_size={s["batchSize"]}, validation=(F_test, {target_test}), seed={s["seed"]})
print(f"train loss {{history['loss'][-1]:.4f}}, test loss {{history['val_loss'][-1]:.4f}}")
cr.save(net, "playground.safetensors")
'''
