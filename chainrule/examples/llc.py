"""The notes' logistic linear classifier (LLC) as one neuron: linear unit Σ, activation σ, loss L.

    z = wᵀx + w₀        (linear unit Σ)
    a = σ(z)            (activation)
    L(a, y) = −[y log a + (1 − y) log(1 − a)]   (loss unit: negative log-likelihood)

Back-propagation gathers the chain-rule terms from the loss back to w (the notes' equation 3):

    ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w = (a − y)/(a(1 − a)) · a(1 − a) · x = (a − y) · x
"""

from __future__ import annotations

import numpy as np

from ..tensor import tensor
from ..units import log, sigmoid


def llc(x=(1.0, 2.0, -1.0), y=1.0, w=(0.5, -0.25, 0.1), w0=0.2) -> dict:
    """Run one forward pass and back-propagation; return every value and chain-rule term."""
    x = np.asarray(x, dtype=np.float64)
    tw = tensor(np.asarray(w, dtype=np.float64), requires_grad=True)
    tw0 = tensor(np.asarray(w0, dtype=np.float64), requires_grad=True)
    z = tw @ x + tw0
    a = sigmoid(z)
    L = -(y * log(a) + (1 - y) * log(1 - a))
    for t in (z, a):
        t.retain_grad()
    L.backward()
    gw, gw0, ga, gz = tw.grad, tw0.grad, a.grad, z.grad
    assert gw is not None and gw0 is not None and ga is not None and gz is not None  # backward
    av, zv = float(a.data), float(z.data)
    dL_da = (av - y) / (av * (1 - av))
    da_dz = av * (1 - av)
    return {
        "x": x,
        "y": float(y),
        "w": np.asarray(w, dtype=np.float64),
        "w0": float(w0),
        "z": zv,
        "a": av,
        "L": float(L.data),
        "dL_da": dL_da,
        "da_dz": da_dz,
        "dz_dw": x,
        "dL_dw_chain": dL_da * da_dz * x,
        "dL_dw_by_hand": (av - y) * x,
        "dL_dw_autodiff": gw.copy(),
        "dL_dw0_autodiff": float(gw0),
        "dL_da_autodiff": float(ga),
        "dL_dz_autodiff": float(gz),
    }


def _vec(v) -> str:
    return "[" + ", ".join(f"{float(e):+.6f}" for e in np.ravel(v)) + "]"


def main() -> str:
    r = llc()
    lines = [
        "Logistic classifier as one neuron: x -> [Σ: z = wᵀx + w₀] -> [σ: a = σ(z)] -> [L(a, y)]",
        "",
        "Forward pass:",
        f"  x = {_vec(r['x'])}, y = {r['y']:g}, w = {_vec(r['w'])}, w₀ = {r['w0']:+g}",
        f"  z = wᵀx + w₀ = {r['z']:+.6f}",
        f"  a = σ(z)     = {r['a']:.6f}",
        f"  L(a, y) = −[y log a + (1 − y) log(1 − a)] = {r['L']:.6f}",
        "",
        "Back-propagation, ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w   (notes, equation 3):",
        f"  ∂L/∂a = (a − y)/(a(1 − a)) = {r['dL_da']:+.6f}   (loss unit)      "
        f"autodiff {r['dL_da_autodiff']:+.6f}",
        f"  ∂a/∂z = a(1 − a)           = {r['da_dz']:+.6f}   (activation)",
        f"  ∂L/∂z = ∂L/∂a · ∂a/∂z      = {r['dL_da'] * r['da_dz']:+.6f}                    "
        f"autodiff {r['dL_dz_autodiff']:+.6f}",
        f"  ∂z/∂w = x                  = {_vec(r['dz_dw'])}   (linear unit)",
        "",
        "  ∂L/∂w by the chain       " + _vec(r["dL_dw_chain"]),
        "  ∂L/∂w = (a − y)·x        " + _vec(r["dL_dw_by_hand"]),
        "  ∂L/∂w autodiff           " + _vec(r["dL_dw_autodiff"]),
        f"  ∂L/∂w₀ = a − y = {r['a'] - r['y']:+.6f}      autodiff {r['dL_dw0_autodiff']:+.6f}",
    ]
    return "\n".join(lines)
