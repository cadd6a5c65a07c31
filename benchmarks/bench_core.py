"""Per-unit overhead of the core: forward+backward of a chain of scalar units, and of one big step.

    python benchmarks/bench_core.py            # prints median times (and PyTorch's, if installed)

Cases: a chain of 1,000 scalar units (y = y * 1.0001 + 0.0001, alternating mul and add), and a
512x512 float32 matmul + tanh + sum. Timings are medians of repeated runs, chainrule and PyTorch
interleaved in one run; never asserted in tests (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import chainrule as cr


def chain_chainrule(n):
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(n // 2):
        y = y * 1.0001
        y = y + 0.0001
    y.backward()
    return x.grad


def chain_torch(n):
    import torch

    x = torch.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(n // 2):
        y = y * 1.0001
        y = y + 0.0001
    y.backward()
    return x.grad


def matmul_chainrule(a, b):
    ta = cr.tensor(a, requires_grad=True)
    tb = cr.tensor(b, requires_grad=True)
    (ta @ tb).tanh().sum().backward()
    return ta.grad


def matmul_torch(a, b):
    import torch

    ta = torch.from_numpy(a).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()
    (ta @ tb).tanh().sum().backward()
    return ta.grad


def timeit(fn, *args, repeat):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    a = rng.normal(size=(512, 512)).astype(np.float32)
    b = rng.normal(size=(512, 512)).astype(np.float32)
    cases = [
        ("chain of 1,000 scalar units, forward+backward", chain_chainrule, chain_torch, (1000,)),
        (
            "512x512 float32 matmul+tanh+sum, forward+backward",
            matmul_chainrule,
            matmul_torch,
            (a, b),
        ),
    ]
    for name, ours, theirs, fargs in cases:
        ours(*fargs)
        if torch:
            theirs(*fargs)
        t_ours, t_theirs = [], []
        for _ in range(args.repeat):  # interleaved: A B A B ...
            t_ours += timeit(ours, *fargs, repeat=1)
            if torch:
                t_theirs += timeit(theirs, *fargs, repeat=1)
        line = f"{name}: chainrule {statistics.median(t_ours) * 1e3:.2f} ms"
        if torch:
            line += (
                f", PyTorch {statistics.median(t_theirs) * 1e3:.2f} ms (PyTorch/chainrule time"
                f" ratio {statistics.median(t_theirs) / statistics.median(t_ours):.2f})"
            )
        print(line)


if __name__ == "__main__":
    main()
