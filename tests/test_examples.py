"""The course notes' two examples, run as code."""

import math
import subprocess
import sys

import numpy as np
import pytest

from chainrule.examples import composition, llc


def test_composition_forward_and_derivative():
    r = composition()
    assert (r["f"], r["g"]) == (12.0, 36.0)
    assert r["h"] == pytest.approx(math.sin(36), abs=1e-12)
    assert r["dh_dx_autodiff"] == pytest.approx(3 * math.cos(36), abs=1e-12)


def test_llc_autodiff_equals_the_hand_derived_chain():
    r = llc(x=(0.3, -1.2), y=0.0, w=(2.0, 0.7), w0=-0.4)
    a = 1 / (1 + math.exp(-(2.0 * 0.3 + 0.7 * -1.2 - 0.4)))
    assert r["a"] == pytest.approx(a)
    np.testing.assert_allclose(r["dL_dw_autodiff"], (a - 0.0) * np.array([0.3, -1.2]), rtol=1e-12)
    np.testing.assert_allclose(r["dL_dw_chain"], r["dL_dw_autodiff"], rtol=1e-12)
    assert r["dL_dw0_autodiff"] == pytest.approx(a - 0.0)


def test_examples_command_prints_both_side_by_side():
    out = subprocess.run(
        [sys.executable, "-m", "chainrule.examples"], capture_output=True, text=True, check=True
    ).stdout
    assert "sin(36)" in out and "∂L/∂w autodiff" in out and "(a − y)·x" in out
    bad = subprocess.run(
        [sys.executable, "-m", "chainrule.examples", "nope"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown example 'nope'" in bad.stderr
