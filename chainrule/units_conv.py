"""Convolution and pooling units: forward and backward side by side (1-D, 2-D, any dimension).

A convolution is a linear unit Σ whose weights are *shared across positions*. At every output
position p it takes the window of the input that p sees and applies the same small linear unit::

    z[n, o, p] = b[o] + Σ_c Σ_k  W[o, c, k] · x[n, c, p·s + k·d − pad]

(s the stride, d the dilation, k running over the kernel; with ``groups`` G, output channel o
only sees the input channels of its group). Written that way it *is* the ``Linear`` unit applied
to a matrix whose columns are the windows ("im2col")::

    Z = W X_cols + b      W: (O, C·K),  X_cols: (C·K, N·P)

so the local derivatives are Linear's: dL/dW = g X_colsᵀ, dL/db = Σ g, and dL/dX_cols = Wᵀ g,
whose columns are added back to the positions each window came from ("col2im"). The windows are a
strided *view* of the padded input (``numpy.lib.stride_tricks.as_strided``): one copy makes
the column matrix and one GEMM does the work; the only Python loop is over the K kernel offsets
in col2im and in pooling (never over positions).

Pooling takes the maximum or the average of each window: max pooling hands the gradient to the
element that won (first one on ties, as PyTorch), average pooling spreads it evenly over the
window. Adaptive average pooling averages windows computed from the input and output sizes;
per axis that is a fixed averaging matrix A, so it is a product with A (and Aᵀ backward).

Arrays are (N, C, *spatial). Units receive fully resolved settings (tuples per spatial axis,
padding as (before, after) pairs); ``nn.functional.conv1d`` and friends resolve and check them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .tensor import Context, Grads, Unit
from .units import _ones

#: One setting per spatial axis (kernel, stride, dilation, output size).
Ints = tuple[int, ...]
#: Padding: (before, after) per spatial axis.
Pads = tuple[tuple[int, int], ...]

__all__ = ["Conv", "MaxPool", "AvgPool", "AdaptiveAvgPool", "conv_output_size", "adaptive_windows"]


# ------------------------------------------------------------------------------------------------
# helpers: padding, window views, the strided slice of each kernel offset
# ------------------------------------------------------------------------------------------------


def conv_output_size(
    length: int,
    kernel: int,
    stride: int,
    pad_before: int,
    pad_after: int,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """How many windows fit: ⌊(L + pads − d(k − 1) − 1) / s⌋ + 1 (⌈·⌉ with ``ceil_mode``, where
    the last window must still start inside the input or the left padding, as PyTorch)."""
    span = length + pad_before + pad_after - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= length + pad_before:
            out -= 1
        return out
    return span // stride + 1


def _pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """x (N, C, *spatial) padded by ``pads`` ((before, after) per spatial axis) with ``value``."""
    if not any(lo or hi for lo, hi in pads):
        return x
    shape = x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads, strict=True))
    xp = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, x.dtype)
    xp[_inner(x.shape, pads)] = x
    return xp


def _inner(shape: Sequence[int], pads: Pads) -> tuple[slice, ...]:
    """The index of the unpadded input inside the padded array."""
    return (slice(None), slice(None)) + tuple(
        slice(lo, lo + n) for n, (lo, _) in zip(shape[2:], pads, strict=True)
    )


def _windows(
    xp: np.ndarray, out: Ints, kernel: Ints, stride: Ints, dilation: Ints, writeable: bool = False
) -> np.ndarray:
    """A view (N, C, *out, *kernel) of the windows of xp: no copy (read-only unless
    ``writeable``: the views of different kernel offsets overlap, so write one offset at a
    time)."""
    s = xp.strides
    nd = len(kernel)
    shape = xp.shape[:2] + tuple(out) + tuple(kernel)
    strides = (
        s[:2]
        + tuple(s[2 + i] * stride[i] for i in range(nd))
        + tuple(s[2 + i] * dilation[i] for i in range(nd))
    )
    return as_strided(xp, shape, strides, writeable=writeable)


def _offset_slices(
    kernel: Ints, out: Ints, stride: Ints, dilation: Ints
) -> Iterator[tuple[slice, ...]]:
    """For each kernel offset (k1, k2, ...): the strided slice of the padded input that the
    offset sees at every output position, (.., .., k1·d1 : k1·d1 + s1(out1 − 1) + 1 : s1, ...)."""
    for kk in itertools.product(*(range(k) for k in kernel)):
        yield (slice(None), slice(None)) + tuple(
            slice(k * d, k * d + s * (o - 1) + 1, s)
            for k, d, s, o in zip(kk, dilation, stride, out, strict=True)
        )


def _full_pads(
    shape: Sequence[int], kernel: Ints, stride: Ints, pads: Pads, dilation: Ints, out: Ints
) -> Pads:
    """Padding after each axis extended (ceil_mode) so that every window lies inside."""
    full = []
    for n, k, s, (lo, hi), d, o in zip(shape[2:], kernel, stride, pads, dilation, out, strict=True):
        need = (o - 1) * s + d * (k - 1) + 1 - (n + lo)
        full.append((lo, max(hi, need)))
    return tuple(full)


# ------------------------------------------------------------------------------------------------
# convolution
# ------------------------------------------------------------------------------------------------


class Conv(Unit):
    """Convolution (cross-correlation, as PyTorch) of x (N, C, *L) with W (O, C/G, *k) and b (O,).

    z[n, o, p] = b[o] + Σ_{c in o's group} Σ_k W[o, c, k] · x_pad[n, c, p·s + k·d]

    — one linear unit, shared across positions. Forward: the windows become the columns of
    X_cols (C·K, N·P) and Z = W X_cols + b is one GEMM (one per group). Backward, Linear's
    terms: dL/dW = g X_colsᵀ, dL/db = Σ_{n,p} g, dL/dX_cols = Wᵀ g, and col2im adds each
    window's column back where it came from (a loop over the K kernel offsets).

    The column matrix is laid out channels first, (C, *k, N, *out), so that copying the windows
    and adding them back move rows of positions (numpy copies long rows fast and short
    strided pieces slowly); outputs and input gradients are returned as ordinary contiguous
    (N, C, ...) arrays, so the elementwise units around a convolution see matching layouts.
    """

    name = "conv"

    @classmethod
    def shape_error(cls, arrays: Sequence[Any], kwargs: dict[str, Any], err: Exception) -> str:
        x, w = np.shape(arrays[0]), np.shape(arrays[1])
        return f"conv: input of shape {x} does not fit weight of shape {w}: {err}"

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None = None,
        stride: Ints = (1,),
        padding: Pads = ((0, 0),),
        dilation: Ints = (1,),
        groups: int = 1,
    ) -> np.ndarray:
        nd = w.ndim - 2
        if x.ndim != nd + 2 or x.shape[1] != w.shape[1] * groups:
            raise ValueError(f"expected {nd + 2}-D input with {w.shape[1] * groups} channels")
        N, C = x.shape[:2]
        Co, kernel = w.shape[0], w.shape[2:]
        K = math.prod(kernel)
        out = tuple(
            conv_output_size(n, k, s, lo, hi, d)
            for n, k, s, (lo, hi), d in zip(
                x.shape[2:], kernel, stride, padding, dilation, strict=True
            )
        )
        if min(out) <= 0:
            raise ValueError("the kernel does not fit the padded input")
        # Images with stride 1 along the width: compute every output row over the whole padded
        # width (the columns past the last valid one are discarded). Each window offset then
        # reads whole padded rows, one long run instead of one short run per image row, which
        # is what numpy copies fast; one extra zero row keeps the last windows inside.
        # (only where backward will need dL/dx, whose col2im gains most; the first layer's does not)
        wide = nd >= 2 and stride[-1] == 1 and getattr(ctx, "needs_input_grad", (False,))[0]
        pads = padding if not wide else ((padding[0][0], padding[0][1] + 1),) + tuple(padding[1:])
        xp = _pad(x, pads)
        grid = out if not wide else out[:-1] + (xp.shape[-1],)
        P = math.prod(grid)
        win = _windows(xp, grid, kernel, stride, dilation)  # (N, C, *grid, *k), a view
        perm = (1,) + tuple(range(2 + nd, 2 + 2 * nd)) + (0,) + tuple(range(2, 2 + nd))
        cols = np.ascontiguousarray(win.transpose(perm)).reshape(C * K, N * P)  # one copy
        if groups == 1:
            out2 = w.reshape(Co, C * K) @ cols  # (Co, N·P): one GEMM
        else:
            G = groups
            out2 = np.matmul(w.reshape(G, Co // G, C // G * K), cols.reshape(G, C // G * K, N * P))
            out2 = out2.reshape(Co, N * P)
        if b is not None:
            out2 += b[:, None]
        ctx.cols, ctx.w, ctx.groups, ctx.xshape, ctx.padshape = cols, w, groups, x.shape, xp.shape
        ctx.out, ctx.grid, ctx.stride, ctx.dilation, ctx.padding = (
            out,
            grid,
            stride,
            dilation,
            padding,
        )
        z = out2.reshape((Co, N) + grid)
        if wide:
            z = z[..., : out[-1]]
        return np.ascontiguousarray(z.swapaxes(0, 1))

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        need = ctx.needs_input_grad
        w, cols, G = ctx.w, ctx.cols, ctx.groups
        N, C = ctx.xshape[:2]
        Co, kernel = w.shape[0], w.shape[2:]
        grid, out = ctx.grid, ctx.out
        P = math.prod(grid)
        K = math.prod(kernel)
        # dL/dZ as the (Co, N·P) matrix of the forward's GEMM (zero on discarded columns)
        if grid == out:
            g2 = np.ascontiguousarray(grad.swapaxes(0, 1)).reshape(Co, N * P)
        else:
            g2 = np.zeros((Co, N) + grid, dtype=grad.dtype)
            g2[..., : out[-1]] = grad.swapaxes(0, 1)
            g2 = g2.reshape(Co, N * P)
        gx = gw = gb = None
        if len(need) > 2 and need[2]:
            gb = g2 @ _ones(N * P, g2.dtype)  # Σ over samples and positions
        if need[1]:
            if G == 1:
                gw = (g2 @ cols.T).reshape(w.shape)
            else:
                gw = np.matmul(
                    g2.reshape(G, Co // G, N * P),
                    cols.reshape(G, C // G * K, N * P).transpose(0, 2, 1),
                )
                gw = gw.reshape(w.shape)
        if need[0]:
            # dL/dX_cols, laid out (C, *k, N, *grid): each kernel offset is one block
            if G == 1:
                gcols = w.reshape(Co, C * K).T @ g2  # (C·K, N·P)
            else:
                gcols = np.matmul(
                    w.reshape(G, Co // G, C // G * K).transpose(0, 2, 1),
                    g2.reshape(G, Co // G, N * P),
                )  # (G, Cg·K, N·P)
            gcols = gcols.reshape((C,) + tuple(kernel) + (N,) + grid)
            gxp = np.zeros((C, N) + ctx.padshape[2:], dtype=g2.dtype)  # channels first
            # col2im: each kernel offset adds its block where its windows read (the same
            # strided view as the forward's, so the discarded columns, all zero, add nothing)
            win = _windows(gxp, grid, kernel, ctx.stride, ctx.dilation, writeable=True)
            for kk in itertools.product(*(range(k) for k in kernel)):
                win[(Ellipsis,) + kk] += gcols[(slice(None),) + kk]
            gx = gxp[_inner((C, N) + ctx.xshape[2:], ctx.padding)]
            gx = np.ascontiguousarray(gx.swapaxes(0, 1))
        return (gx, gw, gb) if len(need) > 2 else (gx, gw)


# ------------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------------


class MaxPool(Unit):
    """The maximum of each window:  z[n, c, p] = max_k x_pad[n, c, p·s + k·d] (padding is −∞).

    Its local term is 1 for the element that won and 0 for the others, so backward hands each
    output's gradient to that one input element (the first on ties; NaN wins, as in PyTorch).
    ``ctx.index`` keeps which kernel offset won, per output.
    """

    name = "max_pool"

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        kernel: Ints = (2,),
        stride: Ints = (2,),
        padding: Pads = ((0, 0),),
        dilation: Ints = (1,),
        ceil_mode: bool = False,
    ) -> np.ndarray:
        out = tuple(
            conv_output_size(n, k, s, lo, hi, d, ceil_mode)
            for n, k, s, (lo, hi), d in zip(
                x.shape[2:], kernel, stride, padding, dilation, strict=True
            )
        )
        if min(out) <= 0:
            raise ValueError("the window does not fit the padded input")
        pads = _full_pads(x.shape, kernel, stride, padding, dilation, out)
        xp = _pad(x, pads, -np.inf)
        nan = bool(np.isnan(x).any()) if x.dtype.kind == "f" else False  # one cheap pass
        offsets = _offset_slices(kernel, out, stride, dilation)
        m = xp[next(offsets)].copy()  # the first offset's values, then the running maximum
        idx = np.zeros(m.shape, dtype=np.int16 if math.prod(kernel) < 32000 else np.int64)
        for j, sl in enumerate(offsets, start=1):
            v = xp[sl]
            upd = v > m  # strictly: the first max wins
            if nan:
                upd |= v != v  # NaN wins, as in PyTorch
                np.copyto(m, v, where=upd)
            else:
                np.maximum(m, v, out=m)
            np.copyto(idx, j, where=upd)
        ctx.index, ctx.xshape, ctx.pads, ctx.out = idx, x.shape, pads, out
        ctx.kernel, ctx.stride, ctx.dilation, ctx.dtype = kernel, stride, dilation, x.dtype
        return m

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        xs = ctx.xshape
        shape = xs[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(xs[2:], ctx.pads, strict=True))
        # each output's gradient goes to the padded position of its window's winner: one
        # scatter-add (bincount sums where windows overlap) instead of a pass per offset
        nd = len(shape) - 2
        sstr = [math.prod(shape[3 + i :]) for i in range(nd)]  # element strides in a plane
        offsets = np.zeros(math.prod(ctx.kernel), dtype=np.int64)
        for j, kk in enumerate(itertools.product(*(range(k) for k in ctx.kernel))):
            offsets[j] = sum(k * d * st for k, d, st in zip(kk, ctx.dilation, sstr, strict=True))
        base = np.zeros((1, 1) + tuple(ctx.out), dtype=np.int64)
        for ax in range(nd):
            r = np.arange(ctx.out[ax], dtype=np.int64) * ctx.stride[ax] * sstr[ax]
            base = base + r.reshape((-1,) + (1,) * (nd - 1 - ax))
        plane = math.prod(shape[2:])
        nc = (
            np.arange(shape[0] * shape[1], dtype=np.int64).reshape((shape[0], shape[1]) + (1,) * nd)
            * plane
        )
        pos = (base + nc + offsets[ctx.index]).reshape(-1)
        gxp = np.bincount(pos, weights=grad.reshape(-1), minlength=math.prod(shape))
        gxp = gxp.astype(grad.dtype, copy=False).reshape(shape)
        return gxp[_inner(xs, ctx.pads)]

    @staticmethod
    def indices(ctx: Context) -> np.ndarray:
        """The flat index (over each input plane, as PyTorch's return_indices) of every max."""
        xs = ctx.xshape
        idx = ctx.index.astype(np.int64)
        flat = np.zeros(idx.shape, dtype=np.int64)
        kmul = 1
        sizes = xs[2:]
        offsets = np.unravel_index(idx, ctx.kernel)
        for ax in range(len(sizes) - 1, -1, -1):
            pos = np.arange(ctx.out[ax]) * ctx.stride[ax] - ctx.pads[ax][0]
            pos = pos.reshape((-1,) + (1,) * (len(sizes) - 1 - ax))
            flat = flat + (pos + offsets[ax] * ctx.dilation[ax]) * kmul
            kmul *= sizes[ax]
        return flat


class AvgPool(Unit):
    """The mean of each window:  z[n, c, p] = (1/D) Σ_k x_pad[n, c, p·s + k] (padding is 0).

    D is the window size (``count_include_pad``, the default), or the number of real input
    elements in the window, or ``divisor``. The local term is 1/D for every element of the
    window, so backward spreads g/D over it.
    """

    name = "avg_pool"

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        kernel: Ints = (2,),
        stride: Ints = (2,),
        padding: Pads = ((0, 0),),
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor: float | None = None,
    ) -> np.ndarray:
        nd = len(kernel)
        ones = (1,) * nd
        out = tuple(
            conv_output_size(n, k, s, lo, hi, 1, ceil_mode)
            for n, k, s, (lo, hi) in zip(x.shape[2:], kernel, stride, padding, strict=True)
        )
        if min(out) <= 0:
            raise ValueError("the window does not fit the padded input")
        pads = _full_pads(x.shape, kernel, stride, padding, ones, out)
        xp = _pad(x, pads)
        total = None
        for sl in _offset_slices(kernel, out, stride, ones):
            total = xp[sl].copy() if total is None else np.add(total, xp[sl], out=total)
        if divisor is not None:
            div = np.asarray(float(divisor))
        else:  # window sizes per axis (PyTorch's rule), multiplied across axes
            div = np.ones((), dtype=np.float64)
            for ax, (n, k, s, (lo, hi), o) in enumerate(
                zip(x.shape[2:], kernel, stride, padding, out, strict=True)
            ):
                start = np.arange(o) * s - lo
                end = np.minimum(start + k, n + hi)
                if not count_include_pad:
                    end, start = np.minimum(end, n), np.maximum(start, 0)
                cnt = (end - start).astype(np.float64)
                div = div * cnt.reshape((-1,) + (1,) * (nd - 1 - ax))
        inv = (1.0 / div).astype(x.dtype)
        ctx.inv, ctx.xshape, ctx.pads, ctx.out, ctx.kernel, ctx.stride = (
            inv,
            x.shape,
            pads,
            out,
            kernel,
            stride,
        )
        return total * inv

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        xs, nd = ctx.xshape, len(ctx.kernel)
        shape = xs[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(xs[2:], ctx.pads, strict=True))
        gxp = np.zeros(shape, dtype=grad.dtype)
        gd = grad * ctx.inv
        for sl in _offset_slices(ctx.kernel, ctx.out, ctx.stride, (1,) * nd):
            gxp[sl] += gd
        return gxp[_inner(xs, ctx.pads)]


def adaptive_windows(length: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive windows: window i covers [⌊i·L/out⌋, ⌈(i + 1)·L/out⌉)."""
    i = np.arange(out)
    return (i * length) // out, -((-(i + 1) * length) // out)


def _averaging_matrix(length: int, out: int, dtype: np.dtype[Any]) -> np.ndarray:
    """A (out, L) with A[i, j] = 1/|window i| for j in window i: pooling along one axis is A x."""
    start, end = adaptive_windows(length, out)
    j = np.arange(length)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPool(Unit):
    """Average pooling to a fixed output size, for any input size (PyTorch's windows).

    Along each spatial axis the windows are fixed, so pooling is a product with an averaging
    matrix A (out, L): z = x ×₁ A₁ ×₂ A₂ ..., and the local term is Aᵀ: dL/dx = g ×₁ A₁ᵀ ×₂ ...
    """

    name = "adaptive_avg_pool"

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, output_size: Ints = (1,)) -> np.ndarray:
        nd = len(output_size)
        mats = [
            _averaging_matrix(n, o, x.dtype) for n, o in zip(x.shape[2:], output_size, strict=True)
        ]
        ctx.mats = mats
        return _along_axes(x, mats, nd, transpose=False)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return _along_axes(grad, ctx.mats, len(ctx.mats), transpose=True)


def _along_axes(a: np.ndarray, mats: Sequence[np.ndarray], nd: int, transpose: bool) -> np.ndarray:
    """Multiply the spatial axes of a (N, C, *spatial) by mats (A, or Aᵀ when ``transpose``),
    one GEMM per axis."""
    for ax, m in enumerate(mats):
        axis = 2 + ax
        m = m if transpose else m.T  # a · Aᵀ along the axis (or a · A backward)
        moved = np.moveaxis(a, axis, -1)
        prod = moved.reshape(-1, moved.shape[-1]) @ m
        a = np.moveaxis(prod.reshape(moved.shape[:-1] + (m.shape[1],)), -1, axis)
    return a
