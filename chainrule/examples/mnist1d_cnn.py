"""The MNIST-1D paper's convolutional network (Greydanus & Kobak), trained with chainrule.

The paper's CNN: three Conv1d layers of 25 channels (kernels 5, 3, 3; stride 2; padding 1; ReLU
after each), which turn a 40-point signal into 25 channels × 5 positions = 125 numbers, then
Linear 125 → 10. Trained with Adam (lr 1e-2) on mini-batches of 100 for 6000 steps, it reaches
about 94% test accuracy where the paper's MLP reaches about 68%.

    from chainrule.examples.mnist1d_cnn import mnist1d_cnn, train_mnist1d_cnn
    model = mnist1d_cnn()                 # the network (input (N, 40) or (N, 1, 40))
    result = train_mnist1d_cnn(seed=0)    # {'test_accuracy': ..., 'seconds': ..., ...}

or from a shell: ``python examples/mnist1d_cnn.py`` (three seeds; needs ``pip install mnist1d``).
"""

from __future__ import annotations

import time

import numpy as np

from ..nn.conv import conv_net

__all__ = ["mnist1d_cnn", "conv_net", "train_mnist1d_cnn"]


def mnist1d_cnn(channels: int = 25, rng=None, dtype=np.float32):
    """The MNIST-1D paper's CNN: Unflatten (N, 40) -> (N, 1, 40), then Conv1d(1, 25, 5, 2, 1),
    ReLU, Conv1d(25, 25, 3, 2, 1), ReLU, Conv1d(25, 25, 3, 2, 1), ReLU, Flatten (25 × 5 = 125),
    Linear(125, 10)."""
    return conv_net(
        (1, 40),
        10,
        channels=(channels,) * 3,
        kernels=(5, 3, 3),
        stride=2,
        padding=1,
        rng=rng,
        dtype=dtype,
    )


def train_mnist1d_cnn(
    seed: int = 0,
    steps: int = 6000,
    batch_size: int = 100,
    lr: float = 1e-2,
    data_seed: int = 42,
    verbose: bool = False,
) -> dict:
    """Train :func:`mnist1d_cnn` as the paper does and return its test accuracy.

    The data are mnist1d's default dataset (``make_dataset`` with its default arguments and
    seed ``data_seed``=42: 4000 training and 1000 test signals, the paper's split). ``seed``
    draws the initial weights and the order of the mini-batches. ``steps`` Adam steps of
    ``batch_size`` signals (6000 × 100 = 150 passes over the training set).

    Returns a dict: test_accuracy, train_accuracy, test_loss, seconds (training only), steps,
    seed.
    """
    from .. import nn, optim
    from ..data import load_dataset
    from ..random import manual_seed
    from ..train import evaluate, fit

    ds = load_dataset("mnist1d", seed=data_seed)
    Xtr, ytr, Xte, yte = ds.X[:4000], ds.y[:4000], ds.X[4000:], ds.y[4000:]
    manual_seed(seed)
    model = mnist1d_cnn(rng=np.random.default_rng(seed))
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=lr)
    per_epoch = -(-len(Xtr) // batch_size)
    epochs = -(-steps // per_epoch)
    t0 = time.perf_counter()
    hist = fit(
        model,
        loss_fn,
        opt,
        Xtr,
        ytr,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
    )
    seconds = time.perf_counter() - t0
    test = evaluate(model, loss_fn, Xte, yte)
    train = evaluate(model, loss_fn, Xtr, ytr)
    return dict(
        seed=seed,
        steps=epochs * per_epoch,
        test_accuracy=test["accuracy"],
        test_loss=test["loss"],
        train_accuracy=train["accuracy"],
        seconds=seconds,
        final_batch_loss=hist["loss"][-1],
    )
