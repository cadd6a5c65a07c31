"""chainrule.nn: modules, parameters, layers, init and containers.

Every layer is checked two ways: central differences in float64 (``cr.gradcheck``, numpy only)
and, where torch is installed, against PyTorch with the same weights (forward values and all
gradients at float64, to ~1e-10).
"""

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.errors import ChainruleError, ConfigError, ModelFileError, ShapeError
from chainrule.gradcheck import gradcheck

TOL = dict(rtol=1e-10, atol=1e-12)


def _torch():
    return pytest.importorskip("torch")


def _copy_into_torch(ours, theirs):
    """Load our state dict into a torch module (same names, same shapes)."""
    torch = _torch()
    theirs.load_state_dict(OrderedDict((k, torch.tensor(v)) for k, v in ours.state_dict().items()))
    return theirs


def _compare_grads(ours, theirs):
    """Every parameter gradient of our module equals torch's (matched by name)."""
    tp = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(tp), (names, list(tp))
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), **TOL, err_msg=name)


def _run_both(ours, theirs, x, seed=0):
    """Forward both on x (float64), backward a random upstream gradient; compare all of it."""
    torch = _torch()
    xo = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out, ref = ours(xo), theirs(xt)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL)
    g = np.random.default_rng(seed).normal(size=out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), **TOL)
    _compare_grads(ours, theirs)
    return out, ref


# ================================================================================================
# Parameter
# ================================================================================================

class TestParameter:
    def test_defaults(self):
        p = nn.Parameter([1.0, 2.0])
        assert isinstance(p, cr.Tensor)
        assert p.requires_grad and p.dtype == np.float32 and p.is_leaf

    def test_keeps_float_dtype_and_shares_memory(self):
        a = np.ones((2, 3))
        p = nn.Parameter(a)
        assert p.dtype == np.float64 and p.data is a

    def test_integer_array_becomes_float32(self):
        p = nn.Parameter(np.arange(3))
        assert p.dtype == np.float32 and p.requires_grad

    def test_from_tensor_and_no_grad(self):
        p = nn.Parameter(cr.tensor([1.0, 2.0]), requires_grad=False)
        assert not p.requires_grad

    def test_repr(self):
        assert repr(nn.Parameter([1.0, 2.0])) == "Parameter([1. 2.])"
        assert "dtype=float64" in repr(nn.Parameter(np.zeros(2)))
        assert "requires_grad=False" in repr(nn.Parameter([1.0], requires_grad=False))

    def test_slots_and_deepcopy(self):
        p = nn.Parameter(np.arange(3.0))
        with pytest.raises(AttributeError):
            p.foo = 1
        q = copy.deepcopy(p)
        assert isinstance(q, nn.Parameter) and q.data is not p.data
        np.testing.assert_array_equal(q.data, p.data)

    def test_gradient_flows_like_a_tensor(self):
        p = nn.Parameter(np.array([1.0, 2.0]))
        (p * p).sum().backward()
        np.testing.assert_allclose(p.grad, [2.0, 4.0])


# ================================================================================================
# Module: registration, traversal, modes, dtypes
# ================================================================================================

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 4)
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.register_buffer("steps", np.zeros(1))
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(4, 3))

    def forward(self, x):
        h = cr.relu(self.hidden(x))
        for layer in self.layers:
            h = layer(h)
        return self.head(h * self.scale)


class TestModule:
    def test_named_parameters_dotted_names_in_registration_order(self):
        names = [n for n, _ in MLP().named_parameters()]
        assert names == ["scale", "hidden.weight", "hidden.bias", "layers.0.weight",
                         "layers.0.bias", "layers.1.weight", "layers.1.bias", "head.1.weight",
                         "head.1.bias"]

    def test_sequential_names(self):
        net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                          "2.bias"]

    def test_names_match_torch(self):
        torch = _torch()

        class TorchMLP(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = torch.nn.Linear(2, 4)
                self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)])
                self.scale = torch.nn.Parameter(torch.ones(1))
                self.register_buffer("steps", torch.zeros(1))
                self.head = torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(4, 3))

        ours, theirs = MLP(), TorchMLP()
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]

    def test_children_modules_named_modules(self):
        m = MLP()
        assert [type(c).__name__ for c in m.children()] == ["Linear", "ModuleList", "Sequential"]
        names = [n for n, _ in m.named_modules()]
        assert names == ["", "hidden", "layers", "layers.0", "layers.1", "head", "head.0",
                         "head.1"]
        assert len(list(m.modules())) == 8

    def test_attribute_access_and_parameters(self):
        m = MLP()
        assert isinstance(m.hidden, nn.Linear)
        assert m.hidden.weight.shape == (4, 2)
        assert len(list(m.parameters())) == 9
        assert m.num_parameters() == 1 + 12 + 20 + 20 + 15
        np.testing.assert_array_equal(m.steps, [0.0])

    def test_shared_parameter_listed_once(self):
        lin = nn.Linear(3, 3)
        net = nn.Sequential(lin, nn.ReLU(), lin)
        assert len(list(net.parameters())) == 2
        assert net.num_parameters() == 12

    def test_reassign_and_delete(self):
        m = nn.Linear(2, 2)
        m.bias = None
        assert [n for n, _ in m.named_parameters()] == ["weight"]
        with pytest.raises(TypeError, match="parameter 'weight'"):
            m.weight = np.zeros((2, 2))
        m.extra = nn.Linear(2, 2)
        assert "extra" in dict(m.named_children())
        del m.extra
        assert "extra" not in dict(m.named_children())
        with pytest.raises(AttributeError, match="no attribute 'nothing'"):
            m.nothing

    def test_forgetting_super_init_is_a_clear_error(self):
        class Bad(nn.Module):
            def __init__(self):
                self.lin = nn.Linear(2, 2)

        with pytest.raises(ChainruleError, match=r"super\(\).__init__\(\)"):
            Bad()

    def test_forward_missing(self):
        with pytest.raises(NotImplementedError, match="forward"):
            nn.Module()(1)

    def test_zero_grad_sets_none(self):
        net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        net(np.ones((4, 2))).sum().backward()
        assert all(p.grad is not None for p in net.parameters())
        net.zero_grad()
        assert all(p.grad is None for p in net.parameters())

    def test_train_eval(self):
        m = MLP()
        assert m.training and all(x.training for x in m.modules())
        assert m.eval() is m
        assert not any(x.training for x in m.modules())
        m.train()
        assert all(x.training for x in m.modules())
        with pytest.raises(ConfigError):
            m.train("no")

    def test_to_double_float(self):
        net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
        net(np.ones((4, 2))).sum().backward()
        w = net[0].weight
        assert net.double() is net
        assert net[0].weight is w and w.dtype == np.float64 and w.grad.dtype == np.float64
        assert net[1].running_mean.dtype == np.float64
        assert net[1].num_batches_tracked.dtype == np.int64
        assert net(np.ones((4, 2))).dtype == np.float64
        net.float()
        assert w.dtype == np.float32 and net[1].running_var.dtype == np.float32
        with pytest.raises(ConfigError):
            net.to(np.int32)

    def test_apply_and_requires_grad_(self):
        seen = []
        net = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU()))
        assert net.apply(lambda m: seen.append(type(m).__name__)) is net
        assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]
        net.requires_grad_(False)
        assert net.num_parameters(trainable_only=True) == 0
        assert net.num_parameters() == 9

    def test_apply_with_init(self):
        def init_fn(m):
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.weight)
                nn.init.constant_(m.bias, 0.5)

        net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).apply(init_fn)
        np.testing.assert_array_equal(net(np.ones((1, 2))).data, [[0.5]])

    def test_deepcopy_and_pickle(self):
        import pickle
        net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
        for other in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            assert isinstance(other[0].weight, nn.Parameter)
            assert other[0].weight is not net[0].weight
            for (k, v), (k2, v2) in zip(net.state_dict().items(), other.state_dict().items()):
                assert k == k2
                np.testing.assert_array_equal(v, v2)

    def test_forward_hook(self):
        lin = nn.Linear(2, 3)
        shapes = []
        handle = lin.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
        lin(np.ones((5, 2)))
        handle.remove()
        lin(np.ones((5, 2)))
        assert shapes == [(5, 3)]


# ================================================================================================
# state_dict / load_state_dict
# ================================================================================================

class TestStateDict:
    def test_round_trip(self):
        cr.manual_seed(1)
        a = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
        a(np.random.default_rng(0).normal(size=(8, 2)))  # move the running statistics
        sd = a.state_dict()
        assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                            "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"]
        assert all(isinstance(v, np.ndarray) for v in sd.values())
        assert int(sd["1.num_batches_tracked"]) == 1
        sd["0.weight"][0, 0] = 123.0  # a copy: the model is untouched
        assert a[0].weight.data[0, 0] != 123.0
        b = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
        res = b.load_state_dict(a.state_dict())
        assert res.missing_keys == [] and res.unexpected_keys == []
        for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
            assert k == k2
            np.testing.assert_array_equal(v, v2)
        x = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
        a.eval(), b.eval()
        np.testing.assert_array_equal(a(x).data, b(x).data)

    def test_load_keeps_parameter_objects_and_dtypes(self):
        a = nn.Linear(2, 2)
        w = a.weight
        a.load_state_dict({"weight": np.ones((2, 2)), "bias": [1, 2]})
        assert a.weight is w and w.dtype == np.float32
        np.testing.assert_array_equal(a.bias.data, [1.0, 2.0])

    def test_missing_key(self):
        a = nn.Sequential(nn.Linear(2, 3))
        with pytest.raises(ModelFileError, match=r"missing key '0.bias' \(model shape \(3,\)\)"):
            a.load_state_dict({"0.weight": np.zeros((3, 2))})

    def test_unexpected_key(self):
        a = nn.Linear(2, 3)
        sd = a.state_dict()
        sd["extra.weight"] = np.zeros((4, 4))
        with pytest.raises(ModelFileError, match=r"unexpected key 'extra.weight' \(shape \(4, 4\)\)"):
            a.load_state_dict(sd)

    def test_shape_mismatch_names_key_and_both_shapes(self):
        a = nn.Sequential(nn.Linear(2, 3))
        sd = nn.Sequential(nn.Linear(5, 3)).state_dict()
        with pytest.raises(ModelFileError) as err:
            a.load_state_dict(sd)
        msg = str(err.value)
        assert "'0.weight'" in msg and "(3, 5)" in msg and "(3, 2)" in msg
        assert "\n" not in msg

    def test_failed_load_changes_nothing(self):
        a = nn.Linear(2, 3)
        before = a.state_dict()
        bad = {"weight": np.zeros((3, 2)), "bias": np.zeros(4)}
        with pytest.raises(ModelFileError):
            a.load_state_dict(bad)
        np.testing.assert_array_equal(a.weight.data, before["weight"])

    def test_non_strict(self):
        a = nn.Linear(2, 3)
        sd = {"weight": np.zeros((3, 2)), "other": np.ones(1)}
        res = a.load_state_dict(sd, strict=False)
        assert res.missing_keys == ["bias"] and res.unexpected_keys == ["other"]
        np.testing.assert_array_equal(a.weight.data, 0)
        with pytest.raises(ModelFileError, match="size mismatch"):
            a.load_state_dict({"weight": np.zeros((2, 2))}, strict=False)

    def test_torch_state_dicts_load_both_ways(self):
        torch = _torch()
        ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
        theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                     torch.nn.Tanh(), torch.nn.Linear(4, 2))
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(theirs.state_dict())  # torch tensors are array-likes
        np.testing.assert_array_equal(ours[3].bias.data, theirs[3].bias.detach().numpy())
        _copy_into_torch(ours, theirs)


# ================================================================================================
# printing: repr and summary
# ================================================================================================

class TestPrinting:
    def test_repr_matches_torch(self):
        torch = _torch()
        ours = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.LeakyReLU(),
                             nn.Sequential(nn.Tanh(), nn.Sigmoid()), nn.Softmax(dim=-1),
                             nn.LogSoftmax(dim=1), nn.GELU(), nn.Flatten(), nn.Identity(),
                             nn.Linear(16, 3, bias=False))
        theirs = torch.nn.Sequential(
            torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.BatchNorm1d(16),
            torch.nn.LeakyReLU(), torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Sigmoid()),
            torch.nn.Softmax(dim=-1), torch.nn.LogSoftmax(dim=1), torch.nn.GELU(),
            torch.nn.Flatten(), torch.nn.Identity(), torch.nn.Linear(16, 3, bias=False))
        assert repr(ours) == repr(theirs)

    def test_modulelist_repr_collapses_repeats_like_torch(self):
        torch = _torch()

        def build(m):
            return m.Sequential(m.ModuleList([m.ReLU(), m.ReLU(), m.Tanh(), m.Linear(2, 2),
                                              m.Linear(2, 2)]), m.ModuleList([]))
        assert repr(build(nn)) == repr(build(torch.nn))

    def test_repr_nested_custom(self):
        text = repr(MLP())
        assert text.startswith("MLP(\n  (hidden): Linear(in_features=2, out_features=4, bias=True)")
        assert "  (layers): ModuleList(\n    (0-1): 2 x Linear(in_features=4" in text
        assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"

    def test_summary_inferred(self):
        net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
        s = net.summary()
        lines = s.splitlines()
        assert lines[0] == 'Model: "Sequential"'
        assert any(line.split() == ["0", "(Linear)", "(None,", "16)", "48"] for line in lines)
        assert any(line.split() == ["1", "(ReLU)", "(None,", "16)", "0"] for line in lines)
        assert any(line.split() == ["3", "(Linear)", "(None,", "3)", "51"] for line in lines)
        assert "Total params: 99" in s and "Trainable params: 99" in s
        assert "Non-trainable params: 0" in s

    def test_summary_with_input_shape_runs_a_zero_batch(self):
        net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(4), nn.Flatten(), nn.Linear(20, 1000))
        net.train()
        s = net.summary(input_shape=(4, 3))
        assert "(None, 4, 5)" in s and "(None, 20)" in s and "(None, 1000)" in s
        assert "21,000" in s  # thousands separators, as Keras
        assert net.training and net[1].training  # mode restored
        assert int(net[1].num_batches_tracked) == 0  # ran in eval mode: stats untouched
        assert "(None, 1000)" not in nn.Sequential(nn.Linear(3, 5), nn.Flatten()).summary()

    def test_summary_non_trainable_and_custom(self):
        m = MLP()
        m.hidden.requires_grad_(False)
        s = m.summary()
        assert "Non-trainable params: 12" in s
        assert "hidden (Linear)" in s and "head.1 (Linear)" in s and "layers.0 (Linear)" in s
        assert "MLP" in s  # the module's own parameter (scale) has a row
        assert "(None, 4)" in m.summary(2)


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
                torch.nn.init.calculate_gain("leaky_relu", a))
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

    @pytest.mark.parametrize("module", [nn.ReLU(), nn.LeakyReLU(0.1), nn.Tanh(), nn.Sigmoid(),
                                        nn.Softmax(), nn.LogSoftmax(dim=0), nn.GELU(),
                                        nn.GELU("tanh"), nn.Identity(), nn.Flatten()],
                             ids=lambda m: repr(m))
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

    def test_gradcheck_fixed_mask(self):
        x = cr.tensor(np.random.default_rng(0).normal(size=(4, 5)), requires_grad=True)
        assert gradcheck(lambda x: F.dropout(x, 0.4, rng=np.random.default_rng(3)), x)


# ================================================================================================
# BatchNorm1d
# ================================================================================================

class TestBatchNorm1d:
    @pytest.mark.parametrize("shape", [(8, 3), (5, 3, 4)])
    @pytest.mark.parametrize("kw", [{}, dict(momentum=None), dict(affine=False),
                                    dict(momentum=0.3, eps=1e-3), dict(bias=False)],
                             ids=["default", "cumulative", "no-affine", "momentum", "no-bias"])
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
        assert gradcheck(lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b,
                                                      training=training), x, bn.weight, bn.bias)

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


# ================================================================================================
# containers
# ================================================================================================

class TestSequential:
    def test_indexing_len_iteration(self):
        a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
        net = nn.Sequential(a, b, c)
        assert len(net) == 3 and net[0] is a and net[-1] is c
        assert list(net) == [a, b, c]
        sub = net[1:]
        assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
        assert [n for n, _ in sub.named_parameters()] == ["2.weight", "2.bias"]  # as PyTorch
        with pytest.raises(IndexError, match="out of range"):
            net[3]

    def test_forward_and_slices_compose(self):
        net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
        np.testing.assert_allclose(net(x).data, net[2:](net[:2](x)).data)

    def test_append_insert_delete(self):
        net = nn.Sequential(nn.Linear(2, 3))
        assert net.append(nn.ReLU()) is net
        net.append(nn.Linear(3, 1))
        assert [n for n, _ in net.named_parameters()][-1] == "2.bias"
        del net[1]
        assert [type(m).__name__ for m in net] == ["Linear", "Linear"]
        assert list(dict(net.named_children())) == ["0", "1"]
        net.insert(1, nn.Tanh())
        assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Linear"]
        net[1] = nn.ReLU()
        assert isinstance(net[1], nn.ReLU)

    def test_ordered_dict(self):
        net = nn.Sequential(OrderedDict(hidden=nn.Linear(2, 3), act=nn.ReLU(), out=nn.Linear(3, 1)))
        assert [n for n, _ in net.named_parameters()] == ["hidden.weight", "hidden.bias",
                                                          "out.weight", "out.bias"]
        assert net[2] is net.out

    def test_not_a_module(self):
        with pytest.raises(TypeError, match=r"class ReLU, not a module: write ReLU\(\)"):
            nn.Sequential(nn.Linear(2, 2), nn.ReLU)
        with pytest.raises(TypeError, match="function relu"):
            nn.Sequential(nn.Linear(2, 2), cr.relu)


class TestModuleList:
    def test_list_behaviour(self):
        ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        assert len(ml) == 3
        ml.append(nn.ReLU())
        ml.extend([nn.Tanh()])
        assert [type(m).__name__ for m in ml] == ["Linear"] * 3 + ["ReLU", "Tanh"]
        assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
        assert ml[-1] is list(ml)[-1]
        del ml[0]
        assert list(dict(ml.named_children())) == ["0", "1", "2", "3"]
        assert len(list(ml.parameters())) == 4
        with pytest.raises(NotImplementedError, match="iterate"):
            ml(1)
        with pytest.raises(TypeError):
            ml.append(3)


# ================================================================================================
# a whole model: the same training trajectory as PyTorch
# ================================================================================================

def test_three_sgd_steps_follow_torch():
    torch = _torch()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 4))
    y = rng.integers(0, 3, size=16)
    cr.manual_seed(0)
    ours = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    theirs = _copy_into_torch(ours, torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double())
    loss_o, loss_t = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    lr = 0.5
    for step in range(3):
        ours.zero_grad()
        theirs.zero_grad()
        lo = loss_o(ours(X), y)
        lt = loss_t(theirs(torch.tensor(X)), torch.tensor(y))
        assert lo.item() == pytest.approx(lt.item(), rel=1e-12)
        lo.backward()
        lt.backward()
        with cr.no_grad():
            for p in ours.parameters():
                p.data -= lr * p.grad
        with torch.no_grad():
            for p in theirs.parameters():
                p.data -= lr * p.grad
    for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-10,
                                   err_msg=name)


def test_mlp_with_batchnorm_and_dropout_trains():
    """A small end-to-end run: loss goes down with plain gradient descent."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    cr.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1),
                        nn.Linear(32, 2))
    loss_fn = nn.CrossEntropyLoss()
    first = None
    for _ in range(100):
        net.zero_grad()
        loss = loss_fn(net(X), y)
        loss.backward()
        first = first if first is not None else loss.item()
        for p in net.parameters():
            p.data -= 0.1 * p.grad
    net.eval()
    acc = (net(X).data.argmax(axis=1) == y).mean()
    assert loss.item() < 0.5 * first and acc > 0.9
