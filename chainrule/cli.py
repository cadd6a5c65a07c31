"""The ``chainrule`` command: train, evaluate and predict on real data, with safe model files.

A thin layer: it parses options (click), calls the library (``chainrule.data`` reads the files,
``chainrule.nn`` builds the network, ``chainrule.train.fit`` trains it, ``chainrule.io`` saves
it) and prints (rich). Every problem the user can cause ends in one line on stderr,
``error: ...``, naming the file, column, row and value where they apply, and a non-zero exit
status (1; 2 for a bad option, as click does); ``--debug`` shows the Python traceback instead.

    chainrule datasets
    chainrule train --dataset spiral
    chainrule train --data iris.csv --target species --out iris.safetensors
    chainrule evaluate iris.safetensors --data iris.csv
    chainrule predict iris.safetensors --data new.csv --output predictions.csv --proba
    chainrule summary iris.safetensors
    chainrule explain iris.safetensors --data iris.csv --row 1
    chainrule explain --demo llc
    chainrule report iris.safetensors --data iris.csv --out report.html

What a model file holds (see ``chainrule.io``): the weights, the architecture, and in
``preprocessing`` everything ``predict`` needs: the feature names in order, the standardization
statistics, the task, the target's name, the label names (classification), how the outputs are
read and the loss. Regression targets are standardized for training (mean 0, standard
deviation 1; the statistics are stored as ``target_standardizer``) and predictions are turned
back into the target's own units.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import shlex
import sys
from dataclasses import dataclass, field

import click
import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from . import __version__, registry
from .errors import ChainruleError, ConfigError, DataError, ModelFileError, TrainingError
from ._files import check_outputs
from .metrics import output_kind

__all__ = ["main", "cli"]

# ---------------------------------------------------------------------------------------------
# Choices and defaults
# ---------------------------------------------------------------------------------------------

#: activation option -> chainrule.nn class (each activation states its short_name in its
#: class line; see chainrule.registry)
ACTIVATIONS = {name: registry.by_short_name(name, role="activation").__name__
               for name in ("relu", "tanh", "sigmoid", "leaky_relu", "gelu")}


def _loss_choice(name: str) -> tuple:
    cls = registry.by_short_name(name, role="loss")
    kind = registry.facts_of(cls).output_kind
    return (cls.__name__, "regression" if kind == "value" else "classification",
            "classes" if kind == "logits" else 1)


#: loss option -> (chainrule.nn class, task, outputs: 'classes' = one per class, 1 = one column),
#: from the facts each loss states in its class line
LOSSES = {name: _loss_choice(name) for name in ("cross_entropy", "bce_with_logits", "bce",
                                                "hinge", "mse")}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse"}

#: optimizer option -> (chainrule.optim class, default learning rate)
OPTIMIZERS = {"sgd": ("SGD", 0.1), "adam": ("Adam", 0.01), "adamw": ("AdamW", 0.01),
              "rmsprop": ("RMSprop", 0.001), "adagrad": ("Adagrad", 0.1)}

DEFAULT_HIDDEN = "16,16"
DEFAULT_ACTIVATION = "tanh"
DEFAULT_EPOCHS = 200
DEFAULT_BATCH_SIZE = 32
DEFAULT_VALIDATION = 0.2

DATASET_TARGET = "class"  # the target's name in model files trained on a built-in dataset

_state = {"debug": False}
console = Console(highlight=False, markup=False, emoji=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# Option parsing and validation (bad values are usage errors: exit status 2)
# ---------------------------------------------------------------------------------------------

def _set_debug(ctx, param, value):
    if value:
        _state["debug"] = True
    return value


def debug_option(f):
    return click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                        callback=_set_debug,
                        help="Show the Python traceback when something goes wrong.")(f)


def parse_hidden(text: str) -> list[int]:
    """``"16,16"`` -> ``[16, 16]``; ``""`` or ``"none"`` -> ``[]`` (no hidden layer)."""
    text = text.strip()
    if text.lower() in ("", "none", "0"):
        return []
    sizes = []
    for part in text.split(","):
        p = part.strip()
        if not p.isdigit():
            shown = p if p else "(empty)"
            raise ConfigError(f"--hidden: '{shown}' in '{text}' is not a whole number; expected "
                              "layer sizes separated by commas, such as 16,16")
        if int(p) == 0:
            raise ConfigError(f"--hidden: a layer of size 0 in '{text}'; expected sizes of at "
                              "least 1 (or 'none' for no hidden layer)")
        sizes.append(int(p))
    return sizes


def _hidden_callback(ctx, param, value):
    try:
        return parse_hidden(value)
    except ConfigError as err:
        raise click.BadParameter(str(err).split(": ", 1)[1]) from None


def _positive(kind):
    def callback(ctx, param, value):
        if value is None:
            return value
        if not (value > 0) or (isinstance(value, float) and not math.isfinite(value)):
            noun = "a positive whole number" if kind is int else "a positive number"
            raise click.BadParameter(f"must be {noun}, got {value}")
        return value
    return callback


def _fraction(ctx, param, value):
    if value is not None and not 0 <= value < 1:
        raise click.BadParameter(f"must be a fraction from 0 (no validation set) up to, not "
                                 f"including, 1; got {value}")
    return value


def _non_negative(ctx, param, value):
    if value is not None and (value < 0 or not math.isfinite(value)):
        raise click.BadParameter(f"must be 0 or more, got {value}")
    return value


def _momentum(ctx, param, value):
    if value is not None and not 0 <= value < 1:
        raise click.BadParameter(f"must be from 0 up to, not including, 1; got {value}")
    return value


def data_options(target_help: str, target: bool = True):
    """--dataset / --data / --target / --delimiter / --drop-missing / --id-column."""
    def decorate(f):
        opts = [
            click.option("--dataset", metavar="NAME",
                         help="A built-in dataset (see 'chainrule datasets')."),
            click.option("--data", "data_file", metavar="FILE",
                         help="Your data: CSV (header row), TSV, NPZ (X, y) or Parquet."),
        ]
        if target:
            opts.append(click.option("--target", metavar="COLUMN", help=target_help))
        opts += [
            click.option("--delimiter", metavar="CHAR",
                         help="Column separator of a text file (default: detected)."),
            click.option("--drop-missing", is_flag=True,
                         help="Drop rows with missing values instead of stopping."),
            click.option("--id-column", "id_columns", multiple=True, metavar="COLUMN",
                         help="A column that identifies rows (not a feature); repeatable."),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f
    return decorate


# ---------------------------------------------------------------------------------------------
# Reading data
# ---------------------------------------------------------------------------------------------

@dataclass
class Data:
    """Rows to train on, evaluate or predict, before standardizing."""

    source: str                     # "dataset spiral" or the file name
    X: np.ndarray                   # float32 (n, d), raw feature values
    feature_names: list
    y_raw: np.ndarray | None        # raw target values (labels as text or numbers), or None
    target: str | None
    rows: np.ndarray                # data row number of each row (1 = first row after the header)
    ids: dict = field(default_factory=dict)   # id column -> values of the kept rows
    label_names: list | None = None          # a built-in dataset's class names, in its order
    y_codes: np.ndarray | None = None        # a built-in dataset's class indices
    task: str | None = None
    dropped: int = 0

    @property
    def n(self):
        return len(self.X)


def _source_check(dataset, data_file):
    if dataset and data_file:
        raise click.UsageError("give either --dataset NAME or --data FILE, not both")
    if not dataset and not data_file:
        raise click.UsageError("give the data: --dataset NAME (see 'chainrule datasets') or "
                               "--data FILE")


def load_builtin(name: str, samples=None, noise=None, seed: int = 0) -> Data:
    from .data import load_dataset

    ds = load_dataset(name, n_samples=samples, noise=noise, seed=seed)
    names = list(ds.target_names) if ds.target_names is not None else None
    y_raw = np.asarray(names, dtype=object)[ds.y] if names is not None else ds.y
    return Data(source=f"dataset {ds.name}", X=np.asarray(ds.X, dtype=np.float32),
                feature_names=list(ds.feature_names), y_raw=y_raw, target=DATASET_TARGET,
                rows=np.arange(1, len(ds.X) + 1), label_names=names, y_codes=ds.y,
                task=ds.task)


def read_data(path: str, target=None, features=None, delimiter=None, drop_missing=False,
              id_columns=(), allowed_extra=(), need_target=True, model_target=None,
              default_ids=()) -> Data:
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
            raise DataError(f"target column '{model_target}' (the model's target) not found in "
                            f"{path}; columns are: {', '.join(columns)} (name it with --target)")
        else:
            raise DataError(f"--target is missing: which column of {path} should be predicted? "
                            f"columns are: {', '.join(columns)}")
    ids = list(dict.fromkeys(id_columns))
    if target is not None and target not in columns:
        near = [c for c in columns if c.strip().lower() == target.strip().lower()]
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise DataError(f"target column '{target}' not found in {path}{hint}; columns are: "
                        f"{', '.join(columns)}")
    for col in ids:
        if col not in columns:
            raise DataError(f"id column '{col}' not found in {path}; columns are: "
                            f"{', '.join(columns)}")
    if features is not None:
        missing = [f for f in features if f not in columns]
        extra = [c for c in columns if c not in features and c != target and c not in ids
                 and c not in allowed_extra]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"extra {', '.join(extra)}")
            hint = " (name id columns with --id-column)" if extra else ""
            raise DataError(f"the columns of {path} do not match the model's features: "
                            f"{'; '.join(parts)}; the model expects {', '.join(features)}{hint}")
    X, y, names, rows = prepare(table, target=target, features=features,
                                drop_missing=drop_missing, id_columns=ids)
    keep = np.isin(np.asarray(table.row_numbers), rows)
    id_values = {col: np.asarray(table.data[col])[keep] for col in ids}
    return Data(source=path, X=X, feature_names=list(names), y_raw=y, target=target, rows=rows,
                ids=id_values, dropped=int(table.n_rows - len(rows)))


# ---------------------------------------------------------------------------------------------
# Building and reading models
# ---------------------------------------------------------------------------------------------

def _nn_class(name: str, what: str):
    import chainrule.nn as nn

    cls = getattr(nn, name, None)
    if cls is None:
        raise ConfigError(f"{what} needs chainrule.nn.{name}, which this version of chainrule "
                          "does not have")
    return cls


def build_model(n_in: int, hidden: list, n_out: int, activation: str, final=None):
    """Linear -> activation -> ... -> Linear(n_out) (-> Sigmoid for the 'bce' loss)."""
    import chainrule.nn as nn

    act = _nn_class(ACTIVATIONS[activation], f"--activation {activation}")
    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), act()]
        width = h
    layers.append(nn.Linear(width, n_out))
    if final is not None:
        layers.append(final())
    return nn.Sequential(*layers)


def make_loss(name: str):
    cls_name = LOSSES[name][0]
    return _nn_class(cls_name, f"--loss {name}")()


def make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float):
    import chainrule.optim as optim

    cls_name = OPTIMIZERS[name][0]
    cls = getattr(optim, cls_name, None)
    if cls is None:
        raise ConfigError(f"--optimizer {name} needs chainrule.optim.{cls_name}, which this "
                          "version of chainrule does not have")
    kwargs = {"lr": lr}
    if weight_decay:
        kwargs["weight_decay"] = weight_decay
    if name == "sgd" and momentum:
        kwargs["momentum"] = momentum
    return cls(params, **kwargs)


def loss_targets(y, task: str, loss: str) -> np.ndarray:
    """The labels in the form the loss wants: class indices, or a float32 column."""
    if task == "classification" and LOSSES[loss][2] == "classes":
        return np.asarray(y, dtype=np.int64)
    return np.asarray(y, dtype=np.float32).reshape(-1, 1)


def load_model(path: str):
    from .io import load

    model, info = load(path, with_info=True)
    pre = info.get("preprocessing")
    if not isinstance(pre, dict) or "feature_names" not in pre or "standardizer" not in pre:
        raise ModelFileError(f"{path} is a chainrule model file without preprocessing "
                             "(saved from Python?); the command needs one saved by "
                             "'chainrule train'")
    return model, info


def standardizer(pre: dict, key: str = "standardizer"):
    from .data import Standardizer

    return Standardizer.from_dict(pre[key])


def model_outputs(model, pre: dict, X: np.ndarray) -> np.ndarray:
    from .train import predict

    return predict(model, standardizer(pre).transform(np.asarray(X, dtype=np.float32)))


def classes_from_outputs(out: np.ndarray, pre: dict) -> np.ndarray:
    from .metrics import predict_classes

    return predict_classes(out, pre.get("output", "logits"))


def probabilities(out: np.ndarray, pre: dict) -> np.ndarray:
    """(n, k) class probabilities from model outputs (float64)."""
    kind = pre.get("output", "logits")
    out = np.asarray(out, dtype=np.float64)
    if kind == "logits":
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if kind == "logit" and pre.get("loss") != "hinge":
        p = 1 / (1 + np.exp(-out.reshape(-1)))
    elif kind == "probability":
        p = out.reshape(-1)
    else:
        raise ConfigError(f"--proba needs a model trained with cross_entropy, bce_with_logits "
                          f"or bce; this one was trained with {pre.get('loss')}, whose outputs "
                          "are scores, not probabilities")
    return np.stack([1 - p, p], axis=1)


def regression_values(out: np.ndarray, pre: dict) -> np.ndarray:
    out = np.asarray(out, dtype=np.float64).reshape(len(out), -1)
    if "target_standardizer" in pre:
        out = standardizer(pre, "target_standardizer").inverse_transform(out)
    return out[:, 0]


def label_codes(y_raw, data: Data, known: list) -> np.ndarray:
    """Class indices of the model for raw labels; a label the model never saw is an error."""
    from .data import encode_labels

    codes, names = encode_labels(y_raw)
    index = {name: i for i, name in enumerate(known)}
    for c, name in enumerate(names):
        if name not in index:
            i = int(np.argmax(codes == c))
            where = (f"column '{data.target}', row {data.rows[i]} of {data.source}"
                     if not data.source.startswith("dataset ") else data.source)
            raise DataError(f"{where}: label '{name}' was never seen in training; the model "
                            f"knows {', '.join(known)}")
    return np.asarray([index[n] for n in names], dtype=np.int64)[codes]


def numeric_target(y_raw, data: Data) -> np.ndarray:
    y = np.asarray(y_raw)
    if y.dtype == object:
        for i, v in enumerate(y.tolist()):
            try:
                float(v)
            except (TypeError, ValueError):
                raise DataError(f"column '{data.target}', row {data.rows[i]} of {data.source}: "
                                f"'{v}' is not a number; regression needs numbers in the "
                                "target (use --task classification for labels)") from None
    y = y.astype(np.float64)
    big = np.abs(y) > np.finfo(np.float32).max / 1e3  # standardizing and float32 training
    if big.any():
        i = int(np.argmax(big))
        raise DataError(f"column '{data.target}', row {data.rows[i]} of {data.source}: {y[i]:.4g} "
                        "is too large to train on (the network computes in float32, up to "
                        "3.4e38); rescale the target, e.g. divide it by a power of ten")
    return y


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------

def _fmt(value, key="") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if "acc" in key:
            return f"{100 * value:.1f}%"
        return f"{value:.4g}"
    return str(value)


def _logs_text(logs: dict) -> str:
    short = {"accuracy": "acc", "val_accuracy": "val_acc"}
    return "  ".join(f"{short.get(k, k)} {_fmt(v, k)}" for k, v in logs.items() if k != "lr")


def _table(*columns, title=None, left=()):
    t = RichTable(title=title, title_justify="left", show_edge=True)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 or c in left else "right")
    return t


def _is_linear(child: dict) -> bool:
    """A linear unit with in/out features, in a model file's architecture entry."""
    cfg = child.get("config", {})
    return (registry.facts_of(child["type"]).role == "linear" and "in_features" in cfg
            and "out_features" in cfg)


def _architecture_text(spec: dict) -> str:
    parts = []
    for child in spec.get("children", [spec]):
        cfg = child.get("config", {})
        if _is_linear(child):
            if not parts:
                parts.append(str(cfg["in_features"]))
            parts.append(f"{child['type']}({cfg['out_features']})")
        else:
            parts.append(child["type"])
    return " -> ".join(parts)


class ProgressCallback:
    """A rich progress bar with the latest metrics (on a terminal); lines every tenth of the
    epochs otherwise, so logs and captured output stay readable."""

    def __init__(self, out: Console, epochs: int, quiet: bool):
        self.out, self.epochs, self.quiet = out, epochs, quiet
        self.live = out.is_terminal and not quiet
        self.every = max(1, epochs // 10)
        self.progress = None

    # the Callback protocol of chainrule.train (duck-typed so the class needs no import)
    def on_train_begin(self, state):
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self.progress = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[logs]}"),
                                     console=self.out)
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.epochs, logs="")

    def on_epoch_begin(self, state): ...

    def on_batch_end(self, state): ...

    def on_epoch_end(self, state):
        text = _logs_text(state.logs)
        if self.progress is not None:
            self.progress.update(self.task, advance=1, logs=text)
        elif not self.quiet and (state.epoch % self.every == 0 or state.epoch == self.epochs
                                 or state.stop_training or state.epoch == 1):
            w = len(str(self.epochs))
            self.out.print(f"epoch {state.epoch:>{w}}/{self.epochs}  {text}")

    def on_train_end(self, state):
        self.close()

    def close(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


# ---------------------------------------------------------------------------------------------
# The command group
# ---------------------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="chainrule")
@debug_option
def cli():
    """Train, evaluate and use small neural networks on your own data.

    \b
    chainrule datasets                                   built-in datasets
    chainrule train --dataset spiral                     train an MLP, save model.safetensors
    chainrule train --data iris.csv --target species     ... on your CSV file
    chainrule evaluate model.safetensors --data test.csv metrics, per class and confusion matrix
    chainrule predict model.safetensors --data new.csv --output predictions.csv
    chainrule summary model.safetensors                  architecture, settings, metrics
    """


# --- datasets ---------------------------------------------------------------------------------

@cli.command()
@debug_option
def datasets():
    """List the built-in datasets."""
    from .data import list_datasets

    t = _table("name", "rows", "features", "classes", "description", left=("description",))
    for d in list_datasets():
        text = d["description"]
        if not d["available"]:
            needs = "mnist1d" if d["name"] == "mnist1d" else "scikit-learn"
            text += f" (needs {needs}: not installed)"
        t.add_row(d["name"], str(d["n_samples"]), str(d["n_features"]),
                  str(d["n_classes"]) if d["n_classes"] else "-", text)
    console.print(t)


# --- train ------------------------------------------------------------------------------------

@cli.command()
@data_options("The column to predict (required with --data, except for NPZ files with y).")
@click.option("--samples", type=int, callback=_positive(int), metavar="N",
              help="Rows of a generated dataset (circle, xor, gauss, spiral, moons).")
@click.option("--noise", type=float, callback=_non_negative,
              help="Noise of a generated dataset (Playground's 0..0.5).")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="Override the task inferred from the target column.")
@click.option("--hidden", default=DEFAULT_HIDDEN, show_default=True, callback=_hidden_callback,
              help="Hidden layer sizes, comma separated ('none': a linear model).")
@click.option("--activation", type=click.Choice(list(ACTIVATIONS)), default=DEFAULT_ACTIVATION,
              show_default=True)
@click.option("--loss", type=click.Choice(list(LOSSES)),
              help="Default: cross_entropy (classification) or mse (regression).")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)), default="adam",
              show_default=True)
@click.option("--lr", type=float, callback=_positive(float),
              help="Learning rate. Default: sgd 0.1, adam/adamw 0.01, rmsprop 0.001, "
                   "adagrad 0.1.")
@click.option("--momentum", type=float, default=0.9, show_default=True, callback=_momentum,
              help="Momentum of sgd.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True,
              callback=_non_negative)
@click.option("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, show_default=True,
              callback=_positive(int))
@click.option("--epochs", type=int, default=DEFAULT_EPOCHS, show_default=True,
              callback=_positive(int))
@click.option("--validation", type=float, default=DEFAULT_VALIDATION, show_default=True,
              callback=_fraction, help="Fraction of the rows held out to validate (0: none).")
@click.option("--patience", type=int, callback=_positive(int), metavar="N",
              help="Stop early when the validation loss has not improved for N epochs "
                   "(the best weights are kept).")
@click.option("--conv", "conv", metavar="CHANNELS",
              help="Convolutional layers first, their channels comma separated (25,25,25: the "
                   "MNIST-1D paper's CNN; --hidden then defaults to none). digits are 1x8x8 images, "
                   "mnist1d and other rows 1xN signals.")
@click.option("--conv-kernel", metavar="K[,K...]",
              help="Kernel size of the conv layers, or one per layer. Default: 5, then 3.")
@click.option("--conv-stride", type=int, default=2, show_default=True, callback=_positive(int),
              help="Stride of the conv layers (padding 1).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds the weights, the split and the shuffling: the same seed, the same "
                   "model.")
@click.option("--out", default="model.safetensors", show_default=True, metavar="FILE",
              help="Where to save the model.")
@click.option("--report", metavar="FILE", help="Also write an HTML report (needs matplotlib).")
@click.option("--checkpoint", metavar="FILE",
              help="Write a checkpoint after every epoch (model, optimizer, early stopping, "
                   "random state, history, options), to go on with --resume.")
@click.option("--resume", metavar="FILE",
              help="Go on from a checkpoint: data and options come from it (options given "
                   "again must agree; --epochs may be larger). Ends with the same weights as "
                   "an uninterrupted run.")
@click.option("--quiet", "-q", is_flag=True, help="Print one line at the end, nothing else.")
@debug_option
def train(dataset, data_file, target, delimiter, drop_missing, id_columns, samples, noise, task,
          hidden, activation, loss, optimizer, lr, momentum, weight_decay, batch_size, epochs,
          validation, patience, conv, conv_kernel, conv_stride, seed, out, report, checkpoint,
          resume, quiet):
    """Train a network on a built-in dataset or your file and save it.

    The task is inferred from the target (text or a few whole-number labels: classification;
    other numbers: regression); features are standardized, with the statistics kept in the
    model file.
    """
    import chainrule as cr
    from .data import Standardizer, encode_labels, infer_task, train_test_split
    from .io import save
    from .train import EarlyStopping, evaluate, fit
    from .train import predict as predict_outputs

    if resume and not _state.get("resuming"):
        return _resume_train(resume)
    resume = _state.pop("resuming", None)
    _source_check(dataset, data_file)
    from ._files import same_file
    check_outputs({"--data": data_file, "--resume": resume},
                  {"--out": out, "--report": report,
                   "--checkpoint": None if checkpoint and resume and same_file(checkpoint, resume)
                   else checkpoint})
    if dataset and (target or id_columns or delimiter):
        raise click.UsageError("--target, --id-column and --delimiter go with --data FILE, "
                               "not --dataset")
    if data_file and (samples or noise is not None):
        raise click.UsageError("--samples and --noise go with a generated --dataset")
    if data_file:
        data = read_data(data_file, target=target, delimiter=delimiter,
                         drop_missing=drop_missing, id_columns=id_columns)
    else:
        data = load_builtin(dataset, samples=samples, noise=noise)

    # the task, the labels and the loss
    task = task or data.task or infer_task(data.y_raw)
    if task == "classification":
        if data.y_codes is not None:
            y, label_names = np.asarray(data.y_codes, dtype=np.int64), list(data.label_names)
        else:
            y, label_names = encode_labels(data.y_raw)
        if len(label_names) < 2:
            raise DataError(f"target column '{data.target}' of {data.source} holds one label "
                            f"only ('{label_names[0]}'); classification needs at least two")
    else:
        if data.y_codes is not None:
            y = data.y_codes.astype(np.float64)
        else:
            y = numeric_target(data.y_raw, data)
        label_names = None
    loss = loss or DEFAULT_LOSS[task]
    if LOSSES[loss][1] != task:
        fitting = ", ".join(k for k, v in LOSSES.items() if v[1] == task)
        raise ConfigError(f"--loss {loss} is for {LOSSES[loss][1]}, but this is {task} "
                          f"(target '{data.target}'); choose {fitting}")
    if task == "classification" and LOSSES[loss][2] == 1 and len(label_names) != 2:
        raise ConfigError(f"--loss {loss} is for two classes; target '{data.target}' has "
                          f"{len(label_names)} ({', '.join(label_names[:10])}); use cross_entropy")
    n_out = len(label_names) if LOSSES[loss][2] == "classes" else 1
    lr = lr if lr is not None else OPTIMIZERS[optimizer][1]

    # split, then standardize with the training part's statistics
    if data.n < 2:
        raise DataError(f"{data.source} has {data.n} row; training needs at least 2")
    X_raw = data.X
    if validation > 0:
        stratify = task == "classification" and np.bincount(y, minlength=n_out).min() >= 2
        try:
            X_tr, X_va, y_tr, y_va = train_test_split(X_raw, y, test_size=validation, seed=seed,
                                                      stratify=stratify)
        except DataError as err:
            raise DataError(f"--validation {validation}: {err}") from None
    else:
        X_tr, y_tr, X_va, y_va = X_raw, y, None, None
    scaler = Standardizer().fit(X_tr)
    X_tr_s = scaler.transform(X_tr)
    X_va_s = scaler.transform(X_va) if X_va is not None else None
    y_scaler = None
    if task == "regression":
        y_scaler = Standardizer().fit(np.asarray(y_tr, dtype=np.float64).reshape(-1, 1))
        y_tr_fit = y_scaler.transform(y_tr.reshape(-1, 1).astype(np.float32))[:, 0]
        y_va_fit = (y_scaler.transform(y_va.reshape(-1, 1).astype(np.float32))[:, 0]
                    if y_va is not None else None)
    else:
        y_tr_fit, y_va_fit = y_tr, y_va
    t_tr = loss_targets(y_tr_fit, task, loss)
    t_va = loss_targets(y_va_fit, task, loss) if y_va is not None else None

    # the model, seeded
    cr.manual_seed(seed)
    final = _nn_class("Sigmoid", "--loss bce") if loss == "bce" else None
    conv_settings = None
    if conv:
        hidden, conv_settings = _conv_option(conv, conv_kernel, conv_stride, hidden, dataset,
                                             X_raw.shape[1])
        model = _conv_model(conv_settings, hidden, n_out, activation, final)
    else:
        model = build_model(X_raw.shape[1], hidden, n_out, activation, final=final)
    loss_fn = make_loss(loss)
    opt = make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    n_params = int(sum(np.asarray(p.data).size for p in model.parameters()))

    if not quiet:
        _print_train_header(data, task, label_names, hidden, activation, n_out, loss, optimizer,
                            lr, n_params, len(X_tr), 0 if X_va is None else len(X_va), epochs,
                            batch_size, seed)
    metrics = ("accuracy",) if task == "classification" else ("r2",)
    progress = ProgressCallback(console, epochs, quiet)
    callbacks = []
    if patience:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=patience,
                                       restore_best_weights=True))
    callbacks.append(progress)
    options = dict(dataset=dataset, data_file=data_file and os.path.abspath(data_file),
                   target=target, delimiter=delimiter, drop_missing=drop_missing,
                   id_columns=list(id_columns), samples=samples, noise=noise, task=task,
                   hidden=hidden, activation=activation, loss=loss, optimizer=optimizer, lr=lr,
                   momentum=momentum, weight_decay=weight_decay, batch_size=batch_size,
                   epochs=epochs, validation=validation, patience=patience, seed=seed,
                   conv=conv, conv_kernel=conv_kernel, conv_stride=conv_stride,
                   out=os.path.abspath(out), report=report and os.path.abspath(report))
    if resume and not checkpoint:
        checkpoint = resume  # go on writing into the checkpoint resumed from
    interrupt_at = None if checkpoint else os.path.splitext(out)[0] + ".checkpoint.safetensors"
    try:
        history = fit(model, loss_fn, opt, X_tr_s, t_tr, epochs=epochs, batch_size=batch_size,
                      validation=(X_va_s, t_va) if X_va is not None else None, metrics=metrics,
                      callbacks=callbacks, seed=seed, track_grad_norms=True,
                      checkpoint=checkpoint, resume=resume, interrupt_checkpoint=interrupt_at,
                      settings={"options": options})
    except TrainingError as err:
        raise TrainingError(f"{err} (nothing was saved)") from None
    except KeyboardInterrupt as stop:
        saved = getattr(stop, "checkpoint", None)
        if saved is None:
            raise
        raise KeyboardInterrupt(f"after epoch {stop.epoch} of {epochs}; that epoch's state is "
                                f"saved in {saved}; go on with: chainrule train --resume "
                                f"{shlex.quote(saved)}") from None
    finally:
        progress.close()

    # final numbers on the whole training and validation parts (original units)
    def measure(Xs, t, y_orig):
        m = evaluate(model, loss_fn, Xs, t, metrics=("accuracy",) if task == "classification"
                     else ())
        if task == "regression":
            pred = regression_values(predict_outputs(model, Xs),
                                     {"target_standardizer": y_scaler.to_dict()})
            m.update(regression_metrics(y_orig, pred))
        return m

    final_metrics = {"train": measure(X_tr_s, t_tr, y_tr)}
    if X_va is not None:
        final_metrics["validation"] = measure(X_va_s, t_va, y_va)

    history_dict = history.to_dict()
    source = ({"dataset": dataset, "samples": samples, "noise": noise} if dataset
              else {"data": os.path.basename(data_file)})
    training = dict(source, task=task, hidden=hidden, activation=activation, loss=loss,
                    optimizer=optimizer, lr=lr, momentum=momentum if optimizer == "sgd" else None,
                    weight_decay=weight_decay, batch_size=batch_size, epochs=epochs,
                    epochs_run=len(history.epochs), stop_reason=history.stop_reason,
                    best_epoch=history.best_epoch, validation=validation, patience=patience,
                    seed=seed, n_train=len(X_tr), n_validation=0 if X_va is None else len(X_va),
                    dropped_rows=data.dropped, seconds=round(history.seconds, 3),
                    chainrule_version=__version__, history=history_dict)
    if conv_settings:
        training["conv"] = conv_settings
    preprocessing = {"feature_names": data.feature_names, "standardizer": scaler.to_dict(),
                     "task": task, "target": data.target, "label_names": label_names,
                     "output": output_kind(LOSSES[loss][0]), "loss": loss,
                     "id_columns": list(id_columns)}
    if y_scaler is not None:
        preprocessing["target_standardizer"] = y_scaler.to_dict()
    save(model, out, preprocessing=preprocessing, training=training, metrics=final_metrics)

    if quiet:
        key = "accuracy" if task == "classification" else "r2"
        parts = [f"train {key} {_fmt(final_metrics['train'][key], key)}"]
        if "validation" in final_metrics:
            parts.append(f"validation {key} {_fmt(final_metrics['validation'][key], key)}")
        console.print(f"saved {out} ({', '.join(parts)})")
    else:
        _print_final(final_metrics, history, epochs)
        console.print(f"saved {out}")
    if report:
        from .io import read_info
        write_report = _optional("chainrule.report", "write_report", "the HTML report")
        y_show = y if task == "classification" else y.astype(np.float64)
        path = write_report(report, model, read_info(out), X_raw, y_show, history=history_dict)
        if not quiet:
            console.print(f"wrote {path}")


def _resume_train(path):
    """``train --resume``: the checkpoint's options, those given again checked against them."""
    from click.core import ParameterSource

    from .checkpoint import resume_options

    ctx = click.get_current_context()
    given = {k: v for k, v in ctx.params.items()
             if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    merged = resume_options(path, given)
    params = dict(ctx.params)
    params.update({k: v for k, v in merged.items() if k in params})
    params["id_columns"] = tuple(params["id_columns"] or ())
    params["resume"] = path
    _state["resuming"] = path
    try:
        return train.callback(**params)
    finally:
        _state.pop("resuming", None)


def _conv_option(conv, conv_kernel, conv_stride, hidden, dataset, n_features):
    """(hidden sizes, conv settings) from --conv/--conv-kernel/--conv-stride: --hidden defaults
    to none with --conv; a built-in dataset's rows are its images/signals (digits 1x8x8)."""
    from .data.datasets import SAMPLE_SHAPES

    def sizes(option, text):
        parts = [p.strip() for p in str(text).split(",") if p.strip()]
        if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise click.BadParameter(f"'{text}' is not a list of positive whole numbers such "
                                     "as 25,25,25", param_hint=option)
        return [int(p) for p in parts]

    channels = sizes("--conv", conv)
    kernel = sizes("--conv-kernel", conv_kernel) if conv_kernel else None
    if kernel and len(kernel) not in (1, len(channels)):
        raise click.BadParameter(f"'{conv_kernel}' gives {len(kernel)} sizes for "
                                 f"{len(channels)} conv layers; give one, or one per layer",
                                 param_hint="--conv-kernel")
    ctx = click.get_current_context()
    if ctx.get_parameter_source("hidden") == click.core.ParameterSource.DEFAULT:
        hidden = []
    key = (dataset or "").strip().lower().replace("_", "-")
    shape = list(SAMPLE_SHAPES.get(key, (1, n_features)))
    return hidden, {"channels": channels, "kernel": kernel, "stride": conv_stride,
                    "input_shape": shape}


def _conv_model(settings, hidden, n_out, activation, final):
    from . import nn

    model = nn.conv_net(tuple(settings["input_shape"]), n_out, channels=settings["channels"],
                        kernels=settings["kernel"], stride=settings["stride"], hidden=hidden,
                        activation=_nn_class(ACTIVATIONS[activation], f"--activation {activation}"))
    if final is not None:
        model.append(final())
    return model


def regression_metrics(y_true, y_pred) -> dict:
    from .metrics import mae, mse, r2

    m = mse(y_true, y_pred)
    return {"mse": m, "rmse": math.sqrt(m), "mae": mae(y_true, y_pred), "r2": r2(y_true, y_pred)}


def _print_train_header(data, task, label_names, hidden, activation, n_out, loss, optimizer, lr,
                        n_params, n_train, n_val, epochs, batch_size, seed):
    what = f"{data.n} rows, {len(data.feature_names)} features"
    if task == "classification":
        shown = ", ".join(label_names[:8]) + (", ..." if len(label_names) > 8 else "")
        what += f", {len(label_names)} classes: {shown}"
    else:
        what += f", regression on '{data.target}'"
    if data.dropped:
        what += f"; dropped {data.dropped} rows with missing values"
    console.print(f"data: {data.source} ({what})")
    widths = [str(len(data.feature_names))] + [f"{h} {activation}" for h in hidden] + [str(n_out)]
    console.print(f"model: {' -> '.join(widths)} ({n_params} parameters), loss {loss}, "
                  f"optimizer {optimizer} (lr {lr:g})")
    split = f"{n_train} rows" + (f", validating on {n_val}" if n_val else ", no validation set")
    console.print(f"training on {split}: {epochs} epochs, batch size {batch_size}, seed {seed}")


def _print_final(final_metrics: dict, history, epochs: int):
    splits = list(final_metrics)
    t = _table("metric", *splits)
    regression = "r2" in final_metrics["train"]
    for key in final_metrics["train"]:
        label = "loss (standardized target)" if regression and key == "loss" else key
        t.add_row(label, *(_fmt(final_metrics[s].get(key), key) for s in splits))
    console.print(t)
    line = f"epochs: {len(history.epochs)} of {epochs}, time {history.seconds:.1f} s"
    if history.stop_reason:
        line += f"; {history.stop_reason}"
    console.print(line)


# --- evaluate ---------------------------------------------------------------------------------

def data_for_model(info, dataset, data_file, target, delimiter, drop_missing, id_columns,
                   need_target=True) -> Data:
    pre = info["preprocessing"]
    features = pre["feature_names"]
    if dataset:
        data = load_builtin(dataset)
        if list(data.feature_names) != list(features):
            raise DataError(f"dataset {dataset} has features {', '.join(data.feature_names)}; "
                            f"the model expects {', '.join(features)}")
        return data
    stored_ids = pre.get("id_columns") or []
    return read_data(data_file, target=target, features=features, delimiter=delimiter,
                     drop_missing=drop_missing, id_columns=id_columns,
                     allowed_extra=stored_ids + [pre.get("target")], need_target=need_target,
                     model_target=pre.get("target"), default_ids=stored_ids)


def true_values(data: Data, pre: dict) -> np.ndarray:
    if pre["task"] == "classification":
        return label_codes(data.y_raw, data, pre["label_names"])
    return numeric_target(data.y_raw, data)


@cli.command()
@click.argument("model_file", metavar="MODEL")
@data_options("The target column (default: the model's target).")
@debug_option
def evaluate(model_file, dataset, data_file, target, delimiter, drop_missing, id_columns):
    """Metrics of a saved model on a dataset or file."""
    from .metrics import accuracy, confusion_matrix, precision_recall_f1
    from .train import evaluate as evaluate_loss

    _source_check(dataset, data_file)
    model, info = load_model(model_file)
    pre = info["preprocessing"]
    data = data_for_model(info, dataset, data_file, target, delimiter, drop_missing, id_columns)
    y = true_values(data, pre)
    out = model_outputs(model, pre, data.X)
    console.print(f"model {model_file} on {data.source} ({data.n} rows"
                  + (f"; dropped {data.dropped} with missing values" if data.dropped else "")
                  + ")")
    if pre["task"] == "classification":
        names = pre["label_names"]
        k = len(names)
        pred = classes_from_outputs(out, pre)
        loss_value = None
        try:
            loss_fn = make_loss(pre["loss"])
            Xs = standardizer(pre).transform(data.X)
            loss_value = evaluate_loss(model, loss_fn, Xs, loss_targets(y, "classification",
                                                                        pre["loss"]), metrics=())["loss"]
        except ChainruleError:
            pass
        t = _table("metric", "value")
        t.add_row("accuracy", _fmt(accuracy(y, pred), "accuracy"))
        if loss_value is not None:
            t.add_row(f"loss ({pre['loss']})", _fmt(loss_value))
        t.add_row("rows", str(data.n))
        console.print(t)
        precision, recall, f1, support = precision_recall_f1(y, pred, n_classes=k)
        t = _table("class", "precision", "recall", "f1", "support", title="per class")
        for i, name in enumerate(names):
            t.add_row(name, f"{precision[i]:.3f}", f"{recall[i]:.3f}", f"{f1[i]:.3f}",
                      str(int(support[i])))
        console.print(t)
        cm = confusion_matrix(y, pred, n_classes=k)
        t = _table("true \\ predicted", *names, title="confusion matrix (rows: true class)")
        for i, name in enumerate(names):
            t.add_row(name, *(str(int(v)) for v in cm[i]))
        console.print(t)
    else:
        pred = regression_values(out, pre)
        t = _table("metric", "value")
        for key, value in regression_metrics(y, pred).items():
            t.add_row(key, _fmt(value))
        t.add_row("rows", str(data.n))
        console.print(t)


# --- predict ----------------------------------------------------------------------------------

def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "NaN" if math.isnan(value) else str(value)
    return str(value)


def write_columns(path, columns: dict, safe: bool = True):
    """CSV (TSV for .tsv) through data.write_table (atomic), Parquet for .parquet, or stdout.
    With ``safe``, text cells a spreadsheet would run as formulas get a leading apostrophe."""
    if path is None or path == "-":
        from .data.files import _safe_cell

        fix = _safe_cell if safe else (lambda c: c)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([fix(str(c)) for c in columns])
        writer.writerows(zip(*([fix(_cell(v)) for v in col] for col in columns.values())))
        sys.stdout.flush()
        return
    if path.lower().endswith((".parquet", ".pq")):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"writing {path} needs pyarrow, which is not installed: "
                            "pip install pyarrow (or write a .csv file)") from None
        from ._files import write_atomic

        arrays = {k: (np.asarray(v).tolist() if np.asarray(v).dtype == object else v)
                  for k, v in columns.items()}
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table(arrays), sink)
        write_atomic(path, sink.getvalue().to_pybytes(), DataError)
        return
    from .data import write_table

    write_table(path, columns, safe=safe)


@cli.command()
@click.argument("model_file", metavar="MODEL")
@click.option("--data", "data_file", required=True, metavar="FILE",
              help="Rows to predict: the model's feature columns (CSV, TSV, NPZ or Parquet).")
@click.option("--output", "-o", metavar="FILE",
              help="Write the predictions here (CSV; TSV for .tsv; Parquet for .parquet). "
                   "Default: print them.")
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@click.option("--raw-cells", is_flag=True,
              help="Write text cells exactly as they are, even those starting with = + - @ "
                   "(by default these get a leading ' so that a spreadsheet shows them as text "
                   "instead of running them as formulas).")
@click.option("--delimiter", metavar="CHAR")
@click.option("--drop-missing", is_flag=True,
              help="Skip rows with missing values (the output then has a 'row' column).")
@click.option("--id-column", "id_columns", multiple=True, metavar="COLUMN",
              help="A column copied to the output to identify rows; repeatable.")
@debug_option
def predict(model_file, data_file, output, proba, raw_cells, delimiter, drop_missing, id_columns):
    """Predict with a saved model: labels in their original names (or values, for regression)."""
    check_outputs({"MODEL": model_file, "--data": data_file}, {"--output": output})
    model, info = load_model(model_file)
    pre = info["preprocessing"]
    data = data_for_model(info, None, data_file, None, delimiter, drop_missing, id_columns,
                          need_target=False)
    out = model_outputs(model, pre, data.X)
    columns = {}
    if drop_missing:
        columns["row"] = data.rows
    columns.update(data.ids)
    if pre["task"] == "classification":
        names = np.asarray(pre["label_names"], dtype=object)
        if proba:
            p = probabilities(out, pre)  # checked before anything is written
        columns["prediction"] = names[classes_from_outputs(out, pre)]
        if proba:
            for i, name in enumerate(pre["label_names"]):
                columns[f"p_{name}"] = np.round(p[:, i], 6)
    else:
        if proba:
            raise ConfigError("--proba is for classification models; this one does regression")
        columns["prediction"] = regression_values(out, pre).astype(np.float32)
    write_columns(output, columns, safe=not raw_cells)
    if output:
        console.print(f"wrote {len(data.X)} predictions to {output}")


# --- summary ----------------------------------------------------------------------------------

@cli.command()
@click.argument("model_file", metavar="MODEL")
@debug_option
def summary(model_file):
    """Architecture, parameter counts, training settings and metrics of a saved model."""
    from .io import load

    model, info = load(model_file, with_info=True)
    spec = info["architecture"]
    children = spec.get("children", [spec])
    params = dict(model.named_parameters())
    t = _table("#", "layer", "output", "parameters", title=f"model {model_file}",
               left=("layer",))
    width = None
    total = 0
    for i, child in enumerate(children):
        cfg = child.get("config", {})
        if _is_linear(child):
            width = cfg["out_features"]
            desc = f"{child['type']}({cfg['in_features']} -> {cfg['out_features']})"
        else:
            desc = child["type"] + ("(" + ", ".join(f"{k}={v}" for k, v in cfg.items()) + ")"
                                    if cfg else "")
        n = sum(int(np.asarray(p.data).size) for name, p in params.items()
                if name.split(".")[0] == str(i))
        total += n
        t.add_row(str(i), desc, str(width) if width is not None else "-", str(n))
    t.add_row("", "total", "", str(total))
    console.print(t)
    pre = info.get("preprocessing") or {}
    if pre:
        t = _table("preprocessing", "value", left=("value",))
        t.add_row("task", str(pre.get("task")))
        t.add_row("target", str(pre.get("target")))
        if pre.get("label_names"):
            t.add_row("labels", ", ".join(pre["label_names"]))
        t.add_row("features", ", ".join(pre.get("feature_names", [])))
        t.add_row("standardized", "features (mean 0, std 1)"
                  + (" and target" if "target_standardizer" in pre else ""))
        t.add_row("output", f"{pre.get('output')} (loss {pre.get('loss')})")
        if pre.get("id_columns"):
            t.add_row("id columns", ", ".join(pre["id_columns"]))
        console.print(t)
    tr = info.get("training") or {}
    if tr:
        t = _table("training", "value", left=("value",))
        for key, value in tr.items():
            if key == "history" or value is None:
                continue
            if isinstance(value, list):
                value = ",".join(str(v) for v in value) or "none"
            t.add_row(key, _fmt(value) if isinstance(value, float) else str(value))
        console.print(t)
    metrics = info.get("metrics") or {}
    if metrics and all(isinstance(v, dict) for v in metrics.values()):
        splits = list(metrics)
        t = _table("metric", *splits)
        keys = list(dict.fromkeys(k for s in splits for k in metrics[s]))
        for key in keys:
            label = ("loss (standardized target)" if key == "loss" and "r2" in keys else key)
            t.add_row(label, *(_fmt(metrics[s].get(key), key) for s in splits))
        console.print(t)


# --- explain and report (chainrule.explain, chainrule.report) ------------------------------

def _optional(module: str, name: str, what: str):
    """A function of an optional part of chainrule, or a clear error when it is missing."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (err.name == module or module.startswith(err.name + ".")):
            raise ConfigError(f"{what} is not available yet in this version of chainrule "
                              f"({module} is missing)") from None
        extra = {"matplotlib": "viz"}.get((err.name or "").split(".")[0])
        hint = f"pip install 'chainrule[{extra}]'" if extra else f"pip install {err.name}"
        raise ConfigError(f"{what} needs the package {err.name}, which is not installed: "
                          f"{hint}") from None
    fn = getattr(mod, name, None)
    if fn is None:
        raise ConfigError(f"{what} is not available yet in this version of chainrule "
                          f"({module}.{name} is missing)")
    return fn


def _row_index(data: Data, row: int) -> int:
    hits = np.flatnonzero(np.asarray(data.rows) == row)
    if not len(hits):
        last = int(data.rows[-1]) if len(data.rows) else 0
        raise ConfigError(f"--row {row}: {data.source} has no data row {row} (rows are "
                          f"1 to {last}; row 1 is the first row after the header)")
    return int(hits[0])


@cli.command()
@click.argument("model_file", metavar="MODEL", required=False)
@data_options("The target column (default: the model's target).")
@click.option("--row", type=int, default=1, show_default=True, callback=_positive(int),
              help="Which data row to explain (1 = the first row after the header).")
@click.option("--demo", type=click.Choice(["llc", "composition"]),
              help="The course notes' examples instead of a model.")
@debug_option
def explain(model_file, dataset, data_file, target, delimiter, drop_missing, id_columns, row,
            demo):
    """Every chain-rule term of one row, as numbers: forward values, then backward products.

    \b
    chainrule explain model.safetensors --data iris.csv --row 3
    chainrule explain --demo llc
    """
    if demo:
        if model_file or dataset or data_file:
            raise click.UsageError("--demo runs on its own: no MODEL, --dataset or --data")
        print(_optional("chainrule.explain", "demo", "explain")(demo))
        return
    if not model_file:
        raise click.UsageError("give a MODEL file with --dataset or --data, or --demo llc")
    _source_check(dataset, data_file)
    explain_fn = _optional("chainrule.explain", "explain", "explain")
    model, info = load_model(model_file)
    pre = info["preprocessing"]
    data = data_for_model(info, dataset, data_file, target, delimiter, drop_missing, id_columns)
    i = _row_index(data, row)
    y = true_values(data, pre)[i:i + 1]
    if pre["task"] == "regression":
        y = standardizer(pre, "target_standardizer").transform(
            y.reshape(-1, 1).astype(np.float32))[:, 0] if "target_standardizer" in pre else y
    x = standardizer(pre).transform(data.X[i:i + 1])
    shown = ", ".join(f"{n}={v:g}" for n, v in zip(pre["feature_names"], data.X[i]))
    console.print(f"row {row} of {data.source}: {shown}; {pre['target']} = {data.y_raw[i]}")
    console.print("(the network sees the features standardized with the model's statistics"
                  + (", and the target standardized too" if pre["task"] == "regression" else "")
                  + ")")
    result = explain_fn(model, x, loss_targets(y, pre["task"], pre["loss"]),
                        make_loss(pre["loss"]))
    print(result)


@cli.command()
@click.argument("model_file", metavar="MODEL")
@data_options("The target column (default: the model's target).")
@click.option("--out", default="report.html", show_default=True, metavar="FILE")
@click.option("--row", type=int, default=1, show_default=True, callback=_positive(int),
              help="The row whose chain-rule terms the report shows.")
@debug_option
def report(model_file, dataset, data_file, target, delimiter, drop_missing, id_columns, out, row):
    """An HTML report of a saved model: training curves, metrics, one row explained."""
    _source_check(dataset, data_file)
    check_outputs({"MODEL": model_file, "--data": data_file}, {"--out": out})
    write_report = _optional("chainrule.report", "write_report", "the HTML report")
    model, info = load_model(model_file)
    pre = info["preprocessing"]
    data = data_for_model(info, dataset, data_file, target, delimiter, drop_missing, id_columns)
    y = true_values(data, pre)
    history = (info.get("training") or {}).get("history")
    path = write_report(out, model, info, data.X, y, history=history,
                        sample_index=_row_index(data, row))
    console.print(f"wrote {path}")


# --- playground -------------------------------------------------------------------------------

@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; the default keeps the page on this machine.")
@click.option("--no-browser", is_flag=True, help="Do not open the page in a web browser.")
@click.option("--dataset", type=click.Choice(["circle", "xor", "gauss", "spiral", "plane",
                                              "multigauss"]), default="circle",
              show_default=True, help="The data set to start with.")
@debug_option
def playground(port, host, no_browser, dataset):
    """Train a network live in the browser and watch every chain-rule term (needs
    chainrule[playground])."""
    run = _optional("chainrule.playground", "run", "the playground")
    run(host=host, port=port, open_browser=not no_browser, dataset=dataset)


# --- export (chainrule.onnx) ------------------------------------------------------------------

@cli.command("export")
@click.argument("model_file", metavar="MODEL")
@click.option("--onnx", "onnx_out", required=True, metavar="OUT.onnx",
              help="Write the model as ONNX here: raw features X in; label and probabilities "
                   "(classification) or prediction (regression) out.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX operator set.")
@debug_option
def export_command(model_file, onnx_out, opset):
    """Export a model file (with its preprocessing) to another format: ONNX."""
    from .onnx import export

    check_outputs({"MODEL": model_file}, {"--onnx": onnx_out})  # also through links
    path = export(model_file, onnx_out, opset=opset)
    console.print(f"wrote {path} (ONNX opset {opset}: input X, "
                  f"{os.path.getsize(path)} bytes)")


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv=None) -> int:
    """Run the command; return the exit status (0 ok, 1 error, 2 bad usage, 130 interrupted)."""
    _state["debug"] = False
    args = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # ∂, σ, → on a terminal that cannot show them
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
    try:
        rv = cli.main(args=args, prog_name="chainrule", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help())
        return 0
    except click.UsageError as err:
        if _state["debug"]:
            raise
        cmd = err.ctx.command_path if err.ctx is not None else "chainrule"
        click.echo(f"error: {_one_line(err.format_message())} (see '{cmd} --help')", err=True)
        return err.exit_code
    except click.ClickException as err:
        if _state["debug"]:
            raise
        click.echo(f"error: {_one_line(err.format_message())}", err=True)
        return err.exit_code
    except (click.Abort, KeyboardInterrupt) as err:
        if _state["debug"]:
            raise
        cause = err.__cause__ if isinstance(err, click.Abort) else err  # click wraps Ctrl-C
        detail = f" {_one_line(cause)}" if isinstance(cause, KeyboardInterrupt) and str(cause) else ""
        click.echo(f"error: interrupted{detail}", err=True)
        return 130
    except BrokenPipeError:
        try:  # the reader went away (chainrule predict ... | head): not an error
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except ChainruleError as err:
        if _state["debug"]:
            raise
        click.echo(f"error: {_one_line(err)}", err=True)
        return 1
    except OSError as err:
        if _state["debug"]:
            raise
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        click.echo(f"error: {_one_line(err.strerror or err)}{where}", err=True)
        return 1
    except Exception as err:  # noqa: BLE001 - a bug: say so in one line, keep --debug for more
        if _state["debug"]:
            raise
        click.echo(f"error: internal error ({type(err).__name__}: {_one_line(err)}); run again "
                   "with --debug for the traceback and please report it", err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
