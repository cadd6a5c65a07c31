"""The largest differences between chainrule and onnxruntime / PyTorch for the test networks.

    python benchmarks/interop_differences.py [--no-dynamo]

Uses the networks of tests/test_onnx.py (the same seeds) and prints one markdown table: for each
network and direction, the largest absolute difference of the outputs (and for classifiers
whether every predicted label agrees). Not a timing; nothing here is random without a seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import chainrule as cr  # noqa: E402
from chainrule import onnx as cro  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-dynamo", action="store_true", help="skip torch's dynamo exporter (slow)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import test_onnx as T  # the networks the tests use

    rows = []

    def row(direction, name, got, ref):
        got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
        labels = ""
        if ref.ndim == 2 and ref.shape[1] > 1:
            labels = "yes" if np.array_equal(got.argmax(1), ref.argmax(1)) else "NO"
        rows.append((direction, name, f"{np.abs(got - ref).max():.2e}", labels))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # chainrule networks -> onnxruntime, and back through chainrule.onnx.load
        for name, (make, shape) in T.NETS.items():
            # onnxruntime's CPU Conv and pooling kernels are float32 only
            for dtype in (np.float32,) if name.startswith("cnn") else (np.float32, np.float64):
                cr.manual_seed(3)
                net = make().to(dtype)
                X = np.random.default_rng(2).normal(size=(64,) + shape).astype(dtype)
                ref = T.chainrule_out(net, X)
                for opset in (17, 20):
                    path = cro.export(
                        net, tmp / "n.onnx", opset=opset, dtype=dtype, input_shape=shape
                    )
                    tag = f"{name} {np.dtype(dtype).name} opset {opset}"
                    row("chainrule -> onnxruntime", tag, T.run_onnx(path, X, ["output"]), ref)
                    row(
                        "chainrule -> ONNX -> chainrule",
                        tag,
                        T.chainrule_out(cro.load(path), X),
                        ref,
                    )
        # model files written by the command -> onnxruntime
        d, X = T.command_models.__wrapped__(_Factory(tmp))
        for name in ("cls", "bce_logits", "bce", "hinge", "reg"):
            out, pre = T.file_outputs(d / f"{name}.safetensors", X)
            path = d / f"{name}.onnx"
            if name == "cls":
                z = out - out.max(1, keepdims=True)
                p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
                row(
                    "model file -> onnxruntime",
                    "classifier (3 classes) probabilities",
                    T.run_onnx(path, X, ["probabilities"]),
                    p,
                )
            elif name == "reg":
                ts = pre["target_standardizer"]
                ref = out[:, 0].astype(np.float64) * ts["scale"][0] + ts["mean"][0]
                pred = T.run_onnx(path, X, ["prediction"])
                rel = np.abs(pred - ref).max() / np.abs(ref).max()
                row(
                    "model file -> onnxruntime",
                    f"regressor prediction (target ~1000; relative {rel:.1e})",
                    pred,
                    ref,
                )
            elif name == "hinge":
                row(
                    "model file -> onnxruntime",
                    "hinge scores",
                    T.run_onnx(path, X, ["scores"]),
                    out[:, 0],
                )
            else:
                p1 = out[:, 0] if name == "bce" else 1 / (1 + np.exp(-out[:, 0].astype(float)))
                row(
                    "model file -> onnxruntime",
                    f"{name} probabilities",
                    T.run_onnx(path, X, ["probabilities"]),
                    np.stack([1 - p1, p1], 1),
                )
        if T.HAS_CONV:  # chainrule train --conv on digits (8x8 images)
            from chainrule.data import load_dataset

            T.command(
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
                cwd=tmp,
            )
            T.command("export", "d.safetensors", "--onnx", "d.onnx", cwd=tmp)
            X = load_dataset("digits").X.astype(np.float32)
            out, _ = T.file_outputs(tmp / "d.safetensors", X)
            z = out - out.max(1, keepdims=True)
            row(
                "model file -> onnxruntime",
                "digits CNN (--conv 4) probabilities",
                T.run_onnx(tmp / "d.onnx", X, ["probabilities"]),
                np.exp(z) / np.exp(z).sum(1, keepdims=True),
            )
        # PyTorch -> ONNX -> chainrule; chainrule -> torch -> chainrule
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            from chainrule.torch import from_torch, to_torch

            for exporter in ("torchscript", "dynamo"):
                if exporter == "dynamo" and args.no_dynamo:
                    continue
                for name, (net, shape) in T.torch_nets(torch).items():  # noqa: B007
                    if exporter == "dynamo" and name not in ("mixed", "cnn1d"):
                        continue
                    net.eval()
                    path = tmp / f"{exporter}-{name}.onnx"
                    T.torch_export(torch, net, shape, path, exporter == "dynamo")
                    X = np.random.default_rng(5).normal(size=(50,) + shape).astype(np.float32)
                    with torch.no_grad():
                        ref = net(torch.from_numpy(X)).numpy()
                    row(
                        f"PyTorch ({exporter}) -> ONNX -> chainrule",
                        name,
                        T.chainrule_out(cro.load(path), X),
                        ref,
                    )
            for name, (make, _shape) in T.NETS.items():
                cr.manual_seed(3)
                net = make()
                back = from_torch(to_torch(net))
                worst = max(
                    float(np.abs(a.astype(np.float64) - b).max())
                    for a, b in zip(
                        net.state_dict().values(), back.state_dict().values(), strict=True
                    )
                    if a.size
                )
                rows.append(("chainrule -> torch -> chainrule (weights)", name, f"{worst:.2e}", ""))
    print("| direction | network | largest |difference| | same labels |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


class _Factory:
    """Stands in for pytest's tmp_path_factory."""

    def __init__(self, root):
        self.root = root

    def mktemp(self, name):
        path = Path(self.root) / name
        os.makedirs(path, exist_ok=True)
        return path


if __name__ == "__main__":
    main()
