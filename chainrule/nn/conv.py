"""Convolutional layers: Conv1d, Conv2d, max/average/adaptive pooling, BatchNorm2d, Unflatten.

Names, constructor arguments, shapes, defaults and initialization are PyTorch's. A convolution
is a linear unit whose weights are shared across positions (see ``chainrule/units_conv.py``);
the maths is in ``functional_conv.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ..errors import ConfigError
from ..tensor import Tensor, TensorLike
from . import functional as F
from . import init
from .functional_conv import IntOrInts, OutputSize, _int, _ntuple, resolve_padding
from .layers import BatchNorm1d, _size
from .module import Module, Sequential
from .parameter import Parameter

__all__ = [
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "BatchNorm2d",
    "Unflatten",
    "conv_net",
]


def _given(v: Any) -> Any:
    """A setting as given (a number or a tuple; a list read from a model file becomes a tuple)."""
    return tuple(v) if isinstance(v, list) else v


class _ConvNd(Module):
    _nd = 1
    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrInts,
        stride: IntOrInts = 1,
        padding: IntOrInts | str = 0,
        dilation: IntOrInts = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        who, nd = type(self).__name__, self._nd
        self.in_channels = _size(in_channels, who, "in_channels")
        self.out_channels = _size(out_channels, who, "out_channels")
        if not _int(groups) or groups < 1:
            raise ConfigError(f"{who}: groups must be a positive integer, got {groups!r}")
        if self.in_channels % groups:
            raise ConfigError(
                f"{who}: in_channels={in_channels} must be divisible by groups={groups}"
            )
        if self.out_channels % groups:
            raise ConfigError(
                f"{who}: out_channels={out_channels} must be divisible by groups={groups}"
            )
        if padding_mode != "zeros":
            raise ConfigError(
                f"{who}: padding_mode {padding_mode!r} is not supported; chainrule "
                "pads with zeros (padding_mode='zeros')"
            )
        self.kernel_size = _ntuple(kernel_size, nd, who, "kernel_size")
        self.stride = _ntuple(stride, nd, who, "stride")
        self.dilation = _ntuple(dilation, nd, who, "dilation")
        resolve_padding(padding, nd, self.kernel_size, self.stride, self.dilation, who)  # checks
        self.padding: str | tuple[int, ...] = (
            padding if isinstance(padding, str) else _ntuple(padding, nd, who, "padding", minimum=0)
        )
        self.groups = int(groups)
        self.padding_mode = padding_mode
        self.rng = rng
        dtype = np.dtype(dtype)
        self.weight = Parameter(
            np.empty(
                (self.out_channels, self.in_channels // self.groups) + self.kernel_size, dtype=dtype
            )
        )
        if bias:
            self.bias = Parameter(np.empty((self.out_channels,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw weight and bias from U(−1/√fan_in, 1/√fan_in), fan_in = in_channels/groups ×
        the kernel's size (PyTorch's ``kaiming_uniform_(weight, a=√5)``)."""
        rng = rng if rng is not None else self.rng
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)
        if self.bias is not None:
            fan_in = (self.in_channels // self.groups) * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, rng=rng)

    def forward(self, x: TensorLike) -> Tensor:
        params = self._parameters
        fn = F.conv1d if self._nd == 1 else F.conv2d
        return fn(
            x,
            params["weight"],  # type: ignore[arg-type]  # never None (the dict: the hot path)
            params["bias"],
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The output shape (C, *spatial) for one sample of shape (C, *spatial)."""
        pads = resolve_padding(
            self.padding,
            self._nd,
            self.kernel_size,
            self.stride,
            self.dilation,
            type(self).__name__,
        )
        sizes = tuple(
            (n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, (lo, hi), k, s, d in zip(
                shape[1:], pads, self.kernel_size, self.stride, self.dilation, strict=False
            )
        )
        return (self.out_channels,) + sizes

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


_CONV = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "bias",
    "padding_mode",
)
_MAXPOOL = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
_AVGPOOL = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")


class Conv1d(_ConvNd, config=_CONV):
    """1-D convolution: a linear unit whose weights are shared across positions.

    z[n, o, p] = b[o] + Σ_c Σ_j W[o, c, j] · x[n, c, p·stride + j·dilation − padding]

    Parameters: ``in_channels``, ``out_channels``, ``kernel_size``, ``stride=1``,
    ``padding=0`` (a number, ``'same'`` or ``'valid'``), ``dilation=1``, ``groups=1``
    (output channel o sees only the in_channels/groups input channels of its group),
    ``bias=True``; ``rng``, ``dtype`` as for Linear.

    Shapes: x (N, C_in, L) or (C_in, L) -> (N, C_out, L_out) with
    L_out = ⌊(L + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1.
    ``weight`` (C_out, C_in/groups, kernel_size) and ``bias`` (C_out,) are drawn from
    U(−1/√fan_in, 1/√fan_in), fan_in = C_in/groups · kernel_size, as in PyTorch.
    """

    _nd = 1


class Conv2d(_ConvNd, config=_CONV):
    """2-D convolution: Conv1d over images (N, C_in, H, W) or (C_in, H, W).

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are a number or a pair (height,
    width); ``weight`` is (C_out, C_in/groups, kH, kW). Same formula, output size per axis and
    initialization as :class:`Conv1d`.
    """

    _nd = 2


class _MaxPoolNd(Module):
    _nd = 1

    def __init__(
        self,
        kernel_size: IntOrInts,
        stride: IntOrInts | None = None,
        padding: IntOrInts = 0,
        dilation: IntOrInts = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        who, nd = type(self).__name__, self._nd
        _ntuple(kernel_size, nd, who, "kernel_size")
        if stride is not None:
            _ntuple(stride, nd, who, "stride")
        _ntuple(padding, nd, who, "padding", minimum=0)
        _ntuple(dilation, nd, who, "dilation")
        self.kernel_size = _given(kernel_size)
        self.stride = _given(stride) if stride is not None else self.kernel_size
        self.padding = _given(padding)
        self.dilation = _given(dilation)
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x: TensorLike) -> Tensor | tuple[Tensor, Tensor]:
        fn = F.max_pool1d if self._nd == 1 else F.max_pool2d
        return fn(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd, config=_MAXPOOL):
    """The maximum of each window of x (N, C, L) or (C, L): ``kernel_size``, ``stride``
    (default: kernel_size), ``padding=0`` (−∞, at most half the kernel), ``dilation=1``,
    ``return_indices=False``, ``ceil_mode=False``. Backward hands each output's gradient to the
    input element that was the maximum."""

    _nd = 1


class MaxPool2d(_MaxPoolNd, config=_MAXPOOL):
    """The maximum of each window of x (N, C, H, W) or (C, H, W); settings as MaxPool1d, each a
    number or a pair."""

    _nd = 2


class _AvgPoolNd(Module):
    _nd = 1

    def __init__(
        self,
        kernel_size: IntOrInts,
        stride: IntOrInts | None = None,
        padding: IntOrInts = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        who, nd = type(self).__name__, self._nd
        _ntuple(kernel_size, nd, who, "kernel_size")
        if stride is not None:
            _ntuple(stride, nd, who, "stride")
        _ntuple(padding, nd, who, "padding", minimum=0)
        self.kernel_size = _given(kernel_size)
        self.stride = _given(stride) if stride is not None else self.kernel_size
        self.padding = _given(padding)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if nd == 2:
            self.divisor_override = divisor_override

    def forward(self, x: TensorLike) -> Tensor:
        if self._nd == 1:
            return F.avg_pool1d(
                x,
                self.kernel_size,
                self.stride,
                self.padding,
                self.ceil_mode,
                self.count_include_pad,
            )
        return F.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd, config=_AVGPOOL):
    """The mean of each window of x (N, C, L) or (C, L): ``kernel_size``, ``stride`` (default:
    kernel_size), ``padding=0`` (zeros, at most half the kernel), ``ceil_mode=False``,
    ``count_include_pad=True``. Backward spreads each gradient evenly over its window."""

    _nd = 1

    def __init__(
        self,
        kernel_size: IntOrInts,
        stride: IntOrInts | None = None,
        padding: IntOrInts = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd, config=_AVGPOOL + ("divisor_override",)):
    """The mean of each window of x (N, C, H, W) or (C, H, W); as AvgPool1d, plus
    ``divisor_override`` (divide by this number instead of the window size)."""

    _nd = 2


class _AdaptiveAvgPoolNd(Module):
    _nd = 1

    def __init__(self, output_size: OutputSize) -> None:
        super().__init__()
        self.output_size = _given(output_size)

    def forward(self, x: TensorLike) -> Tensor:
        fn = F.adaptive_avg_pool1d if self._nd == 1 else F.adaptive_avg_pool2d
        return fn(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd, config=("output_size",)):
    """Average x (N, C, L) down to (N, C, output_size) whatever L is; ``output_size=1`` is
    global average pooling."""

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd, config=("output_size",)):
    """Average x (N, C, H, W) down to (N, C, *output_size) (a number, a pair, None keeps an
    axis)."""

    _nd = 2


class BatchNorm2d(
    BatchNorm1d,
    role="normalization",
    keeps_shape=True,
    config=("num_features", "eps", "momentum", "affine", "track_running_stats"),
):
    """Batch normalization of images x (N, C, H, W), per channel C = ``num_features``: the
    statistics of each channel are taken over the batch and every position. Same arguments,
    buffers and behaviour as :class:`BatchNorm1d` (exactly PyTorch's BatchNorm2d)."""

    _input_dims = {4: "(N, C, H, W)"}
    _input_text = "4D input (N, C, H, W)"


class Unflatten(Module, config=("dim", "unflattened_size")):
    """Split axis ``dim`` into ``unflattened_size``: ``Unflatten(1, (1, 40))`` turns a batch of
    40 features (N, 40) into one-channel signals (N, 1, 40) for Conv1d."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if not _int(dim):
            raise ConfigError(f"Unflatten: dim must be an integer, got {dim!r}")
        if not isinstance(unflattened_size, (tuple, list)) or not unflattened_size:
            raise ConfigError(
                f"Unflatten: unflattened_size must be a tuple of sizes, got {unflattened_size!r}"
            )
        self.dim = int(dim)
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, x: TensorLike) -> Tensor:
        return F.unflatten(x, self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


# ------------------------------------------------------------------------------------------------
# a plain CNN, as the command and the estimators build it
# ------------------------------------------------------------------------------------------------


def conv_net(
    input_shape: int | Sequence[int],
    n_outputs: int,
    channels: int | Sequence[int] = (25, 25, 25),
    kernels: int | Sequence[int] | None = None,
    stride: IntOrInts = 2,
    padding: IntOrInts | str = 1,
    flat_input: bool = True,
    hidden: Sequence[int] = (),
    activation: type[Module] | None = None,
    rng: np.random.Generator | None = None,
    dtype: DTypeLike = np.float32,
) -> Sequential:
    """A plain CNN: [Conv(channels[i], kernels[i], stride, padding), ReLU] per layer, then
    Flatten, then [Linear(h), activation] for each size in ``hidden`` (none by default;
    ``activation`` is a layer class, ReLU by default) and Linear to ``n_outputs``.

    ``input_shape`` is one sample's shape with its channels: (C, L) for signals (Conv1d),
    (C, H, W) for images (Conv2d). With ``flat_input`` (the default) the model starts with
    ``Unflatten(1, input_shape)``, so it takes rows of C·L (or C·H·W) features, as tables,
    ``fit`` and the command give them. ``kernels``: one size for all layers or one per layer;
    by default 5 for the first layer and 3 after (the MNIST-1D paper's net).
    """
    from .layers import Flatten, Linear, ReLU

    shape = tuple(int(s) for s in np.atleast_1d(input_shape))
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ConfigError(
            f"conv_net: input_shape {shape} is neither a signal (C, L) nor an image (C, H, W)"
        )
    widths = [int(c) for c in np.atleast_1d(channels)]
    if not widths or min(widths) < 1:
        raise ConfigError(f"conv_net: channels must be positive integers, got {widths!r}")
    if kernels is None:
        kernels = [5] + [3] * (len(widths) - 1)
    sizes = [int(k) for k in np.atleast_1d(kernels)]
    if len(sizes) == 1:
        sizes = sizes * len(widths)
    if len(sizes) != len(widths):
        raise ConfigError(
            f"conv_net: {len(sizes)} kernel sizes for {len(widths)} conv "
            "layers; give one size, or one per layer"
        )
    layers: list[Module] = [Unflatten(1, shape)] if flat_input else []
    Conv: type[_ConvNd] = Conv1d if len(shape) == 2 else Conv2d
    c_in = shape[0]
    for c, k in zip(widths, sizes, strict=True):
        if k < 1:
            raise ConfigError(f"conv_net: kernel sizes must be positive, got {sizes!r}")
        conv = Conv(c_in, c, k, stride=stride, padding=padding, rng=rng, dtype=dtype)
        out = conv.output_shape(shape)
        if min(out[1:]) < 1:
            raise ConfigError(
                f"conv_net: an input of shape {shape} is too small for a kernel "
                f"of {k} with stride {stride} and padding {padding}"
            )
        layers += [conv, ReLU()]
        shape, c_in = out, c
    layers.append(Flatten())
    width = int(np.prod(shape))
    for h in hidden or ():
        layers += [Linear(width, int(h), rng=rng, dtype=dtype), (activation or ReLU)()]
        width = int(h)
    layers.append(Linear(width, int(n_outputs), rng=rng, dtype=dtype))
    for layer in layers:  # the generator drew the initial weights; the layers do not keep it
        if hasattr(layer, "rng"):
            layer.rng = None
    return Sequential(*layers)
