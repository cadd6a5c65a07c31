"""Property tests: every binary unit broadcasts like numpy, and the gradient of each input has
that input's shape and equals the sum over the broadcast copies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: (np.ones_like(a), np.ones_like(b))),
    "sub": (lambda a, b: a - b, lambda a, b: (np.ones_like(a), -np.ones_like(b))),
    "mul": (lambda a, b: a * b, lambda a, b: (b, a)),
    "div": (lambda a, b: a / b, lambda a, b: (1 / b, -a / b**2)),
    "maximum": (cr.maximum, lambda a, b: ((a > b) * 1.0, (b > a) * 1.0)),
}


@st.composite
def broadcastable_pair(draw):
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4)
    )
    elems = st.floats(0.5, 2.0)  # away from 0 (div) and distinct enough for maximum
    a = draw(hnp.arrays(np.float64, shapes.input_shapes[0], elements=elems))
    b = draw(hnp.arrays(np.float64, shapes.input_shapes[1], elements=elems))
    signs = draw(st.sampled_from([1.0, -1.0]))
    return a * signs, b + 0.01  # no exact ties for maximum


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=40, deadline=None)
@given(pair=broadcastable_pair())
def test_binary_units_broadcast_like_numpy(name, pair):
    fn, local = BINARY[name]
    a, b = pair
    ta, tb = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    out = fn(ta, tb)
    expected = fn(a, b) if name != "maximum" else np.maximum(a, b)
    np.testing.assert_allclose(out.data, expected)
    g = np.random.default_rng(0).normal(size=out.shape)
    out.backward(g)
    # expected gradients: the local derivative broadcast, times g, summed back to each shape
    la, lb = local(*np.broadcast_arrays(a, b))
    for t, local_grad, shape in ((ta, la, a.shape), (tb, lb, b.shape)):
        full = g * local_grad
        extra = full.ndim - len(shape)
        full = full.sum(axis=tuple(range(extra))) if extra else full
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and full.shape[i] != 1)
        full = full.sum(axis=axes, keepdims=True) if axes else full
        assert t.grad.shape == shape
        np.testing.assert_allclose(t.grad, full.reshape(shape), rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_incompatible_shapes_never_pass_silently(shapes):
    a = np.ones(shapes.input_shapes[0])
    bad = tuple(n + 1 for n in shapes.result_shape)
    if not bad or all(n == 1 for n in shapes.input_shapes[0]):
        return
    try:
        np.broadcast_shapes(a.shape, bad)
        compatible = True
    except ValueError:
        compatible = False
    if not compatible:
        with pytest.raises(cr.ShapeError, match="add: cannot broadcast shapes"):
            cr.tensor(a) + cr.tensor(np.ones(bad))
