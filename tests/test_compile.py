"""cr.compile: N compiled steps leave exactly what N eager steps leave.

Every unit (the table of tests/unit_table.py), every layer, loss and optimizer (with schedulers),
across retraces, the short last batch and the guards. Parameters, gradients and optimizer state
are compared element for element: the replay runs the same numpy calls in the same order, so
float64 and float32 results are bit-identical (stricter than the 1e-12 / 1e-6 the issue allows).
"""

import functools

import numpy as np
import pytest
from unit_table import CASES, IDS

import chainrule as cr
from chainrule import nn, optim
from chainrule.compile import GenericPlan

STEPS = 5  # two traced calls, three replays


def _same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a, b, equal_nan=True), np.nanmax(np.abs(a - b))


def _snapshot(params, opt=None):
    out = [p.data.copy() for p in params] + [
        None if p.grad is None else p.grad.copy() for p in params
    ]
    if opt is not None:
        sd = opt.state_dict()
        for k in sorted(sd["state"]):
            for name in sorted(sd["state"][k]):
                v = sd["state"][k][name]
                out.append(np.asarray(v))
    return out


def _compare(snaps_a, snaps_b):
    assert len(snaps_a) == len(snaps_b)
    for a, b in zip(snaps_a, snaps_b, strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:
            _same(a, b)


# ------------------------------------------------------------------------------------------------
# every unit of the table
# ------------------------------------------------------------------------------------------------


def _unit_run(case, dtype, compiled, as_arg):
    name, fn, _, makers = case
    rng = np.random.default_rng(7)
    values = [np.asarray(m(rng), dtype=dtype) for m in makers]
    params = [nn.Parameter(v.copy()) for v in values]
    if as_arg:  # the first input is data passed to the step (new values at every call)
        params = params[1:]
    out0 = fn(*([cr.Tensor(values[0])] if as_arg else []) + params)
    R = np.random.default_rng(8).normal(size=out0.shape).astype(out0.dtype)
    opt = optim.SGD(params, lr=0.01, momentum=0.9) if params else None

    def step(*x):
        if opt:
            opt.zero_grad()
        out = fn(*x, *params)
        loss = (out * R).sum()
        loss.backward()
        if opt:
            opt.step()
        return loss, out

    f = cr.compile(step) if compiled else step
    losses = []
    for k in range(STEPS):
        args = (cr.Tensor(values[0] + dtype(0.01 * k), requires_grad=True),) if as_arg else ()
        loss, out = f(*args)
        losses.append((loss.data.copy(), out.data.copy()))
        if as_arg:
            losses.append((args[0].grad.copy(), args[0].data))
    if compiled:
        assert f.stats["replayed"] == STEPS - 2, (f.stats, f.explain())
    return _snapshot(params, opt) + [x for pair in losses for x in pair]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_unit_compiled_equals_eager(case, dtype):
    for as_arg in (False, True):
        if as_arg and case[0] in ("linear_nobias",) and False:
            continue
        _compare(_unit_run(case, dtype, False, as_arg), _unit_run(case, dtype, True, as_arg))


def test_batch_norm_unit_compiled_equals_eager():
    case = (
        "batch_norm",
        lambda x, w, b: cr.units.BatchNorm.apply(x, w, b),
        None,
        [
            lambda r: r.normal(size=(6, 3)),
            lambda r: r.uniform(0.5, 2, size=3),
            lambda r: r.normal(size=3),
        ],
    )
    for dtype in (np.float64, np.float32):
        for as_arg in (False, True):
            _compare(_unit_run(case, dtype, False, as_arg), _unit_run(case, dtype, True, as_arg))


# ------------------------------------------------------------------------------------------------
# layers, losses, optimizers and schedulers: short training runs with a short last batch
# ------------------------------------------------------------------------------------------------


def _data(n=23, d=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, classes, size=n)
    return X, y


def _train(
    build, compiled, epochs=3, batch=8, X=None, y=None, cache_size=4, sched=None, between=None
):
    """Train ``build()``'s (model, loss_fn, opt) with a step function; returns a snapshot."""
    model, loss_fn, opt = build()
    scheduler = sched(opt) if sched else None

    def step(xb, yb):
        opt.zero_grad()
        out = model(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        opt.step()
        return loss

    f = cr.compile(step, cache_size=cache_size) if compiled else step
    losses = []
    for epoch in range(epochs):
        for i in range(0, len(X), batch):
            losses.append(np.array(f(X[i : i + batch], y[i : i + batch]).data))
        if scheduler is not None:
            if isinstance(scheduler, optim.ReduceLROnPlateau):
                scheduler.step(float(losses[-1]))
            else:
                scheduler.step()
        if between:
            between(model, opt, epoch)
    params = list(model.parameters())
    snap = _snapshot(params, opt) + losses + [np.asarray(b) for b in model.buffers()]
    return snap, (f.stats if compiled else None)


def _check(build, X, y, expect_replay=True, **kw):
    eager, _ = _train(build, False, X=X, y=y, **kw)
    comp, stats = _train(build, True, X=X, y=y, **kw)
    _compare(eager, comp)
    if expect_replay:
        assert stats["replayed"] > 0, stats
    return stats


def _mlp(*mid, d=3, classes=3, loss=None, opt=None, dtype=np.float32, seed=0):
    def build():
        cr.manual_seed(seed)
        layers = [
            nn.Linear(d, 8, dtype=dtype),
            *[m() for m in mid],
            nn.Linear(8, classes, dtype=dtype),
        ]
        model = nn.Sequential(*layers)
        o = (opt or (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9)))(model.parameters())
        return model, (loss or nn.CrossEntropyLoss)(), o

    return build


LAYERS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
    "softmax": lambda: nn.Softmax(dim=1),
    "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "flatten": nn.Flatten,
    "linear": lambda: nn.Linear(8, 8),
    "linear_nobias": lambda: nn.Linear(8, 8, bias=False),
    "batchnorm_eval": lambda: nn.BatchNorm1d(8).eval(),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_layer_compiled_equals_eager(name, dtype):
    X, y = _data()
    _check(_mlp(LAYERS[name], nn.Tanh, dtype=dtype), X.astype(dtype), y)


TRAINING_LAYERS = {
    "dropout": lambda: nn.Dropout(0.3),
    "dropout_own_rng": lambda: nn.Dropout(0.5, rng=np.random.default_rng(11)),
    "batchnorm": lambda: nn.BatchNorm1d(8),
    "batchnorm_cumulative": lambda: nn.BatchNorm1d(8, momentum=None),
    "batchnorm_no_stats": lambda: nn.BatchNorm1d(8, track_running_stats=False),
    "batchnorm_no_affine": lambda: nn.BatchNorm1d(8, affine=False),
}


@pytest.mark.parametrize("name", sorted(TRAINING_LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dropout_and_batch_norm_in_training_replay_bit_identically(name, dtype):
    # the mask is drawn, and the running statistics updated, inside the units: the step is
    # replayed, drawing from the same generator as eager steps (the masks, and the generator's
    # state after training, are the same), and the buffers end up the same, bit for bit
    X, y = _data()
    X = X.astype(dtype)
    build = _mlp(TRAINING_LAYERS[name], nn.Tanh, dtype=dtype)
    eager, _ = _train(build, False, X=X, y=y)
    after_eager = cr.default_rng().random(3)
    comp, stats = _train(build, True, X=X, y=y)
    after_comp = cr.default_rng().random(3)
    _compare(eager, comp)
    np.testing.assert_array_equal(after_eager, after_comp)
    assert stats["replayed"] > 0 and stats["eager"] == 0, stats


def test_dropout_runs_on_its_plan_and_draws_a_new_mask_at_every_replay():
    from chainrule.compile import PLANS

    x = cr.Tensor(np.ones((4, 6), np.float32), requires_grad=True)
    seen = []

    def step():
        x.zero_grad()
        out = nn.functional.dropout(x, 0.5)
        out.sum().backward()
        return out

    f = cr.compile(step)
    for _ in range(5):
        seen.append(f().data.copy())
    assert f.stats["replayed"] == 3
    (entry,) = [e for e in f.cache.values() if e.program is not None]
    plans = [type(p).__name__ for p in entry.program.plans]
    assert plans[0] == "_DropoutPlan" and cr.units.Dropout in PLANS  # then sum (its own)
    # the gradient is the last mask (the backward of x · mask), and masks differ call to call
    np.testing.assert_array_equal(x.grad, seen[-1])
    assert len({m.tobytes() for m in seen}) == 5


def _targets(kind, n=23, classes=3):
    rng = np.random.default_rng(3)
    if kind == "float":
        return rng.normal(size=(n, classes)).astype(np.float32)
    if kind == "prob":
        return rng.uniform(0, 1, size=(n, classes)).astype(np.float32)
    if kind == "binary":
        return rng.integers(0, 2, size=(n, classes)).astype(np.float32)
    if kind == "pm1":
        return (2.0 * rng.integers(0, 2, size=(n, 1)) - 1).astype(np.float32)
    return rng.integers(0, classes, size=n)


LOSSES = {
    "mse": (nn.MSELoss, "float", None),
    "mse_sum": (lambda: nn.MSELoss(reduction="sum"), "float", None),
    "bce": (nn.BCELoss, "prob", nn.Sigmoid),
    "bce_logits": (nn.BCEWithLogitsLoss, "binary", None),
    "bce_logits_posw": (
        lambda: nn.BCEWithLogitsLoss(pos_weight=np.array([1.0, 2.0, 0.5], np.float32)),
        "binary",
        None,
    ),
    "cross_entropy": (nn.CrossEntropyLoss, "labels", None),
    "cross_entropy_weighted": (
        lambda: nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5], np.float32)),
        "labels",
        None,
    ),
    "cross_entropy_smooth": (lambda: nn.CrossEntropyLoss(label_smoothing=0.1), "labels", None),
    "cross_entropy_sum": (lambda: nn.CrossEntropyLoss(reduction="sum"), "labels", None),
    "cross_entropy_probs": (nn.CrossEntropyLoss, "prob", None),
    "nll": (nn.NLLLoss, "labels", lambda: nn.LogSoftmax(dim=1)),
    "hinge": (nn.HingeLoss, "pm1", None),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_compiled_equals_eager(name):
    loss, kind, last = LOSSES[name]
    X, _ = _data()
    y = _targets(kind)

    def build():
        model, _, opt = _mlp(nn.ReLU, classes=1 if kind == "pm1" else 3)()
        if last is not None:
            model = nn.Sequential(model, last())
            opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        return model, loss(), opt

    _check(build, X, y)


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    "sgd_nesterov_decay": lambda ps: optim.SGD(
        ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
    ),
    "sgd_dampening_maximize": lambda ps: optim.SGD(
        ps, lr=0.01, momentum=0.5, dampening=0.3, maximize=True
    ),
    "adam": lambda ps: optim.Adam(ps, lr=0.01),
    "adam_amsgrad_decay": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=1e-2),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01),
    "rmsprop_centered_momentum": lambda ps: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.9),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=1e-3),
    "groups": lambda ps: optim.SGD(
        [{"params": list(ps)[:2], "lr": 0.2}, {"params": list(ps)[2:]}], lr=0.05, momentum=0.9
    ),
}

SCHEDULERS = {
    "none": None,
    "step": lambda o: optim.StepLR(o, step_size=1, gamma=0.5),
    "exponential": lambda o: optim.ExponentialLR(o, gamma=0.7),
    "cosine": lambda o: optim.CosineAnnealingLR(o, T_max=3),
    "plateau": lambda o: optim.ReduceLROnPlateau(o, patience=0, factor=0.5),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_compiled_equals_eager(name):
    X, y = _data()
    _check(_mlp(nn.Tanh, opt=OPTIMIZERS[name]), X, y, epochs=4)


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("opt", ["sgd_momentum", "adam"])
def test_schedulers_compiled_equals_eager(sched, opt):
    X, y = _data()
    _check(_mlp(nn.ReLU, opt=OPTIMIZERS[opt]), X, y, epochs=4, sched=SCHEDULERS[sched])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_sgd_hyperparameters_of_every_type_set_between_replayed_steps_give_the_eager_numbers(
    dtype,
):
    # SGD's lr·b with a numpy float64 lr is computed in float64 and subtracted unrounded; the
    # flat update must not round it into a float32 temporary first. A small flat group
    # multiplies by arrays filled with lr and momentum: refilled when the group holds another
    # number, not used for numpy scalars; momentum 0 takes the plain update.
    values = [
        (np.float64(0.03), 0.9),
        (0.02, np.float64(0.55)),
        (0.02, 0.8),
        (1, 0.8),
        (np.float32(0.04), np.float32(0.7)),
        (0.01, 0),
        (0.05, 0.9),
    ]
    X, y = _data(n=8)
    X = X.astype(dtype)
    runs = []
    for compiled in (False, True):
        model, loss_fn, opt = _mlp(nn.Tanh, dtype=dtype)()
        step = functools.partial(_plain_step, model, loss_fn, opt)
        f = cr.compile(step) if compiled else step
        f(X, y)
        f(X, y)  # (the momentum buffer exists from here on)
        for lr, mo in values:
            opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"] = lr, mo
            f(X, y)
            f(X, y)
        runs.append(_snapshot(list(model.parameters()), opt))
        if compiled:
            assert f.stats["replayed"] == 2 * len(values), f.stats  # all replayed
    _compare(*runs)


def test_retraces_with_a_cache_of_one_and_the_short_last_batch():
    # cache_size=1: full batches and the short last batch evict each other every epoch
    X, y = _data(n=30)
    one = _check(_mlp(nn.Tanh), X, y, epochs=6, cache_size=1)
    four = _check(_mlp(nn.Tanh), X, y, epochs=6, cache_size=4)
    assert one["traced"] > four["traced"] == 4 and four["replayed"] == 24 - 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_one_sample_batches(dtype):
    X, y = _data(n=9)
    _check(_mlp(nn.ReLU, nn.Tanh, dtype=dtype), X.astype(dtype), y, batch=1, epochs=2)


@pytest.mark.parametrize("rows", [1, 8, 400])
def test_small_linear_biases_are_added_without_broadcasting_and_stay_exact(rows):
    # one row: (1, f) + (f,) as (f,) + (f,); a few rows: the biases copied into rows by one
    # take from the optimizer's flat buffer; many rows (over _TILE_MAX elements in every
    # layer): numpy's broadcast sum, as in eager
    X, y = _data(n=800)
    build = _mlp(nn.ReLU, lambda: nn.Linear(8, 8), nn.Tanh)
    _check(build, X, y, batch=rows, epochs=1 if rows < 8 else 2)
    model, loss_fn, opt = build()
    step = cr.compile(lambda xb, yb: _plain_step(model, loss_fn, opt, xb, yb))
    for _ in range(3):
        step(X[:rows], y[:rows])
    prog = next(iter(step.cache.values())).program
    src = prog.source
    assert src.count(".take(") == (rows == 8)
    rows_bufs = [p.bias_rows for p in prog.plans if getattr(p, "bias_rows", None) is not None]
    assert len(rows_bufs) == (3 if rows == 8 else 0)
    for buf, lin in zip(rows_bufs, [model[0], model[2], model[4]], strict=False):
        # the rows hold the bias the last forward added (before that call's step)
        assert buf.shape == (rows, lin.bias.data.size)
        assert np.all(buf == buf[0])
    if rows == 1:
        assert "L1._data, out=v" not in src  # the broadcast sum, written for v0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch", [1, 8, 100])
@pytest.mark.parametrize("classes", [1, 2, 3, 9])
def test_cross_entropy_of_every_class_count_after_a_linear_stays_exact(classes, batch, dtype):
    # the plan's max and sum take another path for each: one class (a copy), two (rows that
    # hold the max and the sum in both columns), up to eight (column by column), more (max)
    X, y = _data(n=200, classes=classes)
    build = _mlp(nn.Tanh, classes=classes, dtype=dtype)
    _check(build, X.astype(dtype), y, batch=batch, epochs=1 if batch == 1 else 3)
    model, loss_fn, opt = build()
    step = cr.compile(lambda xb, yb: _plain_step(model, loss_fn, opt, xb, yb))
    for _ in range(3):
        step(X[:batch].astype(dtype), y[:batch])
    plan = next(iter(step.cache.values())).program.plans[-1]
    assert (plan.pair is not None) == (classes == 2)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf − inf, on purpose
def test_two_class_rows_give_the_column_sequences_numbers():
    # the claim behind the two-class rows: each row's max written into both columns (the
    # second as max(z1, z0)) and its sum by a product with a 2×2 of ones give the
    # numbers of the column max and the sum against a vector of ones, signed zeros, infinities
    # and NaN included
    rng = np.random.default_rng(3)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 88.0, -104.0])
    for dtype in (np.float32, np.float64):
        z = rng.normal(size=(4000, 2)).astype(dtype) * 4
        z[:1600] = rng.choice(specials, size=(1600, 2))
        col = np.maximum(z[:, 0], z[:, 1])
        shifted = z - col[:, None]
        e = np.exp(shifted)
        s = np.dot(e, np.ones(2, dtype))
        logs = np.log(s)
        idx = np.arange(len(z)) * 2 + rng.integers(0, 2, len(z))
        loss = logs - shifted.reshape(-1)[idx]
        soft = e / s[:, None]
        both = np.empty_like(z)
        np.maximum(z[:, 0], z[:, 1], out=both[:, 0])
        np.maximum(z[:, 1], z[:, 0], out=both[:, 1])
        shifted2 = z - both
        e2 = np.exp(shifted2)
        s2 = np.dot(e2, np.ones((2, 2), dtype))
        logs2 = np.log(s2[:, 0])
        loss2 = logs2 - shifted2.reshape(-1)[idx]
        soft2 = e2 / s2
        for a, b in ((e, e2), (logs, logs2), (loss, loss2), (soft, soft2)):
            assert np.array_equal(a, b, equal_nan=True)
            same = ~np.isnan(a)
            assert np.array_equal(np.signbit(a[same]), np.signbit(b[same]))


def test_deep_relu_and_tanh_chains_work_in_place_and_stay_exact():
    # Linear -> ReLU and Linear -> Tanh run in place on the Linear's buffer, and every backward
    # writes over the gradient it receives: the numbers must not notice
    X, y = _data(n=40, d=3)
    build = _mlp(nn.ReLU, lambda: nn.Linear(8, 8), nn.Tanh, lambda: nn.Linear(8, 8), nn.ReLU)
    _check(build, X, y, batch=16, epochs=3)
    model, loss_fn, opt = build()
    step = cr.compile(lambda xb, yb: _plain_step(model, loss_fn, opt, xb, yb))
    for _ in range(3):
        step(X[:16], y[:16])
    plans = next(iter(step.cache.values())).program.plans
    assert sum(getattr(p, "inplace", False) for p in plans) == 3
    assert sum(getattr(p, "grad_writable", False) for p in plans) >= 5


# ------------------------------------------------------------------------------------------------
# guards: what changes between calls sends the call back to tracing
# ------------------------------------------------------------------------------------------------


def _guard_run(compiled, change):
    X, y = _data(n=32)
    model, loss_fn, opt = _mlp(nn.ReLU, lambda: nn.Dropout(0.0), nn.Tanh)()

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    f = cr.compile(step) if compiled else step
    out = []
    for k in range(12):
        if k == 6:
            change(model, opt)
        out.append(
            np.array(f(X[(k % 4) * 8 : (k % 4) * 8 + 8], y[(k % 4) * 8 : (k % 4) * 8 + 8]).data)
        )
    return _snapshot(list(model.parameters()), opt) + out, f


GUARD_CHANGES = {
    "eval_mode": lambda m, o: m.eval(),
    "freeze_first_layer": lambda m, o: [p.requires_grad_(False) for p in m[0].parameters()],
    "param_data_assigned": lambda m, o: setattr(m[0].weight, "data", m[0].weight.data * 0.5),
    "param_data_other_shape": lambda m, o: setattr(
        m[0].weight, "data", np.ones((8, 3), np.float32)
    ),
    # a small layer's bias is added from rows copied out of the optimizer's flat buffer: a
    # new array (not in that buffer) must be read itself, an in-place change must be seen
    "bias_data_assigned": lambda m, o: setattr(m[0].bias, "data", m[0].bias.data + 0.25),
    "bias_data_changed_in_place": lambda m, o: m[4].bias.data.__iadd__(0.25),
    "lr_changed": lambda m, o: o.param_groups[0].__setitem__("lr", 0.3),
    "momentum_changed": lambda m, o: o.param_groups[0].__setitem__("momentum", 0.5),
    "state_loaded": lambda m, o: o.load_state_dict(o.state_dict()),
    "layer_replaced": lambda m, o: m.__setitem__(3, nn.ReLU()),
    "bias_replaced": lambda m, o: setattr(m[0], "bias", nn.Parameter(np.zeros(8, np.float32))),
    "hook_added": lambda m, o: m[1].register_forward_hook(lambda mod, i, out: out * 2.0),
    "training_flag_set": lambda m, o: setattr(m[2], "training", False),
    "layers_reordered": lambda m, o: m._modules.move_to_end("3"),
    "grad_mode_off": None,
}


@pytest.mark.parametrize("name", [k for k, v in GUARD_CHANGES.items() if v is not None])
def test_guards_keep_compiled_equal_to_eager(name):
    eager, _ = _guard_run(False, GUARD_CHANGES[name])
    comp, f = _guard_run(True, GUARD_CHANGES[name])
    _compare(eager, comp)
    assert f.stats["replayed"] > 0


def test_param_data_assignment_keeps_its_meaning():
    X, y, model, f = _compiled_tanh_step(16, warm=4)
    new = np.full_like(model[0].weight.data, 0.1)
    model[0].weight.data = new
    f(X[:8], y[:8])
    assert model[0].weight.data is new  # training updates the array that was assigned
    assert not np.all(new == 0.1)


def _plain_step(model, loss_fn, opt, xb, yb, zero=True):
    if zero:
        opt.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()
    return loss


def _compiled_tanh_step(n, warm=0, rows=8):
    """A small tanh MLP's plain step through cr.compile, called ``warm`` times on the first
    ``rows`` rows (all with None) of ``_data(n)``: (X, y, model, step)."""
    X, y = _data(n=n)
    model, loss_fn, opt = _mlp(nn.Tanh)()
    step = cr.compile(lambda xb, yb: _plain_step(model, loss_fn, opt, xb, yb))
    for _ in range(warm):
        step(X[:rows], y[:rows])
    return X, y, model, step


def _backward_only_step(model, loss_fn):
    """A step that accumulates gradients (no zero_grad, no optimizer step)."""

    def step(xb, yb):
        loss = loss_fn(model(xb), yb)
        loss.backward()
        return loss

    return step


def _zeros_keeping_step(model, loss_fn, opt):
    """A training step whose zero_grad keeps the gradient arrays (filled with zeros)."""

    def step(xb, yb):
        opt.zero_grad(set_to_none=False)
        return _plain_step(model, loss_fn, opt, xb, yb, zero=False)

    return step


def test_gradients_accumulate_without_zero_grad_as_in_eager():
    X, y = _data(n=16)
    runs = []
    for compiled in (False, True):
        model, loss_fn, opt = _mlp(nn.Tanh)()
        step = _backward_only_step(model, loss_fn)
        f = cr.compile(step) if compiled else step
        kept = []
        for _ in range(6):
            f(X[:8], y[:8])
            kept.append(model[0].weight.grad)  # held, not copied: later calls must not change it
        snap = [g.copy() for g in kept]
        for _ in range(2):
            f(X[:8], y[:8])
        for g, s in zip(kept, snap, strict=True):
            _same(g, s)
        runs.append(_snapshot(list(model.parameters())) + snap)
    _compare(*runs)


def test_gradient_arrays_from_earlier_calls_are_not_overwritten_when_zero_grad_keeps_zeros():
    X, y = _data(n=16)
    runs = []
    for compiled in (False, True):
        model, loss_fn, opt = _mlp(nn.Tanh)()
        step = _zeros_keeping_step(model, loss_fn, opt)
        f = cr.compile(step) if compiled else step
        for _ in range(6):
            f(X[:8], y[:8])
        runs.append(_snapshot(list(model.parameters()), opt))
    _compare(*runs)


def test_returned_values_are_fresh_copies_and_python_side_effects_run_while_tracing_only():
    X, y = _data(n=16)
    model, loss_fn, opt = _mlp(nn.Tanh)()
    seen = []

    @cr.compile
    def step(xb, yb):
        seen.append(1)
        out = model(xb)
        loss = _plain_step(model, loss_fn, opt, xb, yb)
        return {"loss": loss, "out": [out]}

    results = [step(X[:8], y[:8]) for _ in range(5)]
    assert len(seen) == 2 and step.stats == {"replayed": 3, "traced": 2, "eager": 0}
    assert results[3]["loss"].data is not results[4]["loss"].data
    assert results[3]["out"][0].data is not results[4]["out"][0].data
    assert not results[4]["loss"].requires_grad


def test_a_step_returning_a_python_number_runs_eagerly():
    X, y = _data(n=16)
    model, loss_fn, opt = _mlp(nn.Tanh)()
    step = cr.compile(lambda xb, yb: _plain_step(model, loss_fn, opt, xb, yb).item())
    values = [step(X[:8], y[:8]) for _ in range(5)]
    assert step.stats["replayed"] == 0 and len(set(values)) == 5
    assert "eager" in step.explain() or "traced" in step.explain()


def test_bad_labels_in_a_replayed_step_get_the_eager_error():
    X, y, model, step = _compiled_tanh_step(16, warm=4)
    with pytest.raises(cr.errors.ChainruleError, match="class"):
        step(X[:8], np.full(8, 7))


def test_unknown_units_run_through_their_own_forward_and_backward():
    class Cube(cr.Unit):
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x**3

        @staticmethod
        def backward(ctx, grad):
            return grad * 3 * ctx.x**2

    w = nn.Parameter(np.linspace(-1, 1, 5))
    opt = optim.SGD([w], lr=0.1)

    @cr.compile
    def step(x):
        opt.zero_grad()
        loss = (Cube.apply(w * x)).sum()
        loss.backward()
        opt.step()
        return loss

    ref = np.linspace(-1, 1, 5)
    for k in range(5):
        x = np.full(5, 1.0 + k)
        step(x)
        ref = ref - 0.1 * 3 * (ref * x) ** 2 * x
    np.testing.assert_allclose(w.data, ref, rtol=1e-12)
    prog = next(iter(step.cache.values())).program
    assert any(isinstance(p, GenericPlan) and p.unit is Cube for p in prog.plans)


def test_compile_arguments_are_checked():
    with pytest.raises(TypeError, match="function"):
        cr.compile(3)
    with pytest.raises(ValueError, match="cache_size"):
        cr.compile(lambda: None, cache_size=0)


# ------------------------------------------------------------------------------------------------
# fit uses it by default; compile=False turns it off
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["classify", "regress64"])
def test_fit_compiled_equals_fit_eager(task):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    if task == "classify":
        y = rng.integers(0, 3, size=50)
        loss, out = nn.CrossEntropyLoss, 3
    else:
        y = rng.normal(size=(50, 2))
        loss, out = nn.MSELoss, 2
    runs = []
    for compiled in (False, True):
        cr.manual_seed(1)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, out))
        opt = optim.Adam(model.parameters(), lr=0.01)
        h = cr.fit(
            model,
            loss(),
            opt,
            X,
            y,
            epochs=4,
            batch_size=16,
            validation=0.2,
            metrics=["accuracy"] if task == "classify" else ["mse"],
            scheduler=optim.StepLR(opt, 2, 0.5),
            compile=compiled,
            seed=3,
        )
        runs.append((_snapshot(list(model.parameters()), opt), h.history))
    _compare(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


# ------------------------------------------------------------------------------------------------
# convolution and pooling layers (units_conv): they replay through their own methods
# ------------------------------------------------------------------------------------------------


def _cnn(*mid, dim=2):
    def build():
        cr.manual_seed(0)
        conv = nn.Conv2d if dim == 2 else nn.Conv1d
        shape = (1, 6, 6) if dim == 2 else (1, 36)
        model = nn.Sequential(
            nn.Unflatten(1, shape),
            conv(1, 3, 3, padding=1),
            nn.ReLU(),
            *[m() for m in mid],
            nn.Flatten(),
        )
        with cr.no_grad():
            n = model(np.zeros((1, 36), np.float32)).shape[1]
        model = nn.Sequential(*list(model), nn.Linear(n, 3))
        return model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    return build


CONV = {
    "conv2d": (),
    "conv2d_stride_groups": (lambda: nn.Conv2d(3, 3, 3, stride=2, groups=3),),
    "maxpool2d": (lambda: nn.MaxPool2d(2),),
    "avgpool2d": (lambda: nn.AvgPool2d(2),),
    "adaptive_avgpool2d": (lambda: nn.AdaptiveAvgPool2d((2, 2)),),
    "batchnorm2d_eval": (lambda: nn.BatchNorm2d(3).eval(),),
    "batchnorm2d_training": (lambda: nn.BatchNorm2d(3),),
    "dropout_training": (lambda: nn.Dropout(0.25),),
}


@pytest.mark.skipif(not hasattr(nn, "Conv2d"), reason="no convolution layers in this version")
@pytest.mark.parametrize("name", sorted(CONV) + ["conv1d_maxpool1d"])
def test_every_conv_layer_compiled_equals_eager(name):
    X = np.random.default_rng(0).normal(size=(20, 36)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, size=20)
    if name == "conv1d_maxpool1d":
        build = _cnn(lambda: nn.MaxPool1d(2), lambda: nn.AvgPool1d(2), dim=1)
    else:
        build = _cnn(*CONV[name])
    _check(build, X, y, batch=8)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum"])
def test_flat_sgd_in_chunks_equals_eager(name, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["chainrule.compile"], "_CHUNK", 7)  # many short chunks
    X, y = _data()
    _check(_mlp(nn.Tanh, opt=OPTIMIZERS[name]), X, y, epochs=3)


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_large_groups_stay_per_parameter_and_equal_eager(name, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["chainrule.compile"], "_FLAT_MAX", 10)  # "large" groups
    X, y = _data()
    _check(_mlp(nn.Tanh, opt=OPTIMIZERS[name]), X, y, epochs=3)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_in_training_runs_on_its_plan(affine):
    bn = nn.BatchNorm1d(5, affine=affine, dtype=np.float64)
    x = cr.Tensor(np.random.default_rng(0).normal(size=(7, 5)), requires_grad=True)
    R = np.random.default_rng(1).normal(size=(7, 5))

    def step():
        x.zero_grad()
        bn.zero_grad()
        out = bn(x)
        (out * R).sum().backward()
        return out

    f = cr.compile(step)
    for _ in range(4):
        f()
    (entry,) = [e for e in f.cache.values() if e.program is not None]
    assert type(entry.program.plans[0]).__name__ == "_BatchNormPlan"
    # the same four steps eagerly, from the same start: buffers, output and gradients agree
    bn2 = nn.BatchNorm1d(5, affine=affine, dtype=np.float64)
    x2 = cr.Tensor(x.data.copy(), requires_grad=True)
    for _ in range(4):
        x2.zero_grad()
        bn2.zero_grad()
        out2 = bn2(x2)
        (out2 * R).sum().backward()
    for a, b in zip(bn.buffers(), bn2.buffers(), strict=True):
        _same(np.asarray(a), np.asarray(b))
    _same(x.grad, x2.grad)
    if affine:
        _same(bn.weight.grad, bn2.weight.grad)
        _same(bn.bias.grad, bn2.bias.grad)


# ------------------------------------------------------------------------------------------------
# the replay's fast path: one generated check per call, then the program's own lines
# ------------------------------------------------------------------------------------------------


def test_replays_take_the_one_check_fast_path_and_changes_send_calls_to_the_full_checks():
    from chainrule.tensor import changes

    X, y, model, step = _compiled_tanh_step(32, warm=3)
    prog = step._hot
    assert prog is not None and prog.accepts((X[:8], y[:8]))
    assert not prog.accepts((X[:7], y[:7]))  # another shape
    assert not prog.accepts((X[:8].astype(np.float64), y[:8]))  # another dtype
    with cr.no_grad():
        assert not prog.accepts((X[:8], y[:8]))  # another grad mode
    # a change anywhere bumps the count; the full checks run once, then the fast path again
    before = changes[0]
    model[0].some_note = 1
    assert changes[0] > before and prog.accepts((X[:8], y[:8]))
    assert prog.seen_changes[0] == changes[0]
    model.eval()
    assert not prog.accepts((X[:8], y[:8]))
    model.train()
    handle = model[1].register_forward_hook(lambda m, i, out: out)
    assert not prog.accepts((X[:8], y[:8]))
    handle.remove()
    assert prog.accepts((X[:8], y[:8]))


@pytest.mark.parametrize("n", [8, 100])  # a short batch (labels read as a list), a long one
@pytest.mark.parametrize("bad", [-1, 3, 2**40])
def test_bad_labels_are_caught_on_both_label_checks(n, bad):
    X, y, model, step = _compiled_tanh_step(n, warm=3, rows=None)
    before = [p.data.copy() for p in model.parameters()]
    yb = y.copy()
    yb[n // 2] = bad
    with pytest.raises(cr.errors.ChainruleError, match="class"):
        step(X, yb)
    for p, b in zip(model.parameters(), before, strict=True):  # nothing was updated
        _same(p.data, b)


@pytest.mark.parametrize("name", ["relu", "tanh", "linear", "linear_nobias"])
def test_plans_called_as_methods_equal_plans_written_into_the_program(name, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["chainrule.compile"], "INLINE", False)
    X, y = _data()
    _check(_mlp(LAYERS[name], nn.Tanh), X, y)


def test_source_shows_the_generated_function_of_each_replayed_signature():
    X, y, model, step = _compiled_tanh_step(32)
    assert step.source() == "(nothing replayed yet)"
    for _ in range(3):
        step(X[:8], y[:8])
    src = step.source()
    assert src.startswith("# arguments of shapes ((8, 3), (8,))") and "def run(A):" in src
    assert "_dot(" in src and "_tanh(" in src  # the planned units' own numpy calls, inline


def _tied(build_opt=None):
    def build():
        cr.manual_seed(0)
        lin, head = nn.Linear(3, 3), nn.Linear(3, 3)

        class Tied(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin, self.head = lin, head

            def forward(self, x):
                return self.head(self.lin(self.lin(x).tanh()).tanh())  # lin used twice

        model = Tied()
        opt = (build_opt or (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)))(model.parameters())
        return model, nn.CrossEntropyLoss(), opt

    return build


@pytest.mark.parametrize("flat", [True, False])
def test_a_weight_used_by_two_units_gets_both_gradients_summed(flat, monkeypatch):
    import sys

    if not flat:  # per-parameter groups: the traced step's .grad arrays become plan buffers
        monkeypatch.setattr(sys.modules["chainrule.compile"], "_FLAT_MAX", 10)
    X, y = _data()
    _check(_tied(), X, y)


def test_programs_of_two_signatures_share_one_flat_layout(monkeypatch):
    # full batches and the short last batch: two programs, one layout of the parameters, and
    # both run the flat update (neither falls back to the optimizer's own loop, nor retraces)
    import sys

    C = sys.modules["chainrule.compile"]
    fallbacks = []
    orig = C._FlatStep.__call__
    monkeypatch.setattr(C._FlatStep, "__call__", lambda self: fallbacks.append(1) or orig(self))
    X, y = _data(n=30)
    stats = _check(_mlp(nn.Tanh), X, y, epochs=6)
    assert stats["traced"] == 4 and not fallbacks, (stats, len(fallbacks))
