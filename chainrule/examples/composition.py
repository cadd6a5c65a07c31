"""The notes' forward pass: f(x) = x + 2, g(f) = 3f, h(g) = sin(g), at x = 10.

Forward: f(10) = 12, g = 3 * 12 = 36, h = sin(36). Back-propagation multiplies the local terms
from h back to x: dh/dx = dh/dg * dg/df * df/dx = cos(36) * 3 * 1.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import tensor
from ..units import sin


def forward_backward(x0: float = 10.0, dtype=np.float64):
    """The notes' three functions as units at x0: (x, f, g, h) after ``h.backward()``, with the
    gradients of f and g retained (the explainer reads the same tensors)."""
    x = tensor(np.array(x0, dtype=dtype), requires_grad=True)
    f = x + 2
    g = 3 * f
    h = sin(g)
    for t in (f, g):
        t.retain_grad()
    h.backward(retain_graph=True)  # the explainer walks the same record again
    return x, f, g, h


def composition(x0: float = 10.0, dtype=np.float64) -> dict:
    """Run the example; return every value and term (also what ``main`` prints)."""
    x, f, g, h = forward_backward(x0, dtype)
    return {
        "x": float(x.data),
        "f": float(f.data),
        "g": float(g.data),
        "h": float(h.data),
        "dh_dg": float(np.cos(g.data)),
        "dg_df": 3.0,
        "df_dx": 1.0,
        "dh_dx_autodiff": float(x.grad),
        "dh_dx_by_hand": 3 * math.cos(3 * (x0 + 2)),
    }


def main() -> str:
    r = composition()
    lines = [
        "Forward pass (each function's output is the next one's input):",
        f"  f(x) = x + 2   f({r['x']:g}) = {r['f']:g}",
        f"  g(f) = 3f      g({r['f']:g}) = {r['g']:g}",
        f"  h(g) = sin(g)  h({r['g']:g}) = sin({r['g']:g}) = {r['h']:.6f}",
        "",
        "Back-propagation (start at h, multiply in each unit's local derivative):",
        f"  dh/dg = cos(g) = cos({r['g']:g}) = {r['dh_dg']:.6f}",
        "  dg/df = 3",
        "  df/dx = 1",
        f"  dh/dx = dh/dg * dg/df * df/dx = {r['dh_dg']:.6f} * 3 * 1 = {r['dh_dg'] * 3:.6f}",
        "",
        f"  autodiff (chainrule)  dh/dx = {r['dh_dx_autodiff']:.10f}",
        f"  by hand   3 cos(36)   dh/dx = {r['dh_dx_by_hand']:.10f}",
    ]
    return "\n".join(lines)
