"""chainrule.onnx: export to ONNX (run in onnxruntime) and load chain-shaped ONNX graphs.

Every exportable layer, and whole networks (model files written by the command included), run in
onnxruntime with outputs equal to chainrule's to 1e-5 and the same labels; the same networks
exported by PyTorch (both exporters) load back and match PyTorch; bad input gets one-line errors.
"""

import json
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import chainrule as cr  # noqa: E402
from chainrule import nn  # noqa: E402
from chainrule import onnx as cro  # noqa: E402

TOL = 1e-5


def run_onnx(path, X, names=None):
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    outs = sess.run(names, {"X": X})
    return outs if names is None or len(names) > 1 else outs[0]


def chainrule_out(net, X):
    net.eval()
    with cr.no_grad():
        return np.asarray(net(X).data)


def randomize_bn(bn, rng):
    """Running statistics and affine parameters that are not the defaults (1, 0)."""
    C = bn.num_features
    if bn.running_mean is not None:
        bn.running_mean[...] = rng.normal(size=C)
        bn.running_var[...] = rng.uniform(0.5, 2.0, size=C)
    if bn.weight is not None:
        bn.weight.data[...] = rng.normal(size=C)
    if bn.bias is not None:
        bn.bias.data[...] = rng.normal(size=C)
    return bn


def _bn(*args, **kwargs):
    return randomize_bn(nn.BatchNorm1d(*args, **kwargs), np.random.default_rng(1))


# (id, network factory, one sample's shape, opsets, loads back with chainrule.onnx.load)
LAYERS = [
    ("linear", lambda: nn.Linear(5, 4), (5,), (13, 17), True),
    ("linear-nobias", lambda: nn.Linear(5, 4, bias=False), (5,), (17,), True),
    ("linear-3d", lambda: nn.Linear(5, 4), (3, 5), (17,), True),
    ("relu", nn.ReLU, (6,), (17,), True),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), (6,), (17,), True),
    ("tanh", nn.Tanh, (6,), (17,), True),
    ("sigmoid", nn.Sigmoid, (6,), (17,), True),
    ("softmax", nn.Softmax, (6,), (13, 17), True),
    ("softmax-dim1-3d", lambda: nn.Softmax(dim=1), (3, 4), (17,), False),
    ("log_softmax", nn.LogSoftmax, (6,), (17,), True),
    ("gelu", nn.GELU, (6,), (17, 20), True),
    ("gelu-tanh", lambda: nn.GELU("tanh"), (6,), (17, 20), True),
    ("dropout", lambda: nn.Dropout(0.3), (6,), (17,), True),
    ("identity", nn.Identity, (6,), (17,), True),
    ("batchnorm", lambda: _bn(6), (6,), (17,), True),
    ("batchnorm-3d", lambda: _bn(3), (3, 4), (17,), True),
    ("batchnorm-noaffine", lambda: _bn(6, affine=False), (6,), (17,), True),
    ("batchnorm-nobias", lambda: _bn(6, bias=False), (6,), (17,), True),
    ("batchnorm-batchstats", lambda: _bn(6, track_running_stats=False), (6,), (17, 18), False),
    ("flatten", nn.Flatten, (3, 4), (17,), True),
    ("flatten-all", lambda: nn.Flatten(0, -1), (3, 4), (17,), False),
    ("flatten-middle", lambda: nn.Flatten(1, 2), (2, 3, 4), (17,), False),
    ("flatten-end", lambda: nn.Flatten(2, 3), (2, 3, 4), (17,), False),
]


@pytest.mark.parametrize("name,make,shape,opsets,loads", LAYERS, ids=[c[0] for c in LAYERS])
def test_every_layer_runs_in_onnxruntime_as_in_chainrule(
    tmp_path, name, make, shape, opsets, loads
):
    cr.manual_seed(0)
    layer = make()
    X = np.random.default_rng(0).normal(size=(7,) + shape).astype(np.float32)
    ref = chainrule_out(layer, X)
    for opset in opsets:
        path = cro.export(layer, tmp_path / f"{name}-{opset}.onnx", opset=opset, input_shape=shape)
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        assert [i.name for i in model.graph.input] == ["X"]
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
        got = run_onnx(path, X, ["output"])
        assert got.shape == ref.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL, err_msg=f"{name} opset {opset}")
        # a different batch size runs too (the batch dimension is dynamic)
        assert run_onnx(path, X[:3], ["output"]).shape == chainrule_out(layer, X[:3]).shape
        if loads:
            back = cro.load(path)
            np.testing.assert_allclose(chainrule_out(back, X), ref, rtol=0, atol=TOL)


def classifier(n_in=4, n_out=3):
    return nn.Sequential(
        nn.Linear(n_in, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, n_out)
    )


def regressor(n_in=5):
    return nn.Sequential(
        nn.Linear(n_in, 32),
        nn.GELU(),
        _bn(32),
        nn.Dropout(0.2),
        nn.Linear(32, 8),
        nn.LeakyReLU(0.2),
        nn.Sigmoid(),
        nn.Linear(8, 1),
    )


def sequence_net():
    """(N, 3, 4) in: Linear on the last axis, BatchNorm over 3 channels, Flatten, Linear."""
    return nn.Sequential(
        nn.Linear(4, 6),
        _bn(3),
        nn.Flatten(),
        nn.Linear(18, 10),
        nn.GELU("tanh"),
        nn.Identity(),
        nn.Linear(10, 5),
        nn.LogSoftmax(dim=1),
    )


NETS = {
    "classifier": (classifier, (4,)),
    "regressor": (regressor, (5,)),
    "sequence": (sequence_net, (3, 4)),
}


@pytest.mark.parametrize("net_name", list(NETS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whole_networks_round_trip(tmp_path, net_name, dtype):
    make, shape = NETS[net_name]
    cr.manual_seed(3)
    net = make().to(dtype)
    X = np.random.default_rng(2).normal(size=(64,) + shape).astype(dtype)
    ref = chainrule_out(net, X)
    path = cro.export(net, tmp_path / "net.onnx", dtype=dtype, input_shape=shape)
    got = run_onnx(path, X, ["output"])
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    if ref.shape[1] > 1:
        assert np.array_equal(got.argmax(1), ref.argmax(1))
    back = cro.load(path)
    assert all(p.dtype == dtype for p in back.state_dict().values() if p.dtype.kind == "f")
    np.testing.assert_allclose(chainrule_out(back, X), ref, rtol=0, atol=TOL)
    meta = {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props}
    assert meta["input_shape"] == list(shape)
    assert meta["architecture"]["type"] == "Sequential"


def test_exported_graph_uses_standard_operators_only(tmp_path):
    path = cro.export(regressor(), tmp_path / "r.onnx")
    model = onnx.load(path)
    assert {o.domain for o in model.opset_import} == {""}
    assert [n.op_type for n in model.graph.node] == [
        "Gemm",
        "Mul",
        "Erf",
        "Add",
        "Mul",
        "Mul",
        "BatchNormalization",
        "Identity",
        "Gemm",
        "LeakyRelu",
        "Sigmoid",
        "Gemm",
    ]
    path20 = cro.export(regressor(), tmp_path / "r20.onnx", opset=20)
    assert "Gelu" in [n.op_type for n in onnx.load(path20).graph.node]


def test_export_restores_training_mode(tmp_path):
    net = regressor()
    net.train()
    cro.export(net, tmp_path / "r.onnx")
    assert all(m.training for m in net.modules())
    assert int(net[2].num_batches_tracked) == 0  # the shape probe ran in eval mode


# --- model files written by the command -----------------------------------------------------


def command(*args, cwd):
    """``chainrule ARGS`` in this process (the same entry point as the installed command):
    (exit status, stdout, stderr)."""
    import contextlib
    import io

    from chainrule.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


@pytest.fixture(scope="module")
def command_models(tmp_path_factory):
    pytest.importorskip("click")
    pytest.importorskip("safetensors")
    d = tmp_path_factory.mktemp("cmd")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 2.0]
    names = np.array(["low", "mid", "high"])
    score = X[:, 0] + (X[:, 1] - 50) / 10
    labels = names[np.digitize(score, [-0.7, 0.7])]
    write_csv(
        d / "cls.csv",
        ["a", "b", "c", "kind"],
        [[*np.round(x, 5), lab] for x, lab in zip(X, labels, strict=True)],
    )
    y = 3 * X[:, 0] - 0.2 * X[:, 1] + 1000 + rng.normal(scale=0.1, size=300)
    write_csv(
        d / "reg.csv",
        ["a", "b", "c", "price"],
        [[*np.round(x, 5), round(v, 4)] for x, v in zip(X, y, strict=True)],
    )
    binary = np.where(score > 0, "yes", "no")
    write_csv(
        d / "bin.csv",
        ["a", "b", "c", "ok"],
        [[*np.round(x, 5), lab] for x, lab in zip(X, binary, strict=True)],
    )
    runs = {
        "cls": ("cls.csv", "kind", []),
        "reg": ("reg.csv", "price", []),
        "bce_logits": ("bin.csv", "ok", ["--loss", "bce_with_logits"]),
        "bce": ("bin.csv", "ok", ["--loss", "bce"]),
        "hinge": ("bin.csv", "ok", ["--loss", "hinge"]),
    }
    for name, (data, target, extra) in runs.items():
        code, _, err = command(
            "train",
            "--data",
            data,
            "--target",
            target,
            "--epochs",
            "15",
            "-q",
            "--hidden",
            "8,8",
            "--out",
            f"{name}.safetensors",
            *extra,
            cwd=d,
        )
        assert code == 0, err
        code, out, err = command("export", f"{name}.safetensors", "--onnx", f"{name}.onnx", cwd=d)
        assert code == 0, err
        assert f"wrote {name}.onnx" in out
    return d, X.astype(np.float32)


def file_outputs(path, X):
    """What the command computes from a model file: the network's outputs on standardized X."""
    from chainrule.data import Standardizer

    model, info = cr.load(path, with_info=True)
    pre = info["preprocessing"]
    return cr.predict(model, Standardizer.from_dict(pre["standardizer"]).transform(X)), pre


def test_command_classifier_file_exports_with_its_preprocessing(command_models):
    d, X = command_models
    out, pre = file_outputs(d / "cls.safetensors", X)
    label, proba = run_onnx(d / "cls.onnx", X, ["label", "probabilities"])
    assert label.dtype == np.int64 and proba.dtype == np.float32 and proba.shape == (len(X), 3)
    z = out - out.max(1, keepdims=True)
    p_ref = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(proba, p_ref, rtol=0, atol=TOL)
    assert np.array_equal(label, out.argmax(1))
    model = onnx.load(d / "cls.onnx")
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["class_names"] == pre["label_names"] and meta["target"] == "kind"
    assert meta["feature_names"] == ["a", "b", "c"] and meta["task"] == "classification"
    # the same labels as 'chainrule predict' prints (in names)
    code, out, _ = command("predict", "cls.safetensors", "--data", "cls.csv", cwd=d)
    printed = [line.split(",")[0] for line in out.strip().splitlines()[1:]]
    assert printed == [meta["class_names"][i] for i in label]


@pytest.mark.parametrize(
    "name,kind", [("bce_logits", "logit"), ("bce", "probability"), ("hinge", "logit")]
)
def test_command_binary_files_export(command_models, name, kind):
    d, X = command_models
    out, pre = file_outputs(d / f"{name}.safetensors", X)
    assert pre["output"] == kind
    second = "scores" if name == "hinge" else "probabilities"
    label, other = run_onnx(d / f"{name}.onnx", X, ["label", second])
    threshold = 0.5 if kind == "probability" else 0.0
    assert np.array_equal(label, (out[:, 0] > threshold).astype(np.int64))
    if name == "hinge":
        np.testing.assert_allclose(other, out[:, 0], rtol=0, atol=TOL)
    else:
        p1 = out[:, 0] if kind == "probability" else 1 / (1 + np.exp(-out[:, 0].astype(float)))
        np.testing.assert_allclose(other, np.stack([1 - p1, p1], 1), rtol=0, atol=TOL)


def test_command_regressor_file_predicts_in_target_units(command_models):
    d, X = command_models
    out, pre = file_outputs(d / "reg.safetensors", X)
    ts = pre["target_standardizer"]
    ref = out[:, 0].astype(np.float64) * ts["scale"][0] + ts["mean"][0]
    pred = run_onnx(d / "reg.onnx", X, ["prediction"])
    assert pred.shape == (len(X),) and pred.dtype == np.float32
    assert abs(ref.mean() - 1000) < 50  # really in the target's units
    np.testing.assert_allclose(pred, ref, rtol=TOL, atol=0)
    code, out, _ = command("predict", "reg.safetensors", "--data", "reg.csv", cwd=d)
    printed = np.array([float(v) for v in out.split()[1:]])
    np.testing.assert_allclose(pred, printed, rtol=1e-6)
    meta = {p.key: json.loads(p.value) for p in onnx.load(d / "reg.onnx").metadata_props}
    assert meta["target"] == "price" and meta["task"] == "regression"


def test_export_command_errors(command_models):
    d, _ = command_models
    for args, message in [
        (("cls.safetensors", "--onnx", "x.onnx", "--opset", "7"), "export: opset must be"),
        (("missing.safetensors", "--onnx", "x.onnx"), "not found"),
        (("cls.safetensors", "--onnx", "cls.safetensors"), "is the same file as the input MODEL"),
        (("cls.safetensors", "--onnx", "nofolder/x.onnx"), "does not exist"),
    ]:
        code, out, err = command("export", *args, cwd=d)
        assert code == 1 and err.startswith("error: ") and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    assert not os.path.exists(d / "x.onnx")
    code, _, err = command("export", "cls.safetensors", cwd=d)
    assert code == 2 and "--onnx" in err


# --- errors ---------------------------------------------------------------------------------


class Doubler(nn.Module):
    def forward(self, x):
        return x * 2


def test_unexportable_layer_is_named(tmp_path):
    net = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), Doubler()))
    with pytest.raises(cr.ConfigError, match=r"layer 1\.1 is a Doubler, which has no ONNX mapping"):
        cro.export(net, tmp_path / "x.onnx")
    assert not os.path.exists(tmp_path / "x.onnx")
    with pytest.raises(cr.ConfigError, match="input_shape"):
        cro.export(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), tmp_path / "x.onnx")
    with pytest.raises(cr.ConfigError, match="cannot take input of shape"):
        cro.export(nn.Linear(3, 2), tmp_path / "x.onnx", input_shape=(4,))
    with pytest.raises(cr.ConfigError, match="opset must be an integer from 13"):
        cro.export(nn.Linear(3, 2), tmp_path / "x.onnx", opset=12)
    with pytest.raises(cr.ConfigError, match="expected a chainrule network"):
        cro.export([1, 2], tmp_path / "x.onnx")


def _graph_file(path, nodes, inits, n_in=3, out="y", n_out=None):
    h = onnx.helper
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", n_in])],
        [h.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()],
    )
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)
    return path


def test_load_names_the_first_unsupported_operator(tmp_path):
    h = onnx.helper
    w = np.ones((3, 4), np.float32)
    path = _graph_file(
        tmp_path / "u.onnx",
        [
            h.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
            h.make_node("Relu", ["a"], ["b"], name="act"),
            h.make_node("Elu", ["b"], ["c"], name="strange"),
            h.make_node("Selu", ["c"], ["y"], name="stranger"),
        ],
        {"w": w},
    )
    with pytest.raises(
        cr.ModelFileError, match=r"node 2 'strange' \(Elu\) is not supported: .*Gemm"
    ):
        cro.load(path)


def test_load_refuses_graphs_that_are_not_chains(tmp_path):
    h = onnx.helper
    path = _graph_file(
        tmp_path / "res.onnx",
        [
            h.make_node("Relu", ["x"], ["a"], name="act"),
            h.make_node("Add", ["a", "x"], ["y"], name="residual"),
        ],
        {},
    )
    with pytest.raises(cr.ModelFileError, match="used by several nodes|chain-shaped"):
        cro.load(path)
    path = _graph_file(
        tmp_path / "mm.onnx", [h.make_node("MatMul", ["x", "x"], ["y"], name="square")], {}
    )
    with pytest.raises(cr.ModelFileError, match="square"):
        cro.load(path)


def test_load_bad_files(tmp_path):
    with pytest.raises(cr.ModelFileError, match="file not found"):
        cro.load(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07 this is not protobuf \xff\xff\xff")
    with pytest.raises(cr.ModelFileError, match="not a readable ONNX model"):
        cro.load(tmp_path / "junk.onnx")
    # external data that went missing
    path = cro.export(classifier(), tmp_path / "c.onnx")
    model = onnx.load(path)
    onnx.save(
        model,
        tmp_path / "ext.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="ext.data",
        size_threshold=0,
    )
    np.testing.assert_allclose(
        chainrule_out(cro.load(tmp_path / "ext.onnx"), np.ones((2, 4))),
        chainrule_out(cro.load(path), np.ones((2, 4))),
        rtol=0,
        atol=0,
    )
    os.remove(tmp_path / "ext.data")
    with pytest.raises(cr.ModelFileError, match="external data"):
        cro.load(tmp_path / "ext.onnx")


def test_loaded_network_can_be_explained_trained_and_saved(tmp_path):
    pytest.importorskip("safetensors")
    cr.manual_seed(0)
    path = cro.export(classifier(), tmp_path / "c.onnx")
    net = cro.load(path)
    X = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    ex = cr.explain(net, X[:1], y[:1], nn.CrossEntropyLoss())
    assert "Linear" in str(ex)
    net.train()
    opt = cr.optim.SGD(net.parameters(), lr=0.1)
    history = cr.fit(net, nn.CrossEntropyLoss(), opt, X, y, epochs=5, batch_size=8, seed=0)
    assert history["loss"][-1] < history["loss"][0]
    cr.save(net, tmp_path / "c.safetensors")
    again = cr.load(tmp_path / "c.safetensors")
    np.testing.assert_array_equal(chainrule_out(again, X), chainrule_out(net, X))


# --- networks exported by PyTorch -----------------------------------------------------------


def torch_nets(torch):
    tnn = torch.nn
    torch.manual_seed(0)

    def bn(c, cls=tnn.BatchNorm1d):
        m = cls(c)
        with torch.no_grad():
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.normal_()
            m.bias.normal_()
        return m

    def bn2(c):
        return bn(c, tnn.BatchNorm2d)

    return {
        "classifier": (
            tnn.Sequential(
                tnn.Linear(4, 16),
                tnn.ReLU(),
                tnn.Linear(16, 16),
                tnn.Tanh(),
                tnn.Linear(16, 3),
                tnn.Softmax(dim=1),
            ),
            (4,),
        ),
        "regressor": (
            tnn.Sequential(
                tnn.Linear(5, 32),
                tnn.GELU(),
                bn(32),
                tnn.Dropout(0.2),
                tnn.Linear(32, 8),
                tnn.LeakyReLU(0.2),
                tnn.Sigmoid(),
                tnn.Linear(8, 1),
            ),
            (5,),
        ),
        "sequence": (
            tnn.Sequential(
                tnn.Linear(4, 6),
                bn(3),
                tnn.Flatten(),
                tnn.Linear(18, 10),
                tnn.GELU("tanh"),
                tnn.Identity(),
                tnn.Linear(10, 5),
                tnn.LogSoftmax(dim=1),
            ),
            (3, 4),
        ),
        "wide": (tnn.Sequential(tnn.Linear(64, 512), tnn.ReLU(), tnn.Linear(512, 10)), (64,)),
        "cnn1d": (
            tnn.Sequential(
                tnn.Unflatten(1, (1, 40)),
                tnn.Conv1d(1, 8, 5, padding=2),
                bn(8),
                tnn.ReLU(),
                tnn.MaxPool1d(2),
                tnn.Conv1d(8, 8, 3),
                tnn.GELU(),
                tnn.AvgPool1d(3),
                tnn.Flatten(),
                tnn.Linear(48, 10),
            ),
            (40,),
        ),
        "cnn2d": (
            tnn.Sequential(
                tnn.Conv2d(1, 4, 3, padding=1),
                bn2(4),
                tnn.ReLU(),
                tnn.MaxPool2d(2),
                tnn.Conv2d(4, 8, 3),
                tnn.LeakyReLU(0.1),
                tnn.AvgPool2d(2),
                tnn.Flatten(),
                tnn.Linear(32, 10),
                tnn.LogSoftmax(dim=1),
            ),
            (1, 12, 12),
        ),
        "mixed": (
            tnn.Sequential(
                tnn.Linear(4, 6),
                bn(3),
                tnn.Flatten(),
                tnn.Linear(18, 600),
                tnn.GELU(),
                tnn.Dropout(0.1),
                tnn.Linear(600, 32),
                tnn.LeakyReLU(0.2),
                tnn.Sigmoid(),
                bn(32),
                tnn.Tanh(),
                tnn.Linear(32, 10),
                tnn.ReLU(),
                tnn.GELU("tanh"),
                tnn.Identity(),
                tnn.LogSoftmax(dim=1),
            ),
            (3, 4),
        ),
    }


def torch_export(torch, net, shape, path, dynamo, opset=None):
    x = torch.randn((2,) + shape)
    kwargs = {"input_names": ["X"], "output_names": ["out"]}
    if dynamo:
        kwargs.update(
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("N", min=2)},),
            external_data=True,
            verbose=False,
        )
    else:
        kwargs.update(dynamo=False, dynamic_axes={"X": {0: "N"}}, opset_version=opset or 17)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), os.fspath(path), **kwargs)
    return path


def compare_with_torch(torch, net, shape, path):
    X = np.random.default_rng(5).normal(size=(50,) + shape).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(X)).numpy()
    loaded = cro.load(path)
    got = chainrule_out(loaded, X)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    if ref.shape[1] > 1:
        assert np.array_equal(got.argmax(1), ref.argmax(1))
    return loaded, float(np.abs(got - ref).max())


@pytest.mark.parametrize("name", ["classifier", "regressor", "sequence", "wide", "cnn1d", "cnn2d"])
def test_torchscript_exporter_networks_load(tmp_path, name):
    torch = pytest.importorskip("torch")
    if name.startswith("cnn") and not HAS_CONV:
        pytest.skip("chainrule.nn has no convolutional layers")
    net, shape = torch_nets(torch)[name]
    net.eval()
    for opset in (17, 20) if name in ("regressor", "sequence") else (17,):
        path = torch_export(torch, net, shape, tmp_path / f"{name}{opset}.onnx", False, opset)
        loaded, _ = compare_with_torch(torch, net, shape, path)
    kinds = [type(m).__name__ for m in loaded]
    if name == "regressor":  # the GELU arithmetic became one GELU layer
        assert kinds[:3] == ["Linear", "GELU", "BatchNorm1d"]
        assert loaded[2].momentum == pytest.approx(0.1) and loaded[2].eps == 1e-5


def test_dynamo_exporter_network_loads(tmp_path):
    """One network with every dense layer the exporter keeps (it is slow: ~10 s), weights in
    an external data file; and a 1-D CNN (Unflatten, Conv1d, pooling) when chainrule has one."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    for name in ["mixed"] + (["cnn1d"] if HAS_CONV else []):
        net, shape = torch_nets(torch)[name]
        net.eval()
        path = tmp_path / name / f"{name}.onnx"
        path.parent.mkdir()
        try:
            torch_export(torch, net, shape, path, True)
        except Exception as err:  # noqa: BLE001 - the exporter itself may fail offline
            pytest.skip(f"torch.onnx.export(dynamo=True) failed here: {type(err).__name__}: {err}")
        if name == "mixed":
            data = [f for f in os.listdir(path.parent) if f != path.name]
            assert data and sum(os.path.getsize(path.parent / f) for f in data) > 40_000
        compare_with_torch(torch, net, shape, path)


# --- estimators from chainrule.sklearn --------------------------------------------------------


@pytest.mark.parametrize("kind", ["classifier", "classifier-numbers", "regressor", "regressor-2"])
def test_estimators_export_with_their_preprocessing(tmp_path, kind):
    sk = pytest.importorskip("chainrule.sklearn")
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(120, 3)) * [1, 10, 0.1] + [0, 50, 2]).astype(np.float32)
    score = X[:, 0] + (X[:, 1] - 50) / 10
    if kind.startswith("classifier"):
        y = (np.array(["a", "b", "c"]) if kind == "classifier" else np.array([3, 7, 9]))[
            np.digitize(score, [-0.7, 0.7])
        ]
        est = sk.NetClassifier(hidden=(8,), epochs=5, random_state=0).fit(X, y)
    else:
        y = 3 * X[:, 0] + 100 if kind == "regressor" else np.stack([score, 2 * X[:, 2] - 5], 1)
        est = sk.NetRegressor(hidden=(8,), epochs=5, random_state=0).fit(X, y)
    path = cro.export(est, tmp_path / "est.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    if kind.startswith("classifier"):
        label, proba = run_onnx(path, X, ["label", "probabilities"])
        np.testing.assert_allclose(proba, est.predict_proba(X), rtol=0, atol=TOL)
        assert np.array_equal(np.asarray(est.classes_)[label], est.predict(X))
        if kind == "classifier-numbers":
            assert meta["classes"] == [3, 7, 9]
        else:
            assert meta["class_names"] == ["a", "b", "c"]
    else:
        pred = run_onnx(path, X, ["prediction"])
        ref = est.predict(X)
        assert pred.shape == ref.shape
        np.testing.assert_allclose(pred, ref, rtol=TOL, atol=TOL)
    with pytest.raises(cr.ConfigError, match="not fitted"):
        cro.export(sk.NetRegressor(), tmp_path / "x.onnx")


# --- convolutional layers (once chainrule.nn has them) ----------------------------------------

HAS_CONV = hasattr(nn, "Conv2d")
needs_conv = pytest.mark.skipif(not HAS_CONV, reason="chainrule.nn has no convolutional layers")


def _bn2(*args, **kwargs):
    return randomize_bn(nn.BatchNorm2d(*args, **kwargs), np.random.default_rng(1))


# (id, factory, one sample's shape, loads back with chainrule.onnx.load)
CONV_LAYERS = [
    ("conv1d", lambda: nn.Conv1d(2, 4, 3), (2, 10), True),
    (
        "conv1d-strided-dilated-grouped",
        lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2),
        (4, 12),
        True,
    ),
    ("conv1d-same-even", lambda: nn.Conv1d(2, 3, 4, padding="same"), (2, 9), True),
    (
        "conv2d",
        lambda: nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), bias=False),
        (3, 8, 7),
        True,
    ),
    ("conv2d-same", lambda: nn.Conv2d(2, 4, 3, padding="same"), (2, 6, 6), True),
    ("maxpool1d", lambda: nn.MaxPool1d(3, stride=2, padding=1), (3, 11), True),
    ("maxpool2d", lambda: nn.MaxPool2d(2), (2, 6, 7), True),
    ("maxpool2d-ceil", lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 8, 8), True),
    ("maxpool2d-dilated", lambda: nn.MaxPool2d(2, dilation=2, padding=1), (2, 7, 7), True),
    ("avgpool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1), (3, 11), True),
    (
        "avgpool1d-exclude-pad",
        lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
        (3, 11),
        True,
    ),
    ("avgpool2d-ceil", lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True), (2, 8, 8), True),
    ("avgpool2d-divisor", lambda: nn.AvgPool2d(2, divisor_override=3), (2, 6, 6), False),
    ("adaptive1d-global", lambda: nn.AdaptiveAvgPool1d(1), (3, 10), True),
    ("adaptive1d-even", lambda: nn.AdaptiveAvgPool1d(4), (3, 12), True),
    ("adaptive1d-uneven", lambda: nn.AdaptiveAvgPool1d(5), (3, 12), False),
    ("adaptive2d-uneven", lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 7, 9), False),
    ("adaptive2d-keep", lambda: nn.AdaptiveAvgPool2d((None, 2)), (2, 5, 6), True),
    ("batchnorm2d", lambda: _bn2(3), (3, 4, 5), True),
    ("batchnorm2d-batchstats", lambda: _bn2(3, track_running_stats=False), (3, 4, 5), False),
    ("unflatten", lambda: nn.Unflatten(1, (2, 5)), (10,), True),
    ("unflatten-inferred", lambda: nn.Unflatten(1, (-1, 5)), (10,), True),
]


@needs_conv
@pytest.mark.parametrize("name,make,shape,loads", CONV_LAYERS, ids=[c[0] for c in CONV_LAYERS])
def test_every_conv_layer_runs_in_onnxruntime_as_in_chainrule(tmp_path, name, make, shape, loads):
    cr.manual_seed(0)
    layer = make()
    X = np.random.default_rng(0).normal(size=(5,) + shape).astype(np.float32)
    ref = chainrule_out(layer, X)
    path = cro.export(layer, tmp_path / f"{name}.onnx", input_shape=shape)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    got = run_onnx(path, X, ["output"])
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL, err_msg=name)
    if loads:
        back = cro.load(path)
        np.testing.assert_allclose(chainrule_out(back, X), ref, rtol=0, atol=TOL)


def cnn1d():
    return nn.Sequential(
        nn.Unflatten(1, (1, 40)),
        nn.Conv1d(1, 8, 5, padding=2),
        _bn(8),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(8, 8, 3),
        nn.GELU(),
        nn.AdaptiveAvgPool1d(6),
        nn.Flatten(),
        nn.Linear(48, 10),
    )


def cnn2d():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        _bn2(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 10),
        nn.LogSoftmax(dim=1),
    )


if HAS_CONV:
    NETS.update({"cnn1d": (cnn1d, (40,)), "cnn2d": (cnn2d, (1, 12, 12))})


@needs_conv
def test_cnn_model_file_exports_with_its_preprocessing(tmp_path):
    pytest.importorskip("safetensors")
    from chainrule.data import Standardizer

    cr.manual_seed(0)
    net = cnn1d()
    X = (np.random.default_rng(0).normal(size=(30, 40)) * 3 + 1).astype(np.float32)
    scaler = Standardizer().fit(X)
    pre = {
        "feature_names": [f"x{i}" for i in range(40)],
        "standardizer": scaler.to_dict(),
        "task": "classification",
        "target": "digit",
        "label_names": [str(i) for i in range(10)],
        "output": "logits",
        "loss": "cross_entropy",
        "id_columns": [],
    }
    cr.save(net, tmp_path / "cnn.safetensors", preprocessing=pre)
    path = cro.export(tmp_path / "cnn.safetensors", tmp_path / "cnn.onnx")
    out, _ = file_outputs(tmp_path / "cnn.safetensors", X)
    label, proba = run_onnx(path, X, ["label", "probabilities"])
    z = out - out.max(1, keepdims=True)
    np.testing.assert_allclose(proba, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=0, atol=TOL)
    assert np.array_equal(label, out.argmax(1))


@needs_conv
def test_command_cnn_file_exports(tmp_path):
    """'chainrule train --conv' on digits (8x8 images) -> 'chainrule export' -> onnxruntime."""
    pytest.importorskip("click")
    pytest.importorskip("sklearn")
    from chainrule.data import load_dataset

    code, _, err = command(
        "train",
        "--dataset",
        "digits",
        "--conv",
        "4",
        "--epochs",
        "1",
        "-q",
        "--out",
        "d.safetensors",
        cwd=tmp_path,
    )
    assert code == 0, err
    code, _, err = command("export", "d.safetensors", "--onnx", "d.onnx", cwd=tmp_path)
    assert code == 0, err
    X = load_dataset("digits").X[:300].astype(np.float32)
    out, pre = file_outputs(tmp_path / "d.safetensors", X)
    assert any(type(m).__name__ == "Conv2d" for m in cr.load(tmp_path / "d.safetensors"))
    label, proba = run_onnx(tmp_path / "d.onnx", X, ["label", "probabilities"])
    z = out - out.max(1, keepdims=True)
    np.testing.assert_allclose(proba, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=0, atol=TOL)
    assert np.array_equal(label, out.argmax(1))
