"""chainrule.nn: Parameter, Module (registration, traversal, modes, dtypes), state dicts, printing
and the containers (moved from test_nn.py, assertions unchanged).

Every layer is checked two ways: central differences in float64 (``cr.gradcheck``, numpy only)
and, where torch is installed, against PyTorch with the same weights (forward values and all
gradients at float64, to ~1e-10). Shared helpers: ``nn_helpers.py``.
"""

import copy
from collections import OrderedDict

import numpy as np
import pytest
from nn_helpers import MLP, TOL, _compare_grads, _copy_into_torch, _run_both, _torch  # noqa: F401

import chainrule as cr
import chainrule.nn as nn
from chainrule.errors import ChainruleError, ConfigError, ModelFileError

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


class TestModule:
    def test_named_parameters_dotted_names_in_registration_order(self):
        names = [n for n, _ in MLP().named_parameters()]
        assert names == [
            "scale",
            "hidden.weight",
            "hidden.bias",
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "layers.1.bias",
            "head.1.weight",
            "head.1.bias",
        ]

    def test_sequential_names(self):
        net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        assert [n for n, _ in net.named_parameters()] == [
            "0.weight",
            "0.bias",
            "2.weight",
            "2.bias",
        ]

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
        assert names == ["", "hidden", "layers", "layers.0", "layers.1", "head", "head.0", "head.1"]
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
            _ = m.nothing

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
            for (k, v), (k2, v2) in zip(
                net.state_dict().items(), other.state_dict().items(), strict=True
            ):
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
        assert list(sd) == [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked",
            "3.weight",
            "3.bias",
        ]
        assert all(isinstance(v, np.ndarray) for v in sd.values())
        assert int(sd["1.num_batches_tracked"]) == 1
        sd["0.weight"][0, 0] = 123.0  # a copy: the model is untouched
        assert a[0].weight.data[0, 0] != 123.0
        b = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
        res = b.load_state_dict(a.state_dict())
        assert res.missing_keys == [] and res.unexpected_keys == []
        for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
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
        with pytest.raises(
            ModelFileError, match=r"unexpected key 'extra.weight' \(shape \(4, 4\)\)"
        ):
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
        theirs = torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
        )
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
        ours = nn.Sequential(
            nn.Linear(2, 16),
            nn.ReLU(),
            nn.BatchNorm1d(16),
            nn.LeakyReLU(),
            nn.Sequential(nn.Tanh(), nn.Sigmoid()),
            nn.Softmax(dim=-1),
            nn.LogSoftmax(dim=1),
            nn.GELU(),
            nn.Flatten(),
            nn.Identity(),
            nn.Linear(16, 3, bias=False),
        )
        theirs = torch.nn.Sequential(
            torch.nn.Linear(2, 16),
            torch.nn.ReLU(),
            torch.nn.BatchNorm1d(16),
            torch.nn.LeakyReLU(),
            torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Sigmoid()),
            torch.nn.Softmax(dim=-1),
            torch.nn.LogSoftmax(dim=1),
            torch.nn.GELU(),
            torch.nn.Flatten(),
            torch.nn.Identity(),
            torch.nn.Linear(16, 3, bias=False),
        )
        assert repr(ours) == repr(theirs)

    def test_modulelist_repr_collapses_repeats_like_torch(self):
        torch = _torch()

        def build(m):
            return m.Sequential(
                m.ModuleList([m.ReLU(), m.ReLU(), m.Tanh(), m.Linear(2, 2), m.Linear(2, 2)]),
                m.ModuleList([]),
            )

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
        assert [n for n, _ in net.named_parameters()] == [
            "hidden.weight",
            "hidden.bias",
            "out.weight",
            "out.bias",
        ]
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
