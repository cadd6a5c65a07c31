"""The default random generator: every random choice flows from an explicit seed.

``cr.manual_seed(n)`` reseeds it; initialization, dropout and shuffling draw from it unless they
are given their own ``rng=`` (a ``numpy.random.Generator``) or ``seed=``.
"""

from __future__ import annotations

import numpy as np

_default = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (as ``torch.manual_seed``) and return it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_rng() -> np.random.Generator:
    """The generator used where no ``rng=`` or ``seed=`` is given."""
    return _default


def get_rng(rng: object = None, seed: int | None = None) -> np.random.Generator:
    """``rng`` if given, else a new generator from ``seed``, else the default generator."""
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    if seed is not None:
        return np.random.default_rng(seed)
    return _default
