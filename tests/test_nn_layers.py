"""chainrule.nn layers: Linear, init, activations, Flatten, Identity, Dropout, BatchNorm1d (moved
from test_nn.py, assertions unchanged).

Every layer is checked two ways: central differences in float64 (``cr.gradcheck``, numpy only)
and, where torch is installed, against PyTorch with the same weights (forward values and all
gradients at float64, to ~1e-10). Shared helpers: ``nn_helpers.py``.
"""

import math

import numpy as np
import pytest
from nn_helpers import MLP, TOL, _compare_grads, _copy_into_torch, _run_both, _torch  # noqa: F401

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.errors import ConfigError, ShapeError
from chainrule.gradcheck import gradcheck

# ================================================================================================
# Linear and init
# ================================================================================================


class TestLinear:
    def test_shapes_dtype_and_repr(self):
        lin = nn.Linear(3, 5)
        assert lin.weight.shape == (5, 3) and lin.bias.shape == (5,)
        assert lin.weight.dtype == np.float32
        assert repr(lin) == "Linear(in_features=3, out_features=5, bias=True)"
        assert nn.Linear(3, 5, bias=False).bias is None
        assert nn.Linear(3, 5, dtype=np.float64).weight.dtype == np.float64

    def test_numpy_input_takes_the_weight_dtype(self):
        lin = nn.Linear(3, 2)
        out = lin(np.ones((4, 3)))  # float64 data into a float32 layer
        assert out.dtype == np.float32 and out.shape == (4, 2)
        assert lin([[1, 2, 3]]).shape == (1, 2)
        assert lin(np.ones((2, 7, 3))).shape == (2, 7, 2)
        assert lin(cr.tensor(np.ones((1, 3), dtype=np.int64))).dtype == np.float32

    def test_shape_error(self):
        with pytest.raises(ShapeError, match=r"\(4, 2\).*weight of shape \(5, 3\)"):
            nn.Linear(3, 5)(np.ones((4, 2)))

    def test_bad_sizes(self):
        with pytest.raises(ConfigError, match="in_features must be a non-negative integer, got -1"):
            nn.Linear(-1, 3)

    def test_default_init_bound(self):
        lin = nn.Linear(400, 300, rng=np.random.default_rng(0))
        bound = 1 / math.sqrt(400)
        w, b = lin.weight.data, lin.bias.data
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert np.abs(b).max() <= bound
        assert abs(w.mean()) < 0.01 * bound
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)

    def test_default_init_bound_like_torch(self):
        torch = _torch()
        torch.manual_seed(0)
        tw = torch.nn.Linear(400, 300).weight.detach().numpy()
        w = nn.Linear(400, 300).weight.data
        assert np.abs(w).max() <= 1 / 20 and np.abs(tw).max() <= 1 / 20
        assert w.std() == pytest.approx(tw.std(), rel=0.02)

    def test_seed_reproducible(self):
        cr.manual_seed(7)
        a = nn.Linear(4, 3).weight.data.copy()
        cr.manual_seed(7)
        b = nn.Linear(4, 3).weight.data
        np.testing.assert_array_equal(a, b)
        c = nn.Linear(4, 3, rng=np.random.default_rng(7)).weight.data
        d = nn.Linear(4, 3, rng=np.random.default_rng(7)).weight.data
        np.testing.assert_array_equal(c, d)
        lin = nn.Linear(4, 3, rng=np.random.default_rng(7))
        lin.reset_parameters(rng=np.random.default_rng(7))
        np.testing.assert_array_equal(lin.weight.data, c)

    @pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4), (4,)])
    @pytest.mark.parametrize("bias", [True, False])
    def test_matches_torch(self, shape, bias):
        torch = _torch()
        ours = nn.Linear(4, 3, bias=bias).double()
        theirs = _copy_into_torch(ours, torch.nn.Linear(4, 3, bias=bias).double())
        _run_both(ours, theirs, np.random.default_rng(0).normal(size=shape))

    def test_gradcheck(self):
        lin = nn.Linear(3, 2).double()
        x = cr.tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True)
        assert gradcheck(lambda x, w, b: F.linear(x, w, b), x, lin.weight, lin.bias)


class TestInit:
    N = (500, 400)  # fan_out, fan_in

    def _w(self, dtype=np.float32):
        return nn.Parameter(np.zeros(self.N, dtype=dtype))

    def test_calculate_gain_matches_torch(self):
        torch = _torch()
        for nl in ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"]:
            assert nn.init.calculate_gain(nl) == pytest.approx(torch.nn.init.calculate_gain(nl))
        for a in [None, 0.2, math.sqrt(5)]:
            assert nn.init.calculate_gain("leaky_relu", a) == pytest.approx(
                torch.nn.init.calculate_gain("leaky_relu", a)
            )
        with pytest.raises(ConfigError, match="'swish'"):
            nn.init.calculate_gain("swish")

    def test_in_place_returns_tensor_keeps_dtype(self):
        w = self._w(np.float64)
        arr = w.data
        assert nn.init.xavier_uniform_(w, rng=np.random.default_rng(0)) is w
        assert w.data is arr and w.dtype == np.float64
        a = np.zeros((3, 4), dtype=np.float32)
        assert nn.init.normal_(a, seed=1) is a and a.std() > 0

    def test_xavier_uniform(self):
        w = nn.init.xavier_uniform_(self._w(), gain=2.0, seed=0).data
        bound = 2.0 * math.sqrt(6 / (400 + 500))
        assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.99 * bound
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)

    def test_xavier_normal(self):
        w = nn.init.xavier_normal_(self._w(), seed=0).data
        assert w.std() == pytest.approx(math.sqrt(2 / 900), rel=0.01)
        assert abs(w.mean()) < 0.005

    @pytest.mark.parametrize("mode,fan", [("fan_in", 400), ("fan_out", 500)])
    def test_kaiming_uniform(self, mode, fan):
        w = nn.init.kaiming_uniform_(self._w(), mode=mode, nonlinearity="relu", seed=0).data
        bound = math.sqrt(2) * math.sqrt(3 / fan)
        assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.99 * bound
        assert w.std() == pytest.approx(math.sqrt(2 / fan), rel=0.01)

    def test_kaiming_normal_and_he_alias(self):
        w = nn.init.he_normal_(self._w(), mode="fan_in", nonlinearity="relu", seed=0).data
        assert w.std() == pytest.approx(math.sqrt(2 / 400), rel=0.01)
        w = nn.init.kaiming_normal_(self._w(), a=0.1, seed=0).data  # leaky_relu by default
        assert w.std() == pytest.approx(math.sqrt(2 / 1.01) / 20, rel=0.01)

    def test_same_bound_as_torch(self):
        """Same formula as torch: the extreme values of both lie just below the same bound."""
        torch = _torch()
        torch.manual_seed(0)
        for ours_fn, torch_fn, kw in [
            (nn.init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, dict(a=0.3, mode="fan_out")),
            (nn.init.xavier_uniform_, torch.nn.init.xavier_uniform_, dict(gain=1.7)),
        ]:
            ours = ours_fn(self._w(), seed=0, **kw).data
            theirs = torch_fn(torch.zeros(self.N), **kw).numpy()
            assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=1e-3)

    def test_receptive_field_fans(self):
        w = np.zeros((8, 4, 3, 3))
        nn.init.kaiming_uniform_(w, seed=0)
        assert np.abs(w).max() <= math.sqrt(2 / (1 + 0)) * math.sqrt(3 / 36)

    def test_plain_fills_and_seeds(self):
        w = self._w()
        nn.init.uniform_(w, -2, 3, seed=0)
        assert w.data.min() >= -2 and w.data.max() <= 3
        assert w.data.mean() == pytest.approx(0.5, abs=0.02)
        nn.init.normal_(w, 1.0, 0.5, rng=np.random.default_rng(0))
        assert w.data.mean() == pytest.approx(1.0, abs=0.01)
        assert w.data.std() == pytest.approx(0.5, rel=0.01)
        np.testing.assert_array_equal(nn.init.ones_(self._w()).data, 1)
        np.testing.assert_array_equal(nn.init.zeros_(self._w()).data, 0)
        np.testing.assert_array_equal(nn.init.constant_(self._w(), 0.3).data, np.float32(0.3))
        a = nn.init.normal_(self._w(), seed=3).data.copy()
        np.testing.assert_array_equal(nn.init.normal_(self._w(), seed=3).data, a)
        cr.manual_seed(3)
        b = nn.init.normal_(self._w()).data.copy()
        cr.manual_seed(3)
        np.testing.assert_array_equal(nn.init.normal_(self._w()).data, b)

    def test_errors(self):
        with pytest.raises(ConfigError, match="fewer than 2 dimensions"):
            nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))
        with pytest.raises(ConfigError, match="'fan_avg'"):
            nn.init.kaiming_uniform_(self._w(), mode="fan_avg")


# ================================================================================================
# activations, Flatten, Identity
# ================================================================================================


def _activation_pairs():
    torch = _torch()
    return [
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.LeakyReLU(), torch.nn.LeakyReLU()),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Softmax(), torch.nn.Softmax(dim=-1)),
        (nn.Softmax(dim=0), torch.nn.Softmax(dim=0)),
        (nn.LogSoftmax(), torch.nn.LogSoftmax(dim=-1)),
        (nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)),
        (nn.GELU(), torch.nn.GELU()),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.Identity(), torch.nn.Identity()),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Flatten(0, 1), torch.nn.Flatten(0, 1)),
    ]


class TestActivations:
    def test_match_torch(self):
        x = np.random.default_rng(0).normal(size=(4, 3, 5))
        for ours, theirs in _activation_pairs():
            _run_both(ours, theirs, x)

    @pytest.mark.parametrize(
        "module",
        [
            nn.ReLU(),
            nn.LeakyReLU(0.1),
            nn.Tanh(),
            nn.Sigmoid(),
            nn.Softmax(),
            nn.LogSoftmax(dim=0),
            nn.GELU(),
            nn.GELU("tanh"),
            nn.Identity(),
            nn.Flatten(),
        ],
        ids=lambda m: repr(m),
    )
    def test_gradcheck(self, module):
        x = np.random.default_rng(1).uniform(0.1, 2.0, size=(3, 2, 2))
        x *= np.random.default_rng(2).choice([-1.0, 1.0], size=x.shape)  # away from kinks
        assert gradcheck(module, cr.tensor(x, requires_grad=True))

    def test_numpy_inputs(self):
        assert isinstance(nn.ReLU()(np.array([-1.0, 2.0])), cr.Tensor)
        np.testing.assert_array_equal(nn.Identity(3, foo=1)(np.ones(2)).data, [1.0, 1.0])

    def test_flatten_shapes(self):
        x = np.zeros((2, 3, 4, 5))
        assert nn.Flatten()(x).shape == (2, 60)
        assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
        assert nn.Flatten(0, -1)(x).shape == (120,)

    def test_gelu_bad_approximate(self):
        with pytest.raises(ConfigError, match="'fast'"):
            nn.GELU("fast")


# ================================================================================================
# Dropout
# ================================================================================================


class TestDropout:
    def test_p_validated(self):
        for p in [-0.1, 1.5, "a"]:
            with pytest.raises(ConfigError, match="between 0 and 1, but got"):
                nn.Dropout(p)
        with pytest.raises(ConfigError):
            F.dropout(np.ones(3), 2.0)

    def test_eval_is_identity(self):
        d = nn.Dropout(0.5).eval()
        x = cr.tensor(np.arange(6.0), requires_grad=True)
        out = d(x)
        np.testing.assert_array_equal(out.data, x.data)
        out.sum().backward()
        np.testing.assert_array_equal(x.grad, 1.0)

    def test_scaling_and_rate(self):
        p = 0.3
        d = nn.Dropout(p, rng=np.random.default_rng(0))
        x = cr.tensor(np.full((200, 500), 2.0), requires_grad=True)
        out = d(x)
        kept = out.data != 0
        np.testing.assert_allclose(out.data[kept], 2.0 / (1 - p))
        assert kept.mean() == pytest.approx(1 - p, abs=0.005)
        assert out.data.mean() == pytest.approx(2.0, rel=0.01)  # expectation unchanged
        out.sum().backward()
        np.testing.assert_allclose(x.grad, kept / (1 - p))

    def test_extremes(self):
        x = np.ones((3, 4))
        np.testing.assert_array_equal(nn.Dropout(0.0)(x).data, x)
        np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, 0)

    def test_seed_reproducible(self):
        x = np.ones((10, 10))
        cr.manual_seed(5)
        a = nn.Dropout()(x).data
        cr.manual_seed(5)
        b = nn.Dropout()(x).data
        np.testing.assert_array_equal(a, b)
        c = nn.Dropout(rng=np.random.default_rng(1))(x).data
        d = nn.Dropout(rng=np.random.default_rng(1))(x).data
        np.testing.assert_array_equal(c, d)
        assert not np.array_equal(a, c)

    def test_dtype_kept(self):
        assert nn.Dropout()(np.ones(4, dtype=np.float32)).dtype == np.float32

    def test_numpy_input_gives_a_tensor(self):
        # as every other function does (it used to hand back an ndarray in training)
        for p in (0.5, 1.0):
            out = F.dropout(np.ones((3, 4), dtype=np.float32), p, rng=np.random.default_rng(0))
            assert isinstance(out, cr.Tensor) and out.dtype == np.float32

    def test_gradcheck_fixed_mask(self):
        x = cr.tensor(np.random.default_rng(0).normal(size=(4, 5)), requires_grad=True)
        assert gradcheck(lambda x: F.dropout(x, 0.4, rng=np.random.default_rng(3)), x)


# ================================================================================================
# BatchNorm1d
# ================================================================================================


class TestBatchNorm1d:
    @pytest.mark.parametrize("shape", [(8, 3), (5, 3, 4)])
    @pytest.mark.parametrize(
        "kw",
        [
            {},
            dict(momentum=None),
            dict(affine=False),
            dict(momentum=0.3, eps=1e-3),
            dict(bias=False),
        ],
        ids=["default", "cumulative", "no-affine", "momentum", "no-bias"],
    )
    def test_train_then_eval_matches_torch(self, shape, kw):
        torch = _torch()
        ours = nn.BatchNorm1d(3, **kw).double()
        theirs = torch.nn.BatchNorm1d(3, **kw).double()
        if ours.weight is not None:  # non-trivial affine parameters
            nn.init.uniform_(ours.weight, 0.5, 1.5, seed=0)
            if ours.bias is not None:
                nn.init.uniform_(ours.bias, -1, 1, seed=1)
        _copy_into_torch(ours, theirs)
        rng = np.random.default_rng(0)
        for step in range(4):
            x = rng.normal(2.0, 3.0, size=shape)
            if ours.weight is not None:
                ours.zero_grad(), theirs.zero_grad()
            _run_both(ours, theirs, x, seed=step)
            np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), **TOL)
            np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), **TOL)
            assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == step + 1
        ours.eval(), theirs.eval()
        if ours.weight is not None:
            ours.zero_grad(), theirs.zero_grad()
        _run_both(ours, theirs, rng.normal(size=shape))
        assert int(ours.num_batches_tracked) == 4  # eval does not count

    def test_no_running_stats_uses_batch_stats_in_eval(self):
        torch = _torch()
        ours = nn.BatchNorm1d(3, track_running_stats=False).double().eval()
        theirs = torch.nn.BatchNorm1d(3, track_running_stats=False).double().eval()
        assert ours.running_mean is None and list(ours.state_dict()) == ["weight", "bias"]
        _run_both(ours, theirs, np.random.default_rng(0).normal(size=(6, 3)))

    def test_normalizes(self):
        x = np.random.default_rng(0).normal(5.0, 2.0, size=(100, 4))
        out = nn.BatchNorm1d(4).double()(x).data
        np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(out.var(axis=0), 1, rtol=1e-4)

    def test_running_stats_formula(self):
        x = np.random.default_rng(0).normal(size=(10, 2))
        bn = nn.BatchNorm1d(2, momentum=0.2).double()
        bn(x)
        np.testing.assert_allclose(bn.running_mean, 0.2 * x.mean(axis=0))
        np.testing.assert_allclose(bn.running_var, 0.8 + 0.2 * x.var(axis=0, ddof=1))

    @pytest.mark.parametrize("shape", [(5, 3), (3, 3, 2)])
    @pytest.mark.parametrize("training", [True, False])
    def test_gradcheck(self, shape, training):
        bn = nn.BatchNorm1d(3).double()
        nn.init.uniform_(bn.weight, 0.5, 1.5, seed=0)
        nn.init.uniform_(bn.bias, -1, 1, seed=1)
        bn.running_mean[...] = [0.1, -0.2, 0.3]
        bn.running_var[...] = [0.5, 1.5, 2.0]
        x = cr.tensor(np.random.default_rng(0).normal(size=shape), requires_grad=True)
        rm, rv = bn.running_mean.copy(), bn.running_var.copy()
        assert gradcheck(
            lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training),
            x,
            bn.weight,
            bn.bias,
        )

    def test_errors(self):
        bn = nn.BatchNorm1d(3)
        with pytest.raises(ShapeError, match="more than 1 value per channel"):
            bn(np.ones((1, 3)))
        with pytest.raises(ShapeError, match="num_features=3"):
            bn(np.ones((4, 2)))
        with pytest.raises(ShapeError, match="2D or 3D"):
            bn(np.ones((4, 3, 2, 2)))
        bn.eval()(np.ones((1, 3)))  # one sample is fine in eval

    def test_numpy_input_dtype(self):
        assert nn.BatchNorm1d(2)(np.random.default_rng(0).normal(size=(4, 2))).dtype == np.float32
