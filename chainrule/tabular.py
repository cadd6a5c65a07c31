"""From a table to a network and back: the pieces that NetClassifier / NetRegressor are made of.

numpy only (scikit-learn is needed by ``chainrule.sklearn``, not here). What lives here:

- the named choices of a tabular model: activations, losses (with their task and how many
  outputs they want), optimizers (with their default learning rate);
- ``build_model``: Linear -> activation -> ... -> Linear (-> Sigmoid for the 'bce' loss);
- ``make_loss`` / ``make_optimizer``: the chainrule.nn loss and chainrule.optim optimizer;
- ``loss_targets``: labels in the form a loss wants (class indices, or a float32 column);
- reading outputs back: ``output_classes``, ``output_probabilities``, ``output_decision``.

The estimators (``chainrule.sklearn``) combine these with the standardizers of
``chainrule.data``; the command (``chainrule.cli``) calls the estimators.
"""

from __future__ import annotations

import numpy as np

from . import registry
from .errors import ConfigError
from .metrics import output_kind

__all__ = ["ACTIVATIONS", "LOSSES", "DEFAULT_LOSS", "OPTIMIZERS", "losses_for", "build_model",
           "make_loss", "make_optimizer", "loss_targets", "output_classes",
           "output_probabilities", "output_decision"]

#: activation name -> chainrule.nn class name (each activation states its short_name in its
#: class line; see chainrule.registry)
ACTIVATIONS = {name: registry.by_short_name(name, role="activation").__name__
               for name in ("relu", "tanh", "sigmoid", "leaky_relu", "gelu")}


def _loss_choice(name: str) -> tuple:
    cls = registry.by_short_name(name, role="loss")
    kind = registry.facts_of(cls).output_kind
    return (cls.__name__, "regression" if kind == "value" else "classification",
            "classes" if kind == "logits" else 1)


#: loss name -> (chainrule.nn class name, task, outputs: 'classes' = one per class, 1 = one),
#: from the facts each loss states in its class line
LOSSES = {name: _loss_choice(name) for name in ("cross_entropy", "bce_with_logits", "bce",
                                                "hinge", "mse")}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse"}

#: optimizer name -> (chainrule.optim class name, default learning rate)
OPTIMIZERS = {"sgd": ("SGD", 0.1), "adam": ("Adam", 0.01), "adamw": ("AdamW", 0.01),
              "rmsprop": ("RMSprop", 0.001), "adagrad": ("Adagrad", 0.1)}


def losses_for(task: str) -> list[str]:
    """The loss names that fit ``task`` ('classification' or 'regression')."""
    return [name for name, (_, t, _) in LOSSES.items() if t == task]


def _nn_class(name: str, what: str):
    import chainrule.nn as nn

    cls = getattr(nn, name, None)
    if cls is None:
        raise ConfigError(f"{what} needs chainrule.nn.{name}, which this version of chainrule "
                          "does not have")
    return cls


def build_model(n_in: int, hidden, n_out: int, activation: str, loss: str | None = None,
                rng=None):
    """Linear -> activation -> ... -> Linear(n_out), with a final Sigmoid for the 'bce' loss.

    ``rng`` (a numpy Generator) draws the initial weights in layer order, exactly as the
    default generator would after ``cr.manual_seed``; the layers do not keep it.
    """
    import chainrule.nn as nn

    act = _nn_class(ACTIVATIONS[activation], f"activation {activation!r}")
    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, int(h), rng=rng), act()]
        width = int(h)
    layers.append(nn.Linear(width, n_out, rng=rng))
    if loss == "bce":
        layers.append(_nn_class("Sigmoid", "loss 'bce'")())
    for layer in layers:
        if hasattr(layer, "rng"):
            layer.rng = None
    return nn.Sequential(*layers)


def make_loss(name: str):
    """The chainrule.nn loss module of a loss name ('cross_entropy', 'mse', ...)."""
    return _nn_class(LOSSES[name][0], f"loss {name!r}")()


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0):
    """The chainrule.optim optimizer of ``name``; ``momentum`` is used by 'sgd' only."""
    import chainrule.optim as optim

    cls_name = OPTIMIZERS[name][0]
    cls = getattr(optim, cls_name, None)
    if cls is None:
        raise ConfigError(f"optimizer {name!r} needs chainrule.optim.{cls_name}, which this "
                          "version of chainrule does not have")
    kwargs = {"lr": lr}
    if weight_decay:
        kwargs["weight_decay"] = weight_decay
    if name == "sgd" and momentum:
        kwargs["momentum"] = momentum
    return cls(params, **kwargs)


def loss_targets(y, task: str, loss: str) -> np.ndarray:
    """Labels in the form the loss wants: int64 class indices for 'cross_entropy', else a
    float32 array of shape (n, 1) (or (n, k) for a 2-D regression target)."""
    if task == "classification" and LOSSES[loss][2] == "classes":
        return np.asarray(y, dtype=np.int64)
    y = np.asarray(y, dtype=np.float32)
    return y.reshape(len(y), -1)


def _kind(loss: str) -> str:
    return output_kind(LOSSES[loss][0])


def output_classes(out: np.ndarray, loss: str) -> np.ndarray:
    """Class indices (int64, shape (n,)) from a classifier's outputs."""
    from .metrics import predict_classes

    return predict_classes(out, _kind(loss))


def output_probabilities(out: np.ndarray, loss: str) -> np.ndarray:
    """Class probabilities (float64, shape (n, k)) from a classifier's outputs.

    'cross_entropy': the softmax of the logits; 'bce_with_logits': the sigmoid of the one
    logit; 'bce': the model's own output. 'hinge' scores are not probabilities: ConfigError.
    """
    kind = _kind(loss)
    out = np.asarray(out, dtype=np.float64)
    if kind == "logits":
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if kind == "logit" and loss != "hinge":
        p = 1 / (1 + np.exp(-out.reshape(-1)))
    elif kind == "probability":
        p = out.reshape(-1)
    else:
        raise ConfigError(f"probabilities need a model trained with cross_entropy, "
                          f"bce_with_logits or bce; this one was trained with {loss}, whose "
                          "outputs are scores, not probabilities")
    return np.stack([1 - p, p], axis=1)


def output_decision(out: np.ndarray, loss: str) -> np.ndarray:
    """scikit-learn's decision_function from a classifier's outputs (float64).

    Two classes: shape (n,), positive for the second class (the logit difference, the logit,
    the hinge score, or log(p / (1 - p)) for 'bce'). More classes: the logits, shape (n, k).
    """
    kind = _kind(loss)
    out = np.asarray(out, dtype=np.float64)
    if kind == "logits":
        return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out
    flat = out.reshape(len(out), -1)[:, 0]
    if kind == "probability":
        p = np.clip(flat, 1e-300, 1.0)
        q = np.clip(1.0 - flat, 1e-300, 1.0)
        return np.log(p) - np.log(q)
    return flat
