"""chainrule.nn losses: values and gradients against PyTorch (float64) for every reduction and
option, central differences (numpy only), and the errors users hit."""

from functools import partial

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.errors import ConfigError, DataError, ShapeError
from chainrule.gradcheck import gradcheck

TOL = dict(rtol=1e-10, atol=1e-12)
REDUCTIONS = ["mean", "sum", "none"]


def _torch():
    return pytest.importorskip("torch")


def _tt(a):
    torch = _torch()
    return None if a is None else torch.tensor(a)


def _compare(ours_fn, torch_fn, x, target, torch_target=None, target_grad=False):
    """Loss value and d(loss)/d(input) (and d/d(target) when asked) agree with torch."""
    torch = _torch()
    xo = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    if target_grad:
        to = cr.tensor(target, requires_grad=True)
        tt = torch.tensor(target, requires_grad=True)
    else:
        to, tt = target, (torch.tensor(target) if torch_target is None else torch_target)
    out, ref = ours_fn(xo, to), torch_fn(xt, tt)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL)
    g = np.random.default_rng(0).normal(size=out.shape) if out.ndim else np.array(1.7)
    out.backward(g)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), **TOL)
    if target_grad:
        np.testing.assert_allclose(to.grad, tt.grad.numpy(), **TOL)
    return out


RNG = np.random.default_rng(42)
Z = RNG.normal(size=(6, 4)) * 2  # logits, 6 samples, 4 classes
Y = np.array([0, 3, 1, 1, 2, 3])  # labels
Z3 = RNG.normal(size=(3, 4, 5))  # (N, C, d)
Y3 = RNG.integers(0, 4, size=(3, 5))
W = np.array([0.5, 2.0, 1.0, 0.25])  # class weights
P = RNG.uniform(0.05, 0.95, size=(5, 3))  # probabilities
T = RNG.uniform(0, 1, size=(5, 3))  # soft binary targets


# ================================================================================================
# MSELoss
# ================================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_matches_torch(reduction):
    torch = _torch()
    x, t = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    _compare(nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), x, t)
    _compare(
        nn.MSELoss(reduction=reduction),
        torch.nn.MSELoss(reduction=reduction),
        x,
        t,
        target_grad=True,
    )


def test_mse_formula_and_gradcheck():
    x, t = np.array([1.0, 2.0, 4.0]), np.array([0.0, 2.0, 1.0])
    assert nn.MSELoss()(x, t).item() == pytest.approx(10 / 3)
    assert nn.MSELoss(reduction="sum")(cr.tensor(x), cr.tensor(t)).item() == pytest.approx(10)
    for r in REDUCTIONS:
        assert gradcheck(
            partial(F.mse_loss, target=t, reduction=r), cr.tensor(x, requires_grad=True)
        )


# ================================================================================================
# BCELoss
# ================================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_matches_torch(reduction, weighted):
    torch = _torch()
    w = RNG.uniform(0.5, 2, size=(3,)) if weighted else None
    _compare(
        nn.BCELoss(weight=w, reduction=reduction),
        torch.nn.BCELoss(weight=_tt(w), reduction=reduction),
        P,
        T,
    )


def test_bce_extremes_are_finite_like_torch():
    """p = 0 or 1 gives log 0; like PyTorch each log is clamped at −100, so the loss is finite."""
    torch = _torch()
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-300, 0.5])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    for r in REDUCTIONS:
        out = _compare(nn.BCELoss(reduction=r), torch.nn.BCELoss(reduction=r), p, y)
        assert np.all(np.isfinite(out.data))
    assert nn.BCELoss(reduction="sum")(p[:4], y[:4]).item() == pytest.approx(200.0)


def test_bce_integer_targets_and_float32():
    p = np.array([0.9, 0.2, 0.6], dtype=np.float32)
    out = nn.BCELoss()(cr.tensor(p, requires_grad=True), np.array([1, 0, 1]))
    assert out.dtype == np.float32
    assert out.item() == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6])), rel=1e-6)


def test_bce_is_the_logistic_nll():
    z = RNG.normal(size=(7,))
    y = (RNG.uniform(size=7) > 0.5).astype(float)
    a = nn.BCELoss()(cr.sigmoid(cr.tensor(z)), y).item()
    b = nn.BCEWithLogitsLoss()(z, y).item()
    assert a == pytest.approx(b, rel=1e-12)


def test_bce_rejects_non_probabilities():
    with pytest.raises(DataError, match=r"probabilities in \[0, 1\], got 1.5.*BCEWithLogitsLoss"):
        nn.BCELoss()(np.array([0.5, 1.5]), np.array([0.0, 1.0]))


# ================================================================================================
# BCEWithLogitsLoss
# ================================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "pos_weight,weight",
    [
        (None, None),
        ([1.0, 3.0, 0.5], None),
        (None, [2.0, 1.0, 0.5]),
        ([2.0, 0.5, 1.5], [[0.5], [1], [2], [1], [3]]),
    ],
)
def test_bce_with_logits_matches_torch(reduction, pos_weight, weight):
    torch = _torch()
    pw = None if pos_weight is None else np.array(pos_weight)
    w = None if weight is None else np.array(weight)
    z = RNG.normal(size=(5, 3)) * 3
    _compare(
        nn.BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw),
        torch.nn.BCEWithLogitsLoss(weight=_tt(w), reduction=reduction, pos_weight=_tt(pw)),
        z,
        T,
    )


def test_bce_with_logits_extreme_logits():
    torch = _torch()
    z = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    out = _compare(
        nn.BCEWithLogitsLoss(reduction="none"), torch.nn.BCEWithLogitsLoss(reduction="none"), z, y
    )
    assert np.all(np.isfinite(out.data))


# ================================================================================================
# CrossEntropyLoss
# ================================================================================================

CE_OPTIONS = [
    dict(),
    dict(weight=W),
    dict(ignore_index=1),
    dict(label_smoothing=0.1),
    dict(weight=W, ignore_index=3),
    dict(weight=W, label_smoothing=0.2),
    dict(weight=W, ignore_index=1, label_smoothing=0.3),
]
CE_IDS = ["plain", "weight", "ignore", "smoothing", "weight+ignore", "weight+smoothing", "all"]


def _ce_pair(reduction, kw):
    torch = _torch()
    tkw = dict(kw)
    if "weight" in tkw:
        tkw["weight"] = torch.tensor(tkw["weight"])
    return nn.CrossEntropyLoss(reduction=reduction, **kw), torch.nn.CrossEntropyLoss(
        reduction=reduction, **tkw
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", CE_OPTIONS, ids=CE_IDS)
def test_cross_entropy_labels_match_torch(reduction, kw):
    ours, theirs = _ce_pair(reduction, kw)
    _compare(ours, theirs, Z, Y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", CE_OPTIONS, ids=CE_IDS)
def test_cross_entropy_spatial_matches_torch(reduction, kw):
    ours, theirs = _ce_pair(reduction, kw)
    _compare(ours, theirs, Z3, Y3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "kw",
    [dict(), dict(weight=W), dict(label_smoothing=0.15), dict(weight=W, label_smoothing=0.15)],
    ids=["plain", "weight", "smoothing", "weight+smoothing"],
)
def test_cross_entropy_probability_targets_match_torch(reduction, kw):
    ours, theirs = _ce_pair(reduction, kw)
    t = RNG.dirichlet(np.ones(4), size=6)
    _compare(ours, theirs, Z, t)
    t3 = RNG.dirichlet(np.ones(4), size=(3, 5)).transpose(0, 2, 1)
    _compare(ours, theirs, Z3, np.ascontiguousarray(t3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_one_sample(reduction):
    torch = _torch()
    _compare(
        nn.CrossEntropyLoss(reduction=reduction),
        torch.nn.CrossEntropyLoss(reduction=reduction),
        Z[0],
        np.array(2),
    )


def test_cross_entropy_everything_ignored_is_nan_like_torch():
    """0/0: the loss is nan, and the gradients are 0 (not nan), as in PyTorch."""
    torch = _torch()
    for loss, tloss in [
        (nn.CrossEntropyLoss, torch.nn.CrossEntropyLoss),
        (nn.NLLLoss, torch.nn.NLLLoss),
    ]:
        for kw in [dict(ignore_index=0), dict(ignore_index=0, weight=W)]:
            tkw = {k: (_tt(v) if k == "weight" else v) for k, v in kw.items()}
            z = cr.tensor(Z[:2], requires_grad=True)
            zt = torch.tensor(Z[:2], requires_grad=True)
            out, ref = loss(**kw)(z, np.array([0, 0])), tloss(**tkw)(zt, torch.tensor([0, 0]))
            assert np.isnan(out.item()) and np.isnan(ref.item())
            out.backward()
            ref.backward()
            np.testing.assert_array_equal(z.grad, zt.grad.numpy())
            assert np.all(z.grad == 0)


def test_cross_entropy_formula_and_targets():
    z = np.array([[2.0, 1.0, 0.1]])
    expected = -np.log(np.exp(2.0) / np.exp(z).sum())
    assert nn.CrossEntropyLoss()(z, np.array([0])).item() == pytest.approx(expected)
    # labels as a tensor, as floats holding whole numbers, or as a list
    assert nn.CrossEntropyLoss()(z, cr.tensor(np.array([0]))).item() == pytest.approx(expected)
    assert nn.CrossEntropyLoss()(z, np.array([0.0])).item() == pytest.approx(expected)
    assert nn.CrossEntropyLoss()(z, [0]).item() == pytest.approx(expected)
    # one-hot float targets = labels
    assert nn.CrossEntropyLoss()(z, np.array([[1.0, 0.0, 0.0]])).item() == pytest.approx(expected)


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    z = cr.tensor(Z, requires_grad=True)
    nn.CrossEntropyLoss(reduction="sum")(z, Y).backward()
    p = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(z.grad, p - np.eye(4)[Y], atol=1e-12)


@pytest.mark.parametrize("kw", CE_OPTIONS, ids=CE_IDS)
def test_cross_entropy_gradcheck(kw):
    for r in REDUCTIONS:
        assert gradcheck(
            partial(F.cross_entropy, target=Y3, reduction=r, **kw),
            cr.tensor(Z3, requires_grad=True),
        )
    t = RNG.dirichlet(np.ones(4), size=6)
    kw = {k: v for k, v in kw.items() if k != "ignore_index"}
    assert gradcheck(lambda z: F.cross_entropy(z, t, **kw), cr.tensor(Z, requires_grad=True))


def test_cross_entropy_label_out_of_range():
    with pytest.raises(
        DataError, match=r"label 4 is out of range for 4 classes \(labels must be 0..3\)"
    ):
        nn.CrossEntropyLoss()(Z, np.array([0, 1, 4, 0, 1, 2]))
    with pytest.raises(DataError, match="label -1 is out of range"):
        nn.CrossEntropyLoss()(Z, np.array([0, 1, -1, 0, 1, 2]))
    with pytest.raises(DataError, match="whole numbers, got 0.5"):
        nn.CrossEntropyLoss()(Z, np.array([0, 1, 0.5, 0, 1, 2]))
    # an ignored label may be anything
    nn.CrossEntropyLoss(ignore_index=-1)(Z, np.array([0, 1, -1, 0, 1, 2]))


def test_cross_entropy_shape_errors():
    with pytest.raises(
        ShapeError,
        match=r"CrossEntropyLoss: target shape \(6, 1\) does not fit "
        r"input shape \(6, 4\).*\(6,\)",
    ):
        nn.CrossEntropyLoss()(Z, Y.reshape(-1, 1))
    with pytest.raises(ShapeError, match=r"cross_entropy: target shape \(5,\)"):
        F.cross_entropy(Z, Y[:5])
    with pytest.raises(ShapeError, match=r"weight must have one entry per class, shape \(4,\)"):
        nn.CrossEntropyLoss(weight=np.ones(3))(Z, Y)


def test_cross_entropy_bad_options():
    with pytest.raises(ConfigError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        nn.CrossEntropyLoss(label_smoothing=1.5)


# ================================================================================================
# NLLLoss
# ================================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "kw",
    [dict(), dict(weight=W), dict(ignore_index=3), dict(weight=W, ignore_index=1)],
    ids=["plain", "weight", "ignore", "weight+ignore"],
)
def test_nll_matches_torch(reduction, kw):
    torch = _torch()
    tkw = {k: (torch.tensor(v) if k == "weight" else v) for k, v in kw.items()}
    ours, theirs = (
        nn.NLLLoss(reduction=reduction, **kw),
        torch.nn.NLLLoss(reduction=reduction, **tkw),
    )
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    _compare(ours, theirs, logp, Y)
    _compare(ours, theirs, Z3, Y3)  # any values, (N, C, d)
    _compare(ours, theirs, logp[0], np.array(1))


def test_nll_after_log_softmax_equals_cross_entropy():
    a = nn.NLLLoss(weight=W)(nn.LogSoftmax(dim=1)(Z), Y).item()
    b = nn.CrossEntropyLoss(weight=W)(Z, Y).item()
    assert a == pytest.approx(b, rel=1e-12)


def test_nll_minus_infinity_elsewhere_is_fine():
    """-inf log-probabilities of classes that are not the target do not poison the loss."""
    logp = np.array([[0.0, -np.inf], [-np.inf, 0.0]])
    x = cr.tensor(logp, requires_grad=True)
    out = nn.NLLLoss()(x, np.array([0, 1]))
    out.backward()
    assert out.item() == 0.0
    np.testing.assert_array_equal(x.grad, [[-0.5, 0.0], [0.0, -0.5]])


def test_nll_gradcheck_and_errors():
    for r in REDUCTIONS:
        assert gradcheck(
            partial(F.nll_loss, target=Y3, weight=W, ignore_index=2, reduction=r),
            cr.tensor(Z3, requires_grad=True),
        )
    with pytest.raises(DataError, match="NLLLoss: label 7 is out of range for 4 classes"):
        nn.NLLLoss()(Z, np.array([0, 1, 7, 0, 1, 2]))
    with pytest.raises(ShapeError, match="NLLLoss: target shape"):
        nn.NLLLoss()(Z, np.zeros((6, 4)))


# ================================================================================================
# HingeLoss (not in PyTorch: checked against its formula)
# ================================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_formula(reduction):
    s = np.array([2.0, 0.3, -0.5, -2.0, 0.9])
    y = np.array([1, 1, 1, -1, -1])
    per = np.maximum(0, 1 - y * s)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    x = cr.tensor(s, requires_grad=True)
    out = nn.HingeLoss(reduction=reduction)(x, y)
    np.testing.assert_allclose(out.data, expected)
    out.backward(np.ones(out.shape))
    scale = {"mean": 1 / 5, "sum": 1.0, "none": 1.0}[reduction]
    np.testing.assert_allclose(x.grad, np.where(1 - y * s > 0, -y, 0) * scale)


def test_hinge_zero_one_labels_and_column_shapes():
    s = np.array([[2.0], [0.3], [-0.5], [-2.0]])
    a = nn.HingeLoss()(s, np.array([1, 1, 0, 0])).item()
    b = nn.HingeLoss()(s, np.array([[1], [1], [-1], [-1]])).item()
    c = nn.HingeLoss()(s[:, 0], np.array([1.0, 1.0, -1.0, -1.0])).item()
    assert a == b == c == pytest.approx(np.maximum(0, 1 - np.array([2, 0.3, 0.5, 2])).mean())
    assert nn.HingeLoss(reduction="none")(s, np.array([1, 1, 0, 0])).shape == (4, 1)


def test_hinge_gradcheck_and_errors():
    s = np.array([1.7, 0.3, -0.5, -2.0, 0.6])  # away from the kink at y·s = 1
    y = np.array([1, 0, 1, 0, 0])
    for r in REDUCTIONS:
        assert gradcheck(
            partial(F.hinge_loss, target=y, reduction=r), cr.tensor(s, requires_grad=True)
        )
    with pytest.raises(DataError, match="labels must be -1/\\+1 \\(or 0/1\\), got 2"):
        nn.HingeLoss()(s, np.array([0, 1, 2, 1, 0]))
    with pytest.raises(ShapeError, match=r"HingeLoss: input must have shape \(N,\) or \(N, 1\)"):
        nn.HingeLoss()(np.zeros((5, 2)), y)
    with pytest.raises(ShapeError, match=r"HingeLoss: input shape \(5,\) and target shape \(4,\)"):
        nn.HingeLoss()(s, y[:4])


# ================================================================================================
# shared behaviour: reductions, shapes, functional = module, numpy/tensor inputs, repr
# ================================================================================================

LOSSES = [
    nn.MSELoss,
    nn.BCELoss,
    nn.BCEWithLogitsLoss,
    nn.CrossEntropyLoss,
    nn.NLLLoss,
    nn.HingeLoss,
]


@pytest.mark.parametrize("cls", LOSSES, ids=lambda c: c.__name__)
def test_invalid_reduction_echoes_value(cls):
    with pytest.raises(
        ConfigError, match=f"{cls.__name__}: reduction must be 'mean', 'sum' or 'none', got 'avg'"
    ):
        cls(reduction="avg")


def test_functional_invalid_reduction():
    with pytest.raises(ConfigError, match="mse_loss: reduction .* got 'average'"):
        F.mse_loss(np.ones(2), np.ones(2), reduction="average")


@pytest.mark.parametrize(
    "cls", [nn.MSELoss, nn.BCELoss, nn.BCEWithLogitsLoss], ids=lambda c: c.__name__
)
def test_elementwise_shape_mismatch_names_loss_and_shapes(cls):
    with pytest.raises(
        ShapeError,
        match=rf"{cls.__name__}: input shape \(5, 1\) and target "
        rf"shape \(5,\) must be equal",
    ):
        cls()(np.full((5, 1), 0.5), np.ones(5))


def test_functional_equals_module():
    pairs = [
        (nn.MSELoss(reduction="sum"), lambda x, t: F.mse_loss(x, t, reduction="sum"), P, T),
        (nn.BCELoss(), F.binary_cross_entropy, P, T),
        (
            nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 3.0]),
            lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=[1.0, 2.0, 3.0]),
            P,
            T,
        ),
        (
            nn.CrossEntropyLoss(weight=W, label_smoothing=0.1),
            lambda x, t: F.cross_entropy(x, t, weight=W, label_smoothing=0.1),
            Z,
            Y,
        ),
        (nn.NLLLoss(ignore_index=1), lambda x, t: F.nll_loss(x, t, ignore_index=1), Z, Y),
        (nn.HingeLoss(), F.hinge_loss, Z[:, 0], Y > 1),
    ]
    for module, fn, x, t in pairs:
        assert module(x, t).item() == fn(cr.tensor(x), cr.tensor(t)).item()


def test_losses_keep_float32():
    z = cr.tensor(Z.astype(np.float32), requires_grad=True)
    for loss in [nn.CrossEntropyLoss(weight=W), nn.NLLLoss(weight=W)]:
        out = loss(z, Y)
        assert out.dtype == np.float32
        out.backward()
        assert z.grad.dtype == np.float32
    assert nn.MSELoss()(z, Z).dtype == np.float32


def test_weights_are_buffers_like_torch():
    loss = nn.CrossEntropyLoss(weight=W)
    assert list(loss.state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=np.ones(3)).state_dict()) == ["pos_weight"]
    assert list(nn.MSELoss().state_dict()) == []


def test_repr():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"
    assert "label_smoothing=0.1" in repr(nn.CrossEntropyLoss(label_smoothing=0.1))
