"""Layers: Linear, activations, Dropout, BatchNorm1d, Flatten, Identity.

Each layer keeps its configuration and parameters; the maths is in ``functional.py`` (which
combines units, where the derivatives live). Names, shapes, defaults and initializations are
PyTorch's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _schema as S  # the checks a model file's settings get (settings=)
from .._validate import Interval, check_params
from ..errors import ConfigError, ShapeError
from ..tensor import Tensor, TensorLike
from . import functional as F
from . import init
from .module import Module, _shape_str
from .parameter import Parameter

__all__ = [
    "Linear",
    "Identity",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "Softmax",
    "LogSoftmax",
    "GELU",
    "Dropout",
    "BatchNorm1d",
    "Flatten",
]


_SIZE = Interval(int, 0, None, expected="a non-negative integer")  # PyTorch allows 0 features


def _size(value: object, who: str, name: str) -> int:
    """A layer's size (features, channels): a whole number >= 0."""
    check_params(
        {name: value},
        {name: _SIZE},
        lambda n, v, expected: ConfigError(f"{who}: {n} must be {expected}, got {v!r}"),
    )
    return int(value)  # type: ignore[call-overload]  # checked to be a whole number above


def _linear_values(config: dict[str, Any]) -> int:
    """Values a Linear layer of this model-file config holds: weight and bias."""
    out, inp = config.get("out_features", 1), config.get("in_features", 1)
    return out * inp + (out if config.get("bias", True) else 0)


def _batchnorm_values(config: dict[str, Any]) -> int:
    """Values a BatchNorm1d holds: weight and bias (affine), running mean, variance and count."""
    nf = config.get("num_features", 1)
    affine, tracked = config.get("affine", True), config.get("track_running_stats", True)
    return 2 * nf * affine + (2 * nf + 1) * tracked


class Linear(
    Module,
    role="linear",
    config=("in_features", "out_features", "bias"),
    settings={"in_features": S.SIZE, "out_features": S.SIZE, "bias": S.BOOL},
    values=_linear_values,
):
    """The linear unit Σ of a layer: z = x Wᵀ + b.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    rng : numpy.random.Generator, optional
        Draws the initial weights (default: the generator ``cr.manual_seed`` sets).
    dtype : default np.float32

    Notes
    -----
    Shapes: x (..., in_features) -> z (..., out_features). ``weight`` is (out_features,
    in_features) and ``bias`` (out_features,), both initialized from U(−1/√in, 1/√in) as in
    PyTorch (``kaiming_uniform_(weight, a=√5)``). A numpy input takes the weight's dtype.
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = _size(in_features, "Linear", "in_features")
        self.out_features = _size(out_features, "Linear", "out_features")
        self.rng = rng
        dtype = np.dtype(dtype)
        from .._memory import check_memory
        from ..errors import ConfigError

        # the weights, and as much again for their gradient and twice for Adam's moments
        check_memory(
            4 * self.out_features * (self.in_features + 1) * dtype.itemsize,
            f"Linear({self.in_features}, {self.out_features}) (weights, gradients "
            "and optimizer state)",
            ConfigError,
        )
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty((self.out_features,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw weight and bias again from U(−1/√in_features, 1/√in_features)."""
        rng = rng if rng is not None else self.rng
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, rng=rng)

    def forward(self, x: TensorLike) -> Tensor:
        params = self._parameters
        # (the dict, not attribute lookup: this is every step's hot path; weight is never None)
        return F.linear(x, params["weight"], params["bias"])  # type: ignore[arg-type]

    def _output_shape(self, in_shape: str) -> str:
        return _shape_str(("None", self.out_features))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module, role="passthrough", config=(), keeps_shape=True):
    """Returns its input (any arguments to the constructor are ignored, as in PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: TensorLike) -> Tensor:
        return F.identity(x)


class ReLU(
    Module,
    role="activation",
    config=(),
    keeps_shape=True,
    elementwise=True,
    short_name="relu",
    derivative="1 where {i} > 0, else 0",
):
    """The activation σ(z) = max(z, 0), elementwise."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.relu(x)


class LeakyReLU(
    Module,
    role="activation",
    config=("negative_slope",),
    keeps_shape=True,
    settings={"negative_slope": S.NUMBER},
    elementwise=True,
    short_name="leaky_relu",
    derivative="1 where {i} > 0, else the slope",
):
    """σ(z) = z for z > 0, negative_slope·z otherwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: TensorLike) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(
    Module,
    role="activation",
    config=(),
    keeps_shape=True,
    elementwise=True,
    short_name="tanh",
    derivative="1 − {o2}",
):
    """σ(z) = tanh(z), elementwise (derivative 1 − σ², from the output)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.tanh(x)


class Sigmoid(
    Module,
    role="activation",
    config=(),
    keeps_shape=True,
    elementwise=True,
    short_name="sigmoid",
    output_kind="probability",
    derivative="{o}(1 − {o})",
):
    """σ(z) = 1 / (1 + e^(−z)), elementwise (derivative σ(1 − σ), from the output)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.sigmoid(x)


class Softmax(
    Module, role="activation", config=("dim",), keeps_shape=True, settings={"dim": S.DIM}
):
    """softmax(z)_i = e^(z_i) / Σ_j e^(z_j) along ``dim`` (PyTorch requires dim; here −1 by
    default, the class axis of an (N, C) batch)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: TensorLike) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(
    Module, role="activation", config=("dim",), keeps_shape=True, settings={"dim": S.DIM}
):
    """log softmax(z) along ``dim`` (default −1); feed it to NLLLoss."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: TensorLike) -> Tensor:
        return F.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(
    Module,
    role="activation",
    config=("approximate",),
    keeps_shape=True,
    settings={"approximate": (lambda v: v in ("none", "tanh"), "'none' or 'tanh'")},
    elementwise=True,
    short_name="gelu",
    derivative="GELU′({i})",
):
    """σ(z) = z Φ(z) (Φ the standard normal CDF); ``approximate='tanh'`` for the tanh form."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: TensorLike) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Dropout(
    Module, role="passthrough", config=("p",), keeps_shape=True, settings={"p": S.FRACTION}
):
    """Inverted dropout: in training, zero each element with probability p and scale the others
    by 1/(1 − p); in eval mode, the identity.

    ``rng`` (a numpy Generator) draws the masks; by default the generator that
    ``cr.manual_seed`` sets, read at every call.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = F._check_p(p, "Dropout")
        self.rng = rng

    def forward(self, x: TensorLike) -> Tensor:
        return F.dropout(x, self.p, self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm1d(
    Module,
    role="normalization",
    keeps_shape=True,
    config=("num_features", "eps", "momentum", "affine", "track_running_stats"),
    settings={
        "num_features": S.SIZE,
        "eps": S.POSITIVE,
        "momentum": S.MOMENTUM,
        "affine": S.BOOL,
        "track_running_stats": S.BOOL,
    },
    values=_batchnorm_values,
):
    """Batch normalization of x (N, C) or (N, C, L), per channel C = ``num_features``.

    Training: x̂ = (x − mean) / √(var + eps) with the batch mean and biased variance of each
    channel, z = γ x̂ + β (γ = ``weight``, init 1; β = ``bias``, init 0; ``affine=False``: none;
    ``bias=False``: no β).
    The buffers ``running_mean`` (init 0) and ``running_var`` (init 1) are updated as
    running = (1 − momentum)·running + momentum·batch, with the *unbiased* batch variance;
    ``momentum=None`` gives the cumulative average (``num_batches_tracked`` counts batches).
    Eval: the running statistics normalize. Exactly PyTorch's BatchNorm1d.
    """

    weight: Parameter | None
    bias: Parameter | None
    # buffers (None with track_running_stats=False)
    running_mean: np.ndarray | None
    running_var: np.ndarray | None
    num_batches_tracked: np.ndarray | None

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: DTypeLike = np.float32,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        self.num_features = _size(num_features, who, "num_features")
        if not eps > 0:
            raise ConfigError(f"{who}: eps must be positive, got {eps!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"{who}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = np.dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:  # then the buffers are arrays, not None
            self.running_mean[...] = 0  # type: ignore[index]
            self.running_var[...] = 1  # type: ignore[index]
            self.num_batches_tracked[...] = 0  # type: ignore[index]

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)  # type: ignore[type-var]  # affine: weight is a Parameter
            if self.bias is not None:
                init.zeros_(self.bias)

    _input_dims = {2: "(N, C)", 3: "(N, C, L)"}  # BatchNorm2d: {4: "(N, C, H, W)"}
    _input_text = "2D or 3D input (N, C) or (N, C, L)"

    def forward(self, x: TensorLike) -> Tensor:
        a = F._data(x)
        who = type(self).__name__
        if a.ndim not in self._input_dims:
            raise ShapeError(f"{who}: expected {self._input_text}, got shape {a.shape}")
        if a.shape[1] != self.num_features:
            raise ShapeError(
                f"{who}: input of shape {a.shape} has {a.shape[1]} channels "
                f"(axis 1) but the layer has num_features={self.num_features}"
            )
        if not isinstance(x, Tensor):
            ref = self.weight if self.weight is not None else self.running_mean
            x = F._as_input(x, ref.dtype if ref is not None else a.dtype)
        # batch statistics in training, and in eval when there are no running statistics
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        # in training the unit counts the batch and updates the running statistics itself
        # (momentum None: the cumulative average), so that a compiled step replays it
        counting = self.training and self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=use_batch,
            momentum=self.momentum,
            eps=self.eps,
            num_batches_tracked=self.num_batches_tracked if counting else None,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class Flatten(
    Module,
    role="passthrough",
    config=("start_dim", "end_dim"),
    settings={"start_dim": S.DIM, "end_dim": S.DIM},
):
    """Merge dimensions start_dim..end_dim: (N, C, L) -> (N, C·L) with the defaults."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: TensorLike) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
