"""Layers and losses as functions (as ``torch.nn.functional``): the maths of ``cr.nn`` lives here.

The modules in ``layers.py`` and ``losses.py`` keep configuration and parameters and call these
functions; these functions only combine units from ``chainrule.units`` (where every derivative
lives). Inputs may be tensors or numpy arrays; targets may be numpy arrays or tensors.

Losses, for a batch of N samples (the loss unit L of the course notes):

=================================  ======================================================
mse_loss                           (ŷ − y)²
binary_cross_entropy               −[y log ŷ + (1 − y) log(1 − ŷ)]   (ŷ probabilities)
binary_cross_entropy_with_logits   the same with ŷ = σ(z), computed from the logits z
cross_entropy                      −log softmax(z)[y]  (or −Σ_c t_c log softmax(z)_c)
nll_loss                           −a[y]   (a log-probabilities)
hinge_loss                         max(0, 1 − y·ŷ)   (y in {−1, +1})
=================================  ======================================================

then ``reduction='mean'`` (the default) averages, ``'sum'`` adds and ``'none'`` keeps the
per-sample values.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .. import units as U
from ..errors import ConfigError, DataError, ShapeError
from ..tensor import Tensor, TensorLike
from ._inputs import _as_input, _data, _input  # noqa: F401 - used here and by the layers

__all__ = [
    # activations and layers
    "linear",
    "relu",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "softmax",
    "log_softmax",
    "gelu",
    "identity",
    "dropout",
    "batch_norm",
    "flatten",
    # losses
    "mse_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "hinge_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _check_reduction(reduction: object, who: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: TensorLike, reduction: str) -> Tensor:
    if reduction == "mean":
        return U.mean(loss)
    if reduction == "sum":
        return U.sum(loss)
    return loss if isinstance(loss, Tensor) else Tensor(loss)


def _float_target(target: TensorLike, dtype: DTypeLike, who: str) -> Tensor | np.ndarray:
    """A float target: a constant array of the input's dtype, or a tensor that requires grad."""
    if isinstance(target, Tensor):
        if target.requires_grad:
            return target
        target = target.data
    t = np.asarray(target)
    if t.dtype.kind not in "biuf":
        raise DataError(f"{who}: target must be numbers, got an array of dtype {t.dtype}")
    return t if t.dtype == dtype else t.astype(dtype)


def _same_shape(x: np.ndarray, t: TensorLike, who: str) -> None:
    tshape = np.shape(t.data if isinstance(t, Tensor) else t)
    if tuple(x.shape) != tuple(tshape):
        raise ShapeError(
            f"{who}: input shape {tuple(x.shape)} and target shape {tuple(tshape)} must be equal"
            + (
                " (reshape one of them, e.g. y.reshape(-1, 1) or output.reshape(-1))"
                if int(np.prod(x.shape)) == int(np.prod(tshape))
                else ""
            )
        )


def _const(arr: TensorLike | None, dtype: DTypeLike, who: str, name: str) -> np.ndarray | None:
    """An optional constant array argument (a class weight, pos_weight) in the input's dtype."""
    if arr is None:
        return None
    a = arr.data if isinstance(arr, Tensor) else np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise ConfigError(f"{who}: {name} must be numbers, got dtype {a.dtype}")
    return a.astype(dtype, copy=False)


def _labels(
    target: TensorLike, x_shape: tuple[int, ...], C: int, ignore_index: int, who: str
) -> np.ndarray:
    """Integer class labels of shape (N, d1, ...) for an input (N, C, d1, ...), range-checked."""
    t = _data(target) if isinstance(target, Tensor) else np.asarray(target)
    expected = (x_shape[0],) + tuple(x_shape[2:])
    if t.shape != expected:
        raise ShapeError(
            f"{who}: target shape {t.shape} does not fit input shape {tuple(x_shape)}: expected "
            f"integer class labels of shape {expected}"
            + (
                " or class probabilities (floats) of the input's shape"
                if who.startswith(("CrossEntropy", "cross_entropy"))
                else ""
            )
        )
    if t.dtype.kind == "f":
        if t.size and not np.all(t == np.round(t)):
            bad = float(t[t != np.round(t)].flat[0])
            raise DataError(f"{who}: class labels must be whole numbers, got {bad!r}")
        t = t.astype(np.int64)
    elif t.dtype.kind not in "iu":
        raise DataError(f"{who}: class labels must be integers, got an array of dtype {t.dtype}")
    if t.size and t.min() >= 0 and t.max() < C:  # the common case: two reductions
        return t
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= C))
    if np.any(bad):
        label = t[bad].flat[0]
        raise DataError(
            f"{who}: label {int(label)} is out of range for {C} classes "
            f"(labels must be 0..{C - 1}"
            + (
                f" or ignore_index={ignore_index})"
                if ignore_index is not None and ignore_index != -100
                else ")"
            )
        )
    return t


def _class_weight(
    weight: TensorLike | None, C: int, dtype: DTypeLike, who: str
) -> np.ndarray | None:
    w = _const(weight, dtype, who, "weight")
    if w is not None and w.shape != (C,):
        raise ShapeError(
            f"{who}: weight must have one entry per class, shape ({C},), got shape {w.shape}"
        )
    return w


# ------------------------------------------------------------------------------------------------
# activations and layers
# ------------------------------------------------------------------------------------------------


def linear(input: TensorLike, weight: TensorLike, bias: TensorLike | None = None) -> Tensor:
    """The linear unit Σ: x Wᵀ + b, x of shape (..., in), W (out, in), b (out,) -> (..., out)."""
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    x = _as_input(input, w.dtype)
    return U.Linear.apply(x, weight) if bias is None else U.Linear.apply(x, weight, bias)


def relu(input: TensorLike) -> Tensor:
    """max(x, 0), elementwise."""
    return U.ReLU.apply(_input(input))


def leaky_relu(input: TensorLike, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope·x."""
    return U.leaky_relu(_input(input), negative_slope)


def tanh(input: TensorLike) -> Tensor:
    return U.Tanh.apply(_input(input))


def sigmoid(input: TensorLike) -> Tensor:
    """σ(x) = 1 / (1 + e^(−x))."""
    return U.Sigmoid.apply(_input(input))


def gelu(input: TensorLike, approximate: str = "none") -> Tensor:
    """x Φ(x) (Φ the standard normal CDF); ``approximate='tanh'`` uses the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ConfigError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return U.gelu(_input(input), approximate=approximate)


def softmax(input: TensorLike, dim: int = -1) -> Tensor:
    """exp(x_i) / Σ_j exp(x_j) along ``dim``."""
    return U.softmax(_input(input), axis=dim)


def log_softmax(input: TensorLike, dim: int = -1) -> Tensor:
    """x_i − log Σ_j exp(x_j) along ``dim`` (stable: never takes log of a tiny softmax)."""
    return U.log_softmax(_input(input), axis=dim)


def identity(input: TensorLike) -> Tensor:
    if isinstance(input, Tensor):
        return input
    return Tensor(_input(input))


def _check_p(p: object, who: str) -> float:
    if (
        isinstance(p, bool)
        or not isinstance(p, (int, float, np.floating, np.integer))
        or not 0.0 <= float(p) <= 1.0
    ):
        raise ConfigError(f"{who}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def dropout(
    input: TensorLike,
    p: float = 0.5,
    training: bool = True,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1 − p).

    The expected value of every element is unchanged, so at evaluation (``training=False``)
    dropout is the identity. The mask is drawn from ``rng``/``seed``/the default generator.
    """
    p = _check_p(p, "dropout")
    x = _input(input)
    if not training or p == 0.0:
        return identity(x)
    a = _data(x)
    if p == 1.0:
        return U.mul(x, np.zeros_like(a))
    # the mask is drawn inside the unit (a compiled step then draws a fresh one at every call)
    return U.Dropout.apply(x, p=p, rng=rng, seed=seed)


def batch_norm(
    input: TensorLike,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: TensorLike | None = None,
    bias: TensorLike | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    *,
    num_batches_tracked: np.ndarray | None = None,
) -> Tensor:
    """Batch normalization over every axis but the channel axis 1 of x (N, C) or (N, C, L).

    In training, each channel is normalized with the batch mean and biased variance, and
    ``running_mean``/``running_var`` (numpy arrays, or None) are updated in place:
    running = (1 − momentum)·running + momentum·batch, with the *unbiased* batch variance.
    Otherwise the running statistics normalize. Then z = γ x̂ + β.
    ``num_batches_tracked`` (a 0-d integer array) is counted up by one per training call, and
    ``momentum=None`` then gives the cumulative average (what ``nn.BatchNorm1d`` does). The
    statistics and their update are computed inside the unit (``BatchNorm``'s ``update``), so a
    compiled step replays them.
    """
    x = _input(input)
    a = _data(x)
    if a.ndim < 2:
        raise ShapeError(f"batch_norm: expected input of shape (N, C) or (N, C, L), got {a.shape}")
    C = a.shape[1]
    for name, v in (
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        if v is not None and np.shape(_data(v)) != (C,):
            raise ShapeError(
                f"batch_norm: {name} has shape {np.shape(_data(v))} but the input "
                f"has {C} channels (input shape {a.shape})"
            )
    if training:
        m = a.size // C if C else 0
        if m <= 1:
            raise ShapeError(
                f"batch_norm: expected more than 1 value per channel when training, "
                f"got input of shape {a.shape}"
            )
        update = (running_mean, running_var, momentum, num_batches_tracked)
        return U.BatchNorm.apply(x, weight, bias, eps=eps, training=True, update=update)
    if running_mean is None or running_var is None:
        raise ConfigError("batch_norm: running_mean and running_var are needed when not training")
    return U.BatchNorm.apply(
        x,
        weight,
        bias,
        mean=np.asarray(running_mean),
        var=np.asarray(running_var),
        eps=eps,
        training=False,
    )


def flatten(input: TensorLike, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one: (N, C, L) -> (N, C·L) by default."""
    x = _input(input)
    shape = _data(x).shape
    nd = max(len(shape), 1)
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ConfigError(
            f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a "
            f"tensor of shape {shape}"
        )
    if not shape:
        return U.reshape(x, (1,))
    new = shape[:s] + (int(np.prod(shape[s : e + 1])),) + shape[e + 1 :]
    return U.reshape(x, new)


# ------------------------------------------------------------------------------------------------
# losses (each public function calls a private one that also takes the name to put in errors,
# so that the module CrossEntropyLoss and the function cross_entropy report as themselves)
# ------------------------------------------------------------------------------------------------


def mse_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """Mean squared error: (ŷ − y)² per element, then the reduction."""
    return _mse_loss(input, target, reduction, "mse_loss")


def _mse_loss(input: TensorLike, target: TensorLike, reduction: str, who: str) -> Tensor:
    _check_reduction(reduction, who)
    x = _input(input)
    a = _data(x)
    t = _float_target(target, a.dtype, who)
    _same_shape(a, t, who)
    d = U.sub(x, t)
    return _reduce(U.mul(d, d), reduction)


def binary_cross_entropy(
    input: TensorLike,
    target: TensorLike,
    weight: TensorLike | None = None,
    reduction: str = "mean",
) -> Tensor:
    """−w [y log ŷ + (1 − y) log(1 − ŷ)] for probabilities ŷ in [0, 1] (logs clamped at −100)."""
    return _binary_cross_entropy(input, target, weight, reduction, "binary_cross_entropy")


def _binary_cross_entropy(
    input: TensorLike, target: TensorLike, weight: TensorLike | None, reduction: str, who: str
) -> Tensor:
    _check_reduction(reduction, who)
    x = _input(input)
    a = _data(x)
    t = _float_target(target, a.dtype, who)
    t = t.data if isinstance(t, Tensor) else t
    _same_shape(a, t, who)
    if a.size and not (a.min() >= 0 and a.max() <= 1):  # also catches NaN
        bad = a[~((a >= 0) & (a <= 1))].flat[0]
        raise DataError(
            f"{who}: input must hold probabilities in [0, 1], got {float(bad)!r} (apply a "
            "sigmoid first, or give the logits to BCEWithLogitsLoss)"
        )
    loss = U.BCEProb.apply(x, t)
    w = _const(weight, a.dtype, who, "weight")
    if w is not None:
        loss = U.mul(loss, w)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: TensorLike,
    target: TensorLike,
    weight: TensorLike | None = None,
    reduction: str = "mean",
    pos_weight: TensorLike | None = None,
) -> Tensor:
    """−w [p·y log σ(z) + (1 − y) log(1 − σ(z))] from logits z, in one stable unit.

    ``pos_weight`` (p, one per class, broadcast along the last axis) weighs the positive term.
    """
    return _binary_cross_entropy_with_logits(
        input, target, weight, reduction, pos_weight, "binary_cross_entropy_with_logits"
    )


def _binary_cross_entropy_with_logits(
    input: TensorLike,
    target: TensorLike,
    weight: TensorLike | None,
    reduction: str,
    pos_weight: TensorLike | None,
    who: str,
) -> Tensor:
    _check_reduction(reduction, who)
    x = _input(input)
    a = _data(x)
    t = _float_target(target, a.dtype, who)
    t = t.data if isinstance(t, Tensor) else t
    _same_shape(a, t, who)
    pw = _const(pos_weight, a.dtype, who, "pos_weight")
    loss = U.SigmoidBCE.apply(x, t, pos_weight=pw)
    w = _const(weight, a.dtype, who, "weight")
    if w is not None:
        loss = U.mul(loss, w)
    return _reduce(loss, reduction)


def cross_entropy(
    input: TensorLike,
    target: TensorLike,
    weight: TensorLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits z (N, C) or (N, C, d1, ...) (or one sample (C,)) against targets.

    Integer labels y: L_i = −w_{y_i} log softmax(z_i)[y_i] (fused softmax and log); with
    ``label_smoothing`` ε the one-hot target becomes (1 − ε)·onehot + ε/C. 'mean' divides by the
    summed weights w_{y_i} of the samples whose label is not ``ignore_index``.

    Float targets of the input's shape are class probabilities t:
    L_i = −Σ_c w_c t_ic log softmax(z_i)_c, and 'mean' divides by N.
    """
    return _cross_entropy(
        input, target, weight, ignore_index, reduction, label_smoothing, "cross_entropy"
    )


def _check_smoothing(label_smoothing: float, who: str) -> float:
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise ConfigError(
            f"{who}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}"
        )
    return ls


def _plain_labels(a: np.ndarray, t: np.ndarray, ignore_index: int) -> bool:
    """True for the training loop's common case: (N, C) float logits and N integer labels, all
    in range and none ignored (then one fused unit computes the mean loss)."""
    return (
        a.ndim == 2
        and t.ndim == 1
        and t.dtype.kind in "iu"
        and len(t) == len(a) > 0
        and a.dtype.kind == "f"
        and not 0 <= ignore_index < a.shape[1]
        and t.min() >= 0
        and t.max() < a.shape[1]
    )


def _cross_entropy(
    input: TensorLike,
    target: TensorLike,
    weight: TensorLike | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    who: str,
) -> Tensor:
    if (
        reduction == "mean"
        and weight is None
        and not label_smoothing
        and isinstance(input, (Tensor, np.ndarray))
        and type(target) is np.ndarray
        and _plain_labels(_data(input), target, ignore_index)
    ):
        return U.MeanSoftmaxCrossEntropy.apply(input, target)  # before the general checks
    _check_reduction(reduction, who)
    ls = _check_smoothing(label_smoothing, who)
    x = _input(input)
    a = _data(x)
    if a.ndim == 0:
        raise ShapeError(f"{who}: input must have shape (N, C) or (C,), got a scalar")
    t = _data(target) if isinstance(target, Tensor) else np.asarray(target)
    unbatched = a.ndim == 1
    if unbatched:
        x, a, t = _batch_of_one(x, a, t)
    C = a.shape[1]
    w = _class_weight(weight, C, a.dtype, who)
    if t.dtype.kind == "f" and t.shape == a.shape:
        out = _cross_entropy_probs(x, a, t.astype(a.dtype, copy=False), w, reduction, ls)
    else:
        y = _labels(t, a.shape, C, ignore_index, who)
        per = U.SoftmaxCrossEntropy.apply(
            x, y, weight=w, ignore_index=ignore_index, label_smoothing=ls
        )
        out = _reduce_weighted(per, y, w, ignore_index, reduction, a.dtype)
    return _unbatch(out) if unbatched and reduction == "none" else out


def _batch_of_one(
    x: Tensor | np.ndarray, a: np.ndarray, t: np.ndarray
) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """One sample, logits (C,) and its target: as a batch of one, (1, C) and (1, ...)."""
    return U.reshape(x, (1,) + a.shape), a.reshape((1,) + a.shape), t.reshape((1,) + t.shape)


def _unbatch(per: Tensor) -> Tensor:
    """The per-sample loss of a batch of one, back to the one sample's: a scalar."""
    return U.reshape(per, ())


def _reduce_weighted(
    per: Tensor,
    y: np.ndarray,
    w: np.ndarray | None,
    ignore_index: int,
    reduction: str,
    dtype: DTypeLike,
) -> Tensor:
    """'mean' over labelled samples divides by Σ w[y_i] over those whose label is not ignored."""
    if reduction != "mean":
        return _reduce(per, reduction)
    valid = y != ignore_index
    denom = valid.sum() if w is None else w[np.where(valid, y, 0)][valid].sum()
    if denom == 0:  # every sample ignored: the loss is nan (0/0) and the gradients 0, as PyTorch
        return U.add(U.sum(per), np.asarray(np.nan, dtype=dtype))
    return U.div(U.sum(per), np.asarray(denom, dtype=dtype))


def _cross_entropy_probs(
    x: TensorLike, a: np.ndarray, t: np.ndarray, w: np.ndarray | None, reduction: str, ls: float
) -> Tensor:
    C = a.shape[1]
    if ls:
        t = t * (1 - ls) + ls / C
    if w is not None:
        t = t * w.reshape((1, C) + (1,) * (a.ndim - 2))
    logp = U.log_softmax(x, axis=1)
    per = U.neg(U.sum(U.mul(logp, t), axis=1))
    return _reduce(per, reduction)


def nll_loss(
    input: TensorLike,
    target: TensorLike,
    weight: TensorLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities a (N, C) or (N, C, d1, ...): −w_{y_i} a_i[y_i].

    'mean' divides by Σ w_{y_i} over the samples whose label is not ``ignore_index``.
    """
    return _nll_loss(input, target, weight, ignore_index, reduction, "nll_loss")


def _nll_loss(
    input: TensorLike,
    target: TensorLike,
    weight: TensorLike | None,
    ignore_index: int,
    reduction: str,
    who: str,
) -> Tensor:
    _check_reduction(reduction, who)
    x = _input(input)
    a = _data(x)
    if a.ndim == 0:
        raise ShapeError(f"{who}: input must have shape (N, C) or (C,), got a scalar")
    t = _data(target) if isinstance(target, Tensor) else np.asarray(target)
    unbatched = a.ndim == 1
    if unbatched:
        x, a, t = _batch_of_one(x, a, t)
    C = a.shape[1]
    w = _class_weight(weight, C, a.dtype, who)
    y = _labels(t, a.shape, C, ignore_index, who)
    valid = y != ignore_index
    ysafe = np.where(valid, y, 0)
    wi = valid.astype(a.dtype) if w is None else w[ysafe] * valid
    # pick a_i[y_i]: index the batch (and extra) axes with open grids, the class axis with y
    grids = np.ogrid[tuple(slice(0, n) for n in y.shape)]
    index = (grids[0], ysafe) + tuple(grids[1:])
    picked = U.GetItem.apply(x, index=index)
    per = U.neg(U.mul(picked, wi))
    out = _reduce_weighted(per, y, w, ignore_index, reduction, a.dtype)
    return _unbatch(out) if unbatched and reduction == "none" else out


def hinge_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """max(0, 1 − y·ŷ) for scores ŷ of shape (N,) or (N, 1) and labels y in {−1, +1}.

    Labels in {0, 1} are mapped to −1/+1. (Not in PyTorch: the loss of a linear SVM.)
    """
    return _hinge_loss(input, target, reduction, "hinge_loss")


def _hinge_loss(input: TensorLike, target: TensorLike, reduction: str, who: str) -> Tensor:
    _check_reduction(reduction, who)
    x = _input(input)
    a = _data(x)
    if not (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)):
        raise ShapeError(
            f"{who}: input must have shape (N,) or (N, 1) (one score per sample), got {a.shape}"
        )
    t = _data(target) if isinstance(target, Tensor) else np.asarray(target)
    N = a.shape[0]
    if t.shape not in ((N,), (N, 1)):
        raise ShapeError(
            f"{who}: input shape {a.shape} and target shape {t.shape} do not fit: "
            f"expected one label per sample, shape ({N},) or ({N}, 1)"
        )
    if t.dtype.kind not in "biuf":
        raise DataError(f"{who}: labels must be numbers, got dtype {t.dtype}")
    vals = set(np.unique(t).tolist())
    if vals <= {0, 1}:
        y = 2.0 * t - 1.0
    elif vals <= {-1, 1}:
        y = t
    else:
        bad = sorted(vals - {-1, 0, 1})
        bad = bad[0] if bad else sorted(vals)[0]
        raise DataError(f"{who}: labels must be -1/+1 (or 0/1), got {bad!r}")
    y = np.asarray(y, dtype=a.dtype).reshape(a.shape)
    return _reduce(U.relu(U.sub(1.0, U.mul(x, y))), reduction)


# convolution and pooling live in their own module (units in chainrule/units_conv.py)
from .functional_conv import (  # noqa: E402 - the convolution functions, re-exported
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    max_pool1d,
    max_pool2d,
    unflatten,
)

__all__ += [
    "conv1d",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "unflatten",
]
