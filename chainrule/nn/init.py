"""Initialization schemes for weights, with PyTorch's formulas (``torch.nn.init``).

Every function fills a Parameter (or a Tensor, or a numpy array) **in place**, keeping its
dtype, and returns it. Random ones draw from ``rng=`` (a ``numpy.random.Generator``), else from a
new generator seeded with ``seed=``, else from the default generator that ``cr.manual_seed``
sets.

For a weight of shape (out, in) (as in Linear), fan_in = in and fan_out = out; for more
dimensions (out, in, k1, k2, ...) both are multiplied by the receptive field k1·k2·...

====================  ===========================================================
scheme                distribution
====================  ===========================================================
xavier_uniform_       U(−a, a),  a = gain·√(6 / (fan_in + fan_out))
xavier_normal_        N(0, std²), std = gain·√(2 / (fan_in + fan_out))
kaiming_uniform_      U(−b, b),  b = gain·√(3 / fan)   (fan = fan_in or fan_out by ``mode``)
kaiming_normal_       N(0, std²), std = gain / √fan
====================  ===========================================================

with ``gain = calculate_gain(nonlinearity, a)``. PyTorch's Linear uses
``kaiming_uniform_(w, a=√5)``, which is U(−1/√fan_in, 1/√fan_in).
"""

from __future__ import annotations

import math
import warnings
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from ..random import get_rng
from ..tensor import Tensor

#: What the functions fill in place and return: a Parameter, a Tensor or a numpy array.
_T = TypeVar("_T", bound=Tensor | np.ndarray)

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "he_uniform_",
    "he_normal_",
]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    ========================  ====================
    nonlinearity              gain
    ========================  ====================
    linear, conv*, sigmoid    1
    tanh                      5/3
    relu                      √2
    leaky_relu                √(2 / (1 + slope²)), slope = ``param`` (default 0.01)
    selu                      3/4
    ========================  ====================
    """
    linear_fns = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    ]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float, np.number)):
            slope = float(param)
        else:
            raise ConfigError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ConfigError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r} (use one of linear, sigmoid, "
        "tanh, relu, leaky_relu, selu, conv1d, conv2d, conv3d)"
    )


def _array(tensor: object) -> np.ndarray:
    if isinstance(tensor, Tensor):
        return tensor.data
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(
        f"init: expected a Parameter, Tensor or numpy array, got {type(tensor).__name__}"
    )


def _fill(tensor: _T, values: ArrayLike) -> _T:
    arr = _array(tensor)
    if isinstance(tensor, Tensor) and not arr.flags.writeable:
        tensor.data = np.array(values, dtype=arr.dtype)
    else:
        arr[...] = values
    return tensor


def _fans(tensor: Tensor | np.ndarray) -> tuple[int, int]:
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ConfigError(
            f"init: fan in and fan out can not be computed for a tensor with fewer than 2 "
            f"dimensions (got shape {shape})"
        )
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: Tensor | np.ndarray, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"init: mode {mode!r} is not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _fans(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _rng(
    rng: np.random.Generator | None, seed: int | None, generator: np.random.Generator | None
) -> np.random.Generator:
    return get_rng(rng if rng is not None else generator, seed)


def _empty(tensor: Tensor | np.ndarray) -> bool:
    if 0 in _array(tensor).shape:
        warnings.warn("init: initializing a zero-element tensor is a no-op", stacklevel=3)
        return True
    return False


# ------------------------------------------------------------------------------------------------
# plain distributions and constants
# ------------------------------------------------------------------------------------------------


def uniform_(
    tensor: _T,
    a: float = 0.0,
    b: float = 1.0,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> _T:
    """Fill with values drawn from U(a, b)."""
    g = _rng(rng, seed, generator)
    return _fill(tensor, g.uniform(a, b, size=_array(tensor).shape))


def normal_(
    tensor: _T,
    mean: float = 0.0,
    std: float = 1.0,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> _T:
    """Fill with values drawn from N(mean, std²)."""
    g = _rng(rng, seed, generator)
    return _fill(tensor, g.normal(mean, std, size=_array(tensor).shape))


def constant_(tensor: _T, val: float) -> _T:
    """Fill with the value ``val``."""
    return _fill(tensor, val)


def zeros_(tensor: _T) -> _T:
    """Fill with 0 (PyTorch's default for a bias in many schemes)."""
    return _fill(tensor, 0.0)


def ones_(tensor: _T) -> _T:
    """Fill with 1."""
    return _fill(tensor, 1.0)


# ------------------------------------------------------------------------------------------------
# scaled schemes
# ------------------------------------------------------------------------------------------------


def xavier_uniform_(
    tensor: _T,
    gain: float = 1.0,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> _T:
    """Glorot/Xavier uniform: U(−a, a) with a = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, rng=rng, seed=seed, generator=generator)


def xavier_normal_(
    tensor: _T,
    gain: float = 1.0,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> _T:
    """Glorot/Xavier normal: N(0, std²) with std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, rng=rng, seed=seed, generator=generator)


def kaiming_uniform_(
    tensor: _T,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> _T:
    """He/Kaiming uniform: U(−b, b) with b = gain·√(3 / fan),
    gain = calculate_gain(nonlinearity, a).

    ``a`` is the negative slope of the leaky ReLU that follows (0 for ReLU); ``mode`` picks
    fan_in (keeps the forward variance) or fan_out (keeps the backward variance).
    """
    if _empty(tensor):
        return tensor
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, rng=rng, seed=seed, generator=generator)


def kaiming_normal_(
    tensor: _T,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> _T:
    """He/Kaiming normal: N(0, std²) with std = gain / √fan,
    gain = calculate_gain(nonlinearity, a)."""
    if _empty(tensor):
        return tensor
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return normal_(tensor, 0.0, std, rng=rng, seed=seed, generator=generator)


he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
