"""Convolution and pooling as functions (as ``torch.nn.functional``), re-exported by
``chainrule.nn.functional``.

Each function checks and resolves its settings (a number or one per spatial axis; padding also
``'same'``/``'valid'``), accepts a batch (N, C, *spatial) or one unbatched sample (C, *spatial),
and calls one unit of ``chainrule.units_conv``, where the derivatives live.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np

from .. import units as U
from ..errors import ConfigError, ShapeError
from ..tensor import Context, Tensor, TensorLike
from ..units_conv import AdaptiveAvgPool, AvgPool, Conv, MaxPool, conv_output_size
from ._inputs import _as_input, _data, _input

#: A setting given once for every spatial axis or once per axis: ``3`` or ``(3, 5)``.
IntOrInts = int | Sequence[int]

__all__ = [
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


# ------------------------------------------------------------------------------------------------
# settings
# ------------------------------------------------------------------------------------------------


def _int(v: object) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def _ntuple(value: object, nd: int, who: str, name: str, minimum: int = 1) -> tuple[int, ...]:
    """A number or one number per spatial axis -> a tuple of nd ints, each >= minimum."""
    vals = (value,) * nd if _int(value) else value
    if not isinstance(vals, (tuple, list)) or len(vals) != nd or not all(_int(v) for v in vals):
        raise ConfigError(f"{who}: {name} must be an integer or {nd} integers, got {value!r}")
    vals = tuple(int(v) for v in vals)
    if any(v < minimum for v in vals):
        what = "positive" if minimum == 1 else "non-negative"
        raise ConfigError(f"{who}: {name} must be {what}, got {value!r}")
    return vals


def resolve_padding(
    padding: IntOrInts | str,
    nd: int,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    who: str,
) -> tuple[tuple[int, int], ...]:
    """Padding as (before, after) per spatial axis: a number, one per axis, 'valid' (none) or
    'same' (the output has the input's size; stride 1 only; an odd total puts the extra
    element after, as PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ConfigError(
                    f"{who}: padding='same' is not supported for strided "
                    f"convolutions (stride={stride}); use a number"
                )
            pads = []
            for k, d in zip(kernel, dilation, strict=True):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ConfigError(
            f"{who}: padding must be a number, {nd} numbers, 'same' or 'valid', got {padding!r}"
        )
    p = _ntuple(padding, nd, who, "padding", minimum=0)
    return tuple((v, v) for v in p)


def _batched(x: Tensor | np.ndarray, nd: int, who: str, what: str) -> tuple[Any, bool]:
    """(input, True when one unbatched sample was given)."""
    a = _data(x)
    if a.ndim == nd + 2:
        return x, False
    if a.ndim == nd + 1:
        return U.reshape(x, (1,) + a.shape), True
    dims = "(C, L)" if nd == 1 else "(C, H, W)"
    batch = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    raise ShapeError(f"{who}: expected {what} of shape {batch} or {dims}, got shape {a.shape}")


def _unbatch(out: Tensor, was_unbatched: bool) -> Tensor:
    return U.reshape(out, out.shape[1:]) if was_unbatched else out


# ------------------------------------------------------------------------------------------------
# convolution
# ------------------------------------------------------------------------------------------------


def _conv(
    nd: int,
    input: TensorLike,
    weight: TensorLike,
    bias: TensorLike | None,
    stride: IntOrInts,
    padding: IntOrInts | str,
    dilation: IntOrInts,
    groups: int,
    who: str,
) -> Tensor:
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.ndim != nd + 2:
        shape = (
            "(out_channels, in_channels/groups, kW)"
            if nd == 1
            else "(out_channels, in_channels/groups, kH, kW)"
        )
        raise ShapeError(f"{who}: weight of shape {w.shape} is not {nd + 2}-D {shape}")
    x = _as_input(input, w.dtype)
    x, unbatched = _batched(x, nd, who, "input")
    a = _data(x)
    if not _int(groups) or groups < 1:
        raise ConfigError(f"{who}: groups must be a positive integer, got {groups!r}")
    Co, Cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    if Co % groups:
        raise ShapeError(
            f"{who}: weight of shape {w.shape} has {Co} output channels, which "
            f"groups={groups} does not divide"
        )
    if a.shape[1] != Cg * groups:
        raise ShapeError(
            f"{who}: input of shape {a.shape} does not fit weight of shape {w.shape}: expected "
            f"{Cg * groups} input channels (weight.shape[1]={Cg} × groups={groups}), got "
            f"{a.shape[1]}"
        )
    if bias is not None:
        bshape = np.shape(_data(bias))
        if bshape != (Co,):
            raise ShapeError(
                f"{who}: bias of shape {bshape} does not fit weight of shape "
                f"{w.shape}: expected ({Co},)"
            )
    strides = _ntuple(stride, nd, who, "stride")
    dilations = _ntuple(dilation, nd, who, "dilation")
    pads = resolve_padding(padding, nd, kernel, strides, dilations, who)
    for n, k, d, (lo, hi) in zip(a.shape[2:], kernel, dilations, pads, strict=True):
        if n + lo + hi < d * (k - 1) + 1:
            raise ShapeError(
                f"{who}: input of shape {a.shape} padded to {n + lo + hi} along a spatial axis is "
                f"smaller than the kernel ({k}, dilated to {d * (k - 1) + 1}) of weight of shape "
                f"{w.shape}"
            )
    args = (x, weight) if bias is None else (x, weight, bias)
    out = Conv.apply(*args, stride=strides, padding=pads, dilation=dilations, groups=int(groups))
    return _unbatch(out, unbatched)


def conv1d(
    input: TensorLike,
    weight: TensorLike,
    bias: TensorLike | None = None,
    stride: IntOrInts = 1,
    padding: IntOrInts | str = 0,
    dilation: IntOrInts = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution: x (N, C, L) or (C, L), weight (O, C/groups, k), bias (O,).

    z[n, o, p] = b[o] + Σ_c Σ_j W[o, c, j] x[n, c, p·stride + j·dilation − pad]: one linear unit
    whose weights are shared across the positions p. Output length
    ⌊(L + 2·pad − dilation·(k − 1) − 1) / stride⌋ + 1. ``padding``: a number, ``'same'`` or
    ``'valid'``.
    """
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, "conv1d")


def conv2d(
    input: TensorLike,
    weight: TensorLike,
    bias: TensorLike | None = None,
    stride: IntOrInts = 1,
    padding: IntOrInts | str = 0,
    dilation: IntOrInts = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution: x (N, C, H, W) or (C, H, W), weight (O, C/groups, kH, kW), bias (O,).

    The 2-D form of :func:`conv1d`; stride, padding and dilation are a number or a pair.
    """
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, "conv2d")


# ------------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------------


def _pool_settings(
    nd: int,
    a: np.ndarray,
    kernel_size: IntOrInts,
    stride: IntOrInts | None,
    padding: IntOrInts,
    dilation: IntOrInts,
    ceil_mode: bool,
    who: str,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, ...]]:
    kernel = _ntuple(kernel_size, nd, who, "kernel_size")
    strides = (
        kernel
        if stride is None or (isinstance(stride, (tuple, list)) and not stride)
        else _ntuple(stride, nd, who, "stride")
    )
    dilations = _ntuple(dilation, nd, who, "dilation")
    pad = _ntuple(padding, nd, who, "padding", minimum=0)
    for k, p in zip(kernel, pad, strict=True):
        if p > k // 2:
            raise ConfigError(
                f"{who}: padding should be at most half of kernel size, got "
                f"padding={padding!r} and kernel_size={kernel_size!r}"
            )
    pads = tuple((p, p) for p in pad)
    for n, k, s, p, d in zip(a.shape[2:], kernel, strides, pad, dilations, strict=True):
        if conv_output_size(n, k, s, p, p, d, bool(ceil_mode)) <= 0:
            raise ShapeError(
                f"{who}: input of shape {a.shape} is too small for kernel_size="
                f"{kernel_size!r} (padding={padding!r}, dilation={dilations!r}): "
                "no window fits"
            )
    return kernel, strides, pads, dilations


def _max_pool(
    nd: int,
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None,
    padding: IntOrInts,
    dilation: IntOrInts,
    ceil_mode: bool,
    return_indices: bool,
    who: str,
) -> Tensor | tuple[Tensor, Tensor]:
    x, unbatched = _batched(_input(input), nd, who, "input")
    a = _data(x)
    kernel, strides, pads, dilations = _pool_settings(
        nd, a, kernel_size, stride, padding, dilation, ceil_mode, who
    )
    kw: dict[str, Any] = dict(
        kernel=kernel, stride=strides, padding=pads, dilation=dilations, ceil_mode=bool(ceil_mode)
    )
    out = _unbatch(MaxPool.apply(x, **kw), unbatched)
    if not return_indices:
        return out
    ctx = Context()
    MaxPool.forward(ctx, a, **kw)
    idx = MaxPool.indices(ctx)
    return out, Tensor(idx[0] if unbatched else idx)


@overload
def max_pool1d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
) -> Tensor: ...
@overload
def max_pool1d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    *,
    return_indices: Literal[True],
) -> tuple[Tensor, Tensor]: ...
@overload
def max_pool1d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]: ...
def max_pool1d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The maximum of each window of x (N, C, L) or (C, L); ``stride`` defaults to the kernel
    size, padding (at most half the kernel) is −∞. ``return_indices``: also the position of
    each maximum in its input row (as PyTorch)."""
    return _max_pool(
        1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool1d"
    )


@overload
def max_pool2d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
) -> Tensor: ...
@overload
def max_pool2d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    *,
    return_indices: Literal[True],
) -> tuple[Tensor, Tensor]: ...
@overload
def max_pool2d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]: ...
def max_pool2d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The maximum of each window of x (N, C, H, W) or (C, H, W); see :func:`max_pool1d`.
    Indices are flat over each H×W plane."""
    return _max_pool(
        2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool2d"
    )


def _avg_pool(
    nd: int,
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None,
    padding: IntOrInts,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
    who: str,
) -> Tensor:
    x, unbatched = _batched(_input(input), nd, who, "input")
    a = _data(x)
    kernel, strides, pads, _ = _pool_settings(
        nd, a, kernel_size, stride, padding, 1, ceil_mode, who
    )
    if divisor_override is not None and (not _int(divisor_override) or divisor_override == 0):
        raise ConfigError(
            f"{who}: divisor_override must be a non-zero integer, got {divisor_override!r}"
        )
    out = AvgPool.apply(
        x,
        kernel=kernel,
        stride=strides,
        padding=pads,
        ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad),
        divisor=divisor_override,
    )
    return _unbatch(out, unbatched)


def avg_pool1d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """The mean of each window of x (N, C, L) or (C, L); padding counts as zeros in the mean
    unless ``count_include_pad=False``."""
    return _avg_pool(
        1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, "avg_pool1d"
    )


def avg_pool2d(
    input: TensorLike,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """The mean of each window of x (N, C, H, W) or (C, H, W); ``divisor_override`` replaces
    the window size as divisor."""
    return _avg_pool(
        2,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        "avg_pool2d",
    )


#: An adaptive pooling's output size: one for every axis, or one per axis (None keeps the axis).
OutputSize = int | None | Sequence[int | None]


def _adaptive(nd: int, input: TensorLike, output_size: OutputSize, who: str) -> Tensor:
    x, unbatched = _batched(_input(input), nd, who, "input")
    a = _data(x)
    # what the user gave, checked below
    sizes: Any = (output_size,) * nd if _int(output_size) or output_size is None else output_size
    if not isinstance(sizes, (tuple, list)) or len(sizes) != nd:
        raise ConfigError(
            f"{who}: output_size must be an integer or {nd} integers, got {output_size!r}"
        )
    sizes = tuple(n if s is None else s for s, n in zip(sizes, a.shape[2:], strict=True))
    if not all(_int(s) and s >= 0 for s in sizes):
        raise ConfigError(
            f"{who}: output_size must be non-negative integers (or None), got {output_size!r}"
        )
    if any(n == 0 for n in a.shape[2:]):
        raise ShapeError(f"{who}: input of shape {a.shape} has an empty spatial axis")
    out = AdaptiveAvgPool.apply(x, output_size=tuple(int(s) for s in sizes))
    return _unbatch(out, unbatched)


def adaptive_avg_pool1d(input: TensorLike, output_size: OutputSize) -> Tensor:
    """Average x (N, C, L) down to (N, C, output_size): window i covers
    [⌊i·L/out⌋, ⌈(i + 1)·L/out⌉), whatever L is (``output_size=1``: global average pooling)."""
    return _adaptive(1, input, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input: TensorLike, output_size: OutputSize) -> Tensor:
    """Average x (N, C, H, W) down to (N, C, *output_size) (a pair, or one number for both;
    None keeps that axis)."""
    return _adaptive(2, input, output_size, "adaptive_avg_pool2d")


def unflatten(input: TensorLike, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split axis ``dim`` into ``sizes`` (one entry may be −1): (N, 40) -> (N, 1, 40)."""
    x = _input(input)
    shape = _data(x).shape
    if not shape:
        raise ShapeError("unflatten: cannot unflatten a 0-d tensor")
    if not _int(dim) or not -len(shape) <= dim < len(shape):
        raise ConfigError(f"unflatten: dim {dim!r} is out of range for a tensor of shape {shape}")
    d = dim % len(shape)
    sizes = tuple(sizes)
    if (
        not sizes
        or not all(_int(s) and (s >= 0 or s == -1) for s in sizes)
        or sum(s == -1 for s in sizes) > 1
    ):
        raise ConfigError(f"unflatten: sizes must be integers with at most one −1, got {sizes!r}")
    known = int(np.prod([s for s in sizes if s != -1]))
    n = shape[d]
    if -1 in sizes:
        if known == 0 or n % known:
            raise ShapeError(
                f"unflatten: sizes {sizes} do not fit dimension {dim} of size {n} "
                f"(input shape {shape})"
            )
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    elif known != n:
        raise ShapeError(
            f"unflatten: sizes {sizes} multiply to {known} but dimension {dim} has "
            f"size {n} (input shape {shape})"
        )
    return U.reshape(x, shape[:d] + sizes + shape[d + 1 :])
