"""Helpers shared by the tests of chainrule.nn (test_nn_*.py): comparing with PyTorch, a small
MLP."""

from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn

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
