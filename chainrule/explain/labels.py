"""The formulas printed beside the numbers: labels for the reader, read from the facts each
layer and loss class states (``formula``, ``derivative``: see chainrule.registry). The numbers
never come from them."""

from __future__ import annotations

from typing import Any

from ..registry import facts_of

__all__ = [
    "role",
    "loss_name",
    "loss_formula",
    "loss_derivative",
    "act_derivative",
    "scaled",
    "reduction_note",
    "layer_desc",
]


def role(mod: Any) -> str:
    """What the explainer calls a layer: 'linear', 'activation', 'passthrough', ..."""
    return facts_of(mod).role


def loss_name(loss_fn: Any) -> str:
    """The loss's class name, or a plain function's name."""
    if not callable(loss_fn) or hasattr(loss_fn, "forward"):
        return type(loss_fn).__name__
    return getattr(loss_fn, "__name__", type(loss_fn).__name__)


def loss_formula(lf: Any, name: str, o: str) -> str:
    """The loss as a formula of the output ``o``."""
    return (facts_of(lf).formula or name).format(o=o)


def loss_derivative(lf: Any, o: str) -> str:
    """The loss unit's local term ∂L/∂o as a formula."""
    return (facts_of(lf).derivative or "∂L/∂" + o).format(o=o)


def act_derivative(mod: Any, name: str, o: str, i: str, o2: str, unknown: str) -> str:
    """An activation's local term as a formula of its output ``o`` (``o2`` squared) and input."""
    return (facts_of(mod).derivative or f"{name}′({unknown})").format(o=o, i=i, o2=o2)


def scaled(red: str, txt: str) -> str:
    """'1/n · ' in front of a formula, with parentheses when the formula is a sum."""
    if not red:
        return txt
    is_sum = " − " in txt or " + " in txt or "where" in txt
    if is_sum and not (txt.startswith("(") and txt.endswith(")") and txt.count("(") == 1):
        txt = f"({txt})"
    return red + txt


def reduction_note(lf: Any, out: Any) -> tuple[int, str]:
    """(n, text): the number of values the loss averages, and '1/n · ' when n > 1."""
    if getattr(lf, "reduction", "mean") != "mean":
        return 1, ""
    per_sample = facts_of(lf).target == "index"  # class-index targets: one per sample
    n = out.shape[0] if per_sample and out.ndim >= 1 else out.data.size
    return n, (f"1/{n} · " if n > 1 else "")


def layer_desc(mod: Any, kind_name: str, is_function: bool) -> str:
    """A layer in the title and headings: 'Linear 2→16', 'Tanh', a function's unit name."""
    if is_function:
        return kind_name
    if role(mod) == "linear" and hasattr(mod, "out_features"):
        return f"{kind_name} {mod.in_features}→{mod.out_features}"
    return kind_name
