"""Training throughput of convolutional networks: chainrule (eager and compiled) against PyTorch.

    python benchmarks/bench_conv.py                      # both cases, ~1-2 min on 2 cores
    python benchmarks/bench_conv.py --quick              # smoke run
    python benchmarks/bench_training.py --cases conv     # the same, from the main benchmark

The convolution cases of ``bench_training.py``, timed with its functions (``calibrate``,
``measure``: a pause before each measurement so that the other library's idle BLAS threads stop
spinning, a short untimed run, then the timed steps) and interleaved the same way: every round
measures chainrule's eager step, the same step through ``cr.compile``, then PyTorch; reported
are the median samples/s over the rounds and the median of the per-round ratios.

Cases (float32, seeded synthetic data of the right shape, labels from a random linear teacher;
one step = forward, mean cross-entropy, zero_grad, backward, SGD lr 0.01 momentum 0.9, as in
``bench_training.py``; both frameworks start from the same weights and a 5-step agreement check
records that their losses match):

- ``conv_mnist1d_b100``: the MNIST-1D paper's CNN (Unflatten to (1, 40), three Conv1d of 25
  channels, kernels 5, 3, 3, stride 2, padding 1, ReLU; Linear 125 -> 10), batch 100.
- ``conv_digits_b64``: a small 2-D CNN on 8x8 images (Unflatten to (1, 8, 8), Conv2d 1->16 3x3
  pad 1, ReLU, MaxPool2d 2, Conv2d 16->32 3x3 pad 1, ReLU, MaxPool2d 2, Flatten, Linear
  128 -> 10), batch 64.

Writes ``conv_latest.json`` and ``conv_latest.md`` in ``--outdir`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import bench_training as bt  # noqa: E402  (the timing functions, shared)

LR, MOMENTUM = bt.LR, bt.MOMENTUM


@dataclass(frozen=True)
class ConvCase:
    name: str
    title: str
    n_in: int  # features per sample as fed (flat rows)
    batch: int

    def pool_size(self) -> int:
        return max(8, -(-2048 // self.batch)) * self.batch


CONV_CASES = {
    c.name: c
    for c in [
        ConvCase(
            "conv_mnist1d_b100", "MNIST-1D CNN (3 Conv1d 25ch, Linear 125-10), batch 100", 40, 100
        ),
        ConvCase(
            "conv_digits_b64",
            "8x8 CNN (Conv2d 16, pool, Conv2d 32, pool, Linear), batch 64",
            64,
            64,
        ),
    ]
}


def build(nn, case: ConvCase):
    """The case's network from ``nn`` (chainrule.nn or torch.nn: the same names)."""
    if case.name.startswith("conv_mnist1d"):
        return nn.Sequential(
            nn.Unflatten(1, (1, 40)),
            nn.Conv1d(1, 25, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(125, 10),
        )
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def make_data(case: ConvCase, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = case.pool_size()
    X = rng.standard_normal((n, case.n_in), dtype=np.float32)
    teacher = rng.standard_normal((case.n_in, 10), dtype=np.float32)
    return X, np.argmax(X @ teacher, axis=1).astype(np.int64)


def make_weights(case: ConvCase, seed: int = 1) -> dict:
    """The initial weights: chainrule's own initialization (PyTorch's scheme), seeded."""
    import chainrule as cr

    cr.manual_seed(seed)
    return {k: v.copy() for k, v in build(cr.nn, case).state_dict().items()}


class ChainruleConv(bt.Runner):
    name = "chainrule"

    def __init__(self, case, X, y, weights, n_threads):
        import chainrule as cr

        self.model = build(cr.nn, case)
        self.model.load_state_dict(weights)
        self.loss_fn = cr.nn.CrossEntropyLoss()
        self.opt = cr.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.batches = bt.batches_of(X, y, case.batch)
        self.i = 0
        self._loss = None

    run = bt.ChainruleRunner.run

    def loss(self):
        return float(self._loss.item())


class TorchConv(bt.Runner):
    name = "torch"
    numpy_based = False

    def __init__(self, case, X, y, weights, n_threads):
        import torch

        torch.set_num_threads(n_threads)
        self.model = build(torch.nn, case)
        self.model.load_state_dict(
            {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
        )
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.batches = [
            (torch.from_numpy(xb), torch.from_numpy(yb))
            for xb, yb in bt.batches_of(X, y, case.batch)
        ]
        self.i = 0
        self._loss = None

    run = bt.ChainruleRunner.run

    def loss(self):
        return float(self._loss.item())


class CompiledConv(ChainruleConv):
    """The same model and step through ``cr.compile`` (the conv units replay through their own
    forward and backward; linear, ReLU and the loss on their plans)."""

    name = "compiled"

    def __init__(self, case, X, y, weights, n_threads):
        super().__init__(case, X, y, weights, n_threads)
        self.step = bt.CompiledRunner.compiled_step(self.model, self.loss_fn, self.opt)

    run = bt.CompiledRunner.run


RUNNERS = {"chainrule": ChainruleConv, "compiled": CompiledConv, "torch": TorchConv}


def bench_conv_case(case, names, args, n_threads, log) -> dict:
    X, y = make_data(case, args.seed)
    weights = make_weights(case, args.seed + 1)
    losses = {}
    for n in names:  # same weights, same batches: the same losses
        r = RUNNERS[n](case, X, y, weights, n_threads)
        seq = []
        for _ in range(5):
            r.run(1)
            seq.append(r.loss())
        losses[n] = seq
    diff = (
        max(
            abs(a - b)
            for n in losses
            if n != "torch"
            for a, b in zip(losses[n], losses["torch"], strict=True)
        )
        if "torch" in losses and len(losses) > 1
        else None
    )
    runners = {n: RUNNERS[n](case, X, y, weights, n_threads) for n in names}
    steps = {}
    for n, r in runners.items():
        steps[n] = bt.calibrate(r, args.target_time, args.settle)
    times = {n: [] for n in names}
    for _ in range(args.rounds):  # interleaved: chainrule, PyTorch, chainrule, ...
        for n, r in runners.items():
            times[n].append(bt.measure(r, steps[n], args.settle))
    sps = {n: [steps[n] * case.batch / t for t in times[n]] for n in names}
    out = {
        "case": case.name,
        "title": case.title,
        "batch": case.batch,
        "steps_per_measurement": steps,
        "samples_per_s": sps,
        "median_samples_per_s": {n: statistics.median(sps[n]) for n in names},
        "median_step_us": {n: statistics.median(times[n]) / steps[n] * 1e6 for n in names},
        "agreement": {"losses": losses, "max_abs_diff": diff},
    }
    for mine in ("chainrule", "compiled"):
        if mine in names and "torch" in names:
            per = [a / b for a, b in zip(sps[mine], sps["torch"], strict=True)]
            out[f"ratio_{mine}_torch"] = {"per_round": per, "median": statistics.median(per)}
    med = out["median_samples_per_s"]
    log(f"  {case.name}: " + ", ".join(f"{bt.LABELS[n]} {med[n]:,.0f}/s" for n in names))
    return out


def markdown(result: dict) -> str:
    lines = [
        "# chainrule convolution benchmark",
        "",
        f"{result['settings']['rounds']} interleaved rounds of ~"
        f"{result['settings']['target_time']} s per framework, medians; BLAS threads "
        f"{result['blas_threads']}; load average at start / end {result['loadavg']}.",
        "",
        "| case | chainrule samples/s | compiled samples/s | PyTorch samples/s | "
        "chainrule/PyTorch | compiled/PyTorch | step µs cr / compiled / PyTorch | "
        "max \\|Δloss\\| (5 steps) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]

    def ratio(c, mine):
        r = c.get(f"ratio_{mine}_torch", {}).get("median")
        return "–" if r is None else f"{r:.2f}×"

    for c in result["cases"]:
        med, us = c["median_samples_per_s"], c["median_step_us"]
        d = c["agreement"]["max_abs_diff"]
        lines.append(
            f"| {c['title']} | {med.get('chainrule', 0):,.0f} | {med.get('compiled', 0):,.0f} | "
            f"{med.get('torch', 0):,.0f} | {ratio(c, 'chainrule')} | {ratio(c, 'compiled')} | "
            f"{us.get('chainrule', 0):,.0f} / {us.get('compiled', 0):,.0f} / "
            f"{us.get('torch', 0):,.0f} | {'–' if d is None else f'{d:.1e}'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cases", default="conv", help="conv (both) or names: " + ", ".join(CONV_CASES)
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--target-time", type=float, default=None)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--frameworks", default="chainrule,compiled,torch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outdir", default=str(HERE / "results"))
    args, _ = ap.parse_known_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 7)
    args.target_time = args.target_time or (0.03 if args.quick else 0.3)
    if args.quick:
        args.settle = min(args.settle, 0.05)
    bt.limit_blas_threads(args.threads)
    n_threads = bt.blas_threads()
    wanted = [n.strip() for n in args.frameworks.split(",")]
    names = [
        n
        for n in ("chainrule", "compiled", "torch")
        if n in wanted and (n != "torch" or bt.TorchRunner.available())
    ]
    tokens = [t.strip() for t in args.cases.split(",") if t.strip()]
    cases = [c for n, c in CONV_CASES.items() if "conv" in tokens or "all" in tokens or n in tokens]
    if not cases:
        raise SystemExit(f"unknown conv case {args.cases!r}; known: {', '.join(CONV_CASES)}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load_start = bt._loadavg()
    t0 = time.perf_counter()
    results = [bench_conv_case(c, names, args, n_threads, log) for c in cases]
    result = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": time.perf_counter() - t0,
        "blas_threads": n_threads,
        "loadavg": f"{load_start} / {bt._loadavg()}",
        "settings": {
            "rounds": args.rounds,
            "target_time": args.target_time,
            "settle_s": args.settle,
            "seed": args.seed,
            "lr": LR,
            "momentum": MOMENTUM,
            "frameworks": names,
        },
        "cases": results,
    }
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "conv_latest.json").write_text(json.dumps(result, indent=1, default=float))
    md = markdown(result)
    (out / "conv_latest.md").write_text(md)
    print(md)
    return result


if __name__ == "__main__":
    main()
