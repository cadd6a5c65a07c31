"""chainrule._validate: argument checks stated as data (Interval, Options, InstanceOf, AnyOf)."""

import math

import numpy as np
import pytest

from chainrule._validate import NONE, AnyOf, InstanceOf, Interval, Options, check_params, violation
from chainrule.errors import ConfigError


@pytest.mark.parametrize(
    "constraint, good, bad",
    [
        (Interval(int, 1, None), [1, 7, np.int64(3)], [0, -2, 1.0, True, "3", None]),
        (Interval(int, 0, None), [0, 5], [-1, False]),
        (Interval(float, 0, None, closed="neither"), [1e-9, 3, 2.5], [0, -1.0, math.inf, math.nan]),
        (Interval(float, 0, 1, closed="left"), [0, 0.0, 0.999], [1, 1.0, -0.1, math.nan, True]),
        (Interval(float, 0, 1, closed="right"), [1, 0.5], [0, 0.0]),
        (Interval(int, 1, 5), [1, 5], [0, 6]),
        (Options(["a", "b"]), ["a", "b"], ["c", None, 1, ["a"], np.array([1, 2])]),
        (InstanceOf((bool, np.bool_)), [True, np.bool_(False)], [1, 0, "True"]),
        (AnyOf(NONE, Interval(int, 1, None)), [None, 3], [0, "x"]),
    ],
)
def test_constraints_hold_for_the_right_values(constraint, good, bad):
    for v in good:
        assert constraint.holds(v), (constraint, v)
    for v in bad:
        assert not constraint.holds(v), (constraint, v)


def test_expected_phrases():
    assert Interval(int, 1, None).expected == "a positive whole number"
    assert Interval(int, 0, None, closed="neither").expected == "a positive whole number"
    assert Interval(float, 0, None, closed="neither").expected == "a positive number"
    assert Interval(int, 0, None).expected == "a whole number >= 0"
    assert Interval(float, 0, 1, closed="left").expected == (
        "a number from 0 up to, not including, 1"
    )
    assert Options(["x", "y"]).expected == "one of x, y"
    assert AnyOf(NONE, Interval(int, 1, None)).expected == "None or a positive whole number"
    assert Interval(int, 1, None, expected="mine").expected == "mine"


def test_check_params_raises_the_callers_error_for_the_first_bad_value_in_order():
    constraints = {"a": Interval(int, 1, None), "b": Options(["x"]), "c": Interval(int, 1, None)}

    def error(name, value, expected):
        return ConfigError(f"f: {name} must be {expected}, got {value!r}")

    check_params({"a": 1, "b": "x", "c": 2}, constraints, error)
    with pytest.raises(ConfigError, match=r"^f: b must be one of x, got 'y'$"):
        check_params({"a": 1, "b": "y", "c": 0}, constraints, error)
    assert violation({"a": 0, "b": "y", "c": 0}, constraints) == ("a", 0, "a positive whole number")
    assert violation({"a": 2, "b": "x", "c": 2}, constraints) is None


def test_bad_declarations_are_refused():
    with pytest.raises(TypeError):
        Interval(str, 0, 1)
    with pytest.raises(ValueError):
        Interval(int, 0, 1, closed="open")
