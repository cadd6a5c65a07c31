"""Everyday data helpers: splitting, standardizing, one-hot encoding, mini-batches, label codes.

Everything here is numpy only.  Randomness comes from an explicit ``seed`` (int) or ``rng``
(``numpy.random.Generator``) argument, never from numpy's global generator.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator

import numpy as np

from chainrule.errors import DataError
from chainrule.random import get_rng

__all__ = [
    "train_test_split",
    "Standardizer",
    "standardize",
    "one_hot",
    "batches",
    "encode_labels",
]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _rows(X, y):
    """X and y as arrays with one row per sample, the same number of each."""
    X = np.asarray(X)
    y = None if y is None else np.asarray(y)
    if X.ndim == 0:
        raise DataError("X must have one row per sample, got a single number")
    if y is not None and len(X) != len(y):
        raise DataError(f"X has {len(X)} rows but y has {len(y)}; expected the same number")
    return X, y


def _test_count(test_size, n: int) -> int:
    """Turn test_size (a fraction in (0, 1) or a count) into a number of test rows."""
    if _is_int(test_size):
        n_test = int(test_size)
        if not 1 <= n_test <= n - 1:
            raise DataError(
                f"test_size={n_test} rows does not fit {n} rows; expected a count from 1 to {n - 1}"
            )
        return n_test
    if (
        isinstance(test_size, numbers.Real)
        and not isinstance(test_size, bool)
        and 0.0 < float(test_size) < 1.0
    ):
        n_test = math.ceil(float(test_size) * n)
        if not 1 <= n_test <= n - 1:
            raise DataError(
                f"test_size={test_size} of {n} rows leaves {n_test} test and {n - n_test} "
                "training rows; expected at least one of each"
            )
        return n_test
    raise DataError(
        f"test_size must be a fraction between 0 and 1 or a whole number of rows, got {test_size!r}"
    )


def _stratified_test_rows(
    y: np.ndarray, n_test: int, shuffle: bool, rng: np.random.Generator
) -> np.ndarray:
    """Pick n_test row indices so that each class keeps (close to) its share of the rows."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if counts.min() < 2:
        lonely = classes[int(np.argmin(counts))]
        raise DataError(
            f"stratify=True needs at least 2 rows of every class, but class {lonely!r} has 1; "
            "expected every class to appear at least twice"
        )
    exact = n_test * counts / len(y)
    take = np.minimum(np.floor(exact).astype(np.int64), counts - 1)
    # hand out what rounding down left over, largest remainders first, keeping one row of
    # each class for training
    for k in np.argsort(-(exact - take), kind="stable"):
        if take.sum() >= n_test:
            break
        if take[k] < counts[k] - 1:
            take[k] += 1
    chosen = []
    for k in range(len(classes)):
        rows = np.flatnonzero(inverse == k)
        if shuffle:
            rows = rng.permutation(rows)
        chosen.append(rows[len(rows) - take[k] :])
    return np.concatenate(chosen)


def train_test_split(
    X, y=None, test_size=0.25, seed: int | None = 0, shuffle: bool = True, stratify: bool = False
):
    """Split rows into a training part and a test part.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,) or None
    test_size : float in (0, 1) or int
        Fraction of the rows (rounded up) or number of rows that go to the test part.
    seed : int or None
        Seeds the shuffle.
    shuffle : bool
        If False, the last rows are the test part (in stratified mode: the last rows of each
        class) and both parts keep the original order.
    stratify : bool
        Keep each class's share of the rows (as given by ``y``) the same in both parts.

    Returns
    -------
    X_train, X_test, y_train, y_test
        ``X_train`` has shape (n_train, ...) and ``X_test`` (n_test, ...); the y parts are
        None when ``y`` is None.
    """
    X, y = _rows(X, y)
    n = len(X)
    if n < 2:
        raise DataError(
            f"cannot split {n} rows into a training and a test part; expected at least 2"
        )
    n_test = _test_count(test_size, n)
    rng = get_rng(seed=seed)
    if stratify:
        if y is None:
            raise DataError("stratify=True needs y (the class of every row)")
        test = _stratified_test_rows(y, n_test, shuffle, rng)
        is_test = np.zeros(n, dtype=bool)
        is_test[test] = True
        train = np.flatnonzero(~is_test)
        test = np.flatnonzero(is_test)
        if shuffle:
            train = rng.permutation(train)
            test = rng.permutation(test)
    else:
        order = rng.permutation(n) if shuffle else np.arange(n)
        train, test = order[: n - n_test], order[n - n_test :]
    if y is None:
        return X[train], X[test], None, None
    return X[train], X[test], y[train], y[test]


def _as_2d(X, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(
            f"{what} expects a 2-D array of shape (n_samples, n_features), got shape {X.shape}"
        )
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"{what} expects numbers, got an array of dtype {X.dtype}")
    return X


def _float_dtype(X: np.ndarray) -> np.dtype:
    """float32 and float64 stay as they are; everything else becomes float32."""
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float32)


class Standardizer:
    """Shift and scale each feature to mean 0 and standard deviation 1.

    Like scikit-learn's StandardScaler: ``scale_`` is the population standard deviation
    (divides by n), and a feature whose values are all equal gets scale 1 instead of 0.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), float64
    scale_ : ndarray of shape (n_features,), float64
    n_features_in_ : int
    """

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    @property
    def n_features_in_(self) -> int | None:
        return None if self.mean_ is None else int(self.mean_.shape[0])

    def fit(self, X) -> Standardizer:
        """Learn the mean and scale of each column of X, shape (n_samples, n_features)."""
        X = _as_2d(X, "Standardizer.fit")
        if X.shape[0] == 0:
            raise DataError("Standardizer.fit needs at least one row, got 0")
        X64 = X.astype(np.float64)
        if not np.all(np.isfinite(X64)):
            row, col = np.argwhere(~np.isfinite(X64))[0]
            raise DataError(
                f"Standardizer.fit: column {col + 1}, row {row + 1} is {X64[row, col]}; "
                "expected a finite number"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            mean = X64.mean(axis=0)
            scale = X64.std(axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(scale))
        if bad.any():
            col = int(np.argmax(bad))
            row = int(np.argmax(np.abs(X64[:, col])))
            raise DataError(
                f"Standardizer.fit: column {col + 1} holds values as large as "
                f"{X64[row, col]:.4g} (row {row + 1}); their spread overflows float64, so they "
                "cannot be standardized; rescale the column (divide it by a power of ten)"
            )
        self.mean_ = mean
        constant = np.ptp(X64, axis=0) == 0  # exact test: rounding in std would miss some
        scale[constant | (scale == 0)] = 1.0
        self.scale_ = scale
        return self

    def _check(self, X, what: str) -> np.ndarray:
        if self.mean_ is None:
            raise DataError(
                f"Standardizer.{what}: the Standardizer is not fitted; call fit(X) first"
            )
        X = _as_2d(X, f"Standardizer.{what}")
        if X.shape[1] != self.mean_.shape[0]:
            raise DataError(
                f"Standardizer.{what}: X has {X.shape[1]} features, but the Standardizer was "
                f"fitted on {self.mean_.shape[0]} features"
            )
        return X

    def transform(self, X) -> np.ndarray:
        """Return (X - mean_) / scale_, shape (n_samples, n_features); float32 stays float32."""
        X = self._check(X, "transform")
        assert self.mean_ is not None and self.scale_ is not None  # _check: fitted
        dt = _float_dtype(X)
        return ((X - self.mean_.astype(dt)) / self.scale_.astype(dt)).astype(dt, copy=False)

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        """Return X * scale_ + mean_, shape (n_samples, n_features): undoes transform."""
        X = self._check(X, "inverse_transform")
        assert self.mean_ is not None and self.scale_ is not None  # _check: fitted
        dt = _float_dtype(X)
        return (X * self.scale_.astype(dt) + self.mean_.astype(dt)).astype(dt, copy=False)

    def to_dict(self) -> dict:
        """Plain-Python form ``{"mean": [...], "scale": [...]}`` that json.dump can write."""
        if self.mean_ is None:
            raise DataError(
                "Standardizer.to_dict: the Standardizer is not fitted; call fit(X) first"
            )
        assert self.scale_ is not None  # set together with mean_
        return {"mean": [float(v) for v in self.mean_], "scale": [float(v) for v in self.scale_]}

    @classmethod
    def from_dict(cls, d: dict) -> Standardizer:
        """Rebuild a fitted Standardizer from the output of :meth:`to_dict`."""
        if not isinstance(d, dict) or "mean" not in d or "scale" not in d:
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise DataError(
                f"Standardizer.from_dict expects a dict with keys 'mean' and 'scale', got {keys}"
            )
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                "Standardizer.from_dict: 'mean' and 'scale' must be lists of numbers"
            ) from None
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise DataError(
                f"Standardizer.from_dict: 'mean' has shape {mean.shape} and 'scale' has shape "
                f"{scale.shape}; expected two lists of the same length"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise DataError(
                "Standardizer.from_dict: expected finite means and positive finite scales"
            )
        out = cls()
        out.mean_, out.scale_ = mean, scale
        return out

    def __repr__(self) -> str:
        if self.mean_ is None:
            return "Standardizer(not fitted)"
        return f"Standardizer(n_features={self.n_features_in_})"


def standardize(X_train, *others):
    """Fit a :class:`Standardizer` on X_train and apply it to X_train and every other array.

    Returns
    -------
    tuple
        ``(standardizer, X_train_std, *others_std)``, each array of shape (n_rows, n_features).
    """
    scaler = Standardizer().fit(X_train)
    return (scaler, scaler.transform(X_train), *(scaler.transform(X) for X in others))


def one_hot(y, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """One-hot encode class indices.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Whole numbers 0..num_classes-1.
    num_classes : int or None
        Number of columns; default ``max(y) + 1``.

    Returns
    -------
    ndarray of shape (n_samples, num_classes)
        Row i is all zeros except a one in column ``y[i]``.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"one_hot expects a 1-D array of class indices, got shape {y.shape}")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number):
        raise DataError(f"one_hot expects integer class indices, got an array of dtype {y.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            raise DataError(
                f"one_hot: label {y[np.argmax(bad)]!r} at position {int(np.argmax(bad)) + 1} "
                "is not a whole number; expected integer class indices"
            )
    labels = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif not _is_int(num_classes) or num_classes < 1:
        raise DataError(f"num_classes must be a positive integer, got {num_classes!r}")
    out_of_range = (labels < 0) | (labels >= num_classes)
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        raise DataError(
            f"one_hot: label {labels[i]} at position {i + 1} is out of range; "
            f"expected 0..{num_classes - 1} for {num_classes} classes"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def batches(
    X,
    y=None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator:
    """Yield mini-batches for one pass (epoch) over the rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples, ...) or None
    batch_size : int
        Rows per batch; the last batch may be smaller unless ``drop_last``.
    shuffle : bool
        Visit the rows in random order (from ``rng``, or a generator seeded with ``seed``).
    seed : int or None
        Used when ``rng`` is None.  The same seed gives the same batches; with neither, the
        default generator (``cr.manual_seed``) is used.
    rng : numpy.random.Generator or None
        Pass one generator to every epoch to get a different order each epoch that is still
        reproducible from the generator's own seed.
    drop_last : bool
        Skip a final batch smaller than ``batch_size``.

    Yields
    ------
    (X_batch, y_batch), or X_batch when y is None
        ``X_batch`` has shape (batch, ...).
    """
    # Check the arguments now, not at the first next(), so mistakes show up where they are made.
    if not _is_int(batch_size) or batch_size <= 0:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    if rng is not None and seed is not None:
        raise DataError("give batches() either seed or rng, not both")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise DataError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    X, y = _rows(X, y)
    n = len(X)
    order = get_rng(rng, seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return _batch_iter(X, y, order, int(batch_size), stop)


def _batch_iter(X, y, order, batch_size, stop):
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        if y is None:
            yield X[idx]
        else:
            yield X[idx], y[idx]


def _label_name(value) -> str:
    """'1' for 1 and 1.0, '0.5' for 0.5, strings as they are."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (numbers.Real, np.floating)):
        if float(value).is_integer():
            return str(int(float(value)))
        return str(value)  # numpy scalars print their shortest form: float32 0.1 -> '0.1'
    return str(value)


def _as_number(value) -> float | None:
    """The number a label stands for, or None when it is text."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (numbers.Real, np.number)):
        return float(value)
    if isinstance(value, (str, np.str_)):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def encode_labels(values):
    """Map label values to class codes 0..k-1 in sorted order.

    Numbers (or text that reads as numbers, like ``"2"``) sort numerically and are named
    without a trailing ``.0`` (``1.0`` -> ``'1'``); otherwise labels sort as text.

    Parameters
    ----------
    values : array-like of shape (n_samples,)

    Returns
    -------
    codes : ndarray of shape (n_samples,), int64
        ``codes[i]`` is the class index of ``values[i]``.
    names : list of str, length k
        ``names[c]`` is the label of class c.
    """
    arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if arr.ndim == 2 and 1 in arr.shape:  # a column or row vector
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise DataError(f"encode_labels expects a 1-D list of labels, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64), []
    items = arr.tolist()
    for i, v in enumerate(items):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise DataError(
                f"encode_labels: label at position {i + 1} is missing ({v!r}); expected a value"
            )
    if arr.dtype == bool or all(isinstance(v, bool) for v in items):
        keys = np.asarray(items, dtype=bool)
        uniq, codes = np.unique(keys, return_inverse=True)
        return codes.reshape(-1).astype(np.int64), [str(bool(u)) for u in uniq]
    numbers_ = [_as_number(v) for v in items]
    if all(v is not None for v in numbers_):
        keys = np.asarray(numbers_, dtype=np.float64)
        uniq, first, codes = np.unique(keys, return_index=True, return_inverse=True)
        if np.issubdtype(arr.dtype, np.floating):
            names = [_label_name(arr[i]) for i in first]  # keeps float32's short spelling
        else:
            names = [_label_name(float(u)) for u in uniq]
        return codes.reshape(-1).astype(np.int64), names
    keys = np.asarray([str(v) for v in items], dtype=str)
    uniq, codes = np.unique(keys, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), [str(u) for u in uniq]
