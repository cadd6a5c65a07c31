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

__all__ = ["mnist1d_cnn", "conv_net", "train_mnist1d_cnn"]


def conv_net(input_shape, n_outputs: int, channels=(25, 25, 25), kernels=None, stride=2,
             padding=1, flat_input: bool = True, rng=None, dtype=np.float32):
    """A plain CNN: [Conv(channels[i], kernels[i], stride, padding), ReLU] per layer, then
    Flatten and Linear to ``n_outputs``.

    ``input_shape`` is one sample's shape with its channels: (C, L) for signals (Conv1d),
    (C, H, W) for images (Conv2d). With ``flat_input`` (the default) the model starts with
    ``Unflatten(1, input_shape)``, so it takes rows of C·L (or C·H·W) features, as tables,
    ``fit`` and the command give them. ``kernels``: one size for all layers or one per layer;
    by default 5 for the first layer and 3 after (the MNIST-1D paper's net).
    """
    from .. import nn
    from ..errors import ConfigError

    shape = tuple(int(s) for s in np.atleast_1d(input_shape))
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ConfigError(f"conv_net: input_shape {shape} is neither a signal (C, L) nor an "
                          "image (C, H, W)")
    channels = [int(c) for c in np.atleast_1d(channels)]
    if not channels or min(channels) < 1:
        raise ConfigError(f"conv_net: channels must be positive integers, got {channels!r}")
    if kernels is None:
        kernels = [5] + [3] * (len(channels) - 1)
    kernels = [int(k) for k in np.atleast_1d(kernels)]
    if len(kernels) == 1:
        kernels = kernels * len(channels)
    if len(kernels) != len(channels):
        raise ConfigError(f"conv_net: {len(kernels)} kernel sizes for {len(channels)} conv "
                          "layers; give one size, or one per layer")
    layers = [nn.Unflatten(1, shape)] if flat_input else []
    Conv = nn.Conv1d if len(shape) == 2 else nn.Conv2d
    c_in = shape[0]
    for c, k in zip(channels, kernels):
        if k < 1:
            raise ConfigError(f"conv_net: kernel sizes must be positive, got {kernels!r}")
        conv = Conv(c_in, c, k, stride=stride, padding=padding, rng=rng, dtype=dtype)
        out = conv.output_shape(shape)
        if min(out[1:]) < 1:
            raise ConfigError(f"conv_net: an input of shape {shape} is too small for a kernel "
                              f"of {k} with stride {stride} and padding {padding}")
        layers += [conv, nn.ReLU()]
        shape, c_in = out, c
    layers += [nn.Flatten(), nn.Linear(int(np.prod(shape)), int(n_outputs), rng=rng,
                                       dtype=dtype)]
    return nn.Sequential(*layers)


def mnist1d_cnn(channels: int = 25, rng=None, dtype=np.float32):
    """The MNIST-1D paper's CNN: Unflatten (N, 40) -> (N, 1, 40), then Conv1d(1, 25, 5, 2, 1),
    ReLU, Conv1d(25, 25, 3, 2, 1), ReLU, Conv1d(25, 25, 3, 2, 1), ReLU, Flatten (25 × 5 = 125),
    Linear(125, 10)."""
    return conv_net((1, 40), 10, channels=(channels,) * 3, kernels=(5, 3, 3), stride=2,
                    padding=1, rng=rng, dtype=dtype)


def train_mnist1d_cnn(seed: int = 0, steps: int = 6000, batch_size: int = 100, lr: float = 1e-2,
                      data_seed: int = 42, verbose: bool = False) -> dict:
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
    hist = fit(model, loss_fn, opt, Xtr, ytr, epochs=epochs, batch_size=batch_size, seed=seed,
               verbose=verbose)
    seconds = time.perf_counter() - t0
    test = evaluate(model, loss_fn, Xte, yte)
    train = evaluate(model, loss_fn, Xtr, ytr)
    return dict(seed=seed, steps=epochs * per_epoch, test_accuracy=test["accuracy"],
                test_loss=test["loss"], train_accuracy=train["accuracy"], seconds=seconds,
                final_batch_loss=hist["loss"][-1])
