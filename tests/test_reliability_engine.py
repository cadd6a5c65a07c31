"""The engine's guarantees, as PyTorch gives them (kinds 2 and 3 of issue 11).

Grad mode is per thread; a value a unit saved that is changed in place before backward is an
error naming the unit; backward frees the graph unless retain_graph=True; in-place operators on
a leaf that requires grad raise.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import ChainruleError


def test_no_grad_in_one_thread_leaves_the_others_recording():
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def quiet():
        with cr.no_grad():
            inside.set()
            outside.wait(10)
            seen["quiet"] = cr.is_grad_enabled()

    t = threading.Thread(target=quiet)
    t.start()
    inside.wait(10)
    w = cr.tensor(2.0, requires_grad=True)
    y = w * w
    seen["main"] = cr.is_grad_enabled() and y.requires_grad
    outside.set()
    t.join(10)
    assert seen == {"main": True, "quiet": False}
    y.backward()
    assert w.grad == 4.0


def _train(seed, out):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(256, 4)).astype(np.float32)
    y = (X[:, 0] - X[:, 2] > 0).astype(np.int64)
    model = cr.nn.Sequential(
        cr.nn.Linear(4, 16, rng=np.random.default_rng(seed)),
        cr.nn.Tanh(),
        cr.nn.Linear(16, 2, rng=np.random.default_rng(seed + 1)),
    )
    cr.fit(
        model,
        cr.nn.CrossEntropyLoss(),
        cr.optim.Adam(model.parameters(), lr=0.01),
        X,
        y,
        epochs=6,
        batch_size=16,
        validation=0.25,
        seed=seed,
    )  # validation runs under no_grad
    out[seed] = [p.data.copy() for p in model.parameters()]


def test_two_threads_training_at_once_give_the_weights_of_each_alone():
    alone = {}
    _train(1, alone)
    _train(2, alone)
    together = {}
    threads = [threading.Thread(target=_train, args=(s, together)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for seed in (1, 2):
        for a, b in zip(alone[seed], together[seed], strict=True):
            assert np.array_equal(a, b)


def test_changing_a_saved_value_before_backward_is_an_error_naming_the_unit():
    w = cr.tensor(np.full((2, 2), 0.5, np.float32), requires_grad=True)
    x = cr.tensor(np.ones((3, 2), np.float32))
    loss = (x @ w).sum()
    with cr.no_grad():
        x += 1  # x was saved by matmul for w's gradient
    with pytest.raises(
        ChainruleError,
        match=r"backward through matmul: .* changed in place "
        r"after it ran \(its input 1, a Tensor of shape",
    ):
        loss.backward()
    # an optimizer step between forward and backward
    model = cr.nn.Sequential(cr.nn.Linear(2, 3), cr.nn.Tanh())
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    xs = cr.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    loss = model(xs).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(
        ChainruleError,
        match=r"backward through linear: .*Parameter of shape "
        r"\(3, 2\)",
    ):
        loss.backward()
    # a change the unit did not save is fine (add keeps nothing)
    a = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    b = cr.tensor(np.ones(3, np.float32))
    s = (a + b).sum()
    with cr.no_grad():
        b += 1
    s.backward()
    assert np.array_equal(a.grad, np.ones(3))


def test_backward_twice_needs_retain_graph():
    w = cr.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert np.array_equal(w.grad, [4.0, 8.0])  # two backward passes accumulate, as in PyTorch
    with pytest.raises(
        ChainruleError, match="a second time: the graph was already back-propagated"
    ):
        loss.backward()
    torch = pytest.importorskip("torch")
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    tl = (tw * tw).sum()
    tl.backward()
    with pytest.raises(RuntimeError, match="second time"):
        tl.backward()


def test_in_place_operators_follow_pytorch():
    w = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    before = w
    with pytest.raises(
        ChainruleError, match="leaf tensor that requires grad is used in an in-place operation"
    ):
        w += 1
    assert w is before and np.array_equal(w.data, np.ones(3))
    with cr.no_grad():
        w -= 0.5  # an update step
    assert w is before and np.array_equal(w.data, np.full(3, 0.5))
    y = w * 2
    with pytest.raises(ChainruleError, match="part of a recorded computation"):
        y += 1
    c = cr.tensor(np.ones(3, np.float32))
    c *= 3
    assert np.array_equal(c.data, np.full(3, 3.0))
    with pytest.raises(cr.ShapeError, match="in-place"):
        c += np.ones(4, np.float32)
    torch = pytest.importorskip("torch")
    tw = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        tw += 1


class _Probe(cr.Unit):
    """Identity whose backward notes which of the watched tensors are still alive."""

    watched: list = []
    alive_in_backward: list = []

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        _Probe.alive_in_backward = [r() is not None for r in _Probe.watched]
        return grad


def test_backward_frees_what_units_saved_during_the_walk():
    import gc
    import weakref

    w = cr.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    x = cr.tensor(np.ones((2, 3), np.float32))
    gc.disable()  # released by reference counting, as the walk goes, not by a later collection
    try:
        h = cr.tanh(_Probe.apply(x @ w))  # the probe's backward runs after tanh's
        _Probe.watched = [weakref.ref(h)]
        loss = (h * h).sum()
        del h
        loss.backward()
        # tanh's output (saved by it, and the input of mul) was gone before the probe ran
        assert _Probe.alive_in_backward == [False]
        ctx = loss._ctx
        assert set(vars(ctx)) == {"unit", "freed", "inputs", "slots"} and ctx.inputs == ()
        # retain_graph=True keeps everything
        h = cr.tanh(_Probe.apply(x @ w))
        _Probe.watched = [weakref.ref(h)]
        loss = (h * h).sum()
        del h
        loss.backward(retain_graph=True)
        assert _Probe.alive_in_backward == [True]
        assert _Probe.watched[0]() is not None and len(loss._ctx.inputs) == 1
    finally:
        gc.enable()


def test_a_new_graph_through_a_freed_one_is_a_clear_error_as_in_pytorch():
    w = cr.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    h = w * w
    h.sum().backward()
    with pytest.raises(ChainruleError, match=r"backward through mul a second time: .* freed"):
        (h * 3).sum().backward()
    # the record is gone, so the engine's tracing walk (graph drawing, explain) says what to do
    from chainrule.tensor import _backprop

    with pytest.raises(ChainruleError, match=r"draw or explain the graph before calling backward"):
        _backprop(h, np.ones(2, np.float32), trace={})
    torch = pytest.importorskip("torch")
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    th = tw * tw
    th.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (th * 3).sum().backward()


def test_replacing_data_bumps_the_version_and_writing_into_it_does_not():
    w = cr.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    v0 = w._version
    w.data = w.data  # the same array: nothing changed
    assert w._version == v0
    w.data = np.array([3.0, 4.0], np.float32)  # through the API: counted
    assert w._version > v0
    v1 = w._version
    w.data[...] = 5.0  # straight into numpy, as PyTorch's .data: not seen by autograd
    assert w._version == v1
    # a replaced array leaves what a unit saved untouched: backward gives the gradient of the
    # forward pass that ran (d(w·w)/dw = 2w at w = [5, 5])
    loss = (w * w).sum()
    w.data = np.array([7.0, 7.0], np.float32)
    loss.backward()
    assert np.array_equal(w.grad, [10.0, 10.0])
    # a view of the saved array counts as a change of it (the values may have been changed)
    p = cr.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    loss = (p * p).sum()
    p.data = p.data[::-1]
    with pytest.raises(ChainruleError, match=r"backward through mul: .*changed in place"):
        loss.backward()
