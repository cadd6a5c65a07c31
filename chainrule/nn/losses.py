"""Loss modules: the loss unit L at the end of the chain, with PyTorch's names and formulas.

Each is called as ``loss_fn(input, target)``; ``target`` may be a numpy array (integer class
labels, or floats) or a tensor. ``reduction`` is 'mean' (default), 'sum' or 'none'. The maths is
in ``functional.py``.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, TensorLike
from . import functional as F
from .module import Module

__all__ = ["MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "HingeLoss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        F._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"

    def _reg_const(self, name: str, value: TensorLike | None) -> None:
        """Keep a constant array argument (weight, pos_weight) as a non-learned buffer."""
        if value is None:
            self.register_buffer(name, None)
        else:
            self.register_buffer(name, F._data(value))


class MSELoss(
    _Loss,
    role="loss",
    output_kind="value",
    short_name="mse",
    formula="({o} − y)²",
    derivative="2({o} − y)",
):
    """Mean squared error: L = (ŷ − y)² per element, then the reduction.

    input and target must have the same shape (PyTorch broadcasts with a warning; here a
    mismatch such as (N, 1) against (N,) is a ShapeError).
    """

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return F._mse_loss(input, target, self.reduction, "MSELoss")


class BCELoss(
    _Loss,
    role="loss",
    output_kind="probability",
    short_name="bce",
    formula="−[y log {o} + (1 − y) log(1 − {o})]",
    derivative="({o} − y)/({o}(1 − {o}))",
):
    """Binary cross-entropy of probabilities ŷ in [0, 1] (the logistic classifier's negative
    log-likelihood): L = −w [y log ŷ + (1 − y) log(1 − ŷ)], each log clamped at −100 so that
    ŷ = 0 or 1 gives a finite loss (as PyTorch). ``weight`` rescales each element.
    """

    weight: np.ndarray | None  # a buffer

    def __init__(self, weight: TensorLike | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._reg_const("weight", weight)

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return F._binary_cross_entropy(input, target, self.weight, self.reduction, "BCELoss")


class BCEWithLogitsLoss(
    _Loss,
    role="loss",
    output_kind="logit",
    short_name="bce_with_logits",
    formula="−[y log σ({o}) + (1 − y) log(1 − σ({o}))]",
    derivative="σ({o}) − y",
):
    """Sigmoid and binary cross-entropy in one stable unit, from logits z:
    L = −w [p·y log σ(z) + (1 − y) log(1 − σ(z))], dL/dz = σ(z) − y when p = w = 1.

    ``pos_weight`` p (one per class, broadcast along the last axis) weighs positive examples;
    ``weight`` rescales each element.
    """

    weight: np.ndarray | None  # buffers
    pos_weight: np.ndarray | None

    def __init__(
        self,
        weight: TensorLike | None = None,
        reduction: str = "mean",
        pos_weight: TensorLike | None = None,
    ) -> None:
        super().__init__(reduction)
        self._reg_const("weight", weight)
        self._reg_const("pos_weight", pos_weight)

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return F._binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight, "BCEWithLogitsLoss"
        )


class CrossEntropyLoss(
    _Loss,
    role="loss",
    output_kind="logits",
    target="index",
    short_name="cross_entropy",
    formula="−log softmax({o})_y",
    derivative="softmax({o}) − onehot(y)",
):
    """Softmax and negative log-likelihood in one unit, from logits z (N, C) or (N, C, d1, ...).

    Integer labels y (N,): L_i = −w_{y_i} log softmax(z_i)[y_i], and dL/dz_i = softmax(z_i) −
    onehot(y_i) for w = 1. ``weight`` (C,) weighs classes; 'mean' divides by Σ w_{y_i} over the
    samples not labelled ``ignore_index``. ``label_smoothing`` ε mixes the one-hot target with
    the uniform distribution: (1 − ε)·onehot + ε/C.

    Float targets of the input's shape are class probabilities t: L_i = −Σ_c w_c t_ic log
    softmax(z_i)_c ('mean' divides by N).
    """

    weight: np.ndarray | None  # a buffer

    def __init__(
        self,
        weight: TensorLike | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction)
        self._reg_const("weight", weight)
        self.ignore_index = ignore_index
        self.label_smoothing = F._check_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return F._cross_entropy(
            input,
            target,
            self.weight,
            self.ignore_index,
            self.reduction,
            self.label_smoothing,
            "CrossEntropyLoss",
        )

    def extra_repr(self) -> str:
        parts: list[str] = [] if self.reduction == "mean" else [f"reduction={self.reduction!r}"]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class NLLLoss(
    _Loss,
    role="loss",
    output_kind="logits",
    target="index",
    short_name="nll",
    formula="−{o}_y",
    derivative="−onehot(y)",
):
    """Negative log-likelihood of log-probabilities a (N, C) (e.g. from LogSoftmax) and integer
    labels: L_i = −w_{y_i} a_i[y_i]; 'mean' divides by Σ w_{y_i} over non-ignored samples."""

    weight: np.ndarray | None  # a buffer

    def __init__(
        self, weight: TensorLike | None = None, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self._reg_const("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return F._nll_loss(input, target, self.weight, self.ignore_index, self.reduction, "NLLLoss")


class HingeLoss(
    _Loss,
    role="loss",
    output_kind="logit",
    short_name="hinge",
    formula="max(0, 1 − y·{o})",
    derivative="−y where y·{o} < 1, else 0",
):
    """The linear SVM's loss (not in PyTorch): L = max(0, 1 − y·ŷ) for a score ŷ of shape (N,)
    or (N, 1) and labels y in {−1, +1} (labels {0, 1} are mapped to −1/+1)."""

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return F._hinge_loss(input, target, self.reduction, "HingeLoss")
