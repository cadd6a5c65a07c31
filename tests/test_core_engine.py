"""Back-propagation itself: order, accumulation, depth, no_grad, dtypes, errors, custom units."""

import math

import numpy as np
import pytest

import chainrule as cr


def test_the_course_composition():
    x = cr.tensor(10.0, requires_grad=True)
    f = x + 2
    g = 3 * f
    h = cr.sin(g)
    assert h.item() == pytest.approx(math.sin(36), rel=1e-6)
    h.backward()
    assert x.grad == pytest.approx(3 * math.cos(36), rel=1e-5)


def test_a_tensor_used_twice_receives_the_sum():
    x = cr.tensor(3.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad == pytest.approx(7.0)


def test_diamond_graph_visits_each_unit_once():
    x = cr.tensor(2.0, requires_grad=True)
    a = x * 3
    b = a + a  # a used twice
    c = b * a  # and again
    c.backward()  # c = 2a * a = 18 x^2 -> dc/dx = 36 x = 72
    assert x.grad == pytest.approx(72.0)


def test_leaf_gradients_accumulate_across_calls_until_cleared():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 2.0])


def test_two_leaves_never_share_one_gradient_array():
    a = cr.tensor(np.ones(3), requires_grad=True)
    b = cr.tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad += 1
    np.testing.assert_allclose(b.grad, np.ones(3))


def test_only_leaves_keep_grad_unless_retained():
    x = cr.tensor(np.ones(3), requires_grad=True)
    mid = x * 2
    kept = (x * 5).retain_grad()
    (mid.sum() + kept.sum()).backward()
    assert mid.grad is None
    np.testing.assert_allclose(kept.grad, np.ones(3))
    np.testing.assert_allclose(x.grad, np.full(3, 7.0))


def test_a_chain_of_20000_units_needs_no_recursion():
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**20000, rel=1e-3)
    del y  # freeing the chain must not overflow the C stack either


def test_backward_on_a_non_scalar_needs_grad():
    x = cr.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(cr.ChainruleError, match=r"shape \(3,\).*pass grad="):
        (x * 2).backward()
    with pytest.raises(cr.ShapeError, match=r"grad has shape \(2,\)"):
        (x * 2).backward(np.ones(2))


def test_backward_without_requires_grad_is_a_clear_error():
    with pytest.raises(cr.ChainruleError, match="does not require grad"):
        (cr.tensor(1.0) * 2).backward()


def test_no_grad_records_nothing():
    x = cr.tensor(np.ones(3), requires_grad=True)
    with cr.no_grad():
        y = (x * 2).tanh().sum()
    assert not y.requires_grad and y._ctx is None
    z = (x * 2).sum()
    assert z.requires_grad and z._ctx is not None  # recording is back on


def test_no_grad_as_a_decorator_and_enable_grad_inside():
    x = cr.tensor(1.0, requires_grad=True)

    @cr.no_grad()
    def f(t):
        with cr.enable_grad():
            inner = t * 2
        return t * 3, inner

    outer, inner = f(x)
    assert not outer.requires_grad and inner.requires_grad
    assert cr.is_grad_enabled()


def test_dtypes_follow_the_contract():
    assert cr.tensor(1.0).dtype == np.float32
    assert cr.tensor([1, 2]).dtype == np.float32
    assert cr.tensor(np.array([1.0])).dtype == np.float64
    assert cr.tensor(np.array([1, 2])).dtype == np.int64
    x64 = cr.tensor(np.array([1.0]), requires_grad=True)
    assert (x64 * 1.0001).dtype == np.float64  # a Python number takes the tensor's dtype
    x32 = cr.tensor([1.0], requires_grad=True)
    assert (x32 * 1.0001).dtype == np.float32
    assert (x32 + np.ones(1)).dtype == np.float64  # numpy's promotion for arrays
    (x32 + np.ones(1)).sum().backward()
    assert x32.grad.dtype == np.float32  # the gradient keeps the input's dtype


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(cr.ChainruleError, match="int64 cannot require grad"):
        cr.tensor(np.array([1, 2]), requires_grad=True)
    t = cr.tensor(np.array([1, 2]))
    with pytest.raises(cr.ChainruleError):
        t.requires_grad = True


def test_numpy_arrays_are_not_copied_and_views_stay_views():
    a = np.ones((4, 6), dtype=np.float32)
    t = cr.tensor(a, requires_grad=True)
    assert t.data is a
    assert np.shares_memory(t.reshape(6, 4).data, a)
    assert np.shares_memory(t.T.data, a)


@pytest.mark.parametrize(
    "expr,message",
    [
        (
            lambda: cr.tensor(np.ones((4, 3))) @ cr.tensor(np.ones((2, 5))),
            r"matmul: cannot multiply \(4, 3\) by \(2, 5\): inner sizes 3 and 2 differ",
        ),
        (
            lambda: cr.tensor(np.ones((4, 3))) + cr.tensor(np.ones((2, 5))),
            r"add: cannot broadcast shapes \(4, 3\) and \(2, 5\)",
        ),
        (
            lambda: cr.tensor(np.ones((4, 3))) * np.ones(4),
            r"mul: cannot broadcast shapes \(4, 3\) and \(4,\)",
        ),
        (
            lambda: cr.tensor(np.ones((4, 3))).reshape(5, 2),
            r"reshape: cannot reshape \(4, 3\) \(12 elements\) into \(5, 2\)",
        ),
        (
            lambda: cr.linear(cr.tensor(np.ones((4, 3))), cr.tensor(np.ones((2, 5)))),
            r"linear: input of shape \(4, 3\) does not fit weight of shape \(2, 5\)",
        ),
        (
            lambda: cr.tensor(np.ones((4, 3))).sum(axis=2),
            r"sum: axis 2 is out of range for shape \(4, 3\)",
        ),
        (
            lambda: cr.concatenate(
                [cr.tensor(np.ones((4, 3))), cr.tensor(np.ones((2, 2)))], axis=0
            ),
            r"concatenate: cannot join shapes \(4, 3\), \(2, 2\) along axis 0",
        ),
    ],
)
def test_shape_errors_name_the_unit_and_the_shapes(expr, message):
    with pytest.raises(cr.ShapeError, match=message):
        expr()


def test_custom_unit_with_ctx_attributes():
    class Cube(cr.Unit):
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x**3

        @staticmethod
        def backward(ctx, grad):
            return grad * 3 * ctx.x**2

    x = cr.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    assert Cube.name == "cube"
    assert cr.gradcheck(lambda t: Cube.apply(t), x)
    y = Cube.apply(x)
    assert y.unit is Cube


def test_custom_unit_with_two_inputs_a_constant_and_broadcast_gradient():
    class ScaledAdd(cr.Unit):
        name = "scaled add"

        @staticmethod
        def forward(ctx, a, b, scale=1.0):
            ctx.scale = scale
            return a + scale * b

        @staticmethod
        def backward(ctx, grad):
            # the gradient for b has a's broadcast shape: the engine sums it back
            return grad, grad * ctx.scale

    a = cr.tensor(np.ones((3, 4)), requires_grad=True)
    b = cr.tensor(np.ones(4), requires_grad=True)
    ScaledAdd.apply(a, b, scale=2.0).sum().backward()
    np.testing.assert_allclose(b.grad, np.full(4, 6.0))
    assert cr.gradcheck(lambda x, y: ScaledAdd.apply(x, y, scale=0.5), a, b)


def test_custom_unit_returning_the_wrong_number_of_gradients():
    class Bad(cr.Unit):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    out = Bad.apply(cr.tensor(1.0, requires_grad=True), cr.tensor(2.0, requires_grad=True))
    with pytest.raises(cr.ChainruleError, match="bad: backward returned 1 gradients for 2 inputs"):
        out.backward()


def test_max_ties_full_split_evenly_axis_goes_to_first():
    x = cr.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [0, 0, 0]])
    x.zero_grad()
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 1, 0], [1, 0, 0]])


def test_setting_data_replaces_the_array_and_its_dtype():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    t.data = np.array([1.0, 2.0, 3.0])
    assert t.dtype == np.float64 and t.shape == (3,)


def test_detach_cuts_the_record_and_shares_memory():
    x = cr.tensor(np.ones(2), requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.data is y.data


def test_comparisons_give_plain_boolean_tensors():
    x = cr.tensor(np.array([1.0, -1.0]), requires_grad=True)
    m = x > 0
    assert m.dtype == bool and not m.requires_grad
    np.testing.assert_array_equal(m.data, [True, False])


def test_numpy_array_on_the_left_of_an_operator():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, cr.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])
