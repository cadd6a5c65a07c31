"""Argument checks stated as data, checked by one function.

As scikit-learn's ``_parameter_constraints``: a caller declares what each argument may be,

    FIT_CONSTRAINTS = {"epochs": Interval(int, 1, None), "batch_size": Interval(int, 1, None)}

and :func:`check_params` compares the values with it and raises the caller's own error, built
from the argument's name, its value and the constraint's ``expected`` phrase, so that each
caller keeps its wording ("fit: epochs must be a positive whole number, got 0",
"NetClassifier: lr=-1 is not valid; expected a positive number").

- :class:`Interval`: a whole number (``int``: any integral type, numpy's too) or a real number
  (``float``: any finite real) between optional bounds; never a bool.
- :class:`Options`: one of a fixed set of values.
- :class:`InstanceOf`: an instance of some classes.
- :class:`AnyOf`: any of several constraints (``AnyOf(NONE, Interval(int, 1, None))``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "Constraint",
    "Interval",
    "Options",
    "InstanceOf",
    "AnyOf",
    "NONE",
    "check_params",
    "violation",
]


class Constraint:
    """What one argument may be: ``holds(value)``, and ``expected`` (the phrase messages use)."""

    expected: str = "a valid value"

    def holds(self, value: Any) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expected!r})"


def _number_phrase(kind: type, low, high, closed: str) -> str:
    noun = "whole number" if kind is int else "number"
    left = closed in ("both", "left")
    right = closed in ("both", "right")
    if high is None and low is not None:
        if (low == 0 and not left) or (kind is int and low == 1 and left):
            return f"a positive {noun}"
        return f"a {noun} {'>=' if left else '>'} {low}"
    if low is None and high is not None:
        return f"a {noun} {'<=' if right else '<'} {high}"
    if low is None and high is None:
        return f"a {noun}"
    upper = f"up to {high}" if right else f"up to, not including, {high}"
    lower = f"from {low}" if left else f"above {low}"
    return f"a {noun} {lower} {upper}"


class Interval(Constraint):
    """A number of ``kind`` (``int`` or ``float``) with ``low <= value <= high`` (``closed``:
    'both', 'left', 'right' or 'neither' says which bounds are allowed; None: no bound).
    Bools never count as numbers; a float must be finite."""

    def __init__(
        self,
        kind: type,
        low: float | None = None,
        high: float | None = None,
        *,
        closed: str = "both",
        expected: str | None = None,
    ):
        if kind not in (int, float):
            raise TypeError(f"Interval: kind must be int or float, got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(
                f"Interval: closed must be both, left, right or neither, got {closed!r}"
            )
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self.expected = expected or _number_phrase(kind, low, high, closed)

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        low_open = self.closed in ("right", "neither")
        high_open = self.closed in ("left", "neither")
        if self.low is not None and (value < self.low or (low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (high_open and value == self.high))


class Options(Constraint):
    """One of ``options`` (compared with ``==``)."""

    def __init__(self, options: Iterable, expected: str | None = None):
        self.options = tuple(options)
        self.expected = expected or "one of " + ", ".join(str(o) for o in self.options)

    def holds(self, value: Any) -> bool:
        try:
            return bool(value in self.options)
        except (TypeError, ValueError):  # an array's == is elementwise
            return False


class InstanceOf(Constraint):
    """An instance of ``types`` (a class or a tuple of classes)."""

    def __init__(self, types, expected: str | None = None):
        self.types = types
        names = types if isinstance(types, tuple) else (types,)
        self.expected = expected or "an instance of " + " or ".join(t.__name__ for t in names)

    def holds(self, value: Any) -> bool:
        return isinstance(value, self.types)


class AnyOf(Constraint):
    """Any one of ``constraints`` holds."""

    def __init__(self, *constraints: Constraint, expected: str | None = None):
        self.constraints = constraints
        self.expected = expected or " or ".join(c.expected for c in constraints)

    def holds(self, value: Any) -> bool:
        return any(c.holds(value) for c in self.constraints)


class _IsNone(Constraint):
    expected = "None"

    def holds(self, value: Any) -> bool:
        return value is None


NONE = _IsNone()


def violation(params: Mapping[str, Any], constraints: Mapping[str, Constraint]):
    """The first (name, value, expected) whose value breaks its constraint, in the order of
    ``constraints``; None when every one holds."""
    for name, constraint in constraints.items():
        value = params[name]
        if not constraint.holds(value):
            return name, value, constraint.expected
    return None


def check_params(
    params: Mapping[str, Any],
    constraints: Mapping[str, Constraint],
    error: Callable[[str, Any, str], Exception],
) -> None:
    """Raise ``error(name, value, expected)`` for the first argument of ``params`` that breaks
    its constraint (checked in the order of ``constraints``)."""
    found = violation(params, constraints)
    if found is not None:
        raise error(*found)
