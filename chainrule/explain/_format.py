"""Numbers as text, shared by the text and HTML views (and the demos' formulas)."""

from __future__ import annotations

import html
import math

import numpy as np

_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_UNSUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def sup(n: object) -> str:
    """An integer as superscript digits (3 -> '³'): the layer number of z³, W³."""
    return str(n).translate(_SUP)


def unsup(symbol: str) -> str:
    """The superscript digits of a symbol as plain digits ('z³' -> '3'; '' when none)."""
    return "".join(ch for ch in symbol if ch in "⁰¹²³⁴⁵⁶⁷⁸⁹").translate(_UNSUP)


def num(v: object) -> str:
    """One number, signed, 6 decimals (scientific when tiny or huge)."""
    v = float(v)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return str(v)
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return f"{v:+.6f}"
    return f"{v:+.4e}"


def short(v: object) -> str:
    """One number, signed, 4 significant digits (for vectors)."""
    s = f"{float(v):+.4g}"  # type: ignore[arg-type]
    return "+0" if s in ("+0", "-0") else s


def norm(a: object) -> float:
    """The Euclidean norm of every number of an array."""
    arr = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.vdot(arr, arr)))


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as Python writes it: (3,), (2, 4), ()."""
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def vec(a: object, full: bool = False, limit: int = 8) -> str:
    """An array as text: every number when small (or ``full``), else the first few and ‖·‖."""
    arr = np.asarray(a)
    if arr.ndim == 0:
        return num(arr) if full else short(arr)
    flat = arr.reshape(-1)
    fmt = num if full else short
    if flat.size <= limit:
        if arr.ndim == 2 and arr.shape[0] > 1:
            return "[" + ", ".join("[" + ", ".join(fmt(v) for v in row) + "]" for row in arr) + "]"
        return "[" + ", ".join(fmt(v) for v in flat) + "]"
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1):
        head = ", ".join(short(v) for v in flat[:6])
        return f"[{head}, … {short(flat[-1])}]  ({flat.size} values, ‖·‖ = {norm(arr):.4g})"
    return (
        f"{shape_text(arr.shape)} array, ‖·‖ = {norm(arr):.4g}, "
        f"min {short(arr.min())}, max {short(arr.max())}"
    )


def labels(y: object) -> str:
    """Targets as text: integers plainly (class labels), else as numbers."""
    arr = np.asarray(y)
    kind = arr.dtype.kind
    if kind in "biu" or (kind == "f" and arr.size and np.all(arr == np.round(arr))):
        flat = [str(int(v)) for v in arr.reshape(-1)]
        if len(flat) <= 8:
            return "[" + ", ".join(flat) + "]"
        return "[" + ", ".join(flat[:8]) + f", …]  ({len(flat)} labels)"
    return vec(arr)


def full(a: object) -> str:
    """Every number, 6 decimals; one number without brackets."""
    arr = np.asarray(a)
    return num(arr.reshape(-1)[0]) if arr.size == 1 else vec(arr, full=True, limit=64)


def esc(s: object) -> str:
    """Text for HTML (quotes escaped too)."""
    return html.escape(str(s), quote=True)
