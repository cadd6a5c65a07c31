"""From a table to a network and back: the pieces that NetClassifier / NetRegressor are made of.

numpy only (scikit-learn is needed by ``chainrule.sklearn``, not here). What lives here:

- the named choices of a tabular model: activations, losses (with their task and how many
  outputs they want), optimizers (with their default learning rate);
- ``build_model``: Linear -> activation -> ... -> Linear (-> Sigmoid for the 'bce' loss);
- ``make_loss`` / ``make_optimizer``: the chainrule.nn loss and chainrule.optim optimizer;
- ``loss_targets``: labels in the form a loss wants (class indices, or a float32 column);
- reading outputs back: ``output_classes``, ``output_probabilities``, ``output_decision``;
- tables: ``Data`` (rows, raw target, row numbers, id columns), ``load_builtin``, ``read_data``
  (a user's file, checked against a model's columns), ``data_for_model``, and the targets of a
  table as a model knows them (``label_codes``, ``numeric_target``).

The estimators (``chainrule.sklearn``) combine these with the standardizers of
``chainrule.data``; the command (``chainrule.cli``) calls the estimators.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import registry
from .errors import ConfigError, DataError
from .metrics import output_kind

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "DEFAULT_LOSS",
    "OPTIMIZERS",
    "losses_for",
    "build_model",
    "make_loss",
    "make_optimizer",
    "loss_targets",
    "output_classes",
    "output_probabilities",
    "output_decision",
    "Data",
    "load_builtin",
    "read_data",
    "data_for_model",
    "label_codes",
    "numeric_target",
    "DATASET_TARGET",
]

#: activation name -> chainrule.nn class name (each activation states its short_name in its
#: class line; see chainrule.registry)
ACTIVATIONS = {
    name: registry.by_short_name(name, role="activation").__name__
    for name in ("relu", "tanh", "sigmoid", "leaky_relu", "gelu")
}


def _loss_choice(name: str) -> tuple:
    cls = registry.by_short_name(name, role="loss")
    kind = registry.facts_of(cls).output_kind
    return (
        cls.__name__,
        "regression" if kind == "value" else "classification",
        "classes" if kind == "logits" else 1,
    )


#: loss name -> (chainrule.nn class name, task, outputs: 'classes' = one per class, 1 = one),
#: from the facts each loss states in its class line
LOSSES = {
    name: _loss_choice(name) for name in ("cross_entropy", "bce_with_logits", "bce", "hinge", "mse")
}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse"}

#: optimizer name -> (chainrule.optim class name, default learning rate)
OPTIMIZERS = {
    "sgd": ("SGD", 0.1),
    "adam": ("Adam", 0.01),
    "adamw": ("AdamW", 0.01),
    "rmsprop": ("RMSprop", 0.001),
    "adagrad": ("Adagrad", 0.1),
}


def losses_for(task: str) -> list[str]:
    """The loss names that fit ``task`` ('classification' or 'regression')."""
    return [name for name, (_, t, _) in LOSSES.items() if t == task]


def _nn_class(name: str, what: str):
    import chainrule.nn as nn

    cls = getattr(nn, name, None)
    if cls is None:
        raise ConfigError(
            f"{what} needs chainrule.nn.{name}, which this version of chainrule does not have"
        )
    return cls


def build_model(n_in: int, hidden, n_out: int, activation: str, loss: str | None = None, rng=None):
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


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    """The chainrule.optim optimizer of ``name``; ``momentum`` is used by 'sgd' only."""
    import chainrule.optim as optim

    cls_name = OPTIMIZERS[name][0]
    cls = getattr(optim, cls_name, None)
    if cls is None:
        raise ConfigError(
            f"optimizer {name!r} needs chainrule.optim.{cls_name}, which this "
            "version of chainrule does not have"
        )
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
    from .metrics import class_probabilities

    kind = _kind(loss)
    if kind == "value" or (kind == "logit" and loss == "hinge"):
        raise ConfigError(
            f"probabilities need a model trained with cross_entropy, "
            f"bce_with_logits or bce; this one was trained with {loss}, whose "
            "outputs are scores, not probabilities"
        )
    probs = class_probabilities(out, kind)
    assert probs is not None  # only 'value' gives None, refused above
    return probs


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


# ---------------------------------------------------------------------------------------------
# Tables: the rows of a built-in dataset or a user's file, ready for a model
# ---------------------------------------------------------------------------------------------

DATASET_TARGET = "class"  # the target's name in model files trained on a built-in dataset


@dataclass
class Data:
    """Rows to train on, evaluate or predict, before standardizing."""

    source: str  # "dataset spiral" or the file name
    X: np.ndarray  # float32 (n, d), raw feature values
    feature_names: list
    y_raw: np.ndarray | None  # raw target values (labels as text or numbers), or None
    target: str | None
    rows: np.ndarray  # data row number of each row (1 = first row after the header)
    ids: dict = field(default_factory=dict)  # id column -> values of the kept rows
    label_names: list | None = None  # a built-in dataset's class names, in its order
    y_codes: np.ndarray | None = None  # a built-in dataset's class indices
    task: str | None = None
    dropped: int = 0

    @property
    def n(self):
        return len(self.X)


def load_builtin(name: str, samples=None, noise=None, seed: int = 0) -> Data:
    from .data import load_dataset

    ds = load_dataset(name, n_samples=samples, noise=noise, seed=seed)
    names = list(ds.target_names) if ds.target_names is not None else None
    y_raw = np.asarray(names, dtype=object)[ds.y] if names is not None else ds.y
    return Data(
        source=f"dataset {ds.name}",
        X=np.asarray(ds.X, dtype=np.float32),
        feature_names=list(ds.feature_names),
        y_raw=y_raw,
        target=DATASET_TARGET,
        rows=np.arange(1, len(ds.X) + 1),
        label_names=names,
        y_codes=ds.y,
        task=ds.task,
    )


def read_data(
    path: str,
    target=None,
    features=None,
    delimiter=None,
    drop_missing=False,
    id_columns=(),
    allowed_extra=(),
    need_target=True,
    model_target=None,
    default_ids=(),
) -> Data:
    """Read a user's file. With ``features`` (a model's), the columns must match them.

    ``default_ids``: id columns kept (where the file has them) when ``id_columns`` is empty,
    such as those named when the model was trained.
    """
    from .data import prepare, read_table

    table = read_table(path, delimiter=delimiter)
    columns = list(table.columns)
    if not id_columns:
        id_columns = [c for c in default_ids if c in columns]
    if target is None and need_target:
        if model_target is not None and model_target in columns:
            target = model_target
        elif path.lower().endswith(".npz") and "y" in columns:
            target = "y"
        elif model_target is not None:
            raise DataError(
                f"target column '{model_target}' (the model's target) not found in "
                f"{path}; columns are: {', '.join(columns)} (name it with --target)"
            )
        else:
            raise DataError(
                f"--target is missing: which column of {path} should be predicted? "
                f"columns are: {', '.join(columns)}"
            )
    ids = list(dict.fromkeys(id_columns))
    if target is not None and target not in columns:
        near = [c for c in columns if c.strip().lower() == target.strip().lower()]
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise DataError(
            f"target column '{target}' not found in {path}{hint}; columns are: {', '.join(columns)}"
        )
    for col in ids:
        if col not in columns:
            raise DataError(
                f"id column '{col}' not found in {path}; columns are: {', '.join(columns)}"
            )
    if features is not None:
        missing = [f for f in features if f not in columns]
        extra = [
            c
            for c in columns
            if c not in features and c != target and c not in ids and c not in allowed_extra
        ]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"extra {', '.join(extra)}")
            hint = " (name id columns with --id-column)" if extra else ""
            raise DataError(
                f"the columns of {path} do not match the model's features: "
                f"{'; '.join(parts)}; the model expects {', '.join(features)}{hint}"
            )
    X, y, names, rows = prepare(
        table, target=target, features=features, drop_missing=drop_missing, id_columns=ids
    )
    keep = np.isin(np.asarray(table.row_numbers), rows)
    id_values = {col: np.asarray(table.data[col])[keep] for col in ids}
    return Data(
        source=path,
        X=X,
        feature_names=list(names),
        y_raw=y,
        target=target,
        rows=rows,
        ids=id_values,
        dropped=int(table.n_rows - len(rows)),
    )


def label_codes(y_raw, data: Data, known: list) -> np.ndarray:
    """Class indices of the model for raw labels; a label the model never saw is an error."""
    from .data import encode_labels

    codes, names = encode_labels(y_raw)
    index = {name: i for i, name in enumerate(known)}
    for c, name in enumerate(names):
        if name not in index:
            i = int(np.argmax(codes == c))
            where = (
                f"column '{data.target}', row {data.rows[i]} of {data.source}"
                if not data.source.startswith("dataset ")
                else data.source
            )
            raise DataError(
                f"{where}: label '{name}' was never seen in training; the model "
                f"knows {', '.join(known)}"
            )
    return np.asarray([index[n] for n in names], dtype=np.int64)[codes]


def numeric_target(y_raw, data: Data) -> np.ndarray:
    y = np.asarray(y_raw)
    if y.dtype == object:
        for i, v in enumerate(y.tolist()):
            try:
                float(v)
            except (TypeError, ValueError):
                raise DataError(
                    f"column '{data.target}', row {data.rows[i]} of {data.source}: "
                    f"'{v}' is not a number; regression needs numbers in the "
                    "target (use --task classification for labels)"
                ) from None
    y = y.astype(np.float64)
    big = np.abs(y) > np.finfo(np.float32).max / 1e3  # standardizing and float32 training
    if big.any():
        i = int(np.argmax(big))
        raise DataError(
            f"column '{data.target}', row {data.rows[i]} of {data.source}: {y[i]:.4g} "
            "is too large to train on (the network computes in float32, up to "
            "3.4e38); rescale the target, e.g. divide it by a power of ten"
        )
    return y


def data_for_model(
    columns: dict,
    dataset,
    data_file,
    target=None,
    delimiter=None,
    drop_missing=False,
    id_columns=(),
    need_target=True,
) -> Data:
    """The rows of a built-in dataset or a file for a trained model.

    ``columns`` is ``{"features": [...], "target": name, "id_columns": [...]}`` (what
    ``chainrule.sklearn.table_columns`` returns): the file must have the model's features;
    its target and id columns may be there too.
    """
    features = list(columns["features"])
    if dataset:
        data = load_builtin(dataset)
        if list(data.feature_names) != features:
            raise DataError(
                f"dataset {dataset} has features {', '.join(data.feature_names)}; "
                f"the model expects {', '.join(features)}"
            )
        return data
    stored_ids = list(columns.get("id_columns") or [])
    return read_data(
        data_file,
        target=target,
        features=features,
        delimiter=delimiter,
        drop_missing=drop_missing,
        id_columns=id_columns,
        allowed_extra=stored_ids + [columns.get("target")],
        need_target=need_target,
        model_target=columns.get("target"),
        default_ids=stored_ids,
    )
