"""Reproduce the MNIST-1D paper's CNN result with chainrule (needs ``pip install mnist1d``).

    python examples/mnist1d_cnn.py                 # 3 seeds, 6000 steps each
    python examples/mnist1d_cnn.py --seeds 0 --steps 600

The network, data and training are in ``chainrule.examples.mnist1d_cnn``: three Conv1d layers of
25 channels (kernels 5, 3, 3; stride 2; padding 1; ReLU), Linear 125 -> 10, Adam lr 1e-2,
batches of 100, 6000 steps. The paper reports about 94% test accuracy for this CNN.
"""

import argparse
import statistics

from chainrule.examples.mnist1d_cnn import train_mnist1d_cnn


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--steps", type=int, default=6000)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    accs = []
    print(f"{'seed':>4}  {'test acc':>8}  {'train acc':>9}  {'seconds':>7}")
    for seed in seeds:
        r = train_mnist1d_cnn(seed=seed, steps=args.steps)
        accs.append(r["test_accuracy"])
        print(
            f"{seed:>4}  {r['test_accuracy']:>8.4f}  {r['train_accuracy']:>9.4f}  "
            f"{r['seconds']:>7.1f}",
            flush=True,
        )
    print(f"median test accuracy over {len(seeds)} seeds: {statistics.median(accs):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
