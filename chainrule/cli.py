"""The ``chainrule`` command: train, evaluate and predict on real data, with safe model files.

A thin shell: it parses options (click), reads the table (``chainrule.tabular``), calls the
estimator (``chainrule.sklearn``: NetClassifier / NetRegressor hold the task, the label
encoding, the standardization, the network, the loss targets and the reading of outputs) and
prints (rich). Every problem the user can cause ends in one line on stderr, ``error: ...``,
naming the file, column, row and value where they apply, and a non-zero exit status (1; 2 for
a bad option, as click does); ``--debug`` shows the Python traceback instead.

    chainrule datasets
    chainrule train --dataset spiral
    chainrule train --data iris.csv --target species --out iris.safetensors
    chainrule evaluate iris.safetensors --data iris.csv
    chainrule predict iris.safetensors --data new.csv --output predictions.csv --proba
    chainrule summary iris.safetensors
    chainrule explain iris.safetensors --data iris.csv --row 1
    chainrule explain --demo llc
    chainrule report iris.safetensors --data iris.csv --out report.html
    chainrule tune --dataset digits --hidden 32 64 --lr 0.003 0.01

The model file (see ``chainrule.io``) is the one ``NetClassifier.save`` writes:
``chainrule.sklearn.load`` turns it back into a fitted estimator.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import math
import os
import shlex
import sys
import warnings

import click
import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from . import __version__, registry
from ._files import check_outputs
from ._validate import Interval, Options
from .errors import ChainruleError, ConfigError, DataError, TrainingError
from .tabular import ACTIVATIONS, LOSSES, OPTIMIZERS, Data

__all__ = ["main", "cli"]

DEFAULT_HIDDEN = "16,16"
DEFAULT_ACTIVATION = "tanh"
DEFAULT_EPOCHS = 200
DEFAULT_BATCH_SIZE = 32
DEFAULT_VALIDATION = 0.2

_state = {"debug": False}
console = Console(highlight=False, markup=False, emoji=False, soft_wrap=True)

#: the optional packages the command's extra brings, and the extra that brings each
_EXTRAS = {
    "click": "cli",
    "rich": "cli",
    "safetensors": "cli",
    "sklearn": "cli",
    "matplotlib": "viz",
    "distributed": "dask",
    "onnx": "onnx",
    "onnxruntime": "onnx",
}


# ---------------------------------------------------------------------------------------------
# Option parsing and validation (bad values are usage errors: exit status 2)
# ---------------------------------------------------------------------------------------------


def _set_debug(ctx, param, value):
    if value:
        _state["debug"] = True
    return value


def debug_option(f):
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show the Python traceback when something goes wrong.",
    )(f)


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
            raise ConfigError(
                f"--hidden: '{shown}' in '{text}' is not a whole number; expected "
                "layer sizes separated by commas, such as 16,16"
            )
        if int(p) == 0:
            raise ConfigError(
                f"--hidden: a layer of size 0 in '{text}'; expected sizes of at "
                "least 1 (or 'none' for no hidden layer)"
            )
        sizes.append(int(p))
    return sizes


def _hidden_callback(ctx, param, value):
    try:
        return parse_hidden(value)
    except ConfigError as err:
        raise click.BadParameter(str(err).split(": ", 1)[1]) from None


def _option_check(constraint, template="must be {expected}, got {value}"):
    """A click callback checking an option's value (None: not given) against ``constraint``;
    a bad value is a usage error worded by ``template``."""

    def callback(ctx, param, value):
        if value is not None and not constraint.holds(value):
            raise click.BadParameter(template.format(expected=constraint.expected, value=value))
        return value

    return callback


def _positive(kind):
    return _option_check(Interval(kind, 0, None, closed="neither"))


_fraction = _option_check(
    Interval(
        float,
        0,
        1,
        closed="left",
        expected="a fraction from 0 (no validation set) up to, not including, 1",
    ),
    "must be {expected}; got {value}",
)
_non_negative = _option_check(Interval(float, 0, None, expected="0 or more"))
_momentum = _option_check(
    Interval(float, 0, 1, closed="left", expected="from 0 up to, not including, 1"),
    "must be {expected}; got {value}",
)


def data_options(target_help: str, target: bool = True):
    """--dataset / --data / --target / --delimiter / --drop-missing / --id-column."""

    def decorate(f):
        opts = [
            click.option(
                "--dataset", metavar="NAME", help="A built-in dataset (see 'chainrule datasets')."
            ),
            click.option(
                "--data",
                "data_file",
                metavar="FILE",
                help="Your data: CSV (header row), TSV, NPZ (X, y) or Parquet.",
            ),
        ]
        if target:
            opts.append(click.option("--target", metavar="COLUMN", help=target_help))
        opts += [
            click.option(
                "--delimiter",
                metavar="CHAR",
                help="Column separator of a text file (default: detected).",
            ),
            click.option(
                "--drop-missing",
                is_flag=True,
                help="Drop rows with missing values instead of stopping.",
            ),
            click.option(
                "--id-column",
                "id_columns",
                multiple=True,
                metavar="COLUMN",
                help="A column that identifies rows (not a feature); repeatable.",
            ),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorate


# ---------------------------------------------------------------------------------------------
# Reading data and models
# ---------------------------------------------------------------------------------------------


def _source_check(dataset, data_file):
    if dataset and data_file:
        raise click.UsageError("give either --dataset NAME or --data FILE, not both")
    if not dataset and not data_file:
        raise click.UsageError(
            "give the data: --dataset NAME (see 'chainrule datasets') or --data FILE"
        )


def _train_data(
    dataset, data_file, target, delimiter, drop_missing, id_columns, samples, noise
) -> Data:
    from .tabular import load_builtin, read_data

    _source_check(dataset, data_file)
    if dataset and (target or id_columns or delimiter):
        raise click.UsageError(
            "--target, --id-column and --delimiter go with --data FILE, not --dataset"
        )
    if data_file and (samples or noise is not None):
        raise click.UsageError("--samples and --noise go with a generated --dataset")
    if data_file:
        return read_data(
            data_file,
            target=target,
            delimiter=delimiter,
            drop_missing=drop_missing,
            id_columns=id_columns,
        )
    return load_builtin(dataset, samples=samples, noise=noise)


def _model_and_data(
    model_file, dataset, data_file, target, delimiter, drop_missing, id_columns, need_target=True
):
    """The estimator of a model file and the rows to use it on."""
    from .sklearn import load, table_columns
    from .tabular import data_for_model

    est = load(model_file)
    data = data_for_model(
        table_columns(est),
        dataset,
        data_file,
        target,
        delimiter,
        drop_missing,
        id_columns,
        need_target=need_target,
    )
    return est, data


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
    return (
        registry.facts_of(child["type"]).role == "linear"
        and "in_features" in cfg
        and "out_features" in cfg
    )


def _architecture_text(spec: dict) -> str:
    parts: list[str] = []
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

    def __init__(self, out: Console, epochs: int, quiet: bool, header=None):
        self.out, self.epochs, self.quiet, self.header = out, epochs, quiet, header
        self.live = out.is_terminal and not quiet
        self.every = max(1, epochs // 10)
        self.progress = None

    # the Callback protocol of chainrule.train (duck-typed so the class needs no import)
    def on_train_begin(self, state):
        if self.header is not None:
            self.header(state)
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("epoch"),
                MofNCompleteColumn(),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[logs]}"),
                console=self.out,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.epochs, logs="")

    def on_epoch_begin(self, state): ...

    def on_batch_end(self, state): ...

    def on_epoch_end(self, state):
        text = _logs_text(state.logs)
        if self.progress is not None:
            self.progress.update(self.task, advance=1, logs=text)
        elif not self.quiet and (
            state.epoch % self.every == 0
            or state.epoch == self.epochs
            or state.stop_training
            or state.epoch == 1
        ):
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
        t.add_row(
            d["name"],
            str(d["n_samples"]),
            str(d["n_features"]),
            str(d["n_classes"]) if d["n_classes"] else "-",
            text,
        )
    console.print(t)


# --- train ------------------------------------------------------------------------------------


@cli.command()
@data_options("The column to predict (required with --data, except for NPZ files with y).")
@click.option(
    "--samples",
    type=int,
    callback=_positive(int),
    metavar="N",
    help="Rows of a generated dataset (circle, xor, gauss, spiral, moons).",
)
@click.option(
    "--noise",
    type=float,
    callback=_non_negative,
    help="Noise of a generated dataset (Playground's 0..0.5).",
)
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    help="Override the task inferred from the target column.",
)
@click.option(
    "--hidden",
    default=DEFAULT_HIDDEN,
    show_default=True,
    callback=_hidden_callback,
    help="Hidden layer sizes, comma separated ('none': a linear model).",
)
@click.option(
    "--activation",
    type=click.Choice(list(ACTIVATIONS)),
    default=DEFAULT_ACTIVATION,
    show_default=True,
)
@click.option(
    "--loss",
    type=click.Choice(list(LOSSES)),
    help="Default: cross_entropy (classification) or mse (regression).",
)
@click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)), default="adam", show_default=True)
@click.option(
    "--lr",
    type=float,
    callback=_positive(float),
    help="Learning rate. Default: sgd 0.1, adam/adamw 0.01, rmsprop 0.001, adagrad 0.1.",
)
@click.option(
    "--momentum",
    type=float,
    default=0.9,
    show_default=True,
    callback=_momentum,
    help="Momentum of sgd.",
)
@click.option("--weight-decay", type=float, default=0.0, show_default=True, callback=_non_negative)
@click.option(
    "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, show_default=True, callback=_positive(int)
)
@click.option(
    "--epochs", type=int, default=DEFAULT_EPOCHS, show_default=True, callback=_positive(int)
)
@click.option(
    "--validation",
    type=float,
    default=DEFAULT_VALIDATION,
    show_default=True,
    callback=_fraction,
    help="Fraction of the rows held out to validate (0: none).",
)
@click.option(
    "--patience",
    type=int,
    callback=_positive(int),
    metavar="N",
    help="Stop early when the validation loss has not improved for N epochs "
    "(the best weights are kept).",
)
@click.option(
    "--conv",
    "conv",
    metavar="CHANNELS",
    help="Convolutional layers first, their channels comma separated (25,25,25: the "
    "MNIST-1D paper's CNN; --hidden then defaults to none). digits are 1x8x8 images, "
    "mnist1d and other rows 1xN signals.",
)
@click.option(
    "--conv-kernel",
    metavar="K[,K...]",
    help="Kernel size of the conv layers, or one per layer. Default: 5, then 3.",
)
@click.option(
    "--conv-stride",
    type=int,
    default=2,
    show_default=True,
    callback=_positive(int),
    help="Stride of the conv layers (padding 1).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the weights, the split and the shuffling: the same seed, the same model.",
)
@click.option(
    "--out",
    default="model.safetensors",
    show_default=True,
    metavar="FILE",
    help="Where to save the model.",
)
@click.option("--report", metavar="FILE", help="Also write an HTML report (needs matplotlib).")
@click.option(
    "--checkpoint",
    metavar="FILE",
    help="Write a checkpoint after every epoch (model, optimizer, early stopping, "
    "random state, history, options), to go on with --resume.",
)
@click.option(
    "--resume",
    metavar="FILE",
    help="Go on from a checkpoint: data and options come from it (options given "
    "again must agree; --epochs may be larger). Ends with the same weights as "
    "an uninterrupted run.",
)
@click.option(
    "--no-compile",
    is_flag=True,
    help="Run every training step eagerly instead of tracing it once and replaying it "
    "(the same numbers either way; for debugging).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print one line at the end, nothing else.")
@debug_option
def train(
    dataset,
    data_file,
    target,
    delimiter,
    drop_missing,
    id_columns,
    samples,
    noise,
    task,
    hidden,
    activation,
    loss,
    optimizer,
    lr,
    momentum,
    weight_decay,
    batch_size,
    epochs,
    validation,
    patience,
    conv,
    conv_kernel,
    conv_stride,
    seed,
    out,
    report,
    checkpoint,
    resume,
    no_compile,
    quiet,
):
    """Train a network on a built-in dataset or your file and save it.

    The task is inferred from the target (text or a few whole-number labels: classification;
    other numbers: regression); features are standardized, with the statistics kept in the
    model file.
    """
    given = dict(locals())  # the options as given, kept in the checkpoint
    if resume and not _state.get("resuming"):
        return _resume_train(resume)
    resume = _state.pop("resuming", None)
    _check_train_outputs(data_file, resume, out, report, checkpoint)
    options = _saved_options(given)
    data = _train_data(
        dataset, data_file, target, delimiter, drop_missing, id_columns, samples, noise
    )
    if dataset:
        source = {"dataset": dataset, "samples": samples, "noise": noise}
    else:
        source = {"data": os.path.basename(data_file)}
    conv_params, hidden = _conv_and_hidden(conv, conv_kernel, conv_stride, dataset, hidden)
    from .sklearn import table_estimator

    est = table_estimator(
        data,
        task,
        hidden=tuple(hidden),
        activation=activation,
        loss=loss,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        batch_size=batch_size,
        epochs=epochs,
        validation=validation,
        patience=patience,
        random_state=seed,
        compile=not no_compile,
        **conv_params,
    )
    header = None if quiet else (lambda state: _print_train_header(data, est, state))
    fit_options = _checkpoint_options(checkpoint, resume, out, options)
    _fit_saving_checkpoints(est, data, source, id_columns, header, quiet, epochs, fit_options)
    est.save(out)
    _print_train_result(est, out, quiet, epochs)
    if report:
        _write_train_report(report, est, data, out, quiet)


_SAVED_OPTIONS = (
    "dataset",
    "data_file",
    "target",
    "delimiter",
    "drop_missing",
    "id_columns",
    "samples",
    "noise",
    "task",
    "hidden",
    "activation",
    "loss",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "epochs",
    "validation",
    "patience",
    "seed",
    "conv",
    "conv_kernel",
    "conv_stride",
    "out",
    "report",
)


def _conv_and_hidden(conv, conv_kernel, conv_stride, dataset, hidden):
    """(the estimator's conv settings, the hidden sizes): with --conv, --hidden defaults to
    none."""
    if not conv:
        return {}, hidden
    params = _conv_option(conv, conv_kernel, conv_stride, dataset)
    source = click.get_current_context().get_parameter_source("hidden")
    return params, [] if source == click.core.ParameterSource.DEFAULT else hidden


def _saved_options(given: dict) -> dict:
    """train's options as a checkpoint keeps them (paths made absolute), for --resume."""
    options = {name: given[name] for name in _SAVED_OPTIONS}
    data_file, report = given["data_file"], given["report"]
    options["data_file"] = data_file and os.path.abspath(data_file)
    options["id_columns"] = list(given["id_columns"])
    options["out"] = os.path.abspath(given["out"])
    options["report"] = report and os.path.abspath(report)
    return options


def _checkpoint_options(checkpoint, resume, out, options) -> dict:
    """fit's checkpoint settings for train: a resumed run goes on writing into the checkpoint
    it resumed from; without --checkpoint, Ctrl-C saves the last epoch beside --out."""
    if resume and not checkpoint:
        checkpoint = resume
    interrupt_at = None if checkpoint else os.path.splitext(out)[0] + ".checkpoint.safetensors"
    return {
        "checkpoint": checkpoint,
        "resume": resume,
        "interrupt_checkpoint": interrupt_at,
        "settings": {"options": options},
    }


def _check_train_outputs(data_file, resume, out, report, checkpoint):
    """No output of train may be one of its inputs (the checkpoint may be the one resumed)."""
    from ._files import same_file

    check_outputs(
        {"--data": data_file, "--resume": resume},
        {
            "--out": out,
            "--report": report,
            "--checkpoint": None
            if checkpoint and resume and same_file(checkpoint, resume)
            else checkpoint,
        },
    )


def _fit_saving_checkpoints(est, data, source, id_columns, header, quiet, epochs, fit_options):
    """fit_table with the progress lines; a divergence says nothing was saved, and Ctrl-C
    says which epoch's state is in which checkpoint and how to go on."""
    from .sklearn import fit_table

    progress = ProgressCallback(console, epochs, quiet, header)
    try:
        fit_table(
            est,
            data,
            source=source,
            id_columns=id_columns,
            callbacks=[progress],
            track_grad_norms=True,
            fit_options=fit_options,
        )
    except TrainingError as err:
        raise TrainingError(f"{err} (nothing was saved)") from None
    except KeyboardInterrupt as stop:
        saved = getattr(stop, "checkpoint", None)
        if saved is None:
            raise
        raise KeyboardInterrupt(
            f"after epoch {stop.epoch} of {epochs}; that epoch's state is "
            f"saved in {saved}; go on with: chainrule train --resume "
            f"{shlex.quote(saved)}"
        ) from None
    finally:
        progress.close()


def _print_train_result(est, out, quiet, epochs):
    """The final metrics (one line with --quiet) and where the model was saved."""
    final_metrics = est.metrics_
    if quiet:
        key = "accuracy" if est._task == "classification" else "r2"
        parts = [f"train {key} {_fmt(final_metrics['train'][key], key)}"]
        if "validation" in final_metrics:
            parts.append(f"validation {key} {_fmt(final_metrics['validation'][key], key)}")
        console.print(f"saved {out} ({', '.join(parts)})")
    else:
        _print_final(final_metrics, est.history_, epochs)
        console.print(f"saved {out}")


def _write_train_report(report, est, data, out, quiet):
    """train --report: the HTML report of the model just saved."""
    from .io import read_info
    from .sklearn import table_targets

    write_report = _optional("chainrule.report", "write_report", "the HTML report")
    path = write_report(
        report,
        est.model_,
        read_info(out),
        data.X,
        table_targets(est, data),
        history=est.history_.to_dict(),
    )
    if not quiet:
        console.print(f"wrote {path}")


def _resume_train(path):
    """``train --resume``: the checkpoint's options, those given again checked against them."""
    from click.core import ParameterSource

    from .checkpoint import resume_options

    ctx = click.get_current_context()
    given = {
        k: v
        for k, v in ctx.params.items()
        if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE
    }
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


def _conv_option(conv, conv_kernel, conv_stride, dataset) -> dict:
    """The estimator's conv settings from --conv/--conv-kernel/--conv-stride; a built-in
    dataset's rows are its images/signals (digits 1x8x8), a file's rows 1xN signals."""
    from .data.datasets import SAMPLE_SHAPES

    def sizes(option, text):
        parts = [p.strip() for p in str(text).split(",") if p.strip()]
        if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise click.BadParameter(
                f"'{text}' is not a list of positive whole numbers such as 25,25,25",
                param_hint=option,
            )
        return tuple(int(p) for p in parts)

    channels = sizes("--conv", conv)
    kernel = sizes("--conv-kernel", conv_kernel) if conv_kernel else None
    if kernel and len(kernel) not in (1, len(channels)):
        raise click.BadParameter(
            f"'{conv_kernel}' gives {len(kernel)} sizes for "
            f"{len(channels)} conv layers; give one, or one per layer",
            param_hint="--conv-kernel",
        )
    key = (dataset or "").strip().lower().replace("_", "-")
    shape = SAMPLE_SHAPES.get(key)
    return {
        "conv": channels,
        "conv_kernel": kernel,
        "conv_stride": conv_stride,
        "input_shape": None if shape is None else tuple(shape),
    }


def _print_train_header(data, est, state):
    """What is about to be trained (printed when training begins, from the estimator)."""
    task = est._task
    hidden = est._hidden_sizes()
    n_params = int(sum(np.asarray(p.data).size for p in state.model.parameters()))
    n_out = [m for m in state.model if registry.facts_of(m).role == "linear"][-1].out_features
    what = f"{data.n} rows, {len(data.feature_names)} features"
    if task == "classification":
        names = list(data.label_names) if data.y_codes is not None else est._label_names()
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        what += f", {len(names)} classes: {shown}"
    else:
        what += f", regression on '{data.target}'"
    if data.dropped:
        what += f"; dropped {data.dropped} rows with missing values"
    console.print(f"data: {data.source} ({what})")
    widths = (
        [str(len(data.feature_names))]
        + ([f"conv {','.join(map(str, est.conv))}"] if est.conv else [])
        + [f"{h} {est.activation}" for h in hidden]
        + [str(n_out)]
    )
    lr = state.optimizer.param_groups[0]["lr"]
    console.print(
        f"model: {' -> '.join(widths)} ({n_params} parameters), loss {est.loss_}, "
        f"optimizer {est.optimizer} (lr {lr:g})"
    )
    n_train, n_val = est.n_train_, est.n_validation_
    split = f"{n_train} rows" + (f", validating on {n_val}" if n_val else ", no validation set")
    console.print(
        f"training on {split}: {state.epochs} epochs, batch size {est.batch_size}, "
        f"seed {est.random_state}"
    )


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


@cli.command()
@click.argument("model_file", metavar="MODEL")
@data_options("The target column (default: the model's target).")
@debug_option
def evaluate(model_file, dataset, data_file, target, delimiter, drop_missing, id_columns):
    """Metrics of a saved model on a dataset or file."""
    from .sklearn import evaluate_table

    _source_check(dataset, data_file)
    est, data = _model_and_data(
        model_file, dataset, data_file, target, delimiter, drop_missing, id_columns
    )
    m = evaluate_table(est, data)
    console.print(
        f"model {model_file} on {data.source} ({data.n} rows"
        + (f"; dropped {data.dropped} with missing values" if data.dropped else "")
        + ")"
    )
    if "accuracy" not in m:
        t = _table("metric", "value")
        for key in ("mse", "rmse", "mae", "r2"):
            t.add_row(key, _fmt(m[key]))
        t.add_row("rows", str(m["rows"]))
        console.print(t)
        return
    names = [str(c) for c in est.classes_]
    t = _table("metric", "value")
    t.add_row("accuracy", _fmt(m["accuracy"], "accuracy"))
    if m["loss"] is not None:
        t.add_row(f"loss ({est.loss_})", _fmt(m["loss"]))
    t.add_row("rows", str(m["rows"]))
    console.print(t)
    t = _table("class", "precision", "recall", "f1", "support", title="per class")
    for i, name in enumerate(names):
        t.add_row(
            name,
            f"{m['precision'][i]:.3f}",
            f"{m['recall'][i]:.3f}",
            f"{m['f1'][i]:.3f}",
            str(int(m["support"][i])),
        )
    console.print(t)
    t = _table("true \\ predicted", *names, title="confusion matrix (rows: true class)")
    for i, name in enumerate(names):
        t.add_row(name, *(str(int(v)) for v in m["confusion"][i]))
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
        writer.writerows(
            zip(*([fix(_cell(v)) for v in col] for col in columns.values()), strict=False)
        )
        sys.stdout.flush()
        return
    if path.lower().endswith((".parquet", ".pq")):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(
                f"writing {path} needs pyarrow, which is not installed: "
                "pip install pyarrow (or write a .csv file)"
            ) from None
        from ._files import write_atomic

        arrays = {
            k: (np.asarray(v).tolist() if np.asarray(v).dtype == object else v)
            for k, v in columns.items()
        }
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table(arrays), sink)
        write_atomic(path, sink.getvalue().to_pybytes(), DataError)
        return
    from .data import write_table

    write_table(path, columns, safe=safe)


@cli.command()
@click.argument("model_file", metavar="MODEL")
@click.option(
    "--data",
    "data_file",
    required=True,
    metavar="FILE",
    help="Rows to predict: the model's feature columns (CSV, TSV, NPZ or Parquet).",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    help="Write the predictions here (CSV; TSV for .tsv; Parquet for .parquet). "
    "Default: print them.",
)
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@click.option(
    "--raw-cells",
    is_flag=True,
    help="Write text cells exactly as they are, even those starting with = + - @ "
    "(by default these get a leading ' so that a spreadsheet shows them as text "
    "instead of running them as formulas).",
)
@click.option("--delimiter", metavar="CHAR")
@click.option(
    "--drop-missing",
    is_flag=True,
    help="Skip rows with missing values (the output then has a 'row' column).",
)
@click.option(
    "--id-column",
    "id_columns",
    multiple=True,
    metavar="COLUMN",
    help="A column copied to the output to identify rows; repeatable.",
)
@debug_option
def predict(model_file, data_file, output, proba, raw_cells, delimiter, drop_missing, id_columns):
    """Predict with a saved model: labels in their original names (or values, for regression)."""
    from .sklearn import NetClassifier

    check_outputs({"MODEL": model_file, "--data": data_file}, {"--output": output})
    est, data = _model_and_data(
        model_file, None, data_file, None, delimiter, drop_missing, id_columns, need_target=False
    )
    columns = {}
    if drop_missing:
        columns["row"] = data.rows
    columns.update(data.ids)
    if isinstance(est, NetClassifier):
        if proba:
            if not hasattr(est, "predict_proba"):
                raise ConfigError(
                    f"--proba needs a model trained with cross_entropy, "
                    f"bce_with_logits or bce; this one was trained with "
                    f"{est.loss_}, whose outputs are scores, not probabilities"
                )
            p = est.predict_proba(data.X)  # checked before anything is written
        columns["prediction"] = est.predict(data.X)
        if proba:
            for i, name in enumerate(est._label_names()):
                columns[f"p_{name}"] = np.round(p[:, i], 6)
    else:
        if proba:
            raise ConfigError("--proba is for classification models; this one does regression")
        columns["prediction"] = est.predict(data.X).astype(np.float32)
    write_columns(output, columns, safe=not raw_cells)
    if output:
        console.print(f"wrote {len(data.X)} predictions to {output}")


# --- tune (GridSearchCV, locally or on a Dask cluster) ----------------------------------------

#: tune's grid options: each takes one or more values (--hidden 8 16,16 32,32)
_GRID_OPTIONS = (
    "--hidden",
    "--activation",
    "--lr",
    "--optimizer",
    "--batch-size",
    "--epochs",
    "--weight-decay",
)


def _expand_grid_args(args: list) -> list:
    """``tune --hidden 8 16,16`` -> ``tune --hidden 8 --hidden 16,16`` (click options take one
    value each; tune's grid options take several)."""
    if "tune" not in args:
        return args
    out, i = [], 0
    start = args.index("tune")
    out = args[: start + 1]
    i = start + 1
    while i < len(args):
        a = args[i]
        out.append(a)
        i += 1
        if a in _GRID_OPTIONS:
            taken = 0
            while i < len(args) and (not args[i].startswith("-") or taken == 0):
                if taken:
                    out.append(a)
                out.append(args[i])
                taken += 1
                i += 1
    return out


def _grid_values(name, values, convert):
    out = []
    for v in values:
        try:
            out.append(convert(v))
        except (ValueError, ConfigError) as err:
            raise click.BadParameter(
                f"'{v}': {str(err).split(': ', 1)[-1]}", param_hint=f"'--{name}'"
            ) from None
    return list(dict.fromkeys(out))


def _grid_check(convert, constraint, template="must be {expected}"):
    """A converter for one value of a tune grid option: ``convert(text)``, then ``constraint``
    (a ValueError worded by ``template`` when it does not hold)."""

    def check(text):
        value = convert(text)
        if not constraint.holds(value):
            raise ValueError(template.format(expected=constraint.expected))
        return value

    return check


def _positive_number(kind):
    return _grid_check(kind, Interval(kind, 0, None, closed="neither"))


_non_negative_number = _grid_check(float, Interval(float, 0, None, expected="0 or more"))


def _setting_text(name, value) -> str:
    """A grid setting as the options spell it: hidden 8,8 (or none), 0.003, relu."""
    if name == "hidden":
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _choice(options):
    return _grid_check(str, Options(options), "expected {expected}")


def _tune_grid(hidden, activation, lr, optimizer, batch_size, epochs, weight_decay) -> dict:
    """tune's grid: each option given, its values checked and converted (duplicates dropped)."""
    grid = {}
    for name, values, convert in (
        ("hidden", hidden, lambda v: tuple(parse_hidden(v))),
        ("activation", activation, _choice(list(ACTIVATIONS))),
        ("lr", lr, _positive_number(float)),
        ("optimizer", optimizer, _choice(list(OPTIMIZERS))),
        ("batch_size", batch_size, _positive_number(int)),
        ("epochs", epochs, _positive_number(int)),
        ("weight_decay", weight_decay, _non_negative_number),
    ):
        if values:
            grid[name] = _grid_values(name.replace("_", "-"), values, convert)
    if not grid:
        raise click.UsageError("give the settings to try, such as --hidden 8 16,16 --lr 0.003 0.01")
    return grid


def _print_search(search, grid, score_name, cv, seconds):
    """The candidates ranked by their mean cross-validated score, then the best settings."""
    res = search.cv_results_
    n = len(res["params"])
    t = _table(
        "rank",
        *grid,
        f"mean {score_name}",
        "± std",
        "fit s",
        left=tuple(grid),
        title=f"{n} candidates, {cv}-fold cross-validation",
    )
    for i in np.argsort(res["rank_test_score"], kind="stable"):
        p = res["params"][i]
        t.add_row(
            str(res["rank_test_score"][i]),
            *(_setting_text(k, p[k]) for k in grid),
            f"{res['mean_test_score'][i]:.4f}",
            f"{res['std_test_score'][i]:.4f}",
            f"{res['mean_fit_time'][i]:.2f}",
        )
    console.print(t)
    best = search.best_params_
    shown = ", ".join(f"{k}={_setting_text(k, v)}" for k, v in best.items())
    console.print(
        f"best: {shown} (mean {score_name} {search.best_score_:.4f}); sweep {seconds:.1f} s"
    )


@cli.command()
@data_options("The column to predict (required with --data, except for NPZ files with y).")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    help="Override the task inferred from the target column.",
)
@click.option(
    "--hidden",
    multiple=True,
    metavar="SIZES...",
    help="Hidden layer sizes to try, such as: 8 16,16 32,32 ('none': linear).",
)
@click.option(
    "--activation",
    multiple=True,
    metavar="NAMES...",
    help=f"Activations to try ({', '.join(ACTIVATIONS)}).",
)
@click.option("--lr", multiple=True, metavar="RATES...", help="Learning rates to try.")
@click.option(
    "--optimizer",
    multiple=True,
    metavar="NAMES...",
    help=f"Optimizers to try ({', '.join(OPTIMIZERS)}).",
)
@click.option("--batch-size", multiple=True, metavar="N...", help="Batch sizes to try.")
@click.option(
    "--epochs", multiple=True, metavar="N...", help=f"Epochs to try (default {DEFAULT_EPOCHS})."
)
@click.option("--weight-decay", multiple=True, metavar="X...", help="Weight decays to try.")
@click.option(
    "--loss",
    type=click.Choice(list(LOSSES)),
    help="Default: cross_entropy (classification) or mse (regression).",
)
@click.option(
    "--validation",
    type=float,
    default=0.0,
    show_default=True,
    callback=_fraction,
    help="Fraction of each training fold held out to stop early (with --patience).",
)
@click.option(
    "--patience",
    type=int,
    callback=_positive(int),
    metavar="N",
    help="Stop early when the held-out loss has not improved for N epochs.",
)
@click.option(
    "--cv",
    type=click.IntRange(min=2),
    default=3,
    show_default=True,
    help="Cross-validation folds (stratified for classification).",
)
@click.option(
    "--scoring",
    metavar="NAME",
    help="A scikit-learn scorer (default: accuracy, or r2 for regression).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run on an existing Dask cluster (tcp://host:8786) instead of locally.",
)
@click.option(
    "--jobs",
    "n_jobs",
    type=int,
    default=-1,
    show_default=True,
    help="Local worker processes (-1: one per core).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    default="best.safetensors",
    show_default=True,
    metavar="FILE",
    help="Where to save the best model (trained again on all the rows).",
)
@debug_option
def tune(
    dataset,
    data_file,
    target,
    delimiter,
    drop_missing,
    id_columns,
    task,
    hidden,
    activation,
    lr,
    optimizer,
    batch_size,
    epochs,
    weight_decay,
    loss,
    validation,
    patience,
    cv,
    scoring,
    scheduler,
    n_jobs,
    seed,
    out,
):
    """Try every combination of the given settings by cross-validation (GridSearchCV), print
    them ranked, and save the best model.

    \b
    chainrule tune --dataset digits --hidden 32 64 32,32 --lr 0.003 0.01 --activation relu tanh
    chainrule tune --data houses.csv --target price --hidden 8 16,16 --scoring r2
    chainrule tune --dataset digits --hidden 32 64 --scheduler tcp://scheduler-host:8786
    """
    import time

    from .sklearn import fit_table, grid_search, search_targets, table_estimator

    data = _train_data(dataset, data_file, target, delimiter, drop_missing, id_columns, None, None)
    grid = _tune_grid(hidden, activation, lr, optimizer, batch_size, epochs, weight_decay)
    base = {"loss": loss, "validation": validation, "patience": patience, "random_state": seed}
    est = table_estimator(data, task, **base)
    y = search_targets(est, data)
    n = int(np.prod([len(v) for v in grid.values()]))
    where = f"the Dask cluster at {scheduler}" if scheduler else "local worker processes"
    console.print(
        f"data: {data.source} ({data.n} rows, {len(data.feature_names)} features, {est._task})"
    )
    console.print(f"tuning {n} candidates x {cv} folds = {n * cv} fits on {where}")
    start = time.perf_counter()
    search = grid_search(
        est,
        data.X,
        y,
        grid,
        cv=cv,
        scoring=scoring,
        scheduler=scheduler,
        n_jobs=n_jobs,
        refit=False,
    )
    seconds = time.perf_counter() - start
    score_name = scoring or ("accuracy" if est._task == "classification" else "r2")
    _print_search(search, grid, score_name, cv, seconds)
    best = search.best_params_
    final = table_estimator(data, task, **base, **best)
    source = {"dataset": dataset} if dataset else {"data": os.path.basename(data_file)}
    fit_table(final, data, source=source, id_columns=id_columns, track_grad_norms=True)
    final.save(out)
    console.print(f"saved {out} (the best settings, trained on all {data.n} rows)")


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
    t = _table("#", "layer", "output", "parameters", title=f"model {model_file}", left=("layer",))
    width = None
    total = 0
    for i, child in enumerate(children):
        cfg = child.get("config", {})
        if _is_linear(child):
            width = cfg["out_features"]
            desc = f"{child['type']}({cfg['in_features']} -> {cfg['out_features']})"
        else:
            desc = child["type"] + (
                "(" + ", ".join(f"{k}={v}" for k, v in cfg.items()) + ")" if cfg else ""
            )
        n = sum(
            int(np.asarray(p.data).size)
            for name, p in params.items()
            if name.split(".")[0] == str(i)
        )
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
        t.add_row(
            "standardized",
            "features (mean 0, std 1)" + (" and target" if "target_standardizer" in pre else ""),
        )
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
            label = "loss (standardized target)" if key == "loss" and "r2" in keys else key
            t.add_row(label, *(_fmt(metrics[s].get(key), key) for s in splits))
        console.print(t)


# --- explain and report (chainrule.explain, chainrule.report) ------------------------------


def _optional(module: str, name: str, what: str):
    """A function of an optional part of chainrule, or a clear error when it is missing."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (err.name == module or module.startswith(err.name + ".")):
            raise ConfigError(
                f"{what} is not available yet in this version of chainrule ({module} is missing)"
            ) from None
        extra = {"matplotlib": "viz"}.get((err.name or "").split(".")[0])
        hint = f"pip install 'chainrule[{extra}]'" if extra else f"pip install {err.name}"
        raise ConfigError(
            f"{what} needs the package {err.name}, which is not installed: {hint}"
        ) from None
    fn = getattr(mod, name, None)
    if fn is None:
        raise ConfigError(
            f"{what} is not available yet in this version of chainrule ({module}.{name} is missing)"
        )
    return fn


def _row_index(data: Data, row: int) -> int:
    hits = np.flatnonzero(np.asarray(data.rows) == row)
    if not len(hits):
        last = int(data.rows[-1]) if len(data.rows) else 0
        raise ConfigError(
            f"--row {row}: {data.source} has no data row {row} (rows are "
            f"1 to {last}; row 1 is the first row after the header)"
        )
    return int(hits[0])


@cli.command()
@click.argument("model_file", metavar="MODEL", required=False)
@data_options("The target column (default: the model's target).")
@click.option(
    "--row",
    type=int,
    default=1,
    show_default=True,
    callback=_positive(int),
    help="Which data row to explain (1 = the first row after the header).",
)
@click.option(
    "--demo",
    type=click.Choice(["llc", "composition"]),
    help="The course notes' examples instead of a model.",
)
@debug_option
def explain(model_file, dataset, data_file, target, delimiter, drop_missing, id_columns, row, demo):
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
    from .sklearn import NetRegressor, network_data, table_columns, table_targets
    from .tabular import make_loss

    est, data = _model_and_data(
        model_file, dataset, data_file, target, delimiter, drop_missing, id_columns
    )
    i = _row_index(data, row)
    x, t = network_data(est, data.X[i : i + 1], table_targets(est, data)[i : i + 1])
    regression = isinstance(est, NetRegressor)
    shown = ", ".join(
        f"{n}={v:g}" for n, v in zip(table_columns(est)["features"], data.X[i], strict=False)
    )
    console.print(
        f"row {row} of {data.source}: {shown}; {table_columns(est)['target']} = {data.y_raw[i]}"
    )
    console.print(
        "(the network sees the features standardized with the model's statistics"
        + (", and the target standardized too" if regression else "")
        + ")"
    )
    print(explain_fn(est.model_, x, t, make_loss(est.loss_)))


@cli.command()
@click.argument("model_file", metavar="MODEL")
@data_options("The target column (default: the model's target).")
@click.option("--out", default="report.html", show_default=True, metavar="FILE")
@click.option(
    "--row",
    type=int,
    default=1,
    show_default=True,
    callback=_positive(int),
    help="The row whose chain-rule terms the report shows.",
)
@debug_option
def report(model_file, dataset, data_file, target, delimiter, drop_missing, id_columns, out, row):
    """An HTML report of a saved model: training curves, metrics, one row explained."""
    from .io import read_info
    from .sklearn import table_targets

    _source_check(dataset, data_file)
    check_outputs({"MODEL": model_file, "--data": data_file}, {"--out": out})
    write_report = _optional("chainrule.report", "write_report", "the HTML report")
    est, data = _model_and_data(
        model_file, dataset, data_file, target, delimiter, drop_missing, id_columns
    )
    info = read_info(model_file)
    history = (info.get("training") or {}).get("history")
    path = write_report(
        out,
        est.model_,
        info,
        data.X,
        table_targets(est, data),
        history=history,
        sample_index=_row_index(data, row),
    )
    console.print(f"wrote {path}")


# --- playground -------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; the default keeps the page on this machine.",
)
@click.option("--no-browser", is_flag=True, help="Do not open the page in a web browser.")
@click.option(
    "--dataset",
    type=click.Choice(["circle", "xor", "gauss", "spiral", "plane", "multigauss"]),
    default="circle",
    show_default=True,
    help="The data set to start with.",
)
@debug_option
def playground(port, host, no_browser, dataset):
    """Train a network live in the browser and watch every chain-rule term (needs
    chainrule[playground])."""
    run = _optional("chainrule.playground", "run", "the playground")
    run(host=host, port=port, open_browser=not no_browser, dataset=dataset)


# --- export (chainrule.onnx) ------------------------------------------------------------------


@cli.command("export")
@click.argument("model_file", metavar="MODEL")
@click.option(
    "--onnx",
    "onnx_out",
    required=True,
    metavar="OUT.onnx",
    help="Write the model as ONNX here: raw features X in; label and probabilities "
    "(classification) or prediction (regression) out.",
)
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX operator set.")
@debug_option
def export_command(model_file, onnx_out, opset):
    """Export a model file (with its preprocessing) to another format: ONNX."""
    from .onnx import export

    check_outputs({"MODEL": model_file}, {"--onnx": onnx_out})  # also through links
    path = export(model_file, onnx_out, opset=opset)
    console.print(f"wrote {path} (ONNX opset {opset}: input X, {os.path.getsize(path)} bytes)")


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def main(argv=None) -> int:
    """Run the command; return the exit status (0 ok, 1 error, 2 bad usage, 130 interrupted)."""
    _state["debug"] = False
    # the command checks a file's columns against the model's features by name itself, then
    # hands the estimator the numbers
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    args = _expand_grid_args(list(sys.argv[1:] if argv is None else argv))
    for stream in (sys.stdout, sys.stderr):  # ∂, σ, → on a terminal that cannot show them
        reconfigure = getattr(stream, "reconfigure", None)  # a TextIOWrapper's
        if reconfigure is not None:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                reconfigure(errors="backslashreplace")
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
        detail = (
            f" {_one_line(cause)}" if isinstance(cause, KeyboardInterrupt) and str(cause) else ""
        )
        click.echo(f"error: interrupted{detail}", err=True)
        return 130
    except BrokenPipeError:
        # the reader went away (chainrule predict ... | head): not an error; stdout stays open
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout until exit
        return 0
    except ChainruleError as err:
        if _state["debug"]:
            raise
        click.echo(f"error: {_one_line(err)}", err=True)
        return 1
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if _state["debug"]:
            raise
        if top in _EXTRAS:
            click.echo(
                f"error: this needs the package {top}, which is not installed: "
                f'pip install "chainrule[{_EXTRAS[top]}]"',
                err=True,
            )
        else:
            click.echo(
                f"error: internal error (ModuleNotFoundError: {_one_line(err)}); run "
                "again with --debug for the traceback and please report it",
                err=True,
            )
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
        click.echo(
            f"error: internal error ({type(err).__name__}: {_one_line(err)}); run again "
            "with --debug for the traceback and please report it",
            err=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
