"""Convolution, pooling, BatchNorm2d and Unflatten: central differences in float64, PyTorch as
the oracle (values and gradients over the option combinations PyTorch accepts), shapes, errors,
layers, model files and the network builder."""

import itertools
from functools import partial

import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn import functional as F

RNG = np.random.default_rng(1234)
# PyTorch warns that its own 'same' padding with an even kernel copies the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def _check_grad(fn, *arrays):
    """Central differences in float64 of a fixed random projection of fn's output."""
    out_shape = fn(*[cr.tensor(a) for a in arrays]).shape
    proj = _rand(*out_shape)
    assert cr.gradcheck(
        lambda *ts: (fn(*ts) * proj).sum(), *[cr.tensor(a, requires_grad=True) for a in arrays]
    )


# ------------------------------------------------------------------------------------------------
# central differences (numpy only)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(stride=2, padding=1),
        dict(padding="same", dilation=2),
        dict(groups=2, bias=False),
        dict(stride=3, padding=2, dilation=2, groups=2),
    ],
)
def test_conv1d_central_differences(kw):
    kw = dict(kw)
    use_bias = kw.pop("bias", True)
    x, w, b = _rand(2, 4, 9), _rand(6, 4 // kw.get("groups", 1), 3), _rand(6)
    if use_bias:
        _check_grad(lambda x, w, b: F.conv1d(x, w, b, **kw), x, w, b)
    else:
        _check_grad(lambda x, w: F.conv1d(x, w, **kw), x, w)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(stride=(2, 1), padding=(1, 0)),
        dict(padding="same", dilation=(1, 2)),
        dict(groups=2, stride=2, padding=1),
    ],
)
def test_conv2d_central_differences(kw):
    x, w, b = _rand(2, 2, 5, 6), _rand(4, 2 // kw.get("groups", 1), 3, 2), _rand(4)
    _check_grad(lambda x, w, b: F.conv2d(x, w, b, **kw), x, w, b)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True),
        lambda x: F.max_pool1d(x, 2, 1, dilation=2),
        lambda x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda x: F.adaptive_avg_pool1d(x, 4),
    ],
)
def test_pool1d_central_differences(fn):
    _check_grad(fn, _rand(2, 3, 9))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.max_pool2d(x, 2),
        lambda x: F.max_pool2d(x, (3, 2), (2, 1), (1, 0), ceil_mode=True),
        lambda x: F.avg_pool2d(x, 3, 2, 1),
        lambda x: F.avg_pool2d(x, 2, divisor_override=3),
        lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    ],
)
def test_pool2d_central_differences(fn):
    _check_grad(fn, _rand(2, 2, 5, 7))


def test_batchnorm2d_and_unflatten_central_differences():
    bn = cr.nn.BatchNorm2d(3, dtype=np.float64)
    x, proj = _rand(4, 3, 2, 3), _rand(4, 3, 2, 3)
    assert cr.gradcheck(lambda t: (bn(t) * proj).sum(), cr.tensor(x, requires_grad=True))
    _check_grad(lambda t: F.unflatten(t, 1, (2, -1)), _rand(3, 8))


# ------------------------------------------------------------------------------------------------
# PyTorch as the oracle
# ------------------------------------------------------------------------------------------------


def _torch_compare(fn_cr, fn_torch, *arrays, dtype=np.float64):
    torch = pytest.importorskip("torch")
    arrays = [a.astype(dtype) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    cs = [cr.tensor(a, requires_grad=True) for a in arrays]
    yt, yc = fn_torch(*ts), fn_cr(*cs)
    assert tuple(yc.shape) == tuple(yt.shape)
    assert yc.dtype == dtype
    g = RNG.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(g))
    yc.backward(g)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), **tol)
    for c, t in zip(cs, ts, strict=True):
        assert c.grad.dtype == dtype
        np.testing.assert_allclose(c.grad, t.grad.numpy(), **tol)


_CONV_OPTIONS = [
    dict(stride=s, padding=p, dilation=d, groups=g)
    for s, p, d, g in itertools.product((1, 2, 3), (0, 1, 2, "same", "valid"), (1, 2), (1, 2))
    if not (p == "same" and s > 1)
]  # PyTorch refuses 'same' with a stride


@pytest.mark.parametrize("kw", _CONV_OPTIONS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_conv1d_matches_torch(kw):
    tf = pytest.importorskip("torch.nn.functional")
    for bias, k in ((True, 3), (False, 4)):  # an odd and an even kernel ('same' pads unevenly)
        x, w, b = _rand(3, 4, 13), _rand(6, 4 // kw["groups"], k), _rand(6)
        args = (x, w, b) if bias else (x, w)
        _torch_compare(lambda *a: F.conv1d(*a, **kw), lambda *a: tf.conv1d(*a, **kw), *args)


@pytest.mark.parametrize(
    "kw",
    [kw for kw in _CONV_OPTIONS if kw["dilation"] == 1 or kw["groups"] == 1],
    ids=lambda kw: "-".join(map(str, kw.values())),
)
def test_conv2d_matches_torch(kw):
    tf = pytest.importorskip("torch.nn.functional")
    x, w, b = _rand(2, 4, 9, 8), _rand(4, 4 // kw["groups"], 3, 2), _rand(4)
    _torch_compare(lambda *a: F.conv2d(*a, **kw), lambda *a: tf.conv2d(*a, **kw), x, w, b)


def test_conv2d_weight_gradients_without_input_gradient_match_torch():
    """The first layer (input needs no gradient) takes another path in the unit."""
    torch = pytest.importorskip("torch")
    x, w, b = _rand(2, 3, 7, 6), _rand(4, 3, 3, 2), _rand(4)
    for kw in (dict(padding=1), dict(stride=(1, 2), dilation=(2, 1), padding=(2, 0))):
        wc, bc = cr.tensor(w, requires_grad=True), cr.tensor(b, requires_grad=True)
        wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        g = _rand(*torch.nn.functional.conv2d(torch.tensor(x), wt, bt, **kw).shape)
        F.conv2d(x, wc, bc, **kw).backward(g)
        torch.nn.functional.conv2d(torch.tensor(x), wt, bt, **kw).backward(torch.tensor(g))
        np.testing.assert_allclose(wc.grad, wt.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(bc.grad, bt.grad.numpy(), atol=1e-10)


def test_conv_pairs_unbatched_and_float32_match_torch():
    tf = pytest.importorskip("torch.nn.functional")
    x, w, b = _rand(2, 3, 10, 9), _rand(6, 1, 3, 4), _rand(6)
    kw = dict(stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=3)
    _torch_compare(lambda *a: F.conv2d(*a, **kw), lambda *a: tf.conv2d(*a, **kw), x, w, b)
    _torch_compare(
        lambda *a: F.conv2d(*a, **kw), lambda *a: tf.conv2d(*a, **kw), x, w, b, dtype=np.float32
    )
    _torch_compare(lambda *a: F.conv2d(*a, **kw), lambda *a: tf.conv2d(*a, **kw), x[0], w, b)
    _torch_compare(
        lambda *a: F.conv1d(*a, padding="same"),
        lambda *a: tf.conv1d(*a, padding="same"),
        x[0, :, :, 0],
        _rand(2, 3, 4),
        dtype=np.float32,
    )


_POOL_OPTIONS = [
    dict(kernel_size=k, stride=s, padding=p, ceil_mode=c)
    for k, s, p, c in itertools.product((2, 3), (None, 1, 2), (0, 1), (False, True))
]


@pytest.mark.parametrize("kw", _POOL_OPTIONS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_pooling_matches_torch(kw):
    tf = pytest.importorskip("torch.nn.functional")
    x1, x2 = _rand(2, 3, 11), _rand(2, 2, 7, 8)
    for dil in (1, 2):
        _torch_compare(
            partial(F.max_pool1d, dilation=dil, **kw),
            partial(tf.max_pool1d, dilation=dil, **kw),
            x1,
        )
        _torch_compare(
            partial(F.max_pool2d, dilation=dil, **kw),
            partial(tf.max_pool2d, dilation=dil, **kw),
            x2,
        )
    for cip in (True, False):
        _torch_compare(
            partial(F.avg_pool1d, count_include_pad=cip, **kw),
            partial(tf.avg_pool1d, count_include_pad=cip, **kw),
            x1,
        )
        _torch_compare(
            partial(F.avg_pool2d, count_include_pad=cip, **kw),
            partial(tf.avg_pool2d, count_include_pad=cip, **kw),
            x2,
        )
    _torch_compare(
        lambda a: F.avg_pool2d(a, divisor_override=5, **kw),
        lambda a: tf.avg_pool2d(a, divisor_override=5, **kw),
        x2,
        dtype=np.float32,
    )


def test_max_pool_indices_ties_and_nan_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = np.round(_rand(2, 3, 7, 9)).astype(np.float32)  # many ties
    x[0, 0, 1, 1] = np.nan
    out, idx = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    ot, it = tf.max_pool2d(torch.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(out.data, ot.numpy())
    np.testing.assert_array_equal(idx.data, it.numpy())
    _, idx1 = F.max_pool1d(x[0, :, 0], 2, 1, dilation=2, return_indices=True)
    np.testing.assert_array_equal(
        idx1.data, tf.max_pool1d(torch.tensor(x[0, :, 0]), 2, 1, dilation=2, return_indices=True)[1]
    )
    # ties: the first maximum gets the gradient, as in PyTorch
    _torch_compare(
        lambda a: F.max_pool2d(a, 2, 1),
        lambda a: tf.max_pool2d(a, 2, 1),
        np.round(_rand(1, 2, 5, 5)),
    )


@pytest.mark.parametrize("size", [1, 3, 5, 7, (2, None), (4, 1)])
def test_adaptive_avg_pool_matches_torch(size):
    tf = pytest.importorskip("torch.nn.functional")
    if not isinstance(size, tuple):
        _torch_compare(
            lambda a: F.adaptive_avg_pool1d(a, size),
            lambda a: tf.adaptive_avg_pool1d(a, size),
            _rand(2, 3, 10),
        )
    _torch_compare(
        lambda a: F.adaptive_avg_pool2d(a, size),
        lambda a: tf.adaptive_avg_pool2d(a, size),
        _rand(2, 3, 9, 7),
    )


# ------------------------------------------------------------------------------------------------
# layers: PyTorch's names, defaults, shapes and initialization
# ------------------------------------------------------------------------------------------------


def test_conv_layers_match_torch_with_copied_weights():
    torch = pytest.importorskip("torch")
    pairs = [
        (
            cr.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, dtype=np.float64),
            torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2).double(),
            (3, 4, 12),
        ),
        (
            cr.nn.Conv2d(3, 5, (3, 2), padding="same", bias=False, dtype=np.float64),
            torch.nn.Conv2d(3, 5, (3, 2), padding="same", bias=False).double(),
            (2, 3, 6, 7),
        ),
    ]
    for c, t, shape in pairs:
        assert c.weight.shape == tuple(t.weight.shape)
        assert (c.kernel_size, c.stride, c.padding, c.dilation, c.groups) == (
            t.kernel_size,
            t.stride,
            t.padding,
            t.dilation,
            t.groups,
        )
        with torch.no_grad():
            t.weight.copy_(torch.tensor(c.weight.data))
            if c.bias is not None:
                t.bias.copy_(torch.tensor(c.bias.data))
        x = _rand(*shape)
        np.testing.assert_allclose(c(x).data, t(torch.tensor(x)).detach().numpy(), atol=1e-12)


def test_conv_init_is_torchs():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = torch.nn.Conv2d(6, 64, 3, groups=2)
    c = cr.nn.Conv2d(6, 64, 3, groups=2, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(3 * 9)  # fan_in = in_channels/groups · kH · kW
    for a in (c.weight.data, c.bias.data, t.weight.detach().numpy(), t.bias.detach().numpy()):
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.9 * bound
    assert c.weight.dtype == np.float32 and c.weight.shape == (64, 3, 3, 3)


def test_pool_layers_defaults_match_torch():
    torch = pytest.importorskip("torch")
    x = _rand(2, 3, 8, 9)
    for c, t in [
        (cr.nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (cr.nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (cr.nn.AvgPool2d(3, 1, 1), torch.nn.AvgPool2d(3, 1, 1)),
        (cr.nn.AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3))),
        (cr.nn.Unflatten(2, (2, 4)), torch.nn.Unflatten(2, (2, 4))),
    ]:
        assert c.stride == t.stride if hasattr(t, "stride") else True
        np.testing.assert_allclose(c(x).data, t(torch.tensor(x)).numpy(), atol=1e-12)
    for c, t in [
        (cr.nn.MaxPool1d(3), torch.nn.MaxPool1d(3)),
        (cr.nn.AvgPool1d(2), torch.nn.AvgPool1d(2)),
        (cr.nn.AdaptiveAvgPool1d(1), torch.nn.AdaptiveAvgPool1d(1)),
    ]:
        np.testing.assert_allclose(
            c(x[:, :, 0]).data, t(torch.tensor(x[:, :, 0])).numpy(), atol=1e-12
        )


def test_batchnorm2d_matches_torch_in_train_and_eval():
    torch = pytest.importorskip("torch")
    c, t = cr.nn.BatchNorm2d(3, dtype=np.float64), torch.nn.BatchNorm2d(3).double()
    for _ in range(2):
        x = _rand(4, 3, 5, 2)
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        g = _rand(4, 3, 5, 2)
        c(xc).backward(g)
        t(xt).backward(torch.tensor(g))
        np.testing.assert_allclose(xc.grad, xt.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(c.weight.grad, t.weight.grad.numpy(), atol=1e-10)
        t.weight.grad = None
        c.zero_grad()
    np.testing.assert_allclose(c.running_var, t.running_var.numpy(), atol=1e-12)
    c.eval(), t.eval()
    x = _rand(2, 3, 4, 4)
    np.testing.assert_allclose(c(x).data, t(torch.tensor(x)).detach().numpy(), atol=1e-10)
    with pytest.raises(ShapeError, match=r"BatchNorm2d: expected 4D input \(N, C, H, W\)"):
        c(_rand(2, 3, 4))


# ------------------------------------------------------------------------------------------------
# errors: one line naming the thing, the value and what was expected
# ------------------------------------------------------------------------------------------------


def test_shape_errors_are_named():
    with pytest.raises(
        ShapeError,
        match=r"conv1d: input of shape \(2, 3, 10\) does not fit weight "
        r"of shape \(4, 2, 3\): expected 2 input channels",
    ):
        F.conv1d(_rand(2, 3, 10), _rand(4, 2, 3))
    with pytest.raises(
        ShapeError,
        match=r"conv2d: expected input of shape \(N, C, H, W\) or "
        r"\(C, H, W\), got shape \(10,\)",
    ):
        F.conv2d(_rand(10), _rand(4, 1, 3, 3))
    with pytest.raises(
        ShapeError,
        match=r"conv1d: input of shape \(1, 1, 3\) padded to 3 .* "
        r"smaller than the kernel \(5",
    ):
        cr.nn.Conv1d(1, 2, 5)(_rand(1, 1, 3))
    with pytest.raises(ShapeError, match=r"conv1d: bias of shape \(3,\)"):
        F.conv1d(_rand(1, 1, 8), _rand(4, 1, 3), _rand(3))
    with pytest.raises(ShapeError, match=r"max_pool2d: input of shape \(1, 1, 2, 2\) is too small"):
        F.max_pool2d(_rand(1, 1, 2, 2), 3)
    with pytest.raises(ShapeError, match=r"unflatten: sizes \(3, 5\) multiply to 15"):
        cr.nn.Unflatten(1, (3, 5))(_rand(2, 16))


def test_config_errors_are_named():
    with pytest.raises(ConfigError, match="Conv1d: in_channels=3 must be divisible by groups=2"):
        cr.nn.Conv1d(3, 4, 3, groups=2)
    with pytest.raises(ConfigError, match="padding='same' is not supported for strided"):
        cr.nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ConfigError, match=r"Conv2d: kernel_size must be an integer or 2 integers"):
        cr.nn.Conv2d(1, 1, (1, 2, 3))
    with pytest.raises(ConfigError, match="Conv1d: padding_mode 'reflect' is not supported"):
        cr.nn.Conv1d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ConfigError, match="max_pool1d: padding should be at most half"):
        F.max_pool1d(_rand(1, 1, 8), 2, padding=2)
    with pytest.raises(ConfigError, match="MaxPool2d: stride must be positive"):
        cr.nn.MaxPool2d(2, stride=0)


# ------------------------------------------------------------------------------------------------
# the network: summary, model files, explain, graph, builder, training
# ------------------------------------------------------------------------------------------------


def _image_net():
    return cr.nn.Sequential(
        cr.nn.Unflatten(1, (1, 8, 8)),
        cr.nn.Conv2d(1, 4, 3, padding=1),
        cr.nn.BatchNorm2d(4),
        cr.nn.ReLU(),
        cr.nn.MaxPool2d(2),
        cr.nn.Conv2d(4, 6, 3, padding="same", groups=2),
        cr.nn.ReLU(),
        cr.nn.AvgPool2d(2),
        cr.nn.AdaptiveAvgPool2d(1),
        cr.nn.Flatten(),
        cr.nn.Linear(6, 10),
    )


def test_summary_shows_conv_shapes():
    from chainrule.examples.mnist1d_cnn import mnist1d_cnn

    s = mnist1d_cnn().summary((40,))
    assert "(None, 25, 19)" in s and "(None, 25, 5)" in s and "(None, 125)" in s
    assert "Total params: 5,210" in s
    s2 = _image_net().summary((64,))
    assert "(None, 4, 4, 4)" in s2 and "(None, 6, 1, 1)" in s2


def test_model_file_round_trip(tmp_path):
    pytest.importorskip("safetensors")
    net = _image_net()
    x = _rand(5, 64).astype(np.float32)
    cr.fit(
        net,
        cr.nn.CrossEntropyLoss(),
        cr.optim.SGD(net.parameters(), lr=0.1),
        x,
        np.arange(5),
        epochs=1,
        batch_size=5,
    )
    net.eval()
    cr.save(net, tmp_path / "cnn.safetensors")
    back = cr.load(tmp_path / "cnn.safetensors")
    np.testing.assert_array_equal(back(x).data, net(x).data)
    assert repr(back) == repr(net)


def test_explain_and_graph_handle_conv_layers():
    net = _image_net()
    x, y = _rand(2, 64).astype(np.float32), np.array([1, 3])
    ex = cr.explain(net, x, y, cr.nn.CrossEntropyLoss())
    text = str(ex)
    assert "Conv2d" in text and "MaxPool2d" in text
    assert all(t["ok"] for t in ex.terms)
    from chainrule.viz.graph import graph

    svg = graph(cr.nn.CrossEntropyLoss()(net(x), y)).svg
    assert "conv" in str(svg)


def test_conv_net_builder_shapes_and_errors():
    from chainrule.examples.mnist1d_cnn import mnist1d_cnn
    from chainrule.nn import conv_net

    net = mnist1d_cnn()
    assert [type(m).__name__ for m in net] == [
        "Unflatten",
        "Conv1d",
        "ReLU",
        "Conv1d",
        "ReLU",
        "Conv1d",
        "ReLU",
        "Flatten",
        "Linear",
    ]
    assert net[-1].in_features == 125
    assert net(_rand(3, 40).astype(np.float32)).shape == (3, 10)
    img = conv_net((1, 8, 8), 10, channels=(8, 16), kernels=3, stride=1)
    assert isinstance(img[1], cr.nn.Conv2d) and img(_rand(2, 64)).shape == (2, 10)
    with pytest.raises(ConfigError, match="too small"):
        conv_net((1, 8), 2, channels=(4, 4, 4, 4), kernels=5, padding=0)
    with pytest.raises(ConfigError, match="2 kernel sizes for 3 conv layers"):
        conv_net((1, 40), 10, channels=(1, 2, 3), kernels=(3, 3))


def test_cnn_learns_digits_images():
    pytest.importorskip("sklearn")
    ds = cr.data.load_dataset("digits")
    order = np.random.default_rng(0).permutation(len(ds.X))
    X, y = ds.X[order] / 16.0, ds.y[order]
    from chainrule.nn import conv_net

    net = conv_net(
        (1, 8, 8), 10, channels=(8, 16), kernels=3, stride=2, rng=np.random.default_rng(0)
    )
    cr.fit(
        net,
        cr.nn.CrossEntropyLoss(),
        cr.optim.Adam(net.parameters(), lr=1e-2),
        X[:1400],
        y[:1400],
        epochs=5,
        batch_size=50,
        seed=0,
    )
    acc = cr.evaluate(net, cr.nn.CrossEntropyLoss(), X[1400:], y[1400:])["accuracy"]
    assert acc > 0.93  # 0.95 when written


def test_datasets_know_their_sample_shape():
    pytest.importorskip("sklearn")
    ds = cr.data.load_dataset("digits", n_samples=20)
    assert ds.sample_shape == (1, 8, 8) and ds.images.shape == (20, 1, 8, 8)
    np.testing.assert_array_equal(ds.images[3, 0, 2], ds.X[3, 16:24])
    assert cr.data.load_dataset("iris").sample_shape is None
    with pytest.raises(cr.DataError, match="'iris' is a table"):
        _ = cr.data.load_dataset("iris").images


def test_conv_benchmark_smoke(tmp_path):
    """benchmarks/bench_conv.py runs, interleaves, and every framework computes the same losses
    (timings are never asserted)."""
    pytest.importorskip("torch")
    import importlib.util
    import pathlib
    import sys

    bench_dir = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench_dir))
    try:
        spec = importlib.util.spec_from_file_location("bench_conv", bench_dir / "bench_conv.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["bench_conv"] = mod
        spec.loader.exec_module(mod)
        res = mod.main(
            [
                "--quick",
                "--rounds",
                "1",
                "--target-time",
                "0.005",
                "--settle",
                "0",
                "--outdir",
                str(tmp_path),
            ]
        )
    finally:
        sys.path.remove(str(bench_dir))
        sys.modules.pop("bench_conv", None)
    assert [c["case"] for c in res["cases"]] == ["conv_mnist1d_b100", "conv_digits_b64"]
    for c in res["cases"]:
        assert c["agreement"]["max_abs_diff"] < 1e-4
        assert set(c["median_samples_per_s"]) == {"chainrule", "compiled", "torch"}
        assert c["ratio_compiled_torch"]["median"] > 0
        # the compiled step computes the eager step's numbers
        assert c["agreement"]["losses"]["compiled"] == c["agreement"]["losses"]["chainrule"]
    assert (tmp_path / "conv_latest.md").read_text().count("|") > 10


def test_estimators_build_a_cnn(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("safetensors")
    from chainrule.sklearn import NetClassifier, NetRegressor, load

    ds = cr.data.load_dataset("digits", n_samples=300)
    clf = NetClassifier(
        conv=(4, 8), conv_kernel=3, input_shape=(1, 8, 8), hidden=(), epochs=3, random_state=0
    ).fit(ds.X, ds.y)
    kinds = [type(m).__name__ for m in clf.model_]
    assert kinds == ["Unflatten", "Conv2d", "ReLU", "Conv2d", "ReLU", "Flatten", "Linear"]
    assert clf.score(ds.X, ds.y) > 0.5
    clf.save(tmp_path / "cnn.safetensors")
    back = load(tmp_path / "cnn.safetensors")
    assert (back.conv, back.conv_kernel, back.input_shape) == ((4, 8), (3,), (1, 8, 8))
    np.testing.assert_array_equal(back.predict(ds.X), clf.predict(ds.X))
    reg = NetRegressor(conv="3,3", hidden=(5,), epochs=2, random_state=0).fit(
        ds.X[:, :40], ds.X[:, 40]
    )
    assert isinstance(reg.model_[1], cr.nn.Conv1d) and reg.model_[-1].out_features == 1
    with pytest.raises(ConfigError, match="input_shape=.*64 values"):
        NetClassifier(conv=(4,), input_shape=(1, 7, 7), epochs=1).fit(ds.X, ds.y)
    with pytest.raises(ConfigError, match="conv='a'"):
        NetClassifier(conv="a", epochs=1).fit(ds.X, ds.y)


def test_command_trains_a_cnn(tmp_path):
    """chainrule train --conv: digits as 1x8x8 images (Conv2d), mnist1d-like rows as signals."""
    pytest.importorskip("click")
    pytest.importorskip("sklearn")
    import subprocess
    import sys

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "chainrule.cli", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    out = tmp_path / "cnn.safetensors"
    p = run(
        "train",
        "--dataset",
        "digits",
        "--conv",
        "4,8",
        "--conv-kernel",
        "3",
        "--epochs",
        2,
        "--out",
        out,
        "-q",
    )
    assert p.returncode == 0, p.stderr
    model, info = cr.load(out, with_info=True)
    assert [type(m).__name__ for m in model][:3] == ["Unflatten", "Conv2d", "ReLU"]
    assert info["training"]["conv"] == {
        "channels": [4, 8],
        "kernel": [3],
        "stride": 2,
        "input_shape": [1, 8, 8],
    }
    assert not any(isinstance(m, cr.nn.Linear) for m in list(model)[:-1])  # --hidden: none
    bad = run("train", "--dataset", "digits", "--conv", "4,0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--conv: '4,0' is not a list of positive whole numbers" in bad.stderr
    small = run("train", "--dataset", "iris", "--conv", "8,8,8,8", "--conv-kernel", "5")
    assert small.returncode == 1 and "too small for a kernel of 5" in small.stderr


def test_mnist1d_cnn_example_runs():
    """examples/mnist1d_cnn.py as a user runs it, for a few steps (the 6000-step figures are in
    docs/nn.md)."""
    pytest.importorskip("mnist1d")
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parent.parent / "examples" / "mnist1d_cnn.py"
    p = subprocess.run(
        [sys.executable, str(script), "--seeds", "0", "--steps", "80"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].split() == ["seed", "test", "acc", "train", "acc", "seconds"]
    acc = float(lines[1].split()[1])
    assert 0.3 < acc <= 1.0  # 2 passes over the data: well above chance (0.1)
    assert lines[-1].startswith("median test accuracy over 1 seeds:")
