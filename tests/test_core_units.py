"""Every unit, checked by central differences in float64 (needs nothing but numpy)."""

import sys

import numpy as np
import pytest
from unit_table import CASES, IDS

import chainrule as cr


@pytest.mark.parametrize("name,fn,torch_fn,makers", CASES, ids=IDS)
def test_unit_matches_central_differences(name, fn, torch_fn, makers):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    inputs = [cr.tensor(m(rng), requires_grad=True) for m in makers]
    assert cr.gradcheck(fn, *inputs)


@pytest.mark.parametrize("name,fn,torch_fn,makers", CASES, ids=IDS)
def test_unit_keeps_float32(name, fn, torch_fn, makers):
    """float32 in, float32 out, and float32 gradients of each input's shape."""
    rng = np.random.default_rng(1)
    inputs = [cr.tensor(m(rng).astype(np.float32), requires_grad=True) for m in makers]
    out = fn(*inputs)
    assert out.dtype == np.float32, name
    out.backward(np.ones_like(out.data))
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == np.float32


def test_gradcheck_reports_the_worst_element():
    class WrongSquare(cr.Unit):
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x**2

        @staticmethod
        def backward(ctx, grad):
            g = grad * 2 * ctx.x
            g = g.copy()
            g[1, 2] += 0.5  # a wrong derivative at one element
            return g

    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda t: WrongSquare.apply(t).sum(), x)
    msg = str(info.value)
    assert (
        "input 0" in msg
        and "(1, 2)" in msg
        and "autodiff 2.5" in msg
        and "central difference 2" in msg
    )


def test_gradcheck_checks_every_output_element():
    x = cr.tensor(np.arange(1.0, 5.0), requires_grad=True)
    assert cr.gradcheck(lambda t: t * t, x)  # non-scalar output, full Jacobian


def test_gradcheck_leaves_inputs_untouched():
    data = np.array([1.0, 2.0], dtype=np.float32)
    x = cr.tensor(data.copy(), requires_grad=True)
    cr.gradcheck(lambda t: (t * t).sum(), x)
    assert x.grad is None and np.array_equal(x.data, data) and x.dtype == np.float32


@pytest.mark.parametrize(
    "name",
    [
        "neg",
        "exp",
        "log",
        "sin",
        "cos",
        "tanh",
        "sigmoid",
        "relu",
        "leaky_relu",
        "gelu",
        "abs",
        "sqrt",
        "clip",
        "sum",
        "mean",
        "max",
        "min",
        "softmax",
        "log_softmax",
    ],
)
def test_functions_take_a_plain_number(name):
    """cr.f(2.0) as cr.f(np.asarray(2.0)): a constant tensor of numpy's value (gelu, clip, sum,
    mean, softmax and log_softmax read the input's shape or dtype and used to fail on a float)."""
    fn = getattr(cr, name)
    out = fn(2.0)
    assert isinstance(out, cr.Tensor) and not out.requires_grad
    np.testing.assert_allclose(out.data, fn(np.asarray(2.0)).data)


def test_reshape_takes_a_plain_number():
    assert cr.reshape(2.0, 1).shape == (1,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_against_cached_zeros_gives_the_scalar_maximums_bits(dtype):
    # relu takes max(a, zeros) (3x faster than max(a, 0) in numpy 2.4): NaN, -0.0 and 0.0 must
    # come out bit for bit as numpy's maximum with the scalar gives them
    from chainrule import units as U

    a = np.random.default_rng(0).normal(size=(33, 17)).astype(dtype)
    a[::3, ::2] = -0.0
    a[1::5, 1::4] = np.nan
    a[2::7] = 0.0
    w = np.random.default_rng(1).normal(size=(5, 17)).astype(dtype)
    w[0] = 0.0  # a column of zeros: x·0 gives -0.0 where x < 0
    pairs = [
        (cr.relu(cr.tensor(a)).data, np.maximum(a, 0)),
        (U.LinearReLU.apply(a, w).data, np.maximum(U.Linear.apply(a, w).data, 0)),
    ]
    for got, want in pairs:
        assert got.dtype == dtype
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
    z = U._zeros(a.shape, a.dtype)
    assert z is U._zeros(a.shape, a.dtype) and not z.flags.writeable and not z.any()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_cached_zeros_cost_no_resident_memory_even_when_read():
    from chainrule import units as U

    def rss_kb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    before = rss_kb()
    z = U._zeros((4096, 4096), np.dtype(np.float32))  # 64 MiB of zeros
    assert float(z.sum()) == 0.0  # every page read
    assert rss_kb() - before < 8 * 1024
