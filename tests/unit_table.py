"""One table of every unit: how to call it, on which input shapes, and its PyTorch twin.

Both the central-difference tests and the PyTorch comparisons read this table, so a unit added
here is checked both ways.
"""

import numpy as np

import chainrule as cr
from chainrule import units as U


def _pos(shape):
    """Inputs that must be positive (log, sqrt, the base of a fractional power)."""
    return lambda rng: rng.uniform(0.5, 2.0, size=shape)


def _any(shape):
    return lambda rng: rng.normal(size=shape)


def _away_from_zero(shape):
    """Inputs kept away from kinks (abs, relu, clip edges, max ties) so differences are clean."""

    def make(rng):
        x = rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        return x

    return make


def _distinct(shape):
    """Inputs with no ties (for max/min)."""

    def make(rng):
        n = int(np.prod(shape)) if shape else 1
        vals = rng.permutation(n).astype(np.float64) * 0.37 - n * 0.1
        return vals.reshape(shape)

    return make


# name, chainrule function, torch function (or None), input makers
CASES = [
    # arithmetic, with broadcasting
    ("add", lambda a, b: a + b, lambda a, b: a + b, [_any((3, 4)), _any((3, 4))]),
    ("add_bcast_row", lambda a, b: a + b, lambda a, b: a + b, [_any((3, 4)), _any((4,))]),
    ("add_bcast_col", lambda a, b: a + b, lambda a, b: a + b, [_any((3, 1)), _any((1, 4))]),
    ("add_bcast_scalar", lambda a, b: a + b, lambda a, b: a + b, [_any((2, 3, 4)), _any(())]),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, [_any((3, 4)), _any((4,))]),
    ("sub_const", lambda a: 2.0 - a, lambda a: 2.0 - a, [_any((5,))]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [_any((3, 4)), _any((3, 4))]),
    ("mul_bcast", lambda a, b: a * b, lambda a, b: a * b, [_any((2, 3, 1)), _any((3, 4))]),
    ("mul_const", lambda a: 3 * a, lambda a: 3 * a, [_any((4,))]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [_any((3, 4)), _pos((3, 4))]),
    ("div_bcast", lambda a, b: a / b, lambda a, b: a / b, [_any((3, 4)), _pos((3, 1))]),
    ("rdiv_const", lambda a: 1.0 / a, lambda a: 1.0 / a, [_pos((4,))]),
    ("neg", lambda a: -a, lambda a: -a, [_any((3, 4))]),
    ("pow2", lambda a: a**2, lambda a: a**2, [_any((3, 4))]),
    ("pow3", lambda a: a**3, lambda a: a**3, [_any((3, 4))]),
    ("pow_frac", lambda a: a**1.5, lambda a: a**1.5, [_pos((3, 4))]),
    ("pow_neg", lambda a: a**-2, lambda a: a**-2, [_pos((3, 4))]),
    ("rpow", lambda a: 2.0**a, lambda a: 2.0**a, [_any((3, 4))]),
    (
        "maximum",
        cr.maximum,
        lambda a, b: __import__("torch").maximum(a, b),
        [_any((3, 4)), _any((3, 4))],
    ),
    (
        "minimum_bcast",
        cr.minimum,
        lambda a, b: __import__("torch").minimum(a, b),
        [_any((3, 4)), _any((4,))],
    ),
    # elementwise
    ("exp", cr.exp, lambda a: a.exp(), [_any((3, 4))]),
    ("log", cr.log, lambda a: a.log(), [_pos((3, 4))]),
    ("sin", cr.sin, lambda a: a.sin(), [_any((3, 4))]),
    ("cos", cr.cos, lambda a: a.cos(), [_any((3, 4))]),
    ("tanh", cr.tanh, lambda a: a.tanh(), [_any((3, 4))]),
    ("sigmoid", cr.sigmoid, lambda a: a.sigmoid(), [_any((3, 4))]),
    ("relu", cr.relu, lambda a: a.relu(), [_away_from_zero((3, 4))]),
    (
        "leaky_relu",
        lambda a: cr.leaky_relu(a, 0.1),
        lambda a: __import__("torch").nn.functional.leaky_relu(a, 0.1),
        [_away_from_zero((3, 4))],
    ),
    ("gelu", cr.gelu, lambda a: __import__("torch").nn.functional.gelu(a), [_any((3, 4))]),
    (
        "gelu_tanh",
        lambda a: cr.gelu(a, approximate="tanh"),
        lambda a: __import__("torch").nn.functional.gelu(a, approximate="tanh"),
        [_any((3, 4))],
    ),
    ("abs", cr.abs, lambda a: a.abs(), [_away_from_zero((3, 4))]),
    ("sqrt", cr.sqrt, lambda a: a.sqrt(), [_pos((3, 4))]),
    ("clip", lambda a: cr.clip(a, -0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), [_distinct((3, 4))]),
    ("clip_lo", lambda a: cr.clip(a, min=0.1), lambda a: a.clamp(min=0.1), [_distinct((5,))]),
    # matmul: 1-D, 2-D, batched, broadcast batch
    ("matmul_2d", cr.matmul, lambda a, b: a @ b, [_any((3, 4)), _any((4, 5))]),
    ("matmul_vec_vec", cr.matmul, lambda a, b: a @ b, [_any((4,)), _any((4,))]),
    ("matmul_mat_vec", cr.matmul, lambda a, b: a @ b, [_any((3, 4)), _any((4,))]),
    ("matmul_vec_mat", cr.matmul, lambda a, b: a @ b, [_any((4,)), _any((4, 5))]),
    ("matmul_batched", cr.matmul, lambda a, b: a @ b, [_any((2, 3, 4)), _any((2, 4, 5))]),
    ("matmul_bcast_batch", cr.matmul, lambda a, b: a @ b, [_any((2, 3, 4)), _any((4, 5))]),
    ("matmul_vec_batched", cr.matmul, lambda a, b: a @ b, [_any((4,)), _any((2, 4, 5))]),
    (
        "linear",
        lambda x, w, b: cr.linear(x, w, b),
        lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b),
        [_any((5, 4)), _any((3, 4)), _any((3,))],
    ),
    (
        "linear_one_row",
        lambda x, w, b: cr.linear(x, w, b),
        lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b),
        [_any((1, 4)), _any((3, 4)), _any((3,))],
    ),
    (
        "linear_nobias",
        lambda x, w: cr.linear(x, w),
        lambda x, w: __import__("torch").nn.functional.linear(x, w),
        [_any((2, 5, 4)), _any((3, 4))],
    ),
    (
        "linear_relu",
        lambda x, w, b: U.LinearReLU.apply(x, w, b),
        lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b).relu(),
        [_any((5, 4)), _any((3, 4)), _any((3,))],
    ),
    # reductions
    ("sum_all", lambda a: a.sum(), lambda a: a.sum(), [_any((3, 4))]),
    ("sum_axis0", lambda a: a.sum(axis=0), lambda a: a.sum(dim=0), [_any((3, 4))]),
    (
        "sum_axis_neg_keep",
        lambda a: a.sum(axis=-1, keepdims=True),
        lambda a: a.sum(dim=-1, keepdim=True),
        [_any((2, 3, 4))],
    ),
    (
        "sum_axes_tuple",
        lambda a: a.sum(axis=(0, 2)),
        lambda a: a.sum(dim=(0, 2)),
        [_any((2, 3, 4))],
    ),
    ("mean_all", lambda a: a.mean(), lambda a: a.mean(), [_any((3, 4))]),
    ("mean_axis1", lambda a: a.mean(axis=1), lambda a: a.mean(dim=1), [_any((3, 4))]),
    (
        "mean_keep",
        lambda a: a.mean(axis=0, keepdims=True),
        lambda a: a.mean(dim=0, keepdim=True),
        [_any((3, 4))],
    ),
    ("max_all", lambda a: a.max(), lambda a: a.max(), [_distinct((3, 4))]),
    ("max_axis", lambda a: a.max(axis=1), lambda a: a.max(dim=1).values, [_distinct((3, 4))]),
    (
        "max_axis_keep",
        lambda a: a.max(axis=0, keepdims=True),
        lambda a: a.max(dim=0, keepdim=True).values,
        [_distinct((3, 4))],
    ),
    ("min_axis", lambda a: a.min(axis=-1), lambda a: a.min(dim=-1).values, [_distinct((3, 4))]),
    # shape
    ("reshape", lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [_any((3, 4))]),
    ("reshape_infer", lambda a: a.reshape(-1), lambda a: a.reshape(-1), [_any((2, 3, 4))]),
    ("transpose_T", lambda a: a.T, lambda a: a.T, [_any((3, 4))]),
    (
        "transpose_axes",
        lambda a: a.transpose(1, 2, 0),
        lambda a: a.permute(1, 2, 0),
        [_any((2, 3, 4))],
    ),
    ("getitem_slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [_any((3, 4))]),
    ("getitem_int", lambda a: a[1], lambda a: a[1], [_any((3, 4))]),
    (
        "getitem_fancy_repeat",
        lambda a: a[np.array([0, 2, 0])],
        lambda a: a[__import__("torch").tensor([0, 2, 0])],
        [_any((3, 4))],
    ),
    (
        "getitem_bool",
        lambda a: a[np.array([True, False, True])],
        lambda a: a[__import__("torch").tensor([True, False, True])],
        [_any((3, 4))],
    ),
    (
        "getitem_pairs",
        lambda a: a[np.arange(3), np.array([1, 0, 3])],
        lambda a: a[__import__("torch").arange(3), __import__("torch").tensor([1, 0, 3])],
        [_any((3, 4))],
    ),
    (
        "concatenate",
        lambda a, b: cr.concatenate([a, b], axis=1),
        lambda a, b: __import__("torch").cat([a, b], dim=1),
        [_any((3, 2)), _any((3, 4))],
    ),
    (
        "stack",
        lambda a, b: cr.stack([a, b], axis=1),
        lambda a, b: __import__("torch").stack([a, b], dim=1),
        [_any((3, 4)), _any((3, 4))],
    ),
    # softmax
    ("softmax", lambda a: cr.softmax(a, axis=-1), lambda a: a.softmax(dim=-1), [_any((3, 5))]),
    ("softmax_axis0", lambda a: cr.softmax(a, axis=0), lambda a: a.softmax(dim=0), [_any((3, 5))]),
    (
        "log_softmax",
        lambda a: cr.log_softmax(a, axis=-1),
        lambda a: a.log_softmax(dim=-1),
        [_any((3, 5))],
    ),
    (
        "softmax_ce",
        lambda z: U.SoftmaxCrossEntropy.apply(z, np.array([0, 2, 4])),
        lambda z: __import__("torch").nn.functional.cross_entropy(
            z, __import__("torch").tensor([0, 2, 4]), reduction="none"
        ),
        [_any((3, 5))],
    ),
    (
        "mean_softmax_ce",
        lambda z: U.MeanSoftmaxCrossEntropy.apply(z, np.array([0, 2, 4])),
        lambda z: __import__("torch").nn.functional.cross_entropy(
            z, __import__("torch").tensor([0, 2, 4])
        ),
        [_any((3, 5))],
    ),
    (
        "sigmoid_bce",
        lambda z: U.SigmoidBCE.apply(z, np.array([0.0, 1.0, 0.3])),
        lambda z: __import__("torch").nn.functional.binary_cross_entropy_with_logits(
            z, __import__("torch").tensor([0.0, 1.0, 0.3], dtype=z.dtype), reduction="none"
        ),
        [_any((3,))],
    ),
    (
        "bce_prob",
        lambda a: U.BCEProb.apply(a, np.array([0.0, 1.0, 0.3])),
        lambda a: __import__("torch").nn.functional.binary_cross_entropy(
            a, __import__("torch").tensor([0.0, 1.0, 0.3], dtype=a.dtype), reduction="none"
        ),
        [lambda rng: rng.uniform(0.1, 0.9, size=(3,))],
    ),
    # compositions
    (
        "composition_notes",
        lambda x: cr.sin(3 * (x + 2)),
        lambda x: (3 * (x + 2)).sin(),
        [_any((4,))],
    ),
    ("used_twice", lambda a: a * a + a.exp() * a, lambda a: a * a + a.exp() * a, [_any((3,))]),
]

IDS = [c[0] for c in CASES]
