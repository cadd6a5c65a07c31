"""The playground's data: TensorFlow Playground's sets and the input features built from them.

The two-class sets (circle, XOR, Gaussian, spiral) come from :func:`chainrule.data.load_dataset`
(which follows Playground's recipes). Added here: a Gaussian and a spiral with 3 to 5 classes,
and Playground's two regression sets (a plane and a mixture of Gaussians, targets in [-1, 1]).
Points lie in [-6, 6]²; every random choice flows from ``seed``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "FEATURES",
    "FEATURE_NAMES",
    "make_points",
    "make_features",
    "DOMAIN",
]

#: the square the points and the heatmaps live in
DOMAIN = 6.0

CLASSIFICATION = ("circle", "xor", "gauss", "spiral")
REGRESSION = ("plane", "multigauss")
MULTICLASS = ("gauss", "spiral")  # the sets that take classes > 2

#: feature key (as in the URL) -> (name in model files and CSV headers, label on the page)
FEATURES = {
    "x1": ("x1", "X₁"),
    "x2": ("x2", "X₂"),
    "x1sq": ("x1^2", "X₁²"),
    "x2sq": ("x2^2", "X₂²"),
    "x1x2": ("x1*x2", "X₁X₂"),
    "sinx1": ("sin(x1)", "sin(X₁)"),
    "sinx2": ("sin(x2)", "sin(X₂)"),
}
FEATURE_NAMES = tuple(FEATURES)


def make_features(X: np.ndarray, keys) -> np.ndarray:
    """The columns the network sees, shape (n, len(keys)), from raw points (n, 2)."""
    x1, x2 = X[:, 0], X[:, 1]
    table = {
        "x1": lambda: x1,
        "x2": lambda: x2,
        "x1sq": lambda: x1 * x1,
        "x2sq": lambda: x2 * x2,
        "x1x2": lambda: x1 * x2,
        "sinx1": lambda: np.sin(x1),
        "sinx2": lambda: np.sin(x2),
    }
    cols = []
    for k in keys:
        if k not in table:
            raise ConfigError(
                f"playground: unknown feature {k!r}; expected some of {', '.join(FEATURE_NAMES)}"
            )
        cols.append(table[k]())
    return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((len(X), 0), np.float32)


def _gauss_k(n: int, k: int, noise: float, rng) -> tuple:
    """k Gaussian blobs centred on a circle of radius 3 (variance grows with the noise)."""
    std = math.sqrt(0.5 + 7.0 * noise) * 0.6
    sizes = [n // k + (1 if c < n % k else 0) for c in range(k)]
    parts, labels = [], []
    for c, size in enumerate(sizes):
        angle = 2 * math.pi * c / k + math.pi / 4
        centre = np.array([3.0 * math.cos(angle), 3.0 * math.sin(angle)])
        parts.append(rng.normal(0.0, std, (size, 2)) + centre)
        labels.append(np.full(size, c, np.int64))
    return np.concatenate(parts), np.concatenate(labels)


def _spiral_k(n: int, k: int, noise: float, rng) -> tuple:
    """k spiral arms, each turning 1.75 times out to radius 5 (Playground's arm, rotated)."""
    sizes = [n // k + (1 if c < n % k else 0) for c in range(k)]
    parts, labels = [], []
    for c, size in enumerate(sizes):
        i = np.arange(size, dtype=np.float64)
        r = i / size * 5.0
        t = 1.75 * i / size * 2.0 * np.pi + 2 * np.pi * c / k
        pts = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        pts += rng.uniform(-1.0, 1.0, pts.shape) * noise
        parts.append(pts)
        labels.append(np.full(size, c, np.int64))
    return np.concatenate(parts), np.concatenate(labels)


def _plane(n: int, noise: float, rng) -> tuple:
    """Playground's regression plane: y = (x1 + x2) / 10 (+ noise), x uniform in [-6, 6]²."""
    X = rng.uniform(-DOMAIN, DOMAIN, (n, 2))
    y = (X[:, 0] + X[:, 1]) / (2 * DOMAIN) * 1.0
    y = y + rng.uniform(-1.0, 1.0, n) * noise * 0.5
    return X, np.clip(y, -1.0, 1.0)


def _multigauss(n: int, noise: float, rng) -> tuple:
    """Playground's regression mixture: six signed Gaussian bumps; y in [-1, 1]."""
    centres = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)]
    X = rng.uniform(-DOMAIN, DOMAIN, (n, 2))
    y = np.zeros(n)
    for cx, cy, sign in centres:
        d2 = (X[:, 0] - cx) ** 2 + (X[:, 1] - cy) ** 2
        y += sign * np.exp(-d2 / 2.0)
    y = np.clip(y, -1.0, 1.0) + rng.uniform(-1.0, 1.0, n) * noise * 0.5
    return X, np.clip(y, -1.0, 1.0)


def make_points(dataset: str, n: int, noise: float, seed: int, classes: int = 2) -> tuple:
    """(X (n, 2) float32, y, task): labels int64 for classification, floats for regression.

    ``noise`` is Playground's slider divided by 100 (0 to 0.5).
    """
    rng = np.random.default_rng(seed)
    if dataset in REGRESSION:
        X, y = (_plane if dataset == "plane" else _multigauss)(n, noise, rng)
        return X.astype(np.float32), y.astype(np.float32), "regression"
    if dataset not in CLASSIFICATION:
        raise ConfigError(
            f"playground: unknown dataset {dataset!r}; expected one of "
            f"{', '.join(CLASSIFICATION + REGRESSION)}"
        )
    if classes > 2:
        if dataset not in MULTICLASS:
            raise ConfigError(
                f"playground: dataset {dataset} has 2 classes; {classes} classes "
                f"need one of {', '.join(MULTICLASS)}"
            )
        X, y = (_gauss_k if dataset == "gauss" else _spiral_k)(n, classes, noise, rng)
        order = rng.permutation(n)
        return X[order].astype(np.float32), y[order], "classification"
    from ..data import load_dataset

    ds = load_dataset(dataset, n_samples=n, noise=noise, seed=seed)
    return np.asarray(ds.X, np.float32), np.asarray(ds.y, np.int64), "classification"
