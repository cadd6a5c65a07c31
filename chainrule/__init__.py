"""chainrule: neural networks built the way intro machine-learning courses teach them.

A network is a chain (more generally a graph) of units; training is a forward pass, then
back-propagation, then a gradient-descent step, repeated.

    >>> import chainrule as cr
    >>> x = cr.tensor(10.0, requires_grad=True)
    >>> h = cr.sin(3 * (x + 2))       # f = x + 2, g = 3 f, h = sin(g)
    >>> h.backward()                   # dh/dx = cos(36) * 3
"""

# the one place the version is defined: pyproject.toml reads it, `chainrule --version` prints it
__version__ = "0.2.0.dev0"

from collections.abc import Sequence as _Sequence

import numpy as _np
from numpy.typing import DTypeLike as _DTypeLike

# the views (display, callbacks, viz.plots) provide what the core returns through
# chainrule._views when they are imported here: the core never imports them
from . import (
    callbacks,  # ProgressBar, LivePlot (their libraries load when they start)
    data,
    display,
    metrics,
    nn,
    optim,
    viz,
)

# cr.compile: the function (bound after the submodule chainrule.compile is imported)
from .compile import compile  # noqa: A004
from .errors import (
    ChainruleError,
    ConfigError,
    DataError,
    GradcheckError,
    ModelFileError,
    ShapeError,
)

# bound after the submodule is imported, so that cr.explain stays the function
from .explain import explain
from .gradcheck import gradcheck
from .io import load, save
from .random import default_rng, manual_seed
from .tensor import Context, Tensor, Unit, enable_grad, is_grad_enabled, no_grad, tensor
from .train import Callback, EarlyStopping, History, evaluate, fit, predict
from .units import (
    abs,
    add,
    clip,
    concatenate,
    cos,
    div,
    exp,
    gelu,
    leaky_relu,
    linear,
    log,
    log_softmax,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pow,
    relu,
    reshape,
    sigmoid,
    sin,
    softmax,
    sqrt,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    where,
)


def _shape(shape: tuple[int | _Sequence[int], ...]) -> tuple[int, ...]:
    """zeros(2, 3) and zeros((2, 3)) alike."""
    first = shape[0] if len(shape) == 1 else None
    if isinstance(first, (tuple, list)):
        return tuple(first)
    return shape  # type: ignore[return-value]  # the integers themselves


def zeros(
    *shape: int | _Sequence[int], dtype: _DTypeLike = "float32", requires_grad: bool = False
) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says)."""
    return Tensor(_np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(
    *shape: int | _Sequence[int], dtype: _DTypeLike = "float32", requires_grad: bool = False
) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says)."""
    return Tensor(_np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


# the public names: what ``from chainrule import *`` gives, and what a type checker that wants
# explicit re-exports (mypy --strict) accepts as chainrule's own
__all__ = [
    "__version__",
    # submodules
    "callbacks",
    "data",
    "display",
    "metrics",
    "nn",
    "optim",
    "viz",
    # tensors, units and back-propagation
    "Tensor",
    "tensor",
    "zeros",
    "ones",
    "Unit",
    "Context",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "gradcheck",
    "compile",
    "explain",
    # training
    "fit",
    "evaluate",
    "predict",
    "History",
    "Callback",
    "EarlyStopping",
    # files and randomness
    "save",
    "load",
    "manual_seed",
    "default_rng",
    # errors
    "ChainruleError",
    "ConfigError",
    "DataError",
    "GradcheckError",
    "ModelFileError",
    "ShapeError",
    # the functions of the units
    "abs",
    "add",
    "clip",
    "concatenate",
    "cos",
    "div",
    "exp",
    "gelu",
    "leaky_relu",
    "linear",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "sin",
    "softmax",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "where",
]
