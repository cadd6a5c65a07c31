"""Microseconds per training step, as the minimum (and quartiles) over many short windows.

    python benchmarks/bench_step_min.py tiny_b10 compiled,numpy,sklearn
    python benchmarks/bench_step_min.py mlp784_b32 compiled,chainrule --windows 25

``bench_training.py`` reports medians of interleaved 0.3 s measurements, what a user sees over
a training run, noise included. On a shared host those medians move by ±20 % between runs. This
script times the same runners (the same models, data and steps) in many short windows,
interleaved, and prints each one's minimum, first quartile and median: the minimum is the
step's own cost with the least interference, the figure to compare when changing a hot path.
Time PyTorch in a run of its own (``... tiny_b10 torch``): after numpy's BLAS work its idle
threads spin, and a PyTorch window started beside them runs many times slower.
scikit-learn's windows are 0.3 s, as in the table: each ``partial_fit`` call pays a fixed cost
(~3 ms of input and label checks) that a short window would charge to its step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_training as bt  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=sorted(bt.CASES))
    ap.add_argument("frameworks", help="comma list among " + ", ".join(bt.FRAMEWORKS))
    ap.add_argument("--windows", type=int, default=25, help="timed windows per framework")
    ap.add_argument("--window-s", type=float, default=0.015, help="seconds per window (about)")
    args = ap.parse_args(argv)
    case = bt.CASES[args.case]
    X, y = bt.make_data(case, 0)
    weights = bt.make_weights(case, 1)
    names = [n.strip() for n in args.frameworks.split(",") if n.strip()]
    runners = {n: bt.RUNNERS[n](case, X, y, weights, bt.blas_threads()) for n in names}
    steps = {}
    for n, r in runners.items():  # warm up (a compiled step traces here), size the windows
        r.run(10)
        # (scikit-learn: windows as long as the table's, its per-call cost spread as there)
        steps[n] = max(1, bt.calibrate(r, max(args.window_s, r.min_window_s)))
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.windows):  # interleaved, as in bench_training
        for n, r in runners.items():
            times[n].append(bt.time_steps(r, steps[n]) / steps[n] * 1e6)
    out = {}
    for n, ts in times.items():
        ts.sort()
        out[n] = {"min": ts[0], "p25": ts[len(ts) // 4], "median": ts[len(ts) // 2]}
        print(
            f"{case.name} {n:9s} us/step: min {ts[0]:.1f}  p25 {ts[len(ts) // 4]:.1f}  "
            f"median {ts[len(ts) // 2]:.1f}  ({args.windows} windows of {steps[n]} steps)"
        )
    return out


if __name__ == "__main__":
    main()
