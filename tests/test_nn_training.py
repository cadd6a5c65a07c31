"""chainrule.nn: whole models train as PyTorch does (moved from test_nn.py, assertions unchanged).

Every layer is checked two ways: central differences in float64 (``cr.gradcheck``, numpy only)
and, where torch is installed, against PyTorch with the same weights (forward values and all
gradients at float64, to ~1e-10). Shared helpers: ``nn_helpers.py``.
"""

import numpy as np
import pytest
from nn_helpers import MLP, TOL, _compare_grads, _copy_into_torch, _run_both, _torch  # noqa: F401

import chainrule as cr
import chainrule.nn as nn

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
    theirs = _copy_into_torch(
        ours,
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double(),
    )
    loss_o, loss_t = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    lr = 0.5
    for _ in range(3):
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
    for (name, p), (tname, tp) in zip(
        ours.named_parameters(), theirs.named_parameters(), strict=True
    ):
        assert name == tname
        np.testing.assert_allclose(
            p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-10, err_msg=name
        )


def test_mlp_with_batchnorm_and_dropout_trains():
    """A small end-to-end run: loss goes down with plain gradient descent."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    cr.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 2)
    )
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
