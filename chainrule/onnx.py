"""ONNX export and import.

``export`` writes a chainrule network, a model file (or an estimator from ``chainrule.sklearn``)
as an ONNX model built from standard operators only, so that it runs in onnxruntime or any other
ONNX runtime; ``load`` builds a ``cr.nn.Sequential`` from a chain-shaped ONNX graph (as
``torch.onnx.export`` writes one for a ``torch.nn.Sequential``), so that a network trained
elsewhere can be explained, trained further and saved by chainrule::

    import chainrule as cr
    from chainrule import onnx as cro
    cro.export(net, "net.onnx")                          # input "X", output "output"
    cro.export("iris.safetensors", "iris.onnx")   # raw features in, label + probabilities out
    net = cro.load("from_torch.onnx")                    # a cr.nn.Sequential

Exported graphs describe inference: Dropout is the identity and BatchNorm uses its running
statistics (as after ``model.eval()``). The input has a dynamic batch dimension named ``N``.
``onnx`` is imported lazily (``pip install 'chainrule[onnx]'``); nothing else in chainrule needs
it.

The tables of what maps to what are ``EXPORTERS`` (chainrule layer -> ONNX operators) and
``IMPORTERS`` (ONNX operator -> chainrule layer); docs/interop.md lists both.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from . import nn as _nn
from ._files import write_atomic
from .errors import ConfigError, ModelFileError
from .registry import facts_of

__all__ = ["export", "load", "MIN_OPSET", "EXPORTERS", "IMPORTERS"]

#: the oldest opset export writes (Softmax/LogSoftmax take one axis since 13)
MIN_OPSET = 13
#: the batch dimension's name in exported graphs
BATCH = "N"


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ConfigError(
            "ONNX export and import need the onnx package: pip install 'chainrule[onnx]'"
        ) from None
    return onnx


# =============================================================================================
# export
# =============================================================================================


class _Graph:
    """Nodes and initializers of the graph being written, with unique names."""

    def __init__(self, onnx, opset: int, dtype):
        self.onnx, self.opset, self.dtype = onnx, opset, np.dtype(dtype)
        self.nodes: list[Any] = []  # onnx NodeProto
        self.initializers: list[Any] = []  # onnx TensorProto
        self.used: set[str] = set()

    def name(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, base: str, value, dtype=None) -> str:
        """An initializer holding ``value`` (in the graph's float dtype unless ``dtype`` says)."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def scalar(self, base: str, value) -> str:
        return self.const(base, np.asarray(value, dtype=self.dtype).reshape(()))

    def op(self, op_type: str, inputs, base: str, n_out: int = 1, **attrs):
        outs = [self.name(base if n_out == 1 else f"{base}_{k}") for k in range(n_out)]
        self.nodes.append(
            self.onnx.helper.make_node(
                op_type, list(inputs), outs, name=self.name(f"{base}/{op_type}"), **attrs
            )
        )
        return outs[0] if n_out == 1 else outs

    def reduce_mean(self, x: str, axes, base: str) -> str:
        if self.opset >= 18:  # axes became an input
            return self.op(
                "ReduceMean", [x, self.const(f"{base}.axes", axes, np.int64)], base, keepdims=1
            )
        return self.op("ReduceMean", [x], base, axes=list(axes), keepdims=1)


def _array(t, dtype) -> np.ndarray:
    return np.asarray(t.data if hasattr(t, "data") else t, dtype=dtype)


def _ex_linear(g: _Graph, m, x, in_shape, p):
    b = [g.const(p + "bias", _array(m.bias, g.dtype))] if m.bias is not None else []
    if len(in_shape) == 2:
        w = g.const(p + "weight", _array(m.weight, g.dtype))
        return g.op("Gemm", [x, w] + b, p + "gemm", transB=1)
    # (..., in) inputs: MatMul with the transposed weight, then the bias
    wt = g.const(p + "weight_T", _array(m.weight, g.dtype).T)
    y = g.op("MatMul", [x, wt], p + "matmul")
    return g.op("Add", [y, b[0]], p + "add") if b else y


def _ex_simple(op_type):
    def ex(g, m, x, in_shape, p):
        return g.op(op_type, [x], p + op_type.lower())

    return ex


def _ex_leaky_relu(g, m, x, in_shape, p):
    if g.dtype == np.float64:  # onnxruntime lacks a double LeakyRelu kernel at opset >= 20
        positive = g.op("Greater", [x, g.scalar(p + "zero", 0.0)], p + "positive")
        scaled = g.op("Mul", [x, g.scalar(p + "slope", m.negative_slope)], p + "scaled")
        return g.op("Where", [positive, x, scaled], p + "leakyrelu")
    return g.op("LeakyRelu", [x], p + "leakyrelu", alpha=float(m.negative_slope))


def _ex_gelu(g, m, x, in_shape, p):
    if g.opset >= 20 and g.dtype == np.float32:  # onnxruntime's Gelu is float32 only
        return g.op("Gelu", [x], p + "gelu", approximate=m.approximate)
    half, one = g.scalar(p + "half", 0.5), g.scalar(p + "one", 1.0)
    if m.approximate == "tanh":  # 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
        x3 = g.op("Mul", [g.op("Mul", [x, x], p + "x2"), x], p + "x3")
        inner = g.op(
            "Add", [x, g.op("Mul", [x3, g.scalar(p + "c", 0.044715)], p + "cx3")], p + "inner"
        )
        t = g.op(
            "Tanh",
            [g.op("Mul", [inner, g.scalar(p + "k", math.sqrt(2 / math.pi))], p + "scaled")],
            p + "tanh",
        )
        cdf = g.op("Add", [t, one], p + "one_plus")
    else:  # x Φ(x) = x · 0.5 (1 + erf(x / √2))
        h = g.op("Mul", [x, g.scalar(p + "inv_sqrt2", 1 / math.sqrt(2))], p + "scaled")
        if g.dtype == np.float64:  # onnxruntime has Erf for float32 only: erf to ~1e-7
            h = g.op("Cast", [h], p + "scaled_f32", to=g.onnx.TensorProto.FLOAT)
            e = g.op(
                "Cast", [g.op("Erf", [h], p + "erf_f32")], p + "erf", to=g.onnx.TensorProto.DOUBLE
            )
        else:
            e = g.op("Erf", [h], p + "erf")
        cdf = g.op("Add", [e, one], p + "one_plus")
    return g.op("Mul", [g.op("Mul", [x, cdf], p + "x_cdf"), half], p + "gelu")


def _ex_softmax(op_type):
    def ex(g, m, x, in_shape, p):
        return g.op(op_type, [x], p + op_type.lower(), axis=int(m.dim))

    return ex


def _ex_identity(g, m, x, in_shape, p):
    return g.op("Identity", [x], p + "identity")


def _ex_batchnorm(g, m, x, in_shape, p):
    C = m.num_features
    w = _array(m.weight, g.dtype) if m.weight is not None else np.ones(C, g.dtype)
    b = _array(m.bias, g.dtype) if m.bias is not None else np.zeros(C, g.dtype)
    if m.running_mean is not None and m.running_var is not None:
        ins = [
            x,
            g.const(p + "weight", w),
            g.const(p + "bias", b),
            g.const(p + "running_mean", _array(m.running_mean, g.dtype)),
            g.const(p + "running_var", _array(m.running_var, g.dtype)),
        ]
        momentum = 0.9 if m.momentum is None else 1.0 - float(m.momentum)
        return g.op(
            "BatchNormalization", ins, p + "batchnorm", epsilon=float(m.eps), momentum=momentum
        )
    # no running statistics: the batch's own (as chainrule and PyTorch do in eval mode)
    axes = [0] + list(range(2, len(in_shape)))
    bshape = [1, C] + [1] * (len(in_shape) - 2)
    mean = g.reduce_mean(x, axes, p + "mean")
    d = g.op("Sub", [x, mean], p + "centered")
    var = g.reduce_mean(g.op("Mul", [d, d], p + "squared"), axes, p + "var")
    std = g.op("Sqrt", [g.op("Add", [var, g.scalar(p + "eps", m.eps)], p + "var_eps")], p + "std")
    xhat = g.op("Div", [d, std], p + "normalized")
    y = g.op("Mul", [xhat, g.const(p + "weight", w.reshape(bshape))], p + "scaled")
    return g.op("Add", [y, g.const(p + "bias", b.reshape(bshape))], p + "batchnorm")


def _ex_flatten(g, m, x, in_shape, p):
    nd = len(in_shape)
    s, e = m.start_dim % nd, m.end_dim % nd
    if s == 1 and e == nd - 1:
        return g.op("Flatten", [x], p + "flatten", axis=1)
    shape = []
    for i in range(nd):
        if s <= i <= e:
            if i == s:  # the merged range: -1 lets the runtime count (it may hold the batch)
                shape.append(-1 if s == 0 else int(np.prod(in_shape[s : e + 1])))
        else:
            shape.append(0 if i == 0 else int(in_shape[i]))  # 0: copy the batch dimension
    return g.op("Reshape", [x, g.const(p + "shape", shape, np.int64)], p + "reshape")


def _ntuple(value, nd: int) -> list:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * nd


def _ex_conv(g, m, x, in_shape, p):
    from .nn.functional_conv import resolve_padding

    nd = len(in_shape) - 2
    pads = resolve_padding(m.padding, nd, m.kernel_size, m.stride, m.dilation, type(m).__name__)
    ins = [x, g.const(p + "weight", _array(m.weight, g.dtype))]
    if m.bias is not None:
        ins.append(g.const(p + "bias", _array(m.bias, g.dtype)))
    return g.op(
        "Conv",
        ins,
        p + "conv",
        kernel_shape=list(m.kernel_size),
        strides=list(m.stride),
        dilations=list(m.dilation),
        group=int(m.groups),
        pads=[lo for lo, _ in pads] + [hi for _, hi in pads],
    )


def _ex_max_pool(g, m, x, in_shape, p):
    nd = len(in_shape) - 2
    if m.return_indices:
        raise ConfigError(
            f"export: layer {p.rstrip('.') or type(m).__name__} is a "
            f"{type(m).__name__} with return_indices=True, whose second output "
            "has no place in a chain; export it with return_indices=False"
        )
    pad = _ntuple(m.padding, nd)
    return g.op(
        "MaxPool",
        [x],
        p + "maxpool",
        kernel_shape=_ntuple(m.kernel_size, nd),
        strides=_ntuple(m.stride, nd),
        pads=pad + pad,
        dilations=_ntuple(m.dilation, nd),
        ceil_mode=int(m.ceil_mode),
    )


def _ex_avg_pool(g, m, x, in_shape, p):
    nd = len(in_shape) - 2
    kernel, pad = _ntuple(m.kernel_size, nd), _ntuple(m.padding, nd)
    divisor = getattr(m, "divisor_override", None)
    include = bool(m.count_include_pad) or divisor is not None
    if divisor is not None and m.ceil_mode:
        raise ConfigError(
            f"export: layer {p.rstrip('.') or type(m).__name__} is an "
            f"{type(m).__name__} with divisor_override and ceil_mode=True, which "
            "AveragePool cannot express"
        )
    y = g.op(
        "AveragePool",
        [x],
        p + "avgpool",
        kernel_shape=kernel,
        strides=_ntuple(m.stride, nd),
        pads=pad + pad,
        ceil_mode=int(m.ceil_mode),
        count_include_pad=int(include),
    )
    if divisor is not None:  # the window's sum divided by divisor_override
        y = g.op("Mul", [y, g.scalar(p + "divisor", math.prod(kernel) / divisor)], p + "divided")
    return y


def _ex_adaptive_avg_pool(g, m, x, in_shape, p):
    nd = len(in_shape) - 2
    size = m.output_size
    sizes = [size] * nd if size is None or isinstance(size, (int, np.integer)) else list(size)
    spatial = list(in_shape[2:])
    sizes = [n if s is None else int(s) for s, n in zip(sizes, spatial, strict=True)]
    if all(s == 1 for s in sizes):
        return g.op("GlobalAveragePool", [x], p + "globalavgpool")
    if all(n % s == 0 for s, n in zip(sizes, spatial, strict=True)):  # equal windows
        kernel = [n // s for s, n in zip(sizes, spatial, strict=True)]
        return g.op("AveragePool", [x], p + "avgpool", kernel_shape=kernel, strides=kernel)
    # unequal windows [floor(i n / s), ceil((i + 1) n / s)): axis by axis, a mean per window
    for axis, (s, n) in enumerate(zip(sizes, spatial, strict=True), start=2):
        parts = []
        for i in range(s):
            lo, hi = (i * n) // s, -((-(i + 1) * n) // s)
            piece = g.op(
                "Slice",
                [
                    x,
                    g.const(f"{p}a{axis}_{i}.start", [lo], np.int64),
                    g.const(f"{p}a{axis}_{i}.end", [hi], np.int64),
                    g.const(f"{p}a{axis}_{i}.axis", [axis], np.int64),
                ],
                f"{p}a{axis}_{i}.window",
            )
            parts.append(g.reduce_mean(piece, [axis], f"{p}a{axis}_{i}.mean"))
        x = g.op("Concat", parts, f"{p}axis{axis}", axis=axis) if len(parts) > 1 else parts[0]
    return x


def _ex_unflatten(g, m, x, in_shape, p):
    nd = len(in_shape)
    d = m.dim % nd
    if d == 0:
        raise ConfigError(
            f"export: layer {p.rstrip('.') or 'Unflatten'} unflattens the batch "
            "dimension (dim=0), which an exported graph keeps dynamic"
        )
    sizes = list(m.unflattened_size)
    if -1 in sizes:
        known = math.prod(v for v in sizes if v != -1)
        sizes[sizes.index(-1)] = in_shape[d] // known if known else 0
    shape = [0] + [int(v) for v in in_shape[1:d]] + sizes + [int(v) for v in in_shape[d + 1 :]]
    return g.op("Reshape", [x, g.const(p + "shape", shape, np.int64)], p + "reshape")


#: chainrule layer class -> function writing its ONNX nodes (a new layer that should export
#: adds its function here; everything else about it is on its class, see chainrule.registry)
EXPORTERS = {
    _nn.Linear: _ex_linear,
    _nn.ReLU: _ex_simple("Relu"),
    _nn.Tanh: _ex_simple("Tanh"),
    _nn.Sigmoid: _ex_simple("Sigmoid"),
    _nn.LeakyReLU: _ex_leaky_relu,
    _nn.GELU: _ex_gelu,
    _nn.Softmax: _ex_softmax("Softmax"),
    _nn.LogSoftmax: _ex_softmax("LogSoftmax"),
    _nn.Identity: _ex_identity,
    _nn.Dropout: _ex_identity,
    _nn.BatchNorm1d: _ex_batchnorm,
    _nn.BatchNorm2d: _ex_batchnorm,
    _nn.Flatten: _ex_flatten,
    _nn.Unflatten: _ex_unflatten,
    _nn.Conv1d: _ex_conv,
    _nn.Conv2d: _ex_conv,
    _nn.MaxPool1d: _ex_max_pool,
    _nn.MaxPool2d: _ex_max_pool,
    _nn.AvgPool1d: _ex_avg_pool,
    _nn.AvgPool2d: _ex_avg_pool,
    _nn.AdaptiveAvgPool1d: _ex_adaptive_avg_pool,
    _nn.AdaptiveAvgPool2d: _ex_adaptive_avg_pool,
}


def _check_opset(opset) -> int:
    onnx = _onnx()
    top = onnx.defs.onnx_opset_version()
    if (
        isinstance(opset, bool)
        or not isinstance(opset, (int, np.integer))
        or not MIN_OPSET <= opset <= top
    ):
        raise ConfigError(
            f"export: opset must be an integer from {MIN_OPSET} to {top} "
            f"(the installed onnx's newest), got {opset!r}"
        )
    return int(opset)


def _layers(module, prefix=""):
    """(dotted prefix, layer) for every layer of nested Sequentials, in order."""
    if facts_of(module).chained:  # Sequential: its children in order
        for name, child in module.named_children():
            yield from _layers(child, f"{prefix}{name}.")
        return
    yield prefix, module


def _unexportable(where: str, module) -> ConfigError:
    kind = type(module).__name__
    return ConfigError(
        f"export: layer {where or '(the model)'} is a {kind}, which has no ONNX mapping; "
        f"chainrule exports Sequential chains of "
        f"{', '.join(sorted(c.__name__ for c in EXPORTERS))}"
    )


def _input_shape(layers, input_shape):
    if input_shape is not None:
        try:
            shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError):
            shape = ()
        if not shape or min(shape) < 1:
            raise ConfigError(
                f"export: input_shape is the shape of one sample (without the batch "
                f"dimension), positive integers, got {input_shape!r}"
            )
        return shape
    for _, m in layers:
        facts = facts_of(m)
        if facts.role == "linear" and hasattr(m, "in_features"):
            return (m.in_features,)
        if type(m) is _nn.BatchNorm1d:  # BatchNorm2d's input has spatial axes too
            return (m.num_features,)
        if isinstance(m, _nn.Unflatten) and m.dim in (1, -1) and -1 not in m.unflattened_size:
            return (math.prod(m.unflattened_size),)
        if not facts.keeps_shape or facts.role not in ("activation", "passthrough"):
            break
    raise ConfigError(
        "export: cannot tell the input's shape from the first layers; pass "
        "input_shape=(features,) or the shape of one sample, e.g. (1, 28, 28)"
    )


def _network(g: _Graph, model, x: str, input_shape):
    """Write the nodes of ``model`` after tensor ``x``; return (output name, output shape)."""
    from .tensor import no_grad

    layers = list(_layers(model))
    for where, m in layers:
        if type(m) not in EXPORTERS:
            raise _unexportable(where.rstrip("."), m)
    shape = (2,) + tuple(input_shape)  # a dummy batch of 2 gives each layer's output shape
    a = np.zeros(shape, dtype=g.dtype)
    batch: str | None = BATCH
    with no_grad():
        for where, m in layers:
            if isinstance(m, _nn.Flatten) and m.start_dim % len(shape) == 0:
                batch = None  # the batch is merged into the first dimension from here on
            try:
                out = m(a)
            except Exception as err:  # noqa: BLE001 - a shape problem, said with the layer
                raise ConfigError(
                    f"export: layer {where.rstrip('.') or type(m).__name__} "
                    f"({type(m).__name__}) cannot take input of shape "
                    f"(N, {', '.join(map(str, shape[1:]))}): {err}"
                ) from None
            x = EXPORTERS[type(m)](g, m, x, shape, where)
            a = np.asarray(out.data if hasattr(out, "data") else out)
            shape = a.shape
    return x, [batch] + list(shape[1:])


def _value_info(onnx, name, elem_type, shape, batch=BATCH):
    """(N, *shape), or (?, *shape) with ``batch=None`` when a layer merged the batch away."""
    return onnx.helper.make_tensor_value_info(name, elem_type, [batch] + list(shape))


def _elem(onnx, dtype):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _finish(g: _Graph, inputs, outputs, path, metadata: dict, doc: str):
    """Make the model, check it (full check, with shape inference) and write it atomically."""
    from . import __version__

    onnx = g.onnx
    graph = onnx.helper.make_graph(g.nodes, "chainrule", inputs, outputs, g.initializers)
    opsets = [onnx.helper.make_opsetid("", g.opset)]
    model = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="chainrule",
        producer_version=__version__,
        doc_string=doc,
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
    )
    onnx.helper.set_model_props(model, {k: json.dumps(v) for k, v in metadata.items()})
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:  # a bug in the exporter: say where
        raise ConfigError(
            f"export: the ONNX graph failed onnx's checker: {str(err).strip().splitlines()[0]}"
        ) from None
    path = os.fspath(path)
    write_atomic(path, model.SerializeToString(), ConfigError)  # no temporary file survives a kill
    return path


def _eval_mode(model):
    """Switch every module to eval mode; return a function that restores the old modes."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()

    def restore():
        for m, mode in modes:
            m.training = mode

    return restore


def _export_network(model, path, opset, input_shape, dtype):
    onnx = _onnx()
    from .io import describe

    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ConfigError(f"export: dtype must be float32 or float64, got {dtype}")
    g = _Graph(onnx, opset, dtype)
    layers = list(_layers(model))
    shape = _input_shape(layers, input_shape)
    restore = _eval_mode(model)
    try:
        out, out_shape = _network(g, model, "X", shape)
    finally:
        restore()
    if out == "X":  # an empty network (or only Sequentials): the output is a copy
        g.op("Identity", [out], "output")
    else:  # the last node writes "output" itself
        last = g.nodes[-1]
        last.output[list(last.output).index(out)] = "output"
    try:
        arch = describe(model)
    except Exception:  # noqa: BLE001 - a network with layers io cannot describe still exports
        arch = None
    meta = {"input_shape": list(shape)}
    if arch is not None:
        meta["architecture"] = arch
    return _finish(
        g,
        [_value_info(onnx, "X", _elem(onnx, dtype), shape)],
        [_value_info(onnx, "output", _elem(onnx, dtype), out_shape[1:], out_shape[0])],
        path,
        meta,
        "A chainrule network: input X (N, ...), output the network's output.",
    )


def _heads(g: _Graph, out: str, out_shape, head: dict):
    """The outputs of a model file's graph from the network's output ``out``: ``label`` and
    ``probabilities`` (or ``scores``) for classification, ``prediction`` for regression."""
    onnx = g.onnx
    f32, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    if head["task"] == "regression":
        ts = head.get("target_standardizer")
        y = out
        if ts is not None:  # back to the target's units, in float64 as the command does
            y = g.op("Cast", [y], "output_f64", to=onnx.TensorProto.DOUBLE)
            y = g.op("Mul", [y, g.const("target_scale", ts["scale"], np.float64)], "scaled")
            y = g.op("Add", [y, g.const("target_mean", ts["mean"], np.float64)], "unscaled")
            y = g.op("Cast", [y], "prediction_f32", to=f32)
        k = int(np.prod(out_shape))
        if k == 1:
            y = g.op("Reshape", [y, g.const("one_column", [-1], np.int64)], "prediction")
            return [_value_info(onnx, "prediction", f32, [])]
        g.op("Identity", [y], "prediction")
        return [_value_info(onnx, "prediction", f32, out_shape)]
    kind, k = head["output"], len(head["label_names"])
    if kind == "logits":
        g.op("Softmax", [out], "probabilities", axis=1)
        g.op("ArgMax", [out], "label", axis=1, keepdims=0)
        return [_value_info(onnx, "label", i64, []), _value_info(onnx, "probabilities", f32, [k])]
    flat = g.op("Reshape", [out, g.const("one_column", [-1], np.int64)], "output_flat")
    threshold = 0.5 if kind == "probability" else 0.0
    positive = g.op("Greater", [flat, g.scalar("threshold", threshold)], "positive")
    g.op("Cast", [positive], "label", to=i64)
    outs = [_value_info(onnx, "label", i64, [])]
    if kind == "logit" and head.get("loss") == "hinge":  # scores, not probabilities
        g.op("Identity", [flat], "scores")
        return outs + [_value_info(onnx, "scores", f32, [])]
    p = g.op("Sigmoid", [out], "p1") if kind == "logit" else out
    p0 = g.op("Sub", [g.scalar("one", 1.0), p], "p0")
    g.op("Concat", [p0, p], "probabilities", axis=1)
    return outs + [_value_info(onnx, "probabilities", f32, [2])]


def _export_pipeline(model, head: dict, path, opset, meta: dict):
    """Standardizer (Sub/Div) -> network -> heads, float32 in and out."""
    onnx = _onnx()
    g = _Graph(onnx, opset, np.float32)
    st = head["standardizer"]
    mean = np.asarray(st["mean"], dtype=np.float64)
    n_features = mean.shape[0]
    x = g.op("Sub", ["X", g.const("feature_mean", mean.astype(np.float32))], "centered")
    x = g.op(
        "Div", [x, g.const("feature_scale", np.asarray(st["scale"], np.float32))], "standardized"
    )
    restore = _eval_mode(model)
    try:
        out, out_shape = _network(g, model, x, (n_features,))
    finally:
        restore()
    outputs = _heads(g, out, out_shape[1:], head)
    doc = (
        "A chainrule model: X holds the raw features (float32, one column per feature, in "
        "the order of metadata 'feature_names'); the standardization is in the graph. "
        + (
            "Output 'prediction' is in the target's units."
            if head["task"] == "regression"
            else "Output 'label' is the index into metadata 'class_names'."
        )
    )
    return _finish(
        g, [_value_info(onnx, "X", onnx.TensorProto.FLOAT, [n_features])], outputs, path, meta, doc
    )


def _export_with_preprocessing(model, pre: dict, path, opset, source: str):
    """A network plus the ``preprocessing`` dict of a model file (or an estimator's)."""
    head = {
        "task": pre["task"],
        "standardizer": pre["standardizer"],
        "target_standardizer": pre.get("target_standardizer"),
        "output": pre.get("output", "logits"),
        "loss": pre.get("loss"),
        "label_names": pre.get("label_names") or [],
    }
    meta = {
        "task": pre["task"],
        "feature_names": pre.get("feature_names"),
        "target": pre.get("target"),
        "source": source,
    }
    if pre["task"] == "classification":
        meta["class_names"] = head["label_names"]
        if "classes" in pre:  # numbers or booleans, as the estimator's classes_
            meta["classes"] = pre["classes"]
    return _export_pipeline(model, head, path, opset, meta)


def _export_model_file(src, path, opset):
    from .io import load as load_model

    model, info = load_model(src, with_info=True)
    pre = info.get("preprocessing")
    if not isinstance(pre, dict) or "standardizer" not in pre or "task" not in pre:
        raise ModelFileError(
            f"{os.fspath(src)} has no preprocessing (saved from Python?); export "
            "the network itself with export(model, path)"
        )
    return _export_with_preprocessing(model, pre, path, opset, os.path.basename(os.fspath(src)))


def _export_estimator(est, path, opset):
    if getattr(est, "model_", None) is None:
        raise ConfigError(
            f"export: this {type(est).__name__} is not fitted yet; call fit(X, y) "
            "before exporting it"
        )
    return _export_with_preprocessing(
        est.model_, est._preprocessing(), path, opset, type(est).__name__
    )


def export(model, path, opset: int = 17, *, input_shape=None, dtype=np.float32) -> str:
    """Write ``model`` to ``path`` as an ONNX model; return the path.

    A network's graph has the input ``X`` (N, ...) and the output ``output``. A model file's
    graph takes the raw features ``X`` (N, features) float32, standardizes them (Sub, Div) and
    outputs ``label`` (int64, N) and ``probabilities`` (float32, N × classes) for
    classification, or ``prediction`` (float32, in the target's units) for regression; a
    hinge-loss model outputs ``scores`` instead of probabilities. Its ``metadata_props`` hold
    ``feature_names``, ``class_names``, ``target`` and ``task`` as JSON. Every graph passes
    ``onnx.checker.check_model(full_check=True)`` before it is written.

    Parameters
    ----------
    model : cr.nn.Module, str or os.PathLike
        A network (a ``Sequential`` of chainrule layers, nested ones included, or a single
        layer), the path of a model file that ``chainrule train`` wrote, or a fitted estimator
        from ``chainrule.sklearn``.
    path : str or os.PathLike
        The ``.onnx`` file, written atomically (an old file survives a failed export).
    opset : int, default 17
        The ONNX operator set, from 13 to the installed onnx's newest. GELU is one ``Gelu``
        node from opset 20 on and Erf/Tanh arithmetic before.
    input_shape : tuple of int, optional
        The shape of one sample (without the batch dimension) for a network whose first layer
        does not tell it (Linear and BatchNorm1d do).
    dtype : np.float32 (default) or np.float64
        The graph's float type (a network only; model files are float32).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ConfigError
        A layer with no ONNX mapping (named, with its place in the network), a bad opset.
    """
    opset = _check_opset(opset)
    if isinstance(model, (str, os.PathLike)):
        return _export_model_file(model, path, opset)
    if type(model).__module__ == "chainrule.sklearn" and hasattr(model, "_preprocessing"):
        return _export_estimator(model, path, opset)  # NetClassifier, NetRegressor
    from .nn import Module

    if not isinstance(model, Module):
        raise ConfigError(
            f"export: expected a chainrule network, a model file path or a fitted "
            f"estimator, got {type(model).__name__}"
        )
    return _export_network(model, path, opset, input_shape, dtype)


# =============================================================================================
# load
# =============================================================================================

_FLOAT_TYPES = {1: np.float32, 11: np.float64}  # TensorProto.FLOAT, DOUBLE


class _Chain:
    """Reads a chain-shaped ONNX graph node by node into chainrule layers."""

    def __init__(self, onnx, model, path: str):
        self.onnx, self.path = onnx, path
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        # shape arithmetic (Shape -> Gather/Slice/Concat ... -> Reshape, as the TorchScript
        # exporter writes Unflatten) is folded twice, with two stand-in batch sizes: the
        # entries that differ are the batch's (self.batch_dependent)
        self.alt: dict[str, np.ndarray] = {}
        self.batch_dependent: dict[str, np.ndarray] = {}  # which entries are the batch size
        shapes = self._static_shapes(onnx, model)
        self.nodes = []
        for node in graph.node:  # fold constants: Constant nodes and Identity of a constant
            if node.op_type == "Constant" and len(node.output) == 1:
                self.consts[node.output[0]] = self._constant_value(node)
            elif node.op_type == "Identity" and node.input[0] in self.consts:
                self.consts[node.output[0]] = self.consts[node.input[0]]
                if node.input[0] in self.alt:
                    self.alt[node.output[0]] = self.alt[node.input[0]]
            elif not self._fold(node, shapes):
                self.nodes.append(node)
        for name, value in self.alt.items():
            a = np.asarray(self.consts[name])
            if a.shape == np.shape(value) and np.any(a != value):
                self.batch_dependent[name] = a != value
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs) or "none"
            raise self.error(f"a chain has one input; this graph has {len(inputs)} ({names})")
        self.input = inputs[0]
        tt = self.input.type.tensor_type
        if tt.elem_type not in _FLOAT_TYPES:
            raise self.error(
                f"input '{self.input.name}' has element type "
                f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; chainrule reads "
                "float32 or float64 networks"
            )
        self.dtype = np.dtype(_FLOAT_TYPES[tt.elem_type])
        self.rank = len(tt.shape.dim) if tt.HasField("shape") else None
        self.outputs = [o.name for o in graph.output]
        self.uses: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for name in node.input:
                if name and name not in self.consts:
                    self.uses.setdefault(name, []).append(i)

    # --- shape arithmetic ---------------------------------------------------------------------
    def _static_shapes(self, onnx, model) -> dict:
        """name -> dims (None for a symbolic dimension) of every tensor shape inference knows."""
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - no shapes: shape arithmetic is then not folded
            inferred = model
        g = inferred.graph
        out = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            tt = vi.type.tensor_type
            if tt.HasField("shape"):
                out[vi.name] = [
                    d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim
                ]
        return out

    def _fold(self, node, shapes) -> bool:
        """Evaluate ``node`` now when it only computes shapes or constants; True when folded."""
        if node.op_type not in _FOLDABLE or len(node.output) != 1:
            return False
        variants = []
        for batch in _STAND_IN_BATCH:
            args: list[np.ndarray | None] = []
            for k, name in enumerate(node.input):
                if not name:
                    args.append(None)
                elif node.op_type == "Shape" and k == 0:
                    dims = shapes.get(name)
                    if dims is None or any(d is None for d in dims[1:]):
                        return False
                    args.append(np.array([batch if d is None else d for d in dims], np.int64))
                elif name in self.consts:
                    args.append(
                        self.alt.get(name, self.consts[name])
                        if batch != _STAND_IN_BATCH[0]
                        else self.consts[name]
                    )
                else:
                    return False
            try:
                variants.append(np.asarray(_FOLDABLE[node.op_type](self, node, *args)))
            except Exception:  # noqa: BLE001 - not foldable after all: the walk reports it
                return False
        self.consts[node.output[0]] = variants[0]
        if variants[0].shape != variants[1].shape or np.any(variants[0] != variants[1]):
            self.alt[node.output[0]] = variants[1]
        return True

    def shape_input(self, node, k: int, what: str) -> list:
        """A shape operand as integers, the batch's entry (computed from it) given as 0."""
        shape = [int(v) for v in np.asarray(self.const_input(node, k, what)).reshape(-1)]
        mask = self.batch_dependent.get(node.input[k])
        if mask is not None:
            mask = np.asarray(mask).reshape(-1)
            if mask.any():
                if not mask[0] or mask[1:].any() or shape[0] != _STAND_IN_BATCH[0]:
                    raise self.where(
                        node,
                        f"computes its {what} from the batch size in a way chainrule cannot read",
                    )
                shape[0] = 0  # copy the batch dimension
        return shape

    # --- helpers ------------------------------------------------------------------------------
    def error(self, msg: str) -> ModelFileError:
        return ModelFileError(f"onnx.load: {self.path}: {msg}")

    def _constant_value(self, node):
        h = self.onnx.helper
        for a in node.attribute:
            if a.name == "value":
                return self.onnx.numpy_helper.to_array(a.t)
            if a.name in ("value_float", "value_floats", "value_int", "value_ints"):
                return np.asarray(
                    h.get_attribute_value(a), dtype=np.float32 if "float" in a.name else np.int64
                )
        raise self.error(
            f"Constant node '{node.name}' holds a kind of value chainrule does not "
            "read (sparse or string)"
        )

    def attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                v = self.onnx.helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def const_input(self, node, k: int, what: str, optional: bool = False):
        if len(node.input) <= k or not node.input[k]:
            if optional:
                return None
            raise self.where(node, f"has no {what}")
        name = node.input[k]
        if name not in self.consts:
            raise self.where(
                node,
                f"takes its {what} from '{name}', which is computed in the "
                "graph; chainrule reads weights stored as initializers or constants",
            )
        return self.consts[name]

    def where(self, node, msg: str) -> ModelFileError:
        i = next((k for k, n in enumerate(self.nodes) if n is node), -1)
        return self.error(f"node {i} '{node.name or '(unnamed)'}' ({node.op_type}) {msg}")

    def unsupported(self, node) -> ModelFileError:
        return self.where(
            node,
            "is not supported: chainrule.onnx.load reads chains of "
            + ", ".join(sorted(IMPORTERS) + ["MatMul+Add"])
            + " (and GELU written as Erf or Tanh arithmetic)",
        )

    def only_used_by(self, name: str, index: int) -> bool:
        return self.uses.get(name, []) == [index] and name not in self.outputs

    def used_after(self, name: str, index: int) -> bool:
        return any(u > index for u in self.uses.get(name, [])) or name in self.outputs

    def layer_dtype(self, *arrays):
        for a in arrays:
            if a is not None and np.asarray(a).dtype.kind == "f":
                return np.asarray(a).dtype
        return self.dtype

    # --- the walk -----------------------------------------------------------------------------
    def read(self):
        from . import nn

        layers, x, i = [], self.input.name, 0
        while i < len(self.nodes):
            node = self.nodes[i]
            live = [n for n in node.input if n and n not in self.consts]
            if x not in live:
                raise self.where(
                    node,
                    f"does not take the chain's tensor '{x}' (its inputs: "
                    f"{', '.join(node.input)}); chainrule reads chain-shaped "
                    "graphs, one layer after another",
                )
            if set(live) != {x}:
                raise self.where(
                    node,
                    "joins two tensors of the graph (a branch or a residual "
                    "connection); chainrule reads chain-shaped graphs only",
                )
            gelu = self.gelu_region(i, x)
            if gelu is not None:
                layer, i, x = gelu
                layers.append(layer)
                continue
            if not self.only_used_by(x, i):
                users = ", ".join(f"'{self.nodes[u].name}'" for u in self.uses.get(x, []))
                raise self.error(
                    f"tensor '{x}' is used by several nodes ({users}"
                    f"{' and the graph output' if x in self.outputs else ''}); "
                    "chainrule reads chain-shaped graphs only"
                )
            if node.op_type == "MatMul":
                layer, i, x = self.matmul(i, node)
            elif node.op_type in IMPORTERS:
                layer = IMPORTERS[node.op_type](self, node)
                for extra in node.output[1:]:  # Dropout's mask, BatchNorm's training outputs
                    if extra and (extra in self.uses or extra in self.outputs):
                        raise self.where(
                            node,
                            f"has its extra output '{extra}' used; chainrule "
                            "reads the first output only",
                        )
                i, x = i + 1, node.output[0]
            else:
                raise self.unsupported(node)
            if layer is not None:
                layers.append(layer)
        if self.outputs != [x]:
            raise self.error(
                f"a chain ends in one output, '{x}'; this graph's outputs are "
                f"{', '.join(self.outputs)}"
            )
        model = nn.Sequential(*layers)
        model.eval()
        return model

    # --- layers -------------------------------------------------------------------------------
    def linear(self, weight, bias, node):
        from . import nn

        weight = np.asarray(weight)
        if weight.ndim != 2:
            raise self.where(
                node, f"has a weight of shape {weight.shape}; a linear layer needs a matrix"
            )
        out_f, in_f = weight.shape
        dt = self.layer_dtype(weight)
        layer = nn.Linear(
            in_f, out_f, bias=bias is not None, dtype=dt, rng=np.random.default_rng(0)
        )  # overwritten below; seed untouched
        layer.rng = None
        layer.weight.data = np.array(weight, dtype=dt, copy=True, order="C")
        if bias is not None:
            b = np.asarray(bias)
            if b.size == 1 and out_f != 1:
                b = np.broadcast_to(b.reshape(()), (out_f,))
            if b.size != out_f:
                raise self.where(node, f"has a bias of shape {np.shape(bias)} for {out_f} outputs")
            layer.bias.data = np.array(b.reshape(out_f), dtype=dt, copy=True)
        return layer

    def matmul(self, i, node):
        if node.input[0] not in self.consts and node.input[1] not in self.consts:
            raise self.where(
                node,
                "multiplies two computed tensors; chainrule reads MatMul by "
                "a weight stored in the file",
            )
        if node.input[0] in self.consts:
            raise self.where(
                node,
                "multiplies a weight by the chain's tensor (weight first); chainrule reads x @ W",
            )
        w = np.asarray(self.consts[node.input[1]])
        if w.ndim != 2:
            raise self.where(
                node, f"has a weight of shape {w.shape}; chainrule reads x @ W with a matrix W"
            )
        y, bias, nxt = node.output[0], None, i + 1
        if nxt < len(self.nodes) and self.only_used_by(y, nxt):
            add = self.nodes[nxt]
            other = [n for n in add.input if n != y]
            if add.op_type == "Add" and len(other) == 1 and other[0] in self.consts:
                b = np.asarray(self.consts[other[0]])
                if b.size in (1, w.shape[1]) and b.ndim <= 2:
                    bias, nxt, y = b, nxt + 1, add.output[0]
        return self.linear(w.T, bias, node), nxt, y

    def gelu_region(self, i, x):
        """GELU (or a leaky ReLU) written as arithmetic (Div/Mul/Add/Erf/Tanh/Pow/Where... on
        scalars, as the TorchScript exporter writes GELU before opset 20): the nodes from ``i``
        on that compute one tensor from ``x`` alone, checked numerically on 101 points against
        both GELU formulas and against max(x, 0) + slope · min(x, 0)."""
        from . import nn

        if self.nodes[i].op_type not in _ELEMENTWISE:
            return None
        probe = np.linspace(-5.0, 5.0, 101)
        values = {x: probe}
        for j in range(i, min(i + 16, len(self.nodes))):
            node = self.nodes[j]
            if node.op_type not in _ELEMENTWISE or len(node.output) != 1:
                return None
            if node.op_type == "Cast" and self.attr(node, "to") not in _FLOAT_TYPES:
                return None
            args = []
            for name in node.input:
                if name in values:
                    args.append(values[name])
                elif name in self.consts and np.size(self.consts[name]) == 1:
                    args.append(float(np.asarray(self.consts[name]).reshape(())))
                else:
                    return None
            with np.errstate(all="ignore"):
                values[node.output[0]] = _ELEMENTWISE[node.op_type](*args)
            out = node.output[0]
            if any(self.used_after(n, j) for n in values if n != out):
                continue  # not closed yet: an earlier tensor is still needed later
            got = np.asarray(values[out], dtype=np.float64)
            if got.shape != probe.shape:
                continue
            for approximate in ("none", "tanh"):
                ref = _gelu(probe, approximate)
                if np.allclose(got, ref, rtol=1e-6, atol=1e-7):
                    return nn.GELU(approximate=approximate), j + 1, out
            slope = -got[0] / 5.0  # probe[0] = -5: a leaky ReLU's value there is -5 · slope
            if np.allclose(got, np.where(probe > 0, probe, slope * probe), rtol=1e-6, atol=1e-7):
                return (
                    (
                        nn.ReLU()
                        if slope == 0
                        else nn.LeakyReLU(negative_slope=_float32_attr(slope))
                    ),
                    j + 1,
                    out,
                )
        return None


_STAND_IN_BATCH = (1000003, 1000033)  # two primes no real shape arithmetic produces


def _attr_ints(c, node, name, default=None):
    v = c.attr(node, name, default)
    return None if v is None else [int(x) for x in v]


def _fold_shape(c, node, dims):
    start, end = c.attr(node, "start", 0), c.attr(node, "end", None)
    return dims[start:end]


def _fold_slice(c, node, data, starts=None, ends=None, axes=None, steps=None):
    if c.opset < 10:
        starts, ends = _attr_ints(c, node, "starts"), _attr_ints(c, node, "ends")
        axes = _attr_ints(c, node, "axes")
    starts, ends = np.asarray(starts).reshape(-1), np.asarray(ends).reshape(-1)
    axes = list(range(len(starts))) if axes is None else list(np.asarray(axes).reshape(-1))
    steps = [1] * len(starts) if steps is None else list(np.asarray(steps).reshape(-1))
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        big = np.iinfo(np.int64).max // 2
        index[int(a)] = slice(int(s), None if abs(int(e)) >= big else int(e), int(st))
    return data[tuple(index)]


def _fold_axes(c, node, axes):
    if axes is None:
        axes = c.attr(node, "axes", None)
    return None if axes is None else sorted(int(a) for a in np.asarray(axes).reshape(-1))


def _fold_unsqueeze(c, node, data, axes=None):
    out = data
    for a in _fold_axes(c, node, axes):
        out = np.expand_dims(out, a if a >= 0 else a + out.ndim + 1)
    return out


def _fold_squeeze(c, node, data, axes=None):
    axes = _fold_axes(c, node, axes)
    return np.squeeze(data) if axes is None else np.squeeze(data, axis=tuple(axes))


def _fold_reshape(c, node, data, shape):
    shape = [int(v) for v in np.asarray(shape).reshape(-1)]
    shape = [data.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return data.reshape(shape)


def _fold_div(c, node, a, b):
    if np.asarray(a).dtype.kind in "iu" and np.asarray(b).dtype.kind in "iu":
        return np.trunc(np.asarray(a) / np.asarray(b)).astype(np.asarray(a).dtype)
    return np.divide(a, b)


def _fold_cast(c, node, a):
    return np.asarray(a).astype(c.onnx.helper.tensor_dtype_to_np_dtype(c.attr(node, "to")))


_FOLDABLE: dict[str, Callable[..., Any]] = {
    "Shape": _fold_shape,
    "Gather": lambda c, n, d, i: np.take(d, i, axis=c.attr(n, "axis", 0)),
    "Slice": _fold_slice,
    "Concat": lambda c, n, *xs: np.concatenate(
        [np.atleast_1d(x) for x in xs], axis=c.attr(n, "axis", 0)
    ),
    "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze,
    "Reshape": _fold_reshape,
    "Add": lambda c, n, a, b: np.add(a, b),
    "Sub": lambda c, n, a, b: np.subtract(a, b),
    "Mul": lambda c, n, a, b: np.multiply(a, b),
    "Div": _fold_div,
    "Mod": lambda c, n, a, b: (np.fmod if c.attr(n, "fmod", 0) else np.mod)(a, b),
    "Cast": _fold_cast,
}


def _erf(a):
    return np.vectorize(math.erf, otypes=[np.float64])(a)


def _gelu(a, approximate):
    if approximate == "tanh":
        return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3)))
    return 0.5 * a * (1 + _erf(a / math.sqrt(2)))


_ELEMENTWISE = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Pow": np.power,
    "Erf": _erf,
    "Tanh": np.tanh,
    "Sqrt": np.sqrt,
    "Cast": lambda a: a,  # between float types only (checked in the walk)
    "Greater": np.greater,
    "Less": np.less,
    "Where": np.where,
    "Max": np.maximum,
    "Min": np.minimum,
}


def _float32_attr(value) -> float:
    """An ONNX float attribute (stored as float32) back as the decimal it was written from:
    0.10000000149011612 -> 0.1 (7 significant digits is what float32 holds)."""
    value = float(value)
    if np.float32(value) != value:  # not a float32 value: keep every digit
        return value
    short = float(f"{value:.7g}")
    return short if np.float32(short) == np.float32(value) else value


def _im_gemm(c: _Chain, node):
    if node.input[0] in c.consts:
        raise c.where(
            node,
            "multiplies a weight by the chain's tensor (A is the weight); "
            "chainrule reads Gemm(x, W, b)",
        )
    if c.attr(node, "transA", 0):
        raise c.where(node, "has transA=1; chainrule reads Gemm with the batch as A's rows")
    w = np.asarray(c.const_input(node, 1, "weight B"))
    alpha, beta = c.attr(node, "alpha", 1.0), c.attr(node, "beta", 1.0)
    if w.ndim != 2:
        raise c.where(node, f"has a weight B of shape {w.shape}; Gemm needs a matrix")
    w = w if c.attr(node, "transB", 0) else w.T
    if alpha != 1.0:
        w = (w * alpha).astype(w.dtype)
    bias = c.const_input(node, 2, "bias C", optional=True)
    if bias is not None:
        bias = np.asarray(bias)
        if bias.ndim == 2 and bias.shape[0] != 1:
            raise c.where(
                node,
                f"has a bias C of shape {bias.shape}: one row per sample, not a "
                "linear layer's bias",
            )
        if beta != 1.0:
            bias = (bias * beta).astype(bias.dtype)
    if c.rank is not None and c.rank != 2:
        raise c.where(node, f"takes a tensor of rank {c.rank}; Gemm multiplies matrices")
    return c.linear(w, bias, node)


def _im_simple(kind):
    def im(c: _Chain, node):
        from . import nn

        return getattr(nn, kind)()

    return im


def _im_leaky_relu(c: _Chain, node):
    from . import nn

    return nn.LeakyReLU(negative_slope=_float32_attr(c.attr(node, "alpha", 0.01)))


def _im_gelu(c: _Chain, node):
    from . import nn

    approximate = c.attr(node, "approximate", "none")
    if approximate not in ("none", "tanh"):
        raise c.where(node, f"has approximate={approximate!r}; expected 'none' or 'tanh'")
    return nn.GELU(approximate=approximate)


def _im_softmax(kind):
    def im(c: _Chain, node):
        from . import nn

        axis = int(c.attr(node, "axis", -1 if c.opset >= 13 else 1))
        if c.opset < 13 and c.rank is not None:  # the old Softmax flattened axis.. into one
            last = axis % c.rank == c.rank - 1
            if not last:
                raise c.where(
                    node,
                    f"(opset {c.opset}) normalizes dimensions {axis}.. of a rank "
                    f"{c.rank} tensor together; chainrule's {kind} takes one dim",
                )
        return getattr(nn, kind)(dim=axis)

    return im


def _im_identity(c: _Chain, node):
    from . import nn

    return nn.Identity()


def _im_dropout(c: _Chain, node):
    from . import nn

    p = c.attr(node, "ratio", None)
    if len(node.input) > 1 and node.input[1]:
        p = float(np.asarray(c.const_input(node, 1, "ratio")).reshape(()))
    return nn.Dropout(p=0.5 if p is None else float(p))


def _im_batchnorm(c: _Chain, node):
    from . import nn

    if c.attr(node, "training_mode", 0):
        raise c.where(node, "has training_mode=1; chainrule reads inference graphs")
    scale = np.asarray(c.const_input(node, 1, "scale"))
    bias = np.asarray(c.const_input(node, 2, "bias"))
    mean = np.asarray(c.const_input(node, 3, "mean"))
    var = np.asarray(c.const_input(node, 4, "variance"))
    C = scale.shape[0] if scale.ndim == 1 else -1
    if C < 0 or any(a.shape != (C,) for a in (bias, mean, var)):
        raise c.where(
            node,
            f"has parameters of shapes {scale.shape}, {bias.shape}, {mean.shape}, "
            f"{var.shape}; expected one value per channel",
        )
    if c.rank is not None and c.rank not in (2, 3, 4):
        raise c.where(
            node,
            f"normalizes a tensor of rank {c.rank}; chainrule's BatchNorm1d takes "
            "(N, C) or (N, C, L) and BatchNorm2d (N, C, H, W)",
        )
    momentum = 1.0 - float(c.attr(node, "momentum", 0.9))
    dt = c.layer_dtype(scale)
    kind = "BatchNorm2d" if c.rank == 4 else "BatchNorm1d"
    bn = getattr(nn, kind)(
        C,
        eps=_float32_attr(c.attr(node, "epsilon", 1e-5)),
        momentum=_float32_attr(momentum),
        dtype=dt,
    )
    bn.weight.data = scale.astype(dt, copy=True)
    bn.bias.data = bias.astype(dt, copy=True)
    bn.running_mean[...] = mean
    bn.running_var[...] = var
    return bn


def _symmetric_pads(c: _Chain, node, nd: int):
    pads = [int(v) for v in c.attr(node, "pads", [0] * (2 * nd))]
    if pads[:nd] != pads[nd:]:
        raise c.where(
            node,
            f"pads {pads} differently before and after; chainrule pads each "
            "axis by the same amount on both sides",
        )
    auto = c.attr(node, "auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID"):
        raise c.where(node, f"has auto_pad={auto}; chainrule reads explicit pads")
    return tuple(pads[:nd])


def _spatial_rank(c: _Chain, node, kernel) -> int:
    nd = len(kernel)
    if nd not in (1, 2):
        raise c.where(node, f"works on {nd} spatial dimensions; chainrule has 1-D and 2-D layers")
    if c.rank is not None and c.rank != nd + 2:
        raise c.where(node, f"takes a tensor of rank {c.rank}; expected {nd + 2} (N, C, ...)")
    return nd


def _im_conv(c: _Chain, node):
    from . import nn

    w = np.asarray(c.const_input(node, 1, "weight W"))
    kernel = tuple(int(k) for k in c.attr(node, "kernel_shape", w.shape[2:]))
    nd = _spatial_rank(c, node, kernel)
    groups = int(c.attr(node, "group", 1))
    bias = c.const_input(node, 2, "bias B", optional=True)
    stride = tuple(int(v) for v in c.attr(node, "strides", [1] * nd))
    dilation = tuple(int(v) for v in c.attr(node, "dilations", [1] * nd))
    pads = [int(v) for v in c.attr(node, "pads", [0] * (2 * nd))]
    if (
        pads[:nd] != pads[nd:]
        and all(s == 1 for s in stride)
        and pads
        == [d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True)]
        + [d * (k - 1) - d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True)]
    ):
        padding = "same"  # an even kernel's 'same': one more after than before
        if c.attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise c.where(node, "has auto_pad; chainrule reads explicit pads")
    else:
        padding = _symmetric_pads(c, node, nd)
    dt = c.layer_dtype(w)
    layer = getattr(nn, f"Conv{nd}d")(
        w.shape[1] * groups,
        w.shape[0],
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bias is not None,
        dtype=dt,
        rng=np.random.default_rng(0),
    )
    layer.rng = None
    layer.weight.data = np.array(w, dtype=dt, copy=True, order="C")
    if bias is not None:
        layer.bias.data = np.array(np.asarray(bias).reshape(-1), dtype=dt, copy=True)
    return layer


def _im_max_pool(c: _Chain, node):
    from . import nn

    kernel = tuple(int(k) for k in c.attr(node, "kernel_shape"))
    nd = _spatial_rank(c, node, kernel)
    return getattr(nn, f"MaxPool{nd}d")(
        kernel,
        stride=tuple(int(v) for v in c.attr(node, "strides", [1] * nd)),
        padding=_symmetric_pads(c, node, nd),
        dilation=tuple(int(v) for v in c.attr(node, "dilations", [1] * nd)),
        ceil_mode=bool(c.attr(node, "ceil_mode", 0)),
    )


def _im_avg_pool(c: _Chain, node):
    from . import nn

    kernel = tuple(int(k) for k in c.attr(node, "kernel_shape"))
    nd = _spatial_rank(c, node, kernel)
    if any(d != 1 for d in c.attr(node, "dilations", [1] * nd)):
        raise c.where(node, "has dilations; chainrule's average pooling has none")
    return getattr(nn, f"AvgPool{nd}d")(
        kernel,
        stride=tuple(int(v) for v in c.attr(node, "strides", [1] * nd)),
        padding=_symmetric_pads(c, node, nd),
        ceil_mode=bool(c.attr(node, "ceil_mode", 0)),
        count_include_pad=bool(c.attr(node, "count_include_pad", 0)),
    )


def _im_global_avg_pool(c: _Chain, node):
    from . import nn

    if c.rank not in (3, 4):
        raise c.where(
            node,
            f"takes a tensor of rank {c.rank}; chainrule's adaptive pooling "
            "takes (N, C, L) or (N, C, H, W)",
        )
    return getattr(nn, f"AdaptiveAvgPool{c.rank - 2}d")(1)


def _im_flatten(c: _Chain, node):
    from . import nn

    axis = int(c.attr(node, "axis", 1))
    if c.rank is not None:
        if axis < 0:
            axis += c.rank
        if axis == c.rank and c.rank == 1:
            axis = 1
    if axis != 1:
        raise c.where(
            node,
            f"has axis={axis}: it folds the batch dimension; chainrule reads "
            "Flatten(axis=1) (keep the batch, merge the rest)",
        )
    c.rank = 2
    return nn.Flatten(1, -1)


def _im_reshape(c: _Chain, node):
    from . import nn

    shape = c.shape_input(node, 1, "target shape")
    if len(shape) == 2 and shape[0] in (0, -1) and (c.rank is None or c.rank >= 2):
        c.rank = 2
        return nn.Flatten(1, -1)
    if (
        len(shape) > 2
        and shape[0] in (0, -1)
        and c.rank == 2
        and all(v > 0 or v == -1 for v in shape[1:])
        and shape[1:].count(-1) <= 1
    ):
        c.rank = len(shape)
        return nn.Unflatten(1, tuple(shape[1:]))
    raise c.where(
        node,
        f"reshapes to {shape}; chainrule reads a Reshape that keeps the batch "
        "and merges the rest ([-1, n] or [0, -1], as Flatten) or splits the features "
        "of (N, n) ([0, C, L] or [-1, C, H, W], as Unflatten)",
    )


#: ONNX operator -> function building the chainrule layer (MatMul and MatMul+Add are read by
#: the walk itself, as are GELUs written as Erf or Tanh arithmetic)
IMPORTERS = {
    "Gemm": _im_gemm,
    "Relu": _im_simple("ReLU"),
    "Tanh": _im_simple("Tanh"),
    "Sigmoid": _im_simple("Sigmoid"),
    "LeakyRelu": _im_leaky_relu,
    "Gelu": _im_gelu,
    "Softmax": _im_softmax("Softmax"),
    "LogSoftmax": _im_softmax("LogSoftmax"),
    "BatchNormalization": _im_batchnorm,
    "Flatten": _im_flatten,
    "Reshape": _im_reshape,
    "Identity": _im_identity,
    "Dropout": _im_dropout,
    "Conv": _im_conv,
    "MaxPool": _im_max_pool,
    "AveragePool": _im_avg_pool,
    "GlobalAveragePool": _im_global_avg_pool,
}


def _first_line(err) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def load(path):
    """Build a ``cr.nn.Sequential`` (in eval mode) from the chain-shaped ONNX graph at ``path``.

    The graph has one float input and one output, and each node takes the previous node's
    output: Gemm, MatMul (+ Add), Relu, Tanh, Sigmoid, LeakyRelu, Gelu (or GELU written as
    Erf/Tanh arithmetic, as the TorchScript exporter writes it), Softmax, LogSoftmax,
    BatchNormalization, Flatten (and a Reshape that flattens), Identity and Dropout. Weights
    are read from initializers or Constant nodes, external data files included (as
    ``torch.onnx.export`` writes them, next to the ``.onnx`` file); their dtype is kept.

    Raises
    ------
    ModelFileError
        A missing or unreadable file, or the first node chainrule cannot read (its index, name
        and operator).
    """
    onnx = _onnx()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"onnx.load: file not found: {path}")
    if os.path.isdir(path):
        raise ModelFileError(f"onnx.load: {path} is a folder, not an ONNX file")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ModelFileError(
            f"onnx.load: {path} is not a readable ONNX model ({_first_line(err)})"
        ) from None
    try:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    except Exception as err:  # noqa: BLE001 - a missing or short .data file
        raise ModelFileError(
            f"onnx.load: {path}: its external data cannot be read "
            f"({_first_line(err)}); keep the data file next to the .onnx "
            "file"
        ) from None
    return _Chain(onnx, model, path).read()
