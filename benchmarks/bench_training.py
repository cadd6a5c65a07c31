"""Training throughput and memory: chainrule against PyTorch, scikit-learn and numpy by hand.

    python benchmarks/bench_training.py                  # all cases (~3-6 min on 2 cores)
    python benchmarks/bench_training.py --quick          # smoke run: 2 short rounds
    python benchmarks/bench_training.py --cases mlp784   # a group, or exact names (comma list)
    python benchmarks/bench_training.py --cases conv     # the CNN cases (bench_conv.py)
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_training.py

Writes ``benchmarks/results/latest.json`` and ``latest.md`` (``--outdir`` elsewhere) and prints
the table.

What one *training step* is (the same in every framework)
---------------------------------------------------------
forward through an MLP (Linear layers with ReLU or tanh between them), the mean cross-entropy of
the logits against integer labels, zero_grad, backward, and an SGD step with lr 0.01 and momentum
0.9 (PyTorch's rule: ``b = 0.9 b + g; w -= 0.01 b``). Data: seeded synthetic float32 inputs
(standard normal) with int64 labels from a random linear teacher; batches are contiguous row
slices of a fixed pool, visited cyclically in the same order by every framework.

- **chainrule**: the public API, ``cr.nn.Sequential(cr.nn.Linear(...), cr.nn.ReLU(), ...)``,
  ``cr.nn.CrossEntropyLoss()``, ``cr.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)``,
  numpy float32 batches and int64 labels.
- **PyTorch**: the same modules from ``torch.nn`` and ``torch.optim.SGD`` (defaults), batches as
  ``torch.from_numpy`` views, ``torch.set_num_threads(n)`` with ``n`` = numpy's BLAS threads (as
  threadpoolctl reports them). chainrule and PyTorch start from the same weights (copied), and a
  short agreement check (same batches, 5 steps) records that their losses match.
- **scikit-learn**: ``MLPClassifier(solver='sgd', batch_size=B, learning_rate='constant',
  learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=False, alpha=0, shuffle=False,
  early_stopping=False)``; one ``partial_fit`` call over ``steps * B`` rows runs ``steps`` steps
  (its per-call input validation is thus amortised). Warnings are silenced. For 2 classes
  scikit-learn uses one logistic output unit instead of a 2-way softmax (slightly less work).
- **numpy (by hand)**: the forward, backward and SGD-momentum written out with numpy float32
  arrays and no framework at all: the floor that a framework's overhead sits on.

How it is timed
---------------
Per case: every framework is warmed up and calibrated (a fixed number of steps per framework such
that one measurement takes about ``--target-time`` seconds), then ``--rounds`` rounds run the
frameworks interleaved (A B C D A B C D ...), so that drift in the shared machine's speed hits all
of them alike. Reported: the median samples/s of each framework over the rounds, and the median of
the per-round ratios chainrule/PyTorch and chainrule/scikit-learn (each ratio pairs two
measurements of the same round).

Each measurement starts with a pause (``--settle``, 1 s) and a short untimed run of the same
framework (1/20 of its steps). The pause matters: after a numpy GEMM, OpenBLAS's worker threads
busy-wait (its THREAD_TIMEOUT, 2**28 cycles, ~0.1 s on an idle machine but several times that on
a loaded one) before sleeping; on a 2-core machine they then steal the cores from PyTorch's OpenMP
threads and a PyTorch measurement taken within ~1 s of a numpy one ran 20-40x slower here (0.2 s
was measured to be too short). A real training loop runs one library only, so the benchmark lets
the other library's threads go idle first.

By default (``--process-per-library``) each library of a case runs in a worker process of its own
(``--bench-worker``: it builds the data, the model and the runner, then answers commands read from
a pipe: agree, calibrate, measure, loss). The parent drives the same interleaved rounds, one
command at a time, so exactly one process works at any moment; PyTorch never shares a process
with numpy work, nor one library's thread pools with another's. ``--no-process-per-library``
runs every library in the parent, as before. ``--check-alone`` re-measures PyTorch in a separate
run with PyTorch as its only library, to check the interleaved figure.

FLOPs and the GEMM peak
-----------------------
The FLOPs of a step are counted as its GEMMs only. For each Linear(in, out) at batch B: forward
``2*B*in*out``; backward ``2*B*in*out`` for the weight gradient plus ``2*B*in*out`` for the input
gradient, **except for the first layer**, whose input gradient no framework computes (the inputs do
not require grad; scikit-learn skips it as well). So a step is
``sum_l 6*B*in_l*out_l - 2*B*in_0*out_0`` FLOPs; biases, activations, the loss and the optimizer
are not counted. Achieved GFLOP/s = FLOPs per step * steps/s. The peak is measured in the same run:
the median rate of a square float32 ``numpy.matmul`` (2048, ``out=`` preallocated) timed several
times before the first case and again after the last; the fraction of that peak is reported.
Each round also times one such GEMM (after the same pause) right before its libraries: the host
has fast and slow spells of seconds, so the peak target is judged on the median of per-round
fractions (the step's GFLOP/s in a round over that round's GEMM), paired as every other ratio
here is; both figures are in the table.

Peak memory
-----------
Each framework trains each case in a fresh subprocess (``--memory-worker``): it imports its
library, creates the data, runs a 256x256 matmul in its array library and two training steps of
a tiny 4-8-3 model (so that lazy imports, BLAS buffers, thread pools and the autograd engine are
set up before the baseline: PyTorch alone loads ~75 MB on its first backward/optimizer step);
then the process's peak-RSS mark is reset to its current resident set, the model is built and
trained for ``--memory-steps`` steps, and the peak is read
again. Peak training memory = peak minus baseline: model, gradients, optimizer state, activations
and any workspace, measured the same way for every framework (the ratio chainrule/PyTorch compares
these two numbers). On Linux the peak is ``VmHWM`` from ``/proc/self/status``, reset by writing 5
to ``/proc/self/clear_refs``; it is the same high-water mark that ``resource.getrusage().ru_maxrss``
reports, but ``ru_maxrss`` cannot be used as is here: Linux carries the *parent's* high-water mark
into a forked child, so in a worker started by this (large) benchmark process it never moves.
Where ``/proc`` is missing, ``ru_maxrss`` after training minus ``ru_maxrss`` after the setup is
used. When both deltas are below 1 MiB they are under the resolution of the method and the ratio
is reported as n/a (target counted as met). For the numpy-based frameworks (chainrule, numpy by
hand, scikit-learn) the worker then also trains a fresh model under ``tracemalloc`` and records
the traced peak (numpy reports its array buffers to tracemalloc; PyTorch's allocator does not,
hence not used for the ratio).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

LR = 0.01
MOMENTUM = 0.9
FRAMEWORKS = ("chainrule", "compiled", "torch", "sklearn", "numpy")
LABELS = {
    "chainrule": "chainrule",
    "compiled": "chainrule compiled",
    "torch": "PyTorch",
    "sklearn": "scikit-learn",
    "numpy": "numpy (by hand)",
}
MiB = 1024 * 1024


# ------------------------------------------------------------------------------------------------
# cases and targets
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    sizes: tuple  # layer widths, input first, classes last
    activation: str  # 'relu' or 'tanh' between the Linear layers
    batch: int

    @property
    def title(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} {self.activation}, batch {self.batch}"

    def flops_per_step(self) -> int:
        """GEMM FLOPs of one training step (see the module docstring)."""
        B = self.batch
        total = 0
        for i, (fin, fout) in enumerate(itertools.pairwise(self.sizes)):
            total += 2 * B * fin * fout  # forward
            total += 2 * B * fin * fout  # backward: weight gradient
            if i > 0:
                total += 2 * B * fin * fout  # backward: input gradient (not layer 0)
        return total

    def pool_size(self) -> int:
        """Samples in the data pool: a whole number of batches, at least 8 batches and 2048."""
        nb = max(8, -(-2048 // self.batch))
        return nb * self.batch


CASES = {
    c.name: c
    for c in [
        Case("mlp784_b128", (784, 256, 128, 10), "relu", 128),
        Case("mlp784_b32", (784, 256, 128, 10), "relu", 32),
        Case("mlp784_b1", (784, 256, 128, 10), "relu", 1),
        Case("tiny_b10", (2, 16, 16, 2), "tanh", 10),
        Case("tiny_b1000", (2, 16, 16, 2), "tanh", 1000),
        Case("wide1024_b256", (1024, 1024, 1024, 1024, 10), "relu", 256),
    ]
}

# chainrule / PyTorch samples-per-second ratio wanted, and fraction of the GEMM peak wanted
TARGETS = {
    "mlp784_b128": {"vs_torch": 1.3, "peak_fraction": 0.65},
    "mlp784_b32": {"vs_torch": 1.7},
    "mlp784_b1": {"vs_torch": 1.0},
    "tiny_b10": {"vs_torch": 5.0},
    "tiny_b1000": {"vs_torch": 1.5},
}
TARGET_VS_SKLEARN = 1.0  # strictly above: scikit-learn beaten
TARGET_MEMORY_RATIO = 1.5  # chainrule peak training memory <= 1.5 x PyTorch's

# the compiled step (cr.compile, issue 16): its own targets, checked when it is measured
TARGETS_COMPILED = {
    "tiny_b10": {"vs_torch": 10.0, "vs_sklearn": 4.0},
    "tiny_b1000": {"vs_torch": 2.5},
    "mlp784_b128": {"vs_torch": 1.4, "peak_fraction": 0.5},
    "mlp784_b32": {"vs_torch": 1.7},
    "mlp784_b1": {"vs_torch": 2.5},
    "wide1024_b256": {"vs_torch": 1.0, "memory": 1.0},
}
MEMORY_RESOLUTION_KB = 1024  # below this (both), ru_maxrss deltas are noise


def select_cases(spec: str | None) -> list:
    """'all', exact names, or group prefixes ('tiny' -> tiny_b10, tiny_b1000), comma separated."""
    if not spec or spec == "all":
        return list(CASES.values())
    out = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        hits = [c for n, c in CASES.items() if n == token or n.startswith(token + "_")]
        if token == "smallest":
            hits = [CASES["tiny_b10"]]
        if not hits:
            raise SystemExit(
                f"unknown case {token!r}; known: {', '.join(CASES)} "
                "(or a group: mlp784, tiny, wide1024)"
            )
        out += [c for c in hits if c not in out]
    return out


# ------------------------------------------------------------------------------------------------
# data and weights (numpy, seeded; shared by every framework)
# ------------------------------------------------------------------------------------------------


def make_data(case: Case, seed: int = 0):
    """X (pool, in) float32 standard normal; y (pool,) int64 from a random linear teacher."""
    rng = np.random.default_rng(seed)
    n = case.pool_size()
    X = rng.standard_normal((n, case.sizes[0]), dtype=np.float32)
    teacher = rng.standard_normal((case.sizes[0], case.sizes[-1]), dtype=np.float32)
    y = np.argmax(X @ teacher, axis=1).astype(np.int64)
    return X, y


def make_weights(case: Case, seed: int = 1):
    """[(W (out, in), b (out,))] float32, U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's default init."""
    rng = np.random.default_rng(seed)
    out = []
    for fin, fout in itertools.pairwise(case.sizes):
        k = 1.0 / math.sqrt(fin)
        W = rng.uniform(-k, k, size=(fout, fin)).astype(np.float32)
        b = rng.uniform(-k, k, size=(fout,)).astype(np.float32)
        out.append((W, b))
    return out


def batches_of(X, y, B):
    return [(X[i : i + B], y[i : i + B]) for i in range(0, len(X), B)]


def blas_threads() -> int:
    """numpy's BLAS thread count, as threadpoolctl reports it (1 if it cannot tell)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return 1
    path = _numpy_blas_path()
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    for info in infos:
        if path and os.path.basename(info.get("filepath", "")) == path:
            return int(info["num_threads"])
    return int(infos[0]["num_threads"]) if infos else 1


_LIMITS = []


def limit_blas_threads(n: int | None) -> None:
    """Cap numpy's BLAS (and every BLAS in the process) at ``n`` threads for the whole run."""
    if n:
        from threadpoolctl import threadpool_limits

        _LIMITS.append(threadpool_limits(limits=n, user_api="blas"))


def _numpy_blas_path() -> str | None:
    try:
        cfg = np.show_config(mode="dicts")
        lib = cfg["Build Dependencies"]["blas"].get("name", "")
    except Exception:  # noqa: BLE001 - old numpy, no config
        lib = ""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    if libs.is_dir():
        for f in sorted(libs.iterdir()):
            if "openblas" in f.name or (lib and lib in f.name):
                return f.name
    return None


# ------------------------------------------------------------------------------------------------
# the four frameworks: build a model from shared weights, run n training steps
# ------------------------------------------------------------------------------------------------


class Runner:
    """Build the case's model from ``weights``; ``run(n)`` takes n training steps."""

    name = "?"
    numpy_based = True
    #: the shortest timed window (seconds) that gives this runner's per-step cost: longer for a
    #: library whose ``run(n)`` pays a fixed cost per call (see SklearnRunner)
    min_window_s = 0.0

    @staticmethod
    def available() -> bool:
        return True

    @classmethod
    def warm_library(cls, n_threads: int) -> None:
        """Import the library, run its GEMM once and two steps of a tiny model.

        Whatever a library loads or sets up on first use (lazy imports, thread pools, BLAS
        buffers, the autograd engine) then sits in the memory baseline, not in the model's cost.
        """
        a = np.ones((256, 256), dtype=np.float32)
        a @ a
        tiny = Case("warm", (4, 8, 3), "relu", 4)
        X, y = make_data(tiny, 123)
        r = cls(tiny, X, y, make_weights(tiny, 124), n_threads)
        r.run(2)
        del r

    def run(self, n: int) -> None:
        raise NotImplementedError

    def loss(self) -> float:
        raise NotImplementedError


class ChainruleRunner(Runner):
    name = "chainrule"

    def __init__(self, case, X, y, weights, n_threads):
        import chainrule as cr
        import chainrule.nn
        import chainrule.optim  # noqa: F401

        nn = chainrule.nn
        layers = []
        for i, (W, b) in enumerate(weights):
            lin = nn.Linear(W.shape[1], W.shape[0])
            lin.weight.data[...] = W
            lin.bias.data[...] = b
            layers.append(lin)
            if i < len(weights) - 1:
                layers.append(nn.ReLU() if case.activation == "relu" else nn.Tanh())
        self.model = nn.Sequential(*layers)
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = cr.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.batches = batches_of(X, y, case.batch)
        self.i = 0
        self._loss = None

    def run(self, n):
        model, loss_fn, opt, batches = self.model, self.loss_fn, self.opt, self.batches
        nb, i = len(batches), self.i
        loss = None
        for _ in range(n):
            xb, yb = batches[i]
            i += 1
            if i == nb:
                i = 0
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        self.i, self._loss = i, loss

    def loss(self):
        return float(self._loss.item())


class CompiledRunner(ChainruleRunner):
    """The same model and step as ChainruleRunner, the step wrapped in ``cr.compile``."""

    name = "compiled"

    def __init__(self, case, X, y, weights, n_threads):
        super().__init__(case, X, y, weights, n_threads)
        self.step = self.compiled_step(self.model, self.loss_fn, self.opt)

    @staticmethod
    def compiled_step(model, loss_fn, opt):
        """ChainruleRunner's step as a function, through ``cr.compile``."""
        import chainrule as cr

        def step(xb, yb):
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            return loss

        return cr.compile(step)

    def run(self, n):
        step, batches = self.step, self.batches
        nb, i = len(batches), self.i
        loss = None
        for _ in range(n):
            xb, yb = batches[i]
            i += 1
            if i == nb:
                i = 0
            loss = step(xb, yb)
        self.i, self._loss = i, loss


class TorchRunner(Runner):
    name = "torch"
    numpy_based = False

    @staticmethod
    def available():
        try:
            import torch  # noqa: F401
        except ImportError:
            return False
        return True

    @classmethod
    def warm_library(cls, n_threads):
        import torch

        torch.set_num_threads(n_threads)
        a = torch.ones((256, 256))
        a @ a
        tiny = Case("warm", (4, 8, 3), "relu", 4)
        X, y = make_data(tiny, 123)
        r = cls(tiny, X, y, make_weights(tiny, 124), n_threads)
        r.run(2)
        del r

    def __init__(self, case, X, y, weights, n_threads):
        import torch

        torch.set_num_threads(n_threads)
        nn = torch.nn
        layers = []
        for i, (W, b) in enumerate(weights):
            lin = nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i < len(weights) - 1:
                layers.append(nn.ReLU() if case.activation == "relu" else nn.Tanh())
        self.model = nn.Sequential(*layers)
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.batches = [
            (torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in batches_of(X, y, case.batch)
        ]
        self.i = 0
        self._loss = None

    run = ChainruleRunner.run  # the same loop, word for word

    def loss(self):
        return float(self._loss.item())


class SklearnRunner(Runner):
    name = "sklearn"
    # one partial_fit call per run(n) validates its input and labels first: ~3 ms here (tiny
    # net: 3.2 ms/step at n=1, 0.6 ms at 10, 0.26 ms at 1000). The 0.3 s windows of the table
    # spread it over >= 1000 steps; a shorter window would charge it to scikit-learn's step.
    min_window_s = 0.3

    @staticmethod
    def available():
        try:
            import sklearn.neural_network  # noqa: F401
        except ImportError:
            return False
        return True

    def __init__(self, case, X, y, weights, n_threads):
        from sklearn.neural_network import MLPClassifier

        self.case = case
        self.X, self.y = X, y
        self.clf = MLPClassifier(
            hidden_layer_sizes=case.sizes[1:-1],
            activation=case.activation,
            solver="sgd",
            alpha=0.0,
            batch_size=case.batch,
            learning_rate="constant",
            learning_rate_init=LR,
            momentum=MOMENTUM,
            nesterovs_momentum=False,
            shuffle=False,
            early_stopping=False,
            tol=0.0,
            n_iter_no_change=2**30,
            max_iter=1,
            random_state=0,
        )
        self.classes = np.arange(case.sizes[-1])
        self.chunks = {}
        B = case.batch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(X[:B], y[:B], classes=self.classes)  # initialises (one step)
        # the same weights where the shapes agree (a binary problem has one logistic output);
        # in place: the optimizer holds these very arrays
        for coef, icpt, (W, b) in zip(self.clf.coefs_, self.clf.intercepts_, weights, strict=True):
            if coef.shape == W.T.shape:
                coef[...] = W.T
                icpt[...] = b
        self.start = [a.copy() for a in self.clf.coefs_ + self.clf.intercepts_]

    @staticmethod
    def make_chunk(X, y, batch, n):
        """n * batch rows: the pool's batches in order, cycled (the input of one partial_fit)."""
        rows = n * batch
        reps = -(-rows // len(X))
        Xc = np.ascontiguousarray(np.concatenate([X] * reps)[:rows])
        yc = np.concatenate([y] * reps)[:rows]
        return Xc, yc

    def _chunk(self, n):
        # built once per n, outside the timed runs (warm-up and calibration see every n used)
        if n not in self.chunks:
            self.chunks[n] = self.make_chunk(self.X, self.y, self.case.batch, n)
        return self.chunks[n]

    def run(self, n):
        Xc, yc = self._chunk(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.clf.partial_fit(Xc, yc)
            except ValueError as e:  # diverged (batch 1 runs for many steps on a fixed pool)
                if "non-finite" not in str(e):
                    raise
                self._restart()  # the chunk's work was done; start again from the first weights

    def _restart(self):
        for a, a0 in zip(self.clf.coefs_ + self.clf.intercepts_, self.start, strict=True):
            a[...] = a0
        for v in self.clf._optimizer.velocities:
            v[...] = 0

    def loss(self):
        return float(self.clf.loss_)


class NumpyRunner(Runner):
    """A hand-written MLP: forward, softmax cross-entropy, backward, SGD momentum, float32."""

    name = "numpy"

    def __init__(self, case, X, y, weights, n_threads):
        self.Ws = [np.ascontiguousarray(W.T) for W, _ in weights]  # (in, out): x @ W
        self.bs = [b.copy() for _, b in weights]
        self.params = self.Ws + self.bs
        self.bufs = [None] * len(self.params)
        self.relu = case.activation == "relu"
        self.batches = batches_of(X, y, case.batch)
        self.rows = np.arange(case.batch)
        self.i = 0
        self._loss = None

    def run(self, n):
        Ws, bs, params, bufs, relu = self.Ws, self.bs, self.params, self.bufs, self.relu
        batches, nb, i, L = self.batches, len(self.batches), self.i, len(self.Ws)
        loss = None
        for _ in range(n):
            x, y = batches[i]
            i += 1
            if i == nb:
                i = 0
            # forward
            acts = [x]
            h = x
            for k in range(L):
                z = h @ Ws[k]
                z += bs[k]
                if k < L - 1:
                    if relu:
                        np.maximum(z, 0, out=z)
                    else:
                        np.tanh(z, out=z)
                acts.append(z)
                h = z
            # mean softmax cross-entropy and its gradient (p - onehot) / B
            B = len(y)
            rows = self.rows if len(self.rows) == B else np.arange(B)
            m = h.max(axis=1, keepdims=True)
            e = np.exp(h - m)
            s = e.sum(axis=1, keepdims=True)
            loss = float(np.mean(np.log(s[:, 0]) + m[:, 0] - h[rows, y]))
            d = e
            d /= s
            d[rows, y] -= 1
            d *= 1.0 / B
            # backward
            gWs, gbs = [None] * L, [None] * L
            for k in range(L - 1, -1, -1):
                a = acts[k]
                gWs[k] = a.T @ d
                gbs[k] = d.sum(axis=0)
                if k > 0:
                    d = d @ Ws[k].T
                    if relu:
                        d *= a > 0
                    else:
                        d *= 1 - a * a
            # SGD with momentum, PyTorch's rule: b = m b + g (b = g at first), w -= lr b
            for k, g in enumerate(gWs + gbs):
                buf = bufs[k]
                if buf is None:
                    bufs[k] = buf = g.copy()
                else:
                    buf *= MOMENTUM
                    buf += g
                params[k] -= LR * buf
        self.i, self._loss = i, loss

    def loss(self):
        return self._loss


RUNNERS = {
    "chainrule": ChainruleRunner,
    "compiled": CompiledRunner,
    "torch": TorchRunner,
    "sklearn": SklearnRunner,
    "numpy": NumpyRunner,
}


# ------------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------------


def time_steps(runner, n) -> float:
    t0 = time.perf_counter()
    runner.run(n)
    return time.perf_counter() - t0


def settle(seconds: float) -> None:
    """Let the previous framework's idle BLAS/OpenMP threads stop spinning (see the docstring)."""
    if seconds > 0:
        time.sleep(seconds)


def measure(runner, steps: int, settle_s: float) -> float:
    """Seconds for ``steps`` timed steps, after a pause and a short untimed warm-up run."""
    settle(settle_s)
    runner.run(max(1, steps // 20))  # wake this framework's own thread pools
    return time_steps(runner, steps)


def calibrate(runner, target_s: float, settle_s: float = 0.0, max_steps: int = 1_000_000) -> int:
    """Steps such that one measurement takes about ``target_s`` (after a short warm-up)."""
    settle(settle_s)
    runner.run(2)
    n = 1
    while True:
        t = time_steps(runner, n)
        if t >= target_s / 5 or n >= max_steps:
            break
        n = min(max_steps, n * 4 if t < target_s / 50 else max(n + 1, int(n * target_s / 4 / t)))
    return int(min(max_steps, max(1, round(n * target_s / max(t, 1e-9)))))


def gemm_peak(n: int, repeat: int) -> list:
    """GFLOP/s of repeated float32 (n x n) @ (n x n) with numpy, ``out=`` preallocated."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return rates


def agreement(case, X, y, weights, n_threads, names, steps=5) -> dict:
    """Fresh models from the same weights, the same batches: the loss after each step."""
    losses = {}
    for name in names:
        if name == "sklearn":  # other output layer for 2 classes, own first step: not compared
            continue
        r = RUNNERS[name](case, X, y, weights, n_threads)
        seq = []
        for _ in range(steps):
            r.run(1)
            seq.append(r.loss())
        losses[name] = seq
    return _agreement_diffs(losses, steps)


def _agreement_diffs(losses: dict, steps: int) -> dict:
    ref = "torch" if "torch" in losses else ("numpy" if "numpy" in losses else None)
    diffs = {}
    if ref:
        for name, seq in losses.items():
            if name != ref:
                diffs[name] = float(max(abs(a - b) for a, b in zip(seq, losses[ref], strict=True)))
    return {"steps": steps, "reference": ref, "losses": losses, "max_abs_diff": diffs}


def _measure_in_process(case, names, args, n_threads):
    """Every framework's runner in this process: (agreement, steps, times, final losses)."""
    X, y = make_data(case, args.seed)
    weights = make_weights(case, args.seed + 1)
    agree = agreement(case, X, y, weights, n_threads, names)
    runners = {n: RUNNERS[n](case, X, y, weights, n_threads) for n in names}
    steps = {}
    for n, r in runners.items():  # warm-up and calibration
        steps[n] = calibrate(r, args.target_time, args.settle)
        r.run(max(1, steps[n] // 20))
        time_steps(r, steps[n])
    times = {n: [] for n in names}
    peaks = []
    for _ in range(args.rounds):  # interleaved: G A B C D G A B C D ... (G: the round's GEMM)
        peaks.append(round_gemm(args))
        for n, r in runners.items():
            times[n].append(measure(r, steps[n], args.settle))
    return agree, steps, times, peaks, {n: runners[n].loss() for n in names}


class _Worker:
    """One library's measurements in a process of its own (``--bench-worker``), driven over
    pipes: the parent sends one command line and waits for its one-line JSON answer, so only
    one process works at a time (the rounds stay interleaved A B C D, as in one process)."""

    def __init__(self, case, name, args):
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--bench-worker",
            case.name,
            name,
            "--seed",
            str(args.seed),
            "--target-time",
            str(args.target_time),
            "--settle",
            str(args.settle),
        ]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        self.name = name
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def ask(self, cmd: str, timeout: float = 1200):
        if cmd:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=timeout)
            raise RuntimeError(f"benchmark worker {self.name} stopped (exit status {code})")
        return json.loads(line)["result"]

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _measure_per_process(case, names, args):
    """The same measurements as _measure_in_process, each library in its own worker process
    (started together, then driven one at a time): PyTorch never runs in a process that did
    numpy work, and no library's thread pools share a process with another's."""
    workers = {n: _Worker(case, n, args) for n in names}
    try:
        for w in workers.values():  # each sends one line when its data and model are built
            w.ask("")
        agree_steps = 5
        losses = {
            n: w.ask(f"agree {agree_steps}") for n, w in workers.items() if n != "sklearn"
        }  # scikit-learn: another output layer for 2 classes, its own first step
        steps = {n: w.ask("calibrate") for n, w in workers.items()}
        times = {n: [] for n in names}
        peaks = []
        for _ in range(args.rounds):  # interleaved: G A B C D G A B C D ... (G: in this process)
            peaks.append(round_gemm(args))
            for n, w in workers.items():
                times[n].append(w.ask("measure"))
        final = {n: w.ask("loss") for n, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    return _agreement_diffs(losses, agree_steps), steps, times, peaks, final


def bench_worker(case_name: str, name: str, args) -> None:
    """The worker side of _Worker: build one library's runner, then answer commands read from
    standard input (agree N, calibrate, measure, loss, quit), one JSON line each."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed (a library's notices) goes to standard error
    sys.stdout = sys.stderr
    case = CASES[case_name]
    n_threads = blas_threads()
    X, y = make_data(case, args.seed)
    weights = make_weights(case, args.seed + 1)
    cls = RUNNERS[name]
    runner = cls(case, X, y, weights, n_threads)
    steps = None

    def answer(value):
        out.write(json.dumps({"result": value}) + "\n")

    answer(n_threads)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "agree":
            fresh = cls(case, X, y, weights, n_threads)
            seq = []
            for _ in range(int(rest[0])):
                fresh.run(1)
                seq.append(fresh.loss())
            answer(seq)
        elif cmd == "calibrate":
            steps = calibrate(runner, args.target_time, args.settle)
            runner.run(max(1, steps // 20))
            time_steps(runner, steps)
            answer(steps)
        elif cmd == "measure":
            answer(measure(runner, steps, args.settle))
        elif cmd == "loss":
            answer(runner.loss())
        elif cmd == "quit":
            break
        else:
            raise SystemExit(f"benchmark worker: unknown command {cmd!r}")


def round_gemm(args) -> float:
    """One GEMM-peak sample (GFLOP/s) for a round, after the same pause as each library's."""
    settle(args.settle)
    return gemm_peak(args.gemm_n, 1)[0]


def bench_case(case, names, args, n_threads, log) -> dict:
    if args.process_per_library:
        agree, steps, times, peaks, final = _measure_per_process(case, names, args)
    else:
        agree, steps, times, peaks, final = _measure_in_process(case, names, args, n_threads)
    sps = {n: [steps[n] * case.batch / t for t in times[n]] for n in names}
    flops = case.flops_per_step()
    out = {
        "case": case.name,
        "title": case.title,
        "sizes": list(case.sizes),
        "activation": case.activation,
        "batch": case.batch,
        "flops_per_step": case.flops_per_step(),
        "steps_per_measurement": steps,
        "samples_per_s": {n: sps[n] for n in names},
        "median_samples_per_s": {n: statistics.median(sps[n]) for n in names},
        "median_step_us": {n: statistics.median(times[n]) / steps[n] * 1e6 for n in names},
        "final_loss": final,
        "agreement": agree,
        "ratios": {},
    }
    for mine in ("chainrule", "compiled"):
        for other in ("chainrule", "torch", "sklearn", "numpy"):
            if mine in names and other in names and other != mine:
                per_round = [a / b for a, b in zip(sps[mine], sps[other], strict=True)]
                out["ratios"][f"{mine}/{other}"] = {
                    "per_round": per_round,
                    "median": statistics.median(per_round),
                }
    out["gflops"] = {n: flops * out["median_samples_per_s"][n] / case.batch / 1e9 for n in names}
    # the step's GFLOP/s against the GEMM timed in the same round, seconds before it: the host
    # has fast and slow spells of seconds, and a step timed in one against a peak timed in the
    # other says nothing about the step; the median of these per-round fractions is the figure
    # the peak target is judged on (as every other ratio here pairs rounds)
    out["round_gemm_gflops"] = peaks
    out["peak_fraction_paired"] = {
        n: statistics.median(
            flops * v / case.batch / 1e9 / p for v, p in zip(sps[n], peaks, strict=True)
        )
        for n in names
    }
    med = out["median_samples_per_s"]
    log(f"  {case.name}: " + ", ".join(f"{LABELS[n]} {med[n]:,.0f}/s" for n in names))
    return out


# ------------------------------------------------------------------------------------------------
# profile: where chainrule's time goes within a step
# ------------------------------------------------------------------------------------------------


def profile_chainrule(case: Case, steps: int, seed: int = 0, top: int = 25) -> str:
    """A text report: the step's phases, each unit's numpy work, and cProfile's top functions.

    Phases (zero_grad, forward, loss, backward, optimizer step) are timed with perf_counter
    around each call. Inside them, every Unit's ``forward``/``backward`` is wrapped to time its
    numpy work; what remains of a phase is framework overhead (modules, argument checks, recording
    in ``Unit.apply``, and in backward the engine: ordering, gradient bookkeeping, accumulation).
    The wrappers add ~0.3 us per call, so the instrumented total exceeds the plain time a little.
    """
    import cProfile
    import importlib
    import io
    import pstats
    from collections import Counter

    T = importlib.import_module("chainrule.tensor")
    X, y = make_data(case, seed)
    weights = make_weights(case, seed + 1)
    n_threads = blas_threads()
    r = ChainruleRunner(case, X, y, weights, n_threads)
    h = NumpyRunner(case, X, y, weights, n_threads)
    r.run(max(5, steps // 10))
    h.run(max(5, steps // 10))
    plain, hand = [], []
    for _ in range(5):
        plain.append(time_steps(r, steps) / steps * 1e6)
        hand.append(time_steps(h, steps) / steps * 1e6)
    pc = time.perf_counter
    acc = Counter()
    saved = []

    def subclasses(c):
        for sc in c.__subclasses__():
            yield sc
            yield from subclasses(sc)

    def wrap(cls, meth):
        f = cls.__dict__[meth]
        fn = f.__func__ if isinstance(f, staticmethod) else f
        key = f"{cls.name}.{meth}"

        def timed(*a, **k):
            t0 = pc()
            out = fn(*a, **k)
            acc[key] += pc() - t0
            return out

        saved.append((cls, meth, f))
        setattr(cls, meth, staticmethod(timed))

    for cls in set(subclasses(T.Unit)):
        for meth in ("forward", "backward"):
            if meth in cls.__dict__:
                wrap(cls, meth)
    ph = Counter()
    model, loss_fn, opt, batches = r.model, r.loss_fn, r.opt, r.batches
    try:
        i = 0
        for _ in range(steps):
            xb, yb = batches[i]
            i = (i + 1) % len(batches)
            t0 = pc()
            opt.zero_grad()
            t1 = pc()
            out = model(xb)
            t2 = pc()
            loss = loss_fn(out, yb)
            t3 = pc()
            loss.backward()
            t4 = pc()
            opt.step()
            t5 = pc()
            ph["zero_grad"] += t1 - t0
            ph["forward (model)"] += t2 - t1
            ph["loss"] += t3 - t2
            ph["backward"] += t4 - t3
            ph["optimizer step"] += t5 - t4
    finally:
        for cls, meth, f in saved:
            setattr(cls, meth, f)
    us = 1e6 / steps
    total = sum(ph.values())
    lines = [
        f"chainrule profile: {case.title}, {steps} steps",
        f"plain: {statistics.median(plain):.1f} us/step; numpy by hand: "
        f"{statistics.median(hand):.1f} us/step (medians of 5); instrumented: "
        f"{total * us:.1f} us/step",
        "",
        "phase                      us/step   share",
    ]
    for k, v in ph.items():
        lines.append(f"  {k:24s} {v * us:8.1f}  {100 * v / total:5.1f}%")
    unit_f = sum(v for k, v in acc.items() if k.endswith(".forward"))
    unit_b = sum(v for k, v in acc.items() if k.endswith(".backward"))
    fwd = ph["forward (model)"] + ph["loss"]
    lines += [
        "",
        "split                                  us/step",
        f"  units' forward numpy work            {unit_f * us:8.1f}",
        f"  forward overhead (modules, checks,   {(fwd - unit_f) * us:8.1f}",
        "    Unit.apply recording)",
        f"  units' backward numpy work           {unit_b * us:8.1f}",
        f"  engine (ordering, dicts, casts,      {(ph['backward'] - unit_b) * us:8.1f}",
        "    accumulation, .grad)",
        f"  optimizer step + zero_grad           "
        f"{(ph['optimizer step'] + ph['zero_grad']) * us:8.1f}",
        "",
        "per unit                               us/step",
    ]
    for k, v in acc.most_common():
        lines.append(f"  {k:36s} {v * us:8.1f}")
    pr = cProfile.Profile()
    pr.enable()
    r.run(steps)
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    text = text[text.find("   ncalls") :] if "   ncalls" in text else text
    lines += [
        "",
        f"cProfile, top {top} by own time ({steps} steps; numpy calls made with "
        "operators such as @ count in the caller's own time):",
        text.rstrip(),
    ]
    return "\n".join(lines) + "\n"


def profile_compiled(case: Case, steps: int, seed: int = 0) -> str:
    """Where a compiled (replayed) step's time goes: each planned unit's forward and backward,
    the optimizer step, and the rest (the generated code's glue, guards, the call itself).

    Each part is timed with perf_counter around its call inside the generated program (~0.2 us
    added per call); parts are summed over ``steps`` replayed steps."""
    import importlib
    from collections import Counter

    compile_module = importlib.import_module("chainrule.compile")
    X, y = make_data(case, seed)
    weights = make_weights(case, seed + 1)
    r = CompiledRunner(case, X, y, weights, blas_threads())  # the real program: units inline
    r.run(max(5, steps // 10))
    plain = []
    for _ in range(5):
        plain.append(time_steps(r, steps) / steps * 1e6)
    # a second program that calls each plan's methods (compile.INLINE = False), so that each
    # unit's forward and backward can be timed: the same numpy calls, plus a call per unit
    saved_inline = compile_module.INLINE
    compile_module.INLINE = False
    try:
        r = CompiledRunner(case, X, y, weights, blas_threads())
        r.run(max(5, steps // 10))
    finally:
        compile_module.INLINE = saved_inline
    (entry,) = [e for e in r.step.cache.values() if e.program is not None][:1] or [None]
    if entry is None:
        return f"compiled profile: {case.title}: no program (the step ran eagerly)\n"
    prog = entry.program
    ns = prog.run.__globals__
    acc = Counter()
    pc = time.perf_counter
    saved = dict(ns)

    def timed(fn, key):
        def w(*a, **k):
            t0 = pc()
            out = fn(*a, **k)
            acc[key] += pc() - t0
            return out

        return w

    for name, v in list(ns.items()):
        if name[:1] in "FB" and name[1:].isdigit():
            j = int(name[1:])
            label = prog.unit_of[j].name + (
                "" if type(prog.plan_of[j]).__name__ != "GenericPlan" else " (own methods)"
            )
            kind = "forward" if name[0] == "F" else "backward"
            acc.setdefault(f"{label}.{kind}", 0.0)
            ns[name] = timed(v, f"{label}.{kind}")
        elif any(v is fs for fs in prog.flat_steps):
            ns[name] = timed(v, "optimizer step (flat)")
        elif callable(v) and getattr(v, "__name__", "") in ("zero_grad", "step"):
            ns[name] = timed(v, f"{v.__qualname__}")
    try:
        t0 = pc()
        r.run(steps)
        total = pc() - t0
    finally:
        ns.update(saved)
    us = 1e6 / steps
    parts = sum(acc.values())
    lines = [
        f"compiled profile: {case.title}, {steps} replayed steps",
        f"plain (units written into the program): {statistics.median(plain):.1f} us/step "
        f"(median of 5); instrumented (units called, each timed): {total * us:.1f} us/step",
        "",
        "part                                   us/step",
    ]
    for k, v in sorted(acc.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {k:36s} {v * us:8.1f}")
    lines.append(f"  {'glue, guards, the call':36s} {(total - parts) * us:8.1f}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# memory (one fresh subprocess per case and framework)
# ------------------------------------------------------------------------------------------------


def _maxrss_kb() -> int:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r  # bytes on macOS, KiB on Linux


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Set this process's VmHWM (peak RSS) to its current RSS (Linux >= 4.0); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _malloc_trim() -> None:
    """glibc's malloc_trim(0): freed heap pages go back to the system (no-op elsewhere).
    (chainrule._memory.release_freed_memory does the same, but importing it would load
    chainrule into the other libraries' memory workers.)"""
    try:
        import ctypes
        import ctypes.util

        lib = ctypes.util.find_library("c")
        fn = getattr(ctypes.CDLL(lib), "malloc_trim", None) if lib else None
    except OSError:
        fn = None
    if fn is not None:
        fn(0)


def memory_worker(case_name: str, name: str, steps: int, seed: int) -> dict:
    """Peak resident memory that training adds, in a fresh process (see the module docstring).

    Linux: the peak-RSS mark (VmHWM) is reset to the current RSS after the setup and read after
    training. Elsewhere: ``ru_maxrss`` after training minus ``ru_maxrss`` after the setup.
    """
    case = CASES[case_name]
    n_threads = blas_threads()
    cls = RUNNERS[name]
    X, y = make_data(case, seed)
    weights = make_weights(case, seed + 1)
    cls.warm_library(n_threads)
    # scikit-learn takes its steps' batches as one array: input data, made before the baseline
    chunk = SklearnRunner.make_chunk(X, y, case.batch, steps) if name == "sklearn" else None
    gc.collect()
    # memory freed during the setup goes back to the system before the baseline, for every
    # library alike (glibc keeps freed pages resident otherwise; a library that trims during
    # training, as cr.compile does after moving parameters, would be credited with them)
    _malloc_trim()
    if _reset_peak_rss() and _proc_status_kb("VmHWM") is not None:
        method = "VmHWM"
        # the reset mark itself (not VmRSS read a moment later: the kernel's RSS counters are
        # synced lazily, and the two reads may differ by a few hundred KiB)
        base = _proc_status_kb("VmHWM")
    else:
        method = "ru_maxrss"
        base = _maxrss_kb()
    runner = cls(case, X, y, weights, n_threads)
    if chunk is not None:
        runner.chunks = {steps: chunk}
    runner.run(steps)
    peak = _proc_status_kb("VmHWM") if method == "VmHWM" else _maxrss_kb()
    out = {
        "case": case_name,
        "framework": name,
        "steps": steps,
        "method": method,
        "baseline_kb": base,
        "peak_kb": peak,
        "rss_delta_kb": peak - base,
        "tracemalloc_peak_kb": None,
    }
    if cls.numpy_based:
        import tracemalloc

        del runner
        gc.collect()
        tracemalloc.start()
        runner = cls(case, X, y, weights, n_threads)
        if chunk is not None:
            runner.chunks = {steps: chunk}
        runner.run(steps)
        out["tracemalloc_peak_kb"] = tracemalloc.get_traced_memory()[1] // 1024
        tracemalloc.stop()
    return out


def check_alone(cases, args, log) -> dict:
    """PyTorch's median samples/s per case, measured by this script in a fresh run that has
    PyTorch as its only library (no other library's rounds, no numpy BLAS thread beside it)."""
    import tempfile

    out = {}
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--frameworks",
                "torch",
                "--cases",
                case.name,
                "--no-memory",
                "--rounds",
                str(args.rounds),
                "--target-time",
                str(args.target_time),
                "--settle",
                str(args.settle),
                "--seed",
                str(args.seed),
                "--outdir",
                tmp,
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
            if p.returncode != 0:
                log(f"  PyTorch alone {case.name} failed:\n{p.stderr[-2000:]}")
                continue
            data = json.loads((Path(tmp) / "latest.json").read_text())
            out[case.name] = data["cases"][0]["median_samples_per_s"]["torch"]
            log(f"  {case.name}: PyTorch alone {out[case.name]:,.0f}/s")
    return out


def measure_memory(case, names, args, log) -> dict:
    res = {}
    for name in names:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--memory-worker",
            case.name,
            name,
            "--memory-steps",
            str(args.memory_steps),
            "--seed",
            str(args.seed),
        ]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            log(f"  memory worker {case.name}/{name} failed:\n{p.stderr[-2000:]}")
            res[name] = None
            continue
        res[name] = json.loads(p.stdout.strip().splitlines()[-1])

    def mem_ratio(mine):
        cr, th = res.get(mine), res.get("torch")
        if not (cr and th):
            return None
        a, b = cr["rss_delta_kb"], th["rss_delta_kb"]
        if max(a, b) < MEMORY_RESOLUTION_KB:
            return "below resolution"
        return a / max(b, 1)

    ratio = mem_ratio("chainrule")
    log(
        f"  {case.name} memory: "
        + ", ".join(f"{LABELS[n]} {r['rss_delta_kb'] / 1024:.1f} MiB" for n, r in res.items() if r)
    )
    return {
        "method": "peak RSS (VmHWM) minus RSS after imports, data and a warm-up (KiB)",
        "by_framework": res,
        "ratio_chainrule_torch": ratio,
        "ratio_compiled_torch": mem_ratio("compiled"),
    }


# ------------------------------------------------------------------------------------------------
# machine info, verdicts, the table
# ------------------------------------------------------------------------------------------------


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def machine_info(n_threads: int) -> dict:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads": n_threads,
        "env": {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("OPENBLAS", "OMP_", "MKL", "GOTO", "NVPL", "BLIS"))
        },
    }
    for mod in ("torch", "sklearn", "threadpoolctl"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        from threadpoolctl import threadpool_info

        pools = threadpool_info()
        info["threadpools"] = [
            {k: (os.path.basename(v) if k == "filepath" else v) for k, v in p.items()}
            for p in pools
        ]
        npb = _numpy_blas_path()
        for p in info["threadpools"]:
            if p.get("user_api") == "blas" and p.get("filepath") == npb:
                info["numpy_blas"] = {
                    k: p.get(k)
                    for k in (
                        "internal_api",
                        "version",
                        "architecture",
                        "threading_layer",
                        "num_threads",
                        "filepath",
                    )
                }
    except ImportError:
        info["threadpools"] = None
    return info


def verdicts(case_res: dict, peak: float) -> dict:
    """met / missed for each target that applies to this case (None where not measurable)."""
    mine = "compiled" if "compiled" in case_res["median_samples_per_s"] else "chainrule"
    if mine == "compiled":
        t = TARGETS_COMPILED.get(case_res["case"], {})
        mem_target = t.get("memory", 1.0)  # "peak training memory <= PyTorch's"
    else:
        t = TARGETS.get(case_res["case"], {})
        mem_target = TARGET_MEMORY_RATIO
    r = case_res["ratios"]
    v = {"framework": mine}
    if "vs_torch" in t:
        m = r.get(f"{mine}/torch", {}).get("median")
        v["vs_torch"] = {
            "target": t["vs_torch"],
            "value": m,
            "met": None if m is None else m >= t["vs_torch"],
        }
    m = r.get(f"{mine}/sklearn", {}).get("median")
    ts = t.get("vs_sklearn", TARGET_VS_SKLEARN)
    v["vs_sklearn"] = {
        "target": ts,
        "value": m,
        "met": None if m is None else (m >= ts if "vs_sklearn" in t else m > ts),
    }
    if "peak_fraction" in t:
        g = case_res["gflops"].get(mine)
        unpaired = None if (g is None or not peak) else g / peak
        f = case_res.get("peak_fraction_paired", {}).get(mine, unpaired)
        v["peak_fraction"] = {
            "target": t["peak_fraction"],
            "value": f,  # the median of per-round fractions (step / the round's own GEMM)
            "of_run_peak": unpaired,  # the median step against the run's median GEMM peak
            "met": None if f is None else f >= t["peak_fraction"],
        }
    mem = case_res.get("memory")
    if mem is not None and mem_target is not None:
        ratio = mem.get(f"ratio_{mine}_torch")
        v["memory"] = {
            "target": mem_target,
            "value": ratio if isinstance(ratio, float) else None,
            "met": (
                None
                if ratio is None
                else True
                if ratio == "below resolution"
                else ratio <= mem_target
            ),
        }
    return v


def _mark(v):
    return "n/a" if v is None or v["met"] is None else ("met" if v["met"] else "MISSED")


def _num(x, fmt="{:,.0f}"):
    return "–" if x is None else fmt.format(x)


def _main_framework(result) -> str:
    """The column the targets apply to: the compiled step when it was measured."""
    return "compiled" if "compiled" in result["settings"]["frameworks"] else "chainrule"


def markdown(result: dict) -> str:
    m = result["machine"]
    peak = result["gemm_peak_gflops"]["median"]
    lines = [
        "# chainrule training benchmark",
        "",
        f"{m['cpu_model']}, {m['cpu_count']} cores, BLAS threads {m['blas_threads']}, "
        f"numpy {m['numpy']} ({(m.get('numpy_blas') or {}).get('internal_api', '?')} "
        f"{(m.get('numpy_blas') or {}).get('version', '')}, kernel "
        f"{(m.get('numpy_blas') or {}).get('architecture', '?')}), torch {m.get('torch')}, "
        f"scikit-learn {m.get('sklearn')}; env {m['env'] or '{}'}.",
        f"{result['settings']['rounds']} interleaved rounds of ~{result['settings']['target_time']}"
        f" s per framework"
        + (
            " (each library in a worker process of its own)"
            if result["settings"].get("process_per_library")
            else " (all in one process)"
        )
        + f", a {result['settings']['settle_s']:g} s pause before each; medians. "
        f"numpy float32 GEMM peak ({result['gemm_peak_gflops']['n']}²): "
        f"{peak:,.0f} GFLOP/s. Started {result['started']}, took {result['elapsed_s']:.0f} s.",
        "",
        "Samples per second (higher is better); ratios are medians of per-round ratios. "
        "'% peak': the median step against the run's GEMM peak; '% paired': the median of each "
        "round's step against a GEMM timed in that round just before it (the peak target's "
        "figure). "
        "'cr' is chainrule's eager step, 'compiled' the same step through cr.compile; targets "
        f"apply to {LABELS[_main_framework(result)]}.",
        "",
        "| case | chainrule | compiled | PyTorch | scikit-learn | numpy (by hand) "
        "| cr/PyTorch (target) | cr/sklearn | compiled/PyTorch (target) | compiled/sklearn "
        "| GFLOP/s cr; compiled (% peak, % paired) | peak mem cr; compiled / PyTorch MiB |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|---|---|",
    ]
    main = _main_framework(result)
    for c in result["cases"]:
        med = c["median_samples_per_s"]
        v = c["verdicts"]
        r = c["ratios"]
        cells = {}
        for mine in ("chainrule", "compiled"):
            rt = r.get(f"{mine}/torch", {}).get("median")
            cell_t = _num(rt, "{:.2f}×")
            if mine == main and "vs_torch" in v:
                cell_t += f" (≥{v['vs_torch']['target']}: {_mark(v['vs_torch'])})"
            rs = r.get(f"{mine}/sklearn", {}).get("median")
            cell_s = _num(rs, "{:.2f}×")
            if mine == main:
                cell_s += f" ({_mark(v['vs_sklearn'])})"
            cells[mine] = (cell_t, cell_s)
        gs = []
        paired = c.get("peak_fraction_paired", {})
        for mine in ("chainrule", "compiled"):
            g = c["gflops"].get(mine)
            fp = paired.get(mine)
            pair = "" if fp is None else f", {100 * fp:.0f}% paired"
            gs.append("–" if g is None else f"{g:.1f} ({100 * g / peak:.0f}%{pair})")
        cell_g = "; ".join(gs)
        if "peak_fraction" in v:
            cell_g += f" (≥{100 * v['peak_fraction']['target']:.0f}%: {_mark(v['peak_fraction'])})"
        mem = c.get("memory")
        if mem is None:
            cell_m = "not measured"
        else:
            bf = mem["by_framework"]

            def mib(n, bf=bf):
                return None if not bf.get(n) else bf[n]["rss_delta_kb"] / 1024

            ratio = mem.get(f"ratio_{main}_torch")
            rtxt = f"{ratio:.2f}×" if isinstance(ratio, float) else "<1 MiB both" if ratio else "–"
            cell_m = (
                f"{_num(mib('chainrule'), '{:.1f}')}; {_num(mib('compiled'), '{:.1f}')} / "
                f"{_num(mib('torch'), '{:.1f}')} = {rtxt}"
                + (f" (≤{v['memory']['target']}: {_mark(v['memory'])})" if "memory" in v else "")
            )
        lines.append(
            f"| {c['title']} | {_num(med.get('chainrule'))} | {_num(med.get('compiled'))} "
            f"| {_num(med.get('torch'))} | {_num(med.get('sklearn'))} "
            f"| {_num(med.get('numpy'))} | {cells['chainrule'][0]} | {cells['chainrule'][1]} "
            f"| {cells['compiled'][0]} | {cells['compiled'][1]} | {cell_g} | {cell_m} |"
        )
    n_met = sum(
        1
        for c in result["cases"]
        for x in c["verdicts"].values()
        if isinstance(x, dict) and x["met"] is True
    )
    n_all = sum(
        1
        for c in result["cases"]
        for x in c["verdicts"].values()
        if isinstance(x, dict) and x["met"] is not None
    )
    lines += ["", f"Targets met: {n_met} of {n_all}.", ""]
    agree = [
        (c["case"], c["agreement"])
        for c in result["cases"]
        if "chainrule" in c["agreement"]["max_abs_diff"]
    ]
    if agree:
        ref = LABELS.get(agree[0][1]["reference"], "?")
        lines.append(
            f"Same computation: chainrule's loss vs {ref}'s, same weights and batches, 5 "
            "steps, max |Δloss|: "
            + ", ".join(f"{name} {a['max_abs_diff']['chainrule']:.1e}" for name, a in agree)
            + "."
        )
    alone = result.get("torch_alone")
    if alone:
        lines.append(
            "PyTorch alone (a run of its own: no other library's rounds beside it) vs interleaved, "
            "samples/s: "
            + "; ".join(
                f"{c['case']} {_num(alone.get(c['case']))} vs "
                f"{_num(c['median_samples_per_s'].get('torch'))}"
                for c in result["cases"]
            )
            + "."
        )
    la = result["machine"].get("loadavg")
    if la:
        lines.append(
            f"Load average (1 min) at start / end: {la['start']} / {la['end']} "
            f"(the machine is shared; > {m['cpu_count']} means other work competed)."
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--cases",
        default="all",
        help="comma list of case names or groups (mlp784, tiny, wide1024), or 'all'; "
        f"cases: {', '.join(CASES)}",
    )
    ap.add_argument(
        "--frameworks",
        default=",".join(FRAMEWORKS),
        help="comma list among chainrule, compiled, torch, sklearn, numpy (missing ones skipped)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 rounds of ~0.03 s, small GEMM peak, 3 memory steps",
    )
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    ap.add_argument(
        "--target-time", type=float, default=None, help="seconds per measurement (default 0.3)"
    )
    ap.add_argument(
        "--memory-steps",
        type=int,
        default=None,
        help="training steps in each memory subprocess (default 20)",
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=None,
        help="pause before each measurement so that the previous framework's idle "
        "threads stop spinning (default 1 s: on a loaded 2-core machine a "
        "PyTorch run that starts within ~1 s of numpy work is 20-40x slower)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="cap numpy's BLAS at this many threads (threadpoolctl) and give PyTorch "
        "as many (default: numpy's own count, unchanged)",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    ap.add_argument(
        "--process-per-library",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each library's measurements of a case in a worker process of its own, "
        "driven by this one through pipes in the same interleaved rounds (default); "
        "--no-process-per-library runs them all in this process",
    )
    ap.add_argument(
        "--check-alone",
        action="store_true",
        help="also measure PyTorch in a process of its own per case (no numpy work "
        "around it) and report it beside the interleaved figure",
    )
    ap.add_argument(
        "--outdir", default=str(HERE / "results"), help="where latest.json and latest.md go"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--profile",
        action="store_true",
        help="instead of the benchmark: profile chainrule alone on the selected cases "
        "(phases, units, engine, cProfile); writes profile.txt in --outdir",
    )
    ap.add_argument(
        "--profile-steps",
        type=int,
        default=None,
        help="steps profiled per case (default: about 1.5 s worth)",
    )
    ap.add_argument(
        "--memory-worker", nargs=2, metavar=("CASE", "FRAMEWORK"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--bench-worker", nargs=2, metavar=("CASE", "FRAMEWORK"), help=argparse.SUPPRESS
    )
    args = ap.parse_args(argv)
    q = args.quick
    if args.rounds is None:
        args.rounds = 2 if q else 7
    if args.target_time is None:
        args.target_time = 0.03 if q else 0.3
    if args.settle is None:
        args.settle = 1.0
    if args.memory_steps is None:
        args.memory_steps = 3 if q else 20
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    try:
        return _main(args, argv)
    finally:
        while _LIMITS:  # called in-process (tests): give BLAS its threads back
            _LIMITS.pop().restore_original_limits()


def _main(args, argv) -> dict:
    if args.cases.strip().startswith("conv"):  # the convolution cases live in bench_conv.py
        if str(HERE) not in sys.path:
            sys.path.insert(0, str(HERE))
        import bench_conv

        return bench_conv.main(argv)
    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, args.memory_steps, args.seed)))
        return {}
    if args.bench_worker:
        bench_worker(*args.bench_worker, args)
        return {}
    if args.profile:
        reports = []
        for case in select_cases(args.cases):
            n = args.profile_steps
            if n is None:
                probe = ChainruleRunner(
                    case,
                    *make_data(case, args.seed),
                    make_weights(case, args.seed + 1),
                    blas_threads(),
                )
                n = calibrate(probe, 0.3)
            reports.append(profile_chainrule(case, n, args.seed))
            print(reports[-1], flush=True)
            reports.append(profile_compiled(case, n, args.seed))
            print(reports[-1], flush=True)
        out = Path(args.outdir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "profile.txt").write_text("\n".join(reports))
        return {"profile": reports}
    t_start = time.perf_counter()
    load_start = _loadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    wanted = [n.strip() for n in args.frameworks.split(",") if n.strip()]
    for n in wanted:
        if n not in RUNNERS:
            raise SystemExit(f"unknown framework {n!r}; known: {', '.join(FRAMEWORKS)}")
    names = [n for n in FRAMEWORKS if n in wanted and RUNNERS[n].available()]
    skipped = [n for n in wanted if n not in names]
    if skipped:
        log(f"not installed, skipped: {', '.join(skipped)}")
    cases = select_cases(args.cases)
    n_threads = blas_threads()
    if "torch" in names and not args.process_per_library:
        import torch

        torch.set_num_threads(n_threads)

    machine = machine_info(n_threads)
    gemm_n, gemm_rep = (512, 3) if args.quick else (2048, 5)
    log(f"BLAS threads {n_threads}; {machine.get('numpy_blas')}; env {machine['env']}")
    args.gemm_n = gemm_n  # each round times one GEMM of this size too (round_gemm)
    peak_rates = gemm_peak(gemm_n, gemm_rep)
    log(f"numpy float32 GEMM {gemm_n}²: {statistics.median(peak_rates):,.0f} GFLOP/s")

    results = []
    for case in cases:
        log(f"{case.name}: {case.title}")
        results.append(bench_case(case, names, args, n_threads, log))
    peak_rates += gemm_peak(gemm_n, gemm_rep)
    peak = statistics.median(peak_rates)
    for c in results:
        c["peak_fraction"] = {n: g / peak for n, g in c["gflops"].items()}
        if not args.no_memory:
            case = CASES[c["case"]]
            c["memory"] = measure_memory(case, names, args, log)
        else:
            c["memory"] = None
        c["verdicts"] = verdicts(c, peak)

    alone = check_alone(cases, args, log) if args.check_alone and "torch" in names else None
    result = {
        "torch_alone": alone,
        "started": started,
        "elapsed_s": None,
        "command": " ".join(
            [os.path.basename(sys.executable), "benchmarks/bench_training.py"]
            + (list(argv) if argv is not None else sys.argv[1:])
        ),
        "settings": {
            "rounds": args.rounds,
            "target_time": args.target_time,
            "settle_s": args.settle,
            "process_per_library": args.process_per_library,
            "threads_option": args.threads,
            "memory_steps": None if args.no_memory else args.memory_steps,
            "quick": args.quick,
            "seed": args.seed,
            "lr": LR,
            "momentum": MOMENTUM,
            "frameworks": names,
            "skipped_frameworks": skipped,
        },
        "machine": machine,
        "gemm_peak_gflops": {"n": gemm_n, "samples": peak_rates, "median": peak},
        "flop_counting": "GEMMs only: per Linear(in,out) at batch B, forward 2*B*in*out, "
        "backward 4*B*in*out, minus the first layer's input gradient 2*B*in*out",
        "memory_method": None
        if args.no_memory
        else "fresh subprocess per (case, framework): peak RSS during model building and training "
        "(Linux VmHWM, reset to the current RSS via /proc/self/clear_refs after imports, data "
        "creation and a warm-up: a 256x256 GEMM and 2 steps of a tiny 4-8-3 model) minus that RSS; "
        "ru_maxrss where /proc is missing; "
        "tracemalloc peak too for the numpy-based ones",
        "targets": {
            "vs_torch": TARGETS,
            "vs_sklearn_above": TARGET_VS_SKLEARN,
            "memory_ratio_at_most": TARGET_MEMORY_RATIO,
        },
        "cases": results,
    }
    result["elapsed_s"] = time.perf_counter() - t_start
    machine["loadavg"] = {"start": load_start, "end": _loadavg()}
    md = markdown(result)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "latest.md").write_text(md)
    print(md)
    return result


if __name__ == "__main__":
    main()
