"""Every unit against PyTorch (values and gradients, float64), where torch is installed."""

import numpy as np
import pytest
from unit_table import CASES, IDS

import chainrule as cr

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name,fn,torch_fn,makers", CASES, ids=IDS)
def test_unit_matches_torch(name, fn, torch_fn, makers):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    arrays = [m(rng) for m in makers]
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, ref = fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    seed = rng.normal(size=out.shape)
    out.backward(seed)
    ref.backward(torch.tensor(seed))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_softmax_of_extreme_logits_is_finite_like_torch():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    for f, tf in [(cr.softmax, torch.softmax), (cr.log_softmax, torch.log_softmax)]:
        ours = cr.tensor(z, requires_grad=True)
        theirs = torch.tensor(z, requires_grad=True)
        out, ref = f(ours, axis=-1), tf(theirs, dim=-1)
        assert np.all(np.isfinite(out.data))
        np.testing.assert_allclose(out.data, ref.detach().numpy())
        g = np.arange(6.0).reshape(2, 3)
        out.backward(g)
        ref.backward(torch.tensor(g))
        assert np.all(np.isfinite(ours.grad))
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), atol=1e-12)


def test_sigmoid_tails_match_torch():
    z = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
    np.testing.assert_allclose(
        cr.sigmoid(cr.tensor(z)).data, torch.sigmoid(torch.tensor(z)).numpy(), rtol=1e-14, atol=0
    )
