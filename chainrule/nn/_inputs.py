"""How layers and functions take their inputs: tensors, numpy arrays, lists and numbers.

Shared by ``functional.py`` and ``functional_conv.py`` (which functional re-exports), so that
neither imports the other for them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ..tensor import Tensor, TensorLike


def _data(x: TensorLike) -> np.ndarray:
    """The array behind a tensor or array-like (Python lists become float32, as cr.tensor)."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, np.ndarray):
        return x
    return Tensor(x).data


def _input(x: TensorLike) -> Tensor | np.ndarray:
    """A tensor or a numpy array (units accept both); lists and numbers become float32 arrays."""
    if isinstance(x, (Tensor, np.ndarray)):
        return x
    return Tensor(x).data


def _as_input(x: TensorLike, dtype: DTypeLike) -> Tensor | np.ndarray:
    """Feature arrays that are not tensors take the layer's dtype (a float64 dataset through a
    float32 network computes in float32, as ``X.float()`` would in PyTorch); so do integer
    tensors. Floating tensors are left as they are."""
    if isinstance(x, Tensor):
        return x if x.data.dtype.kind == "f" else Tensor(x.data.astype(dtype))
    x = np.asarray(x)
    return x if x.dtype == dtype else x.astype(dtype)
