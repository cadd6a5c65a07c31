"""Built-in datasets: small generated 2-D problems and a few classic tables.

Generated sets (numpy only, instant, any size):

* ``circle``, ``xor``, ``gauss``, ``spiral`` - the four classification sets of the TensorFlow
  Playground (playground.tensorflow.org), generated with the recipe of its ``src/dataset.ts``.
* ``moons`` - two interleaving half circles, like scikit-learn's ``make_moons``.

Shipped sets (need the optional extra ``pip install chainrule[data]``):

* ``iris``, ``wine``, ``breast-cancer``, ``digits`` - scikit-learn's bundled copies (no download).
* ``mnist1d`` - MNIST-1D signals, generated offline by the optional ``mnist1d`` package.

Every set comes back as a :class:`Dataset` with ``X`` of dtype float32 and shape
(n_samples, n_features) and ``y`` of dtype int64 holding class indices 0..n_classes-1.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import random
from dataclasses import dataclass

import numpy as np

from chainrule.errors import DataError

__all__ = ["Dataset", "load_dataset", "list_datasets", "DATASET_NAMES"]


@dataclass(repr=False)
class Dataset:
    """A dataset held in memory.

    Attributes
    ----------
    name : str
        The name it was loaded under, e.g. ``"iris"``.
    X : ndarray of shape (n_samples, n_features), float32
        One row per example.
    y : ndarray of shape (n_samples,)
        int64 class indices 0..n_classes-1 for classification, float32 values for regression.
    feature_names : list of str, length n_features
        Name of each column of ``X``.
    target_names : list of str or None
        ``target_names[i]`` is the name of class ``i``; None for regression.
    task : str
        ``"classification"`` or ``"regression"``.
    description : str
        One line saying what the data is.
    sample_shape : tuple or None
        What one row is, for a convolutional network: (channels, length) for signals
        (``mnist1d``: (1, 40)), (channels, height, width) for images (``digits``: (1, 8, 8));
        None for a table of unrelated features.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_names: list[str] | None
    task: str
    description: str
    sample_shape: tuple | None = None

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def images(self) -> np.ndarray:
        """``X`` as signals or images, shape (n_samples, *sample_shape): what Conv1d/Conv2d
        take. (The rows of ``X`` are these flattened, channel by channel, row by row.)"""
        if self.sample_shape is None:
            raise DataError(
                f"dataset '{self.name}' is a table, not signals or images (sample_shape is None)"
            )
        return self.X.reshape((-1,) + tuple(self.sample_shape))

    @property
    def n_classes(self) -> int | None:
        """Number of classes, or None for regression."""
        return None if self.target_names is None else len(self.target_names)

    def __repr__(self) -> str:
        classes = "" if self.n_classes is None else f", n_classes={self.n_classes}"
        return (
            f"Dataset(name={self.name!r}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}{classes}, task={self.task!r})"
        )


# ---------------------------------------------------------------------------------------------
# Registry.  Sizes are hard-coded so that list_datasets() never has to generate or import
# anything; tests check that they match what load_dataset() returns by default.
# ---------------------------------------------------------------------------------------------

_GENERATED = {
    # name: (default n_samples, default noise, target_names, one-line description)
    "circle": (
        500,
        0.1,
        ["outside", "inside"],
        "TensorFlow Playground circle: a disc of one class inside a ring of the other",
    ),
    "xor": (
        500,
        0.1,
        ["opposite-signs", "same-signs"],
        "TensorFlow Playground XOR: class is whether x1 and x2 have the same sign",
    ),
    "gauss": (
        500,
        0.1,
        ["lower-left", "upper-right"],
        "TensorFlow Playground gaussian: two Gaussian blobs centred at (-2,-2) and (2,2)",
    ),
    "spiral": (
        1000,
        0.1,
        ["arm-0", "arm-1"],
        "TensorFlow Playground spiral: two interleaved spiral arms of 1.75 turns",
    ),
    "moons": (
        500,
        0.1,
        ["upper", "lower"],
        "two interleaving half circles (like scikit-learn's make_moons)",
    ),
}

_SKLEARN = {
    # name: (loader function in sklearn.datasets, n_samples, n_features, n_classes, description)
    "iris": ("load_iris", 150, 4, 3, "Fisher's iris flowers: 4 measurements, 3 species"),
    "wine": ("load_wine", 178, 13, 3, "wine recognition: 13 chemical measurements, 3 cultivars"),
    "breast-cancer": (
        "load_breast_cancer",
        569,
        30,
        2,
        "Wisconsin diagnostic breast cancer: 30 cell-nucleus features, malignant or benign",
    ),
    "digits": (
        "load_digits",
        1797,
        64,
        10,
        "8x8 images of handwritten digits 0-9 (pixel values 0-16)",
    ),
}

#: what one row of a dataset is, for convolutional networks (others are plain tables)
SAMPLE_SHAPES = {"digits": (1, 8, 8), "mnist1d": (1, 40)}

_MNIST1D_SIZE = 5000  # mnist1d's own default num_samples (its train and test parts together)
_MNIST1D_FEATURES = 40  # mnist1d's final_seq_length
_MNIST1D_DESCRIPTION = "MNIST-1D: 1-D signals of the digits 0-9, 40 points each (generated offline)"

DATASET_NAMES: tuple[str, ...] = tuple(_GENERATED) + tuple(_SKLEARN) + ("mnist1d",)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def list_datasets() -> list[dict]:
    """Describe every built-in dataset without loading any of them.

    Returns
    -------
    list of dict
        One dict per dataset, in ``DATASET_NAMES`` order, with keys ``name``, ``n_samples``
        (the default size), ``n_features``, ``n_classes``, ``task``, ``description`` (one line)
        and ``available`` (False when the optional package it needs is not installed).
    """
    rows = []
    for name, (n, _noise, classes, text) in _GENERATED.items():
        rows.append(
            dict(
                name=name,
                n_samples=n,
                n_features=2,
                n_classes=len(classes),
                task="classification",
                description=text,
                available=True,
            )
        )
    have_sklearn = _has_module("sklearn")
    for name, (_loader, n, d, k, text) in _SKLEARN.items():
        rows.append(
            dict(
                name=name,
                n_samples=n,
                n_features=d,
                n_classes=k,
                task="classification",
                description=text,
                available=have_sklearn,
            )
        )
    rows.append(
        dict(
            name="mnist1d",
            n_samples=_MNIST1D_SIZE,
            n_features=_MNIST1D_FEATURES,
            n_classes=10,
            task="classification",
            description=_MNIST1D_DESCRIPTION,
            available=_has_module("mnist1d"),
        )
    )
    return rows


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_n_samples(name: str, n_samples, minimum: int) -> int:
    if (
        isinstance(n_samples, bool)
        or not isinstance(n_samples, numbers.Integral)
        or n_samples < minimum
    ):
        raise DataError(
            f"n_samples for dataset '{name}' must be an integer of at least {minimum}, "
            f"got {n_samples!r}"
        )
    from chainrule._memory import check_memory

    # a generated set holds a few float64 working copies of (n, 2) and the labels
    check_memory(
        int(n_samples) * 64, f"dataset '{name}' with {int(n_samples):,} samples", DataError
    )
    return int(n_samples)


def _check_noise(name: str, noise) -> float:
    if (
        isinstance(noise, bool)
        or not isinstance(noise, numbers.Real)
        or not math.isfinite(noise)
        or noise < 0
    ):
        raise DataError(f"noise for dataset '{name}' must be a number >= 0, got {noise!r}")
    return float(noise)


# ---------------------------------------------------------------------------------------------
# TensorFlow Playground sets.  The recipes follow src/dataset.ts of github.com/tensorflow/playground
# (classifyCircleData, classifyXORData, classifyTwoGaussData, classifySpiralData).  Playground's
# labels are -1 and +1; here -1 becomes class 0 and +1 becomes class 1.  Playground's noise
# slider runs 0..50 and is divided by 100, so its noise is in 0..0.5 - the same unit used here.
# Where Playground gives each class numSamples/2 points we give class 0 n//2 and class 1 the
# rest, so the total is exactly n_samples.  Rows are shuffled at the end.
# ---------------------------------------------------------------------------------------------


def _playground_circle(n: int, noise: float, rng: np.random.Generator):
    """Class 1: radius in [0, 2.5]; class 0: radius in [3.5, 5].  The label is decided by whether
    the point plus uniform noise (noise * U(-5, 5) per axis) lies within radius 2.5, so noise
    flips labels near the boundary while the points themselves stay put."""
    radius = 5.0
    sizes = (n // 2, n - n // 2)  # class 0 (outside), class 1 (inside)
    parts = []
    for size, (r_lo, r_hi) in zip(
        sizes, ((0.7 * radius, radius), (0.0, 0.5 * radius)), strict=True
    ):
        r = rng.uniform(r_lo, r_hi, size)
        angle = rng.uniform(0.0, 2.0 * np.pi, size)
        parts.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
    X = np.concatenate(parts)
    shifted = X + rng.uniform(-radius, radius, X.shape) * noise
    y = (np.hypot(shifted[:, 0], shifted[:, 1]) < 0.5 * radius).astype(np.int64)
    return X, y


def _playground_xor(n: int, noise: float, rng: np.random.Generator):
    """x1, x2 uniform in [-5, 5], pushed 0.3 away from the axes; class 1 when the noisy point
    (noise * U(-5, 5) added per axis) has x1 * x2 >= 0."""
    X = rng.uniform(-5.0, 5.0, (n, 2))
    X += np.where(X > 0, 0.3, -0.3)
    shifted = X + rng.uniform(-5.0, 5.0, X.shape) * noise
    y = (shifted[:, 0] * shifted[:, 1] >= 0).astype(np.int64)
    return X, y


def _playground_gauss(n: int, noise: float, rng: np.random.Generator):
    """Two Gaussian blobs: class 1 around (2, 2), class 0 around (-2, -2), each with variance
    0.5 + 7 * noise (Playground maps noise 0..0.5 linearly onto variance 0.5..4)."""
    std = math.sqrt(0.5 + 7.0 * noise)
    n0 = n // 2
    X = np.concatenate(
        [
            rng.normal(-2.0, std, (n0, 2)),
            rng.normal(2.0, std, (n - n0, 2)),
        ]
    )
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n - n0, np.int64)])
    return X, y


def _playground_spiral(n: int, noise: float, rng: np.random.Generator):
    """Two arms: point i of m has radius 5 * i / m and angle 1.75 * 2 pi * i / m (+ pi for the
    second arm); each coordinate gets noise * U(-1, 1).  Class 1 is Playground's positive arm."""
    parts, labels = [], []
    for label, size, turn in ((0, n // 2, np.pi), (1, n - n // 2, 0.0)):
        i = np.arange(size, dtype=np.float64)
        r = i / size * 5.0
        t = 1.75 * i / size * 2.0 * np.pi + turn
        pts = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        pts += rng.uniform(-1.0, 1.0, pts.shape) * noise
        parts.append(pts)
        labels.append(np.full(size, label, np.int64))
    return np.concatenate(parts), np.concatenate(labels)


def _moons(n: int, noise: float, rng: np.random.Generator):
    """Class 0: upper half circle of radius 1 centred at (0, 0); class 1: lower half circle
    centred at (1, 0.5).  Points are evenly spaced along each arc, then Gaussian noise with
    standard deviation ``noise`` is added to each coordinate."""
    n0 = n // 2
    n1 = n - n0
    t0 = np.linspace(0.0, np.pi, n0)
    t1 = np.linspace(0.0, np.pi, n1)
    X = np.concatenate(
        [
            np.stack([np.cos(t0), np.sin(t0)], axis=1),
            np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1),
        ]
    )
    X += rng.normal(0.0, noise, X.shape) if noise > 0 else 0.0
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    return X, y


_GENERATORS = {
    "circle": _playground_circle,
    "xor": _playground_xor,
    "gauss": _playground_gauss,
    "spiral": _playground_spiral,
    "moons": _moons,
}


def _load_generated(name: str, n_samples, noise, seed: int) -> Dataset:
    default_n, default_noise, classes, text = _GENERATED[name]
    n = default_n if n_samples is None else _check_n_samples(name, n_samples, 2)
    noise = default_noise if noise is None else _check_noise(name, noise)
    rng = np.random.default_rng(seed)
    X, y = _GENERATORS[name](n, noise, rng)
    order = rng.permutation(n)
    return Dataset(
        name=name,
        X=np.ascontiguousarray(X[order], dtype=np.float32),
        y=np.ascontiguousarray(y[order], dtype=np.int64),
        feature_names=["x1", "x2"],
        target_names=list(classes),
        task="classification",
        description=f"{text} (n_samples={n}, noise={noise:g}, seed={seed})",
    )


# ---------------------------------------------------------------------------------------------
# Shipped sets
# ---------------------------------------------------------------------------------------------


def _subsample(name: str, X: np.ndarray, y: np.ndarray, n_samples, seed: int):
    """Keep a random subset of n_samples rows (in their original order), or everything."""
    if n_samples is None:
        return X, y
    n = _check_n_samples(name, n_samples, 1)
    if n > len(X):
        raise DataError(
            f"n_samples={n} is more than the {len(X)} rows of dataset '{name}'; "
            f"expected at most {len(X)}"
        )
    if n == len(X):
        return X, y
    keep = np.sort(np.random.default_rng(seed).choice(len(X), size=n, replace=False))
    return X[keep], y[keep]


def _load_sklearn(name: str, n_samples, seed: int) -> Dataset:
    loader_name, _n, _d, _k, text = _SKLEARN[name]
    try:
        from sklearn import datasets as skdatasets
    except ImportError:
        raise DataError(
            f"dataset '{name}' needs scikit-learn, which is not installed: "
            "pip install chainrule[data]"
        ) from None
    bunch = getattr(skdatasets, loader_name)()
    X, y = _subsample(name, np.asarray(bunch.data), np.asarray(bunch.target), n_samples, seed)
    return Dataset(
        name=name,
        X=np.ascontiguousarray(X, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.int64),
        feature_names=[str(f) for f in bunch.feature_names],
        target_names=[str(t) for t in bunch.target_names],
        task="classification",
        description=text,
    )


def _load_mnist1d(n_samples, seed: int) -> Dataset:
    n = _MNIST1D_SIZE if n_samples is None else _check_n_samples("mnist1d", n_samples, 1)
    if seed >= 2**32:
        raise DataError(f"seed for dataset 'mnist1d' must be below 2**32, got {seed}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise DataError(
            f"dataset 'mnist1d' needs the mnist1d package ({exc}): pip install mnist1d"
        ) from None
    args = get_dataset_args()
    # make_dataset makes num_samples // 10 signals per digit, so round up to a multiple of 10.
    args.num_samples = max(10, -(-n // 10) * 10)
    args.seed = seed
    # make_dataset seeds and draws from the global numpy and random generators; put them back
    # afterwards so loading a dataset does not change anybody else's random numbers.
    np_state = np.random.get_state()
    py_state = random.getstate()
    try:
        parts = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    # make_dataset shuffles before splitting 80/20, so train followed by test is in random order.
    X = np.concatenate([parts["x"], parts["x_test"]])[:n]
    y = np.concatenate([parts["y"], parts["y_test"]])[:n]
    return Dataset(
        name="mnist1d",
        X=np.ascontiguousarray(X, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.int64),
        feature_names=[f"x{j + 1}" for j in range(X.shape[1])],
        target_names=[str(k) for k in range(10)],
        task="classification",
        description=f"{_MNIST1D_DESCRIPTION} (n_samples={n}, seed={seed})",
    )


def load_dataset(
    name: str, n_samples: int | None = None, noise: float | None = None, seed: int = 0
) -> Dataset:
    """Load a built-in dataset by name.

    Parameters
    ----------
    name : str
        One of ``DATASET_NAMES`` (case and ``_``/``-`` do not matter: ``breast_cancer`` works).
    n_samples : int or None
        Generated sets: how many points (default: the size in ``list_datasets()``); class 0
        gets ``n_samples // 2`` points and class 1 the rest.  Shipped sets: a random subset of
        this many rows, drawn with ``seed`` (None keeps every row); more rows than the set has
        is an error.  ``mnist1d``: how many signals to generate (default 5000).
    noise : float or None
        Generated sets only (ignored otherwise).  For the Playground sets it is Playground's
        noise, 0..0.5 (default 0.1); for ``moons`` the standard deviation of Gaussian noise
        added to each coordinate (default 0.1).
    seed : int
        Seeds every random number used, so the same arguments always give the same data.

    Returns
    -------
    Dataset
        ``X`` float32 of shape (n_samples, n_features), ``y`` int64 of shape (n_samples,).

    Notes
    -----
    ``circle``, ``xor``, ``gauss`` and ``spiral`` follow the generation recipe of the TensorFlow
    Playground (``src/dataset.ts`` in github.com/tensorflow/playground), with Playground's
    negative class (-1, orange) as class 0 and its positive class (+1, blue) as class 1.
    """
    if not isinstance(name, str):
        raise DataError(f"dataset name must be a string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key not in DATASET_NAMES:
        raise DataError(f"unknown dataset '{name}': known datasets are {', '.join(DATASET_NAMES)}")
    seed = _check_seed(seed)
    if key in _GENERATED:
        return _load_generated(key, n_samples, noise, seed)
    ds = _load_sklearn(key, n_samples, seed) if key in _SKLEARN else _load_mnist1d(n_samples, seed)
    ds.sample_shape = SAMPLE_SHAPES.get(key)
    return ds
