"""Metrics on numpy arrays: what the training loop reports and the ``evaluate`` command prints.

Classification metrics take predicted class indices (see :func:`predict_classes` to turn a
model's outputs into them); regression metrics take the predicted values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from . import registry
from .errors import ConfigError

__all__ = [
    "predict_classes",
    "class_probabilities",
    "accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "mse",
    "mae",
    "r2",
    "METRICS",
    "compute_metric",
    "output_kind",
]


def output_kind(loss_fn: object) -> str:
    """How a model's outputs are read, from the loss it was trained with.

    'logits' (several columns: the class is the argmax), 'logit' (one column, class 1 when > 0:
    BCEWithLogitsLoss, HingeLoss), 'probability' (one column, class 1 when > 0.5: BCELoss), or
    'value' (regression losses). ``loss_fn`` may be the loss module or its class name ('BCELoss').
    Each loss states its kind in its class line (``output_kind=``, see chainrule.registry);
    anything else is read as logits.
    """
    if loss_fn is None:
        return "logits"
    facts = registry.facts_of(loss_fn)
    return facts.output_kind if facts.role == "loss" and facts.output_kind else "logits"


def predict_classes(outputs: np.ndarray, kind: str = "logits") -> np.ndarray:
    """Class indices from model outputs of shape (n,) or (n, k).

    Several columns: the argmax. One column: 1 where the output passes the threshold of
    ``kind`` (0 for a logit or a ±1 score, 0.5 for a probability).
    """
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs.argmax(axis=1)
    flat = outputs.reshape(len(outputs), -1)[:, 0] if outputs.ndim else outputs.reshape(1)
    threshold = 0.5 if kind == "probability" else 0.0
    return (flat > threshold).astype(np.int64)


@overload
def class_probabilities(
    outputs: np.ndarray, kind: Literal["logits", "logit", "probability"] = "logits"
) -> np.ndarray: ...
@overload
def class_probabilities(outputs: np.ndarray, kind: str) -> np.ndarray | None: ...
def class_probabilities(outputs: np.ndarray, kind: str = "logits") -> np.ndarray | None:
    """Class probabilities (float64, shape (n, k)) from model outputs read as ``kind``.

    'logits': the softmax of the columns; 'logit': the sigmoid of the one column (computed
    without overflow warnings: a logit past ±710 gives exactly 0 or 1); 'probability': the
    column itself, as P(class 1); 'value' (regression): None.
    """
    out = np.asarray(outputs, dtype=np.float64)
    if kind == "logits":
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if kind == "value":
        return None
    flat = out.reshape(len(out), -1)[:, 0]
    if kind == "probability":
        p = flat
    else:
        with np.errstate(over="ignore"):
            p = 1 / (1 + np.exp(-flat))
    return np.stack([1 - p, p], axis=1)


def _labels(y: ArrayLike) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot or probability targets
        return y.argmax(axis=1)
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        if np.all((y == -1) | (y == 1)) and np.any(y == -1):  # ±1 labels (hinge)
            return (y > 0).astype(np.int64)
        return np.rint(y).astype(np.int64)
    return y.astype(np.int64)


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of samples whose predicted class equals the true class."""
    y_true, y_pred = _labels(y_true), np.asarray(y_pred).reshape(-1)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None
) -> np.ndarray:
    """Counts C[i, j] of samples of true class i predicted as class j."""
    y_true, y_pred = _labels(y_true), np.asarray(y_pred).reshape(-1).astype(np.int64)
    k = n_classes or int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def precision_recall_f1(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support (arrays of length n_classes; 0 where
    undefined)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1, support


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error."""
    d = np.asarray(y_pred, dtype=np.float64).reshape(-1) - np.asarray(
        y_true, dtype=np.float64
    ).reshape(-1)
    return float(np.mean(d * d))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error."""
    d = np.asarray(y_pred, dtype=np.float64).reshape(-1) - np.asarray(
        y_true, dtype=np.float64
    ).reshape(-1)
    return float(np.mean(np.abs(d)))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination 1 − SS_res / SS_tot (as scikit-learn's r2_score)."""
    yt = np.asarray(y_true, dtype=np.float64).reshape(-1)
    yp = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    ss_res = float(np.sum((yt - yp) ** 2))
    ss_tot = float(np.sum((yt - yt.mean()) ** 2))
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1 - ss_res / ss_tot


METRICS = {
    "accuracy": "classification",
    "mse": "regression",
    "mae": "regression",
    "r2": "regression",
}


def compute_metric(
    name: str | Callable[[np.ndarray, np.ndarray], float],
    outputs: np.ndarray,
    y: np.ndarray,
    kind: str,
) -> float:
    """The metric ``name`` (or a callable ``f(y_true, outputs)``) of model outputs against y."""
    if callable(name):
        return float(name(y, outputs))
    if name == "accuracy" or name == "acc":
        return accuracy(y, predict_classes(outputs, kind))
    if name in ("mse", "mae", "r2"):
        return {"mse": mse, "mae": mae, "r2": r2}[name](y, outputs)
    raise ConfigError(
        f"unknown metric {name!r}: choose from {', '.join(METRICS)} or pass a function"
    )
