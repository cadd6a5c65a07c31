"""scikit-learn estimators: one model object for tables, shared by Python, the command and sweeps.

``NetClassifier`` and ``NetRegressor`` are multi-layer perceptrons built from chainrule's units
and trained with :func:`chainrule.fit`, wrapped in scikit-learn's conventions so that they work
in ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. They carry everything a table needs:
the label encoding (``classes_``), the standardization of the features (and of a regression
target), the network, the loss targets, and the way outputs are read back as labels,
probabilities or values in the target's own units.

    >>> from chainrule.sklearn import NetClassifier, load
    >>> clf = NetClassifier(hidden=(16, 16), epochs=200, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]); clf.predict_proba(X[:3])
    >>> clf.save("model.safetensors")          # the same file `chainrule train` writes
    >>> clf = load("model.safetensors")        # also any file `chainrule train` wrote

Needs scikit-learn (``pip install "chainrule[sklearn]"``) and, to save and load, safetensors.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from typing import NoReturn

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validate import NONE, AnyOf, InstanceOf, Interval, Options, check_params
from .callbacks import ProgressBar
from .errors import ConfigError, DataError, ModelFileError
from .registry import facts_of
from .tabular import (
    ACTIVATIONS,
    DEFAULT_LOSS,
    LOSSES,
    OPTIMIZERS,
    build_model,
    loss_targets,
    losses_for,
    make_loss,
    make_optimizer,
    output_classes,
    output_decision,
    output_probabilities,
)

__all__ = [
    "NetClassifier",
    "NetRegressor",
    "load",
    "table_estimator",
    "fit_table",
    "table_columns",
    "table_targets",
    "search_targets",
    "network_data",
    "evaluate_table",
    "grid_search",
]

_SEED_MAX = 2**31 - 1


def _label_name(value) -> str:
    from .data.utils import _label_name as name

    return name(value)


def _regression_metrics(y_true, y_pred) -> dict:
    from .metrics import mae, mse, r2

    m = mse(y_true, y_pred)
    return {"mse": m, "rmse": math.sqrt(m), "mae": mae(y_true, y_pred), "r2": r2(y_true, y_pred)}


def _identity_standardizer(n: int):
    from .data import Standardizer

    return Standardizer.from_dict({"mean": [0.0] * n, "scale": [1.0] * n})


class _NetBase(BaseEstimator):
    """What NetClassifier and NetRegressor share: hyperparameters, training, saving."""

    _task = ""

    def __init__(
        self,
        hidden=(16, 16),
        activation="tanh",
        loss=None,
        optimizer="adam",
        lr=None,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=32,
        epochs=200,
        validation=0.2,
        patience=None,
        standardize=True,
        warm_start=False,
        random_state=None,
        verbose=0,
        conv=None,
        conv_kernel=None,
        conv_stride=2,
        input_shape=None,
        compile=True,  # noqa: A002 - cr.fit's name for it
        progress=False,
    ):
        self.hidden = hidden
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation = validation
        self.patience = patience
        self.standardize = standardize
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.conv = conv
        self.conv_kernel = conv_kernel
        self.conv_stride = conv_stride
        self.input_shape = input_shape
        self.compile = compile
        self.progress = progress

    # --- hyperparameters ---------------------------------------------------------------------

    def _fail(self, name, value, expected) -> NoReturn:
        raise self._error(name, value, expected)

    def _hidden_sizes(self) -> list[int]:
        h = self.hidden
        if h is None:
            return []
        if isinstance(h, numbers.Integral) and not isinstance(h, bool):
            h = (h,)
        if isinstance(h, str):
            parts = [p.strip() for p in h.split(",") if p.strip()]
            if len(parts) == 1 and parts[0].lower() == "none":
                return []
            if not all(p.isdigit() for p in parts):
                self._fail("hidden", self.hidden, "layer sizes such as (16, 16)")
            h = [int(p) for p in parts]
        try:
            sizes = list(h)
        except TypeError:
            self._fail("hidden", self.hidden, "a tuple of layer sizes such as (16, 16)")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                self._fail(
                    "hidden",
                    self.hidden,
                    "a tuple of positive whole numbers such as (16, 16), or () for no hidden layer",
                )
        return [int(s) for s in sizes]

    #: what each numeric hyperparameter may be, checked in this order by _check_params
    _constraints = {
        "lr": Interval(
            float,
            0,
            None,
            closed="neither",
            expected="a positive number (or None for the optimizer's default)",
        ),
        "batch_size": Interval(int, 1, None),
        "epochs": Interval(int, 1, None),
        "momentum": Interval(
            float, 0, 1, closed="left", expected="a number from 0 up to, not including, 1"
        ),
        "weight_decay": Interval(float, 0, None, expected="a number >= 0"),
        "validation": Interval(
            float,
            0,
            1,
            closed="left",
            expected="a fraction from 0 (no validation set) up to, not including, 1",
        ),
        "patience": AnyOf(
            NONE, Interval(int, 1, None), expected="None or a positive whole number of epochs"
        ),
    }

    #: how training runs (checked after the numbers)
    _switches = {
        "compile": InstanceOf(
            (bool, np.bool_), expected="True (trace the step, replay it) or False"
        ),
        "progress": AnyOf(
            InstanceOf((bool, np.bool_, ProgressBar)),
            Options(("tqdm", "rich", "auto")),
            expected="True, False, 'tqdm', 'rich' or a ProgressBar",
        ),
    }

    def _error(self, name, value, expected) -> ConfigError:
        return ConfigError(
            f"{type(self).__name__}: {name}={value!r} is not valid; expected {expected}"
        )

    def _check_params(self) -> dict:
        """Validate every hyperparameter; return the resolved settings."""
        hidden = self._hidden_sizes()
        fitting = losses_for(self._task)
        loss = self.loss if self.loss is not None else DEFAULT_LOSS[self._task]
        names = {
            "activation": Options(ACTIVATIONS),
            "loss": Options(LOSSES, expected=f"one of {', '.join(fitting)}"),
        }
        check_params({"activation": self.activation, "loss": loss}, names, self._error)
        if LOSSES[loss][1] != self._task:
            raise ConfigError(
                f"{type(self).__name__}: loss={loss!r} is for {LOSSES[loss][1]}, "
                f"but {type(self).__name__} does {self._task}; choose "
                f"{', '.join(fitting)}"
            )
        check_params({"optimizer": self.optimizer}, {"optimizer": Options(OPTIMIZERS)}, self._error)
        lr = self.lr if self.lr is not None else OPTIMIZERS[self.optimizer][1]
        values = {name: getattr(self, name) for name in self._constraints}
        values["lr"] = lr
        check_params(values, self._constraints, self._error)
        switches = {name: getattr(self, name) for name in self._switches}
        check_params(switches, self._switches, self._error)
        return {"hidden": hidden, "loss": loss, "lr": float(lr), "conv": self._conv_settings()}

    def _conv_settings(self):
        """The convolutional part (chainrule.nn.conv_net) as plain numbers, or None for an MLP."""
        if self.conv is None:
            return None

        def sizes(name, value, what):
            v = value
            if isinstance(v, str):
                parts = [p.strip() for p in v.split(",") if p.strip()]
                if not all(p.isdigit() for p in parts):
                    self._fail(name, value, what)
                v = [int(p) for p in parts]
            elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
                v = [v]
            try:
                v = list(v)
            except TypeError:
                self._fail(name, value, what)
            if not v or any(
                isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 1 for x in v
            ):
                self._fail(name, value, what)
            return [int(x) for x in v]

        channels = sizes("conv", self.conv, "channels per conv layer such as (25, 25, 25)")
        kernel = (
            None
            if self.conv_kernel is None
            else sizes("conv_kernel", self.conv_kernel, "a kernel size, or one per conv layer")
        )
        if kernel is not None and len(kernel) not in (1, len(channels)):
            self._fail("conv_kernel", self.conv_kernel, f"one size or {len(channels)} sizes")
        stride = sizes("conv_stride", self.conv_stride, "a positive whole number")
        if len(stride) != 1:
            self._fail("conv_stride", self.conv_stride, "a positive whole number")
        shape = (
            None
            if self.input_shape is None
            else sizes(
                "input_shape", self.input_shape, "(channels, length) or (channels, height, width)"
            )
        )
        if shape is not None and len(shape) not in (2, 3):
            self._fail(
                "input_shape", self.input_shape, "(channels, length) or (channels, height, width)"
            )
        return {"channels": channels, "kernel": kernel, "stride": stride[0], "input_shape": shape}

    def _seed(self) -> int:
        """The integer seed of this fit: random_state itself, or one drawn from it (None: from
        chainrule's default generator, which cr.manual_seed sets)."""
        rs = self.random_state
        if rs is None:
            from .random import default_rng

            return int(default_rng().integers(_SEED_MAX))
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            if rs < 0:
                self._fail("random_state", rs, "None, a whole number >= 0 or a numpy generator")
            return int(rs)
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(_SEED_MAX))
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(_SEED_MAX))
        self._fail("random_state", rs, "None, a whole number >= 0 or a numpy generator")

    # --- training ----------------------------------------------------------------------------

    def _encode_y(self, y, first: bool, classes=None):
        """Targets for training (class indices, or a float64 array), setting what it learns."""
        raise NotImplementedError

    def _loss_targets(self, y_fit):
        return loss_targets(y_fit, self._task, self.loss_)

    def _fit(
        self,
        X,
        y,
        incremental=False,
        classes=None,
        callbacks=(),
        track_grad_norms=False,
        fit_options=None,
    ):
        from .data import Standardizer
        from .train import fit as cr_fit

        settings = self._check_params()
        reuse = (incremental or self.warm_start) and hasattr(self, "model_")
        X, y_fit = self._fit_data(X, y, settings["loss"], reuse, classes)
        seed = self._seed()
        validation = 0.0 if incremental else float(self.validation)
        # hold out the validation rows, then standardize with the training part's statistics
        X_tr, X_va, y_tr, y_va = self._hold_out(X, y_fit, validation, seed)
        if not reuse:
            self.standardizer_ = (
                Standardizer().fit(X_tr) if self.standardize else _identity_standardizer(X.shape[1])
            )
        X_tr_s = self.standardizer_.transform(X_tr)
        X_va_s = self.standardizer_.transform(X_va) if X_va is not None else None
        t_tr, t_va = self._train_targets(y_tr, y_va, first=not reuse)
        if not reuse:
            self.model_ = self._build_network(settings, X.shape[1], self._n_outputs(y_fit), seed)
        self.model_.train()
        loss_fn = make_loss(self.loss_)
        if not (incremental and hasattr(self, "_optimizer")):
            self._optimizer = make_optimizer(
                self.optimizer,
                self.model_.parameters(),
                settings["lr"],
                self.momentum,
                self.weight_decay,
            )
        self.n_train_ = len(X_tr)
        self.n_validation_ = 0 if X_va is None else len(X_va)
        history = cr_fit(
            self.model_,
            loss_fn,
            self._optimizer,
            X_tr_s,
            t_tr,
            epochs=1 if incremental else self.epochs,
            batch_size=self.batch_size,
            validation=(X_va_s, t_va) if X_va is not None else None,
            metrics=("accuracy",) if self._task == "classification" else ("r2",),
            callbacks=self._fit_callbacks(callbacks, incremental),
            seed=self._shuffle_seed(seed, incremental),
            track_grad_norms=track_grad_norms,
            verbose=bool(self.verbose),
            compile=bool(self.compile),
            progress=bool(self.progress)
            if isinstance(self.progress, (bool, np.bool_))
            else self.progress,
            **(fit_options or {}),
        )
        self.model_.eval()
        self._keep_history(history, incremental)
        self.seed_ = seed
        # final numbers on the whole training and validation parts (the target's own units)
        self.metrics_ = {"train": self._measure(X_tr_s, t_tr, y_tr, loss_fn)}
        if X_va is not None:
            self.metrics_["validation"] = self._measure(X_va_s, t_va, y_va, loss_fn)
        self._training_settings = {
            "hidden": settings["hidden"],
            "lr": settings["lr"],
            "conv": settings["conv"],
            "validation": validation,
            "stop_reason": history.stop_reason,
            "best_epoch": history.best_epoch,
        }
        return self

    def _fit_data(self, X, y, loss, reuse, classes):
        """(X, targets): checked by scikit-learn's validate_data (which records the features
        seen when not ``reuse``), the targets encoded (setting what the estimator learns);
        ``loss_`` set, or checked against the network being trained on."""
        X, y = validate_data(
            self,
            X,
            y,
            reset=not reuse,
            dtype=np.float32,
            multi_output=self._task == "regression",
            y_numeric=self._task == "regression",
        )
        name = type(self).__name__
        if reuse and loss != self.loss_:
            raise ConfigError(
                f"{name}: loss={loss!r} differs from the loss the "
                f"model was trained with ({self.loss_!r}); fit anew with "
                "warm_start=False"
            )
        y_fit = self._encode_y(y, first=not reuse, classes=classes)
        if not reuse:
            self.loss_ = loss
        if len(X) < 1:
            raise DataError(f"{name}: the training set is empty")
        return X, y_fit

    def _hold_out(self, X, y_fit, validation, seed):
        """(X_tr, X_va, y_tr, y_va): ``validation`` of the rows held out (stratified by class
        when every class has two rows), or none (X_va and y_va None) when it is 0."""
        from .data import train_test_split

        if not validation > 0:
            return X, None, y_fit, None
        name, n = type(self).__name__, len(X)
        if n < 2:
            raise DataError(
                f"{name}: {n} sample is too few to hold out validation="
                f"{validation:g}; expected at least 2 samples (or validation=0)"
            )
        stratify = False
        if self._task == "classification":
            counts = np.bincount(y_fit, minlength=len(self.classes_))
            stratify = bool(counts.min() >= 2)
        try:
            return train_test_split(X, y_fit, test_size=validation, seed=seed, stratify=stratify)
        except DataError as err:
            raise DataError(f"{name}: validation={validation:g}: {err}") from None

    def _build_network(self, settings, n_features, n_out, seed):
        """A new network: the MLP of ``hidden``, or conv_net with ``conv``."""
        if settings["conv"] is not None:
            return self._build_conv(settings, n_features, n_out, seed)
        return build_model(
            n_features,
            settings["hidden"],
            n_out,
            self.activation,
            self.loss_,
            rng=np.random.default_rng(seed),
        )

    def _fit_callbacks(self, callbacks, incremental) -> list:
        """Early stopping on the validation loss (with ``patience``, not in partial_fit), then
        the caller's callbacks."""
        from .train import EarlyStopping

        cbs = []
        if self.patience and not incremental:
            cbs.append(
                EarlyStopping(monitor="val_loss", patience=self.patience, restore_best_weights=True)
            )
        return cbs + list(callbacks or ())

    def _shuffle_seed(self, seed, incremental) -> int:
        """The seed of the batches' order: the fit's own, or for each partial_fit call one
        drawn from it and the epochs run so far (so that calls do not repeat one order)."""
        if not incremental:
            return seed
        state = np.random.SeedSequence([seed, getattr(self, "n_iter_", 0)]).generate_state(1)
        return int(state[0])

    def _keep_history(self, history, incremental):
        """The run's History (partial_fit appends its epoch to the one kept), epochs run and
        the loss curve."""
        if incremental and hasattr(self, "history_"):
            done = len(self.history_.epochs)
            for i, epoch in enumerate(history.epochs):
                self.history_.append(done + epoch, {k: v[i] for k, v in history.history.items()})
            self.history_.seconds += history.seconds
        else:
            self.history_ = history
        self.n_iter_ = len(self.history_.epochs)
        self.loss_curve_ = list(self.history_["loss"])

    def _build_conv(self, settings, n_features, n_out, seed):
        """conv_net: the convolutions of ``conv``, then the ``hidden`` Linear layers."""
        from . import nn

        c = settings["conv"]
        shape = c["input_shape"] or [1, n_features]
        if int(np.prod(shape)) != n_features:
            self._fail(
                "input_shape",
                self.input_shape,
                f"a shape of {n_features} values (the "
                "number of features), e.g. (1, n_features) for signals",
            )
        try:
            model = nn.conv_net(
                tuple(shape),
                n_out,
                channels=c["channels"],
                kernels=c["kernel"],
                stride=c["stride"],
                hidden=settings["hidden"],
                activation=getattr(nn, ACTIVATIONS[self.activation]),
                rng=np.random.default_rng(seed),
            )
        except ConfigError as err:
            raise ConfigError(f"{type(self).__name__}: {err}") from None
        if self.loss_ == "bce":
            model.append(nn.Sigmoid())
        return model

    def _train_targets(self, y_tr, y_va, first):
        t_va = self._loss_targets(y_va) if y_va is not None else None
        return self._loss_targets(y_tr), t_va

    def _measure(self, Xs, t, y_orig, loss_fn) -> dict:
        from .train import evaluate

        metrics = ("accuracy",) if self._task == "classification" else ()
        return evaluate(self.model_, loss_fn, Xs, t, metrics=metrics)

    # --- outputs -----------------------------------------------------------------------------

    def _outputs(self, X) -> np.ndarray:
        """The network's outputs for X, float64 (a float64 copy of the network runs, so that a
        row's outputs do not depend on which other rows are in the batch)."""
        from .train import predict

        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        Xs = self.standardizer_.transform(X.astype(np.float64))
        model = copy.deepcopy(self.model_).to(np.float64)
        return predict(model, Xs)

    def _inputs(self, X) -> np.ndarray:
        """X standardized as the network sees it (float32)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.standardizer_.transform(X)

    # --- saving ------------------------------------------------------------------------------

    def _feature_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return [f"x{j + 1}" for j in range(self.n_features_in_)]

    def _preprocessing(self) -> dict:
        from .metrics import output_kind

        info = getattr(self, "_file_info", {})
        pre = {
            "feature_names": self._feature_names(),
            "standardizer": self.standardizer_.to_dict(),
            "task": self._task,
            "target": info.get("target", "y"),
            "label_names": self._label_names(),
            "output": output_kind(LOSSES[self.loss_][0]),
            "loss": self.loss_,
            "id_columns": list(info.get("id_columns", [])),
        }
        pre.update(self._extra_preprocessing())
        return pre

    def _label_names(self):
        return None

    def _extra_preprocessing(self) -> dict:
        return {}

    def _training(self) -> dict:
        from . import __version__

        info = getattr(self, "_file_info", {})
        s = self._training_settings
        h = self.history_
        training = dict(
            info.get("source", {}),
            task=self._task,
            hidden=s["hidden"],
            activation=self.activation,
            loss=self.loss_,
            optimizer=self.optimizer,
            lr=s["lr"],
            momentum=self.momentum if self.optimizer == "sgd" else None,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            epochs=self.epochs,
            epochs_run=self.n_iter_,
            stop_reason=s["stop_reason"],
            best_epoch=s["best_epoch"],
            validation=s["validation"],
            patience=self.patience,
            seed=self.seed_,
            n_train=self.n_train_,
            n_validation=self.n_validation_,
            dropped_rows=info.get("dropped_rows", 0),
            seconds=round(h.seconds, 3),
            chainrule_version=__version__,
            history=h.to_dict(),
        )
        if "dropped_rows" not in info and "source" not in info:
            training.pop("dropped_rows")
        if not self.standardize:
            training["standardize"] = False
        if s.get("conv"):
            training["conv"] = s["conv"]
        return training

    def save(self, path) -> str:
        """Write the fitted estimator to ``path``: the ``.safetensors`` model file that
        ``chainrule train`` writes (weights, architecture, preprocessing, training settings and
        history, final metrics), atomically. ``chainrule predict``/``evaluate``/``summary``
        read it; :func:`load` turns it back into an estimator. Returns the path."""
        from .io import save

        check_is_fitted(self, "model_")
        return save(
            self.model_,
            path,
            preprocessing=self._preprocessing(),
            training=self._training(),
            metrics=self.metrics_,
        )


class NetClassifier(ClassifierMixin, _NetBase):
    """A multi-layer perceptron classifier trained by back-propagation (chainrule's units).

    Parameters
    ----------
    hidden : tuple of int, default=(16, 16)
        Sizes of the hidden layers; ``()`` for none (a linear model).
    activation : {'tanh', 'relu', 'sigmoid', 'leaky_relu', 'gelu'}, default='tanh'
        The activation after each hidden layer.
    loss : {'cross_entropy', 'bce_with_logits', 'bce', 'hinge'} or None, default=None
        None means 'cross_entropy' (one output per class). The other three are for two
        classes and have one output ('hinge' gives scores: no ``predict_proba``).
    optimizer : {'adam', 'sgd', 'adamw', 'rmsprop', 'adagrad'}, default='adam'
    lr : float or None, default=None
        Learning rate; None means the optimizer's default (sgd 0.1, adam/adamw 0.01,
        rmsprop 0.001, adagrad 0.1).
    momentum : float, default=0.9
        Momentum of 'sgd' (ignored by the other optimizers).
    weight_decay : float, default=0.0
    batch_size : int, default=32
    epochs : int, default=200
        Passes over the training rows (the most, with ``patience``).
    validation : float, default=0.2
        Fraction of the rows held out (stratified by class) to report validation loss and
        accuracy and to stop early; 0 for none.
    patience : int or None, default=None
        Stop when the validation loss has not improved for this many epochs and keep the best
        weights.
    standardize : bool, default=True
        Shift and scale every feature to mean 0 and standard deviation 1 with the statistics
        of the training rows (kept in ``standardizer_`` and in saved files).
    warm_start : bool, default=False
        When True, ``fit`` goes on from the fitted network (and standardizer and classes)
        instead of starting anew, as in scikit-learn's MLPClassifier.
    random_state : int, numpy Generator/RandomState or None, default=None
        Seeds the initial weights, the validation split and the shuffling. None draws a seed
        from chainrule's default generator (``cr.manual_seed``).
    verbose : int, default=0
        Print one line per epoch when > 0.
    conv : tuple of int or None, default=None
        Channels of convolutional layers to put first (a CNN, built by
        ``chainrule.nn.conv_net``: each Conv, then ReLU; then Flatten and the ``hidden``
        layers). ``(25, 25, 25)`` with ``hidden=()`` is the MNIST-1D paper's CNN. None: an MLP.
    conv_kernel : int, tuple of int or None, default=None
        Kernel size of every conv layer, or one per layer; None: 5 for the first, 3 after.
    conv_stride : int, default=2
        Stride of every conv layer (padding 1).
    input_shape : tuple or None, default=None
        What one row of X is: (channels, length) for signals (Conv1d), (channels, height,
        width) for images (Conv2d), e.g. (1, 8, 8) for the digits; None: (1, n_features).
    compile : bool, default=True
        Train through :func:`chainrule.compile` (the step traced once, then replayed on
        preallocated buffers: the same numbers, faster); False runs every step eagerly.
    progress : bool, 'tqdm', 'rich' or ProgressBar, default=False
        A progress bar over the epochs (``cr.fit``'s ``progress``): True shows one when the
        output is interactive (a notebook or a terminal); 'tqdm' or 'rich' asks for that one.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, in the order of the network's outputs.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X had column names (a pandas DataFrame).
    model_ : chainrule.nn.Sequential
        The trained network (it sees standardized features).
    history_ : chainrule.History
        Per-epoch loss and accuracy (and validation loss and accuracy).
    standardizer_ : chainrule.data.Standardizer
    loss_ : str
        The loss the network was trained with.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Training loss per epoch.
    metrics_ : dict
        Final loss and accuracy on the training part and the validation part.
    seed_ : int
        The seed this fit used.

    Examples
    --------
    >>> from chainrule.sklearn import NetClassifier
    >>> clf = NetClassifier(hidden=(8,), epochs=50, random_state=0).fit(X, y)
    >>> clf.predict(X[:2]), clf.predict_proba(X[:2]).shape
    """

    _task = "classification"

    def fit(self, X, y, *, callbacks=None, track_grad_norms=False):
        """Train on X (n_samples, n_features) and the labels y (n_samples,): text, integers or
        any values scikit-learn accepts as class labels.

        ``callbacks`` (chainrule.Callback objects) and ``track_grad_norms`` are passed to
        :func:`chainrule.fit`. Returns self.
        """
        return self._fit(X, y, callbacks=callbacks, track_grad_norms=track_grad_norms)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), going on from the current network (as MLPClassifier's).

        ``classes`` (every label that will ever appear) is required on the first call. The
        first call also fixes the standardization statistics (from its rows). No validation
        split and no early stopping. Returns self.
        """
        if not hasattr(self, "model_") and classes is None:
            raise ConfigError(
                f"{type(self).__name__}.partial_fit: classes must be given on the "
                "first call (every label that will appear)"
            )
        return self._fit(X, y, incremental=True, classes=classes)

    def _encode_y(self, y, first, classes=None):
        check_classification_targets(y)
        name = type(self).__name__
        if first:
            labels = np.unique(classes) if classes is not None else np.unique(y)
            if classes is None and len(labels) < 2:
                raise DataError(
                    f"{name}: y holds one label only ({labels[0]!r}), that is one "
                    "class; classification needs at least two classes"
                )
            if (
                self.loss is not None
                and self.loss in LOSSES
                and LOSSES[self.loss][2] == 1
                and len(labels) != 2
            ):
                shown = ", ".join(str(c) for c in labels[:10])
                raise ConfigError(
                    f"{name}: loss={self.loss!r} is for two classes; y has "
                    f"{len(labels)} ({shown}); use loss='cross_entropy'"
                )
            self.classes_ = labels
        classes = np.asarray(self.classes_)
        if classes.dtype.kind == y.dtype.kind and classes.dtype.kind in "iufUb":
            codes = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
            if np.array_equal(classes[codes], y):
                return codes.astype(np.int64)
        index = {self._key(c): i for i, c in enumerate(self.classes_)}
        codes = np.empty(len(y), dtype=np.int64)
        for i, v in enumerate(y.tolist() if hasattr(y, "tolist") else list(y)):
            c = index.get(self._key(v))
            if c is None:
                known = ", ".join(str(c) for c in self.classes_[:10])
                raise DataError(
                    f"{name}: label {v!r} (row {i + 1}) is not one of the classes "
                    f"the model knows ({known})"
                )
            codes[i] = c
        return codes

    @staticmethod
    def _key(value):
        """Labels compare by value: 1, 1.0 and np.int64(1) are the same class; text as text."""
        if isinstance(value, (np.generic,)):
            value = value.item()
        if isinstance(value, str):
            return ("s", value)
        if isinstance(value, bool):
            return ("b", value)
        if isinstance(value, numbers.Real):
            return ("n", float(value))
        return ("o", str(value))

    def _n_outputs(self, y_fit) -> int:
        return len(self.classes_) if LOSSES[self.loss_][2] == "classes" else 1

    def predict(self, X):
        """The predicted class label of every row of X: shape (n_samples,)."""
        out = self._outputs(X)
        return np.asarray(self.classes_)[output_classes(out, self.loss_)]

    def _has_proba(self):
        loss = getattr(self, "loss_", None) or self.loss
        return loss != "hinge"

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.
        Not available for loss='hinge' (its outputs are scores)."""
        return output_probabilities(self._outputs(X), self.loss_)

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X):
        """Scores: shape (n_samples,) for two classes (positive: ``classes_[1]``), else the
        logits, shape (n_samples, n_classes)."""
        return output_decision(self._outputs(X), self.loss_)

    def _label_names(self):
        return [
            c if isinstance(c, str) else _label_name(c) for c in np.asarray(self.classes_).tolist()
        ]

    def _extra_preprocessing(self) -> dict:
        values = np.asarray(self.classes_).tolist()
        if all(isinstance(v, str) for v in values):
            return {}
        return {"classes": values}  # numbers or booleans come back as they were

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class NetRegressor(RegressorMixin, _NetBase):
    """A multi-layer perceptron regressor trained by back-propagation (chainrule's units).

    The target is standardized for training (mean 0, standard deviation 1, with the training
    rows' statistics) and predictions are turned back into the target's own units.

    Parameters
    ----------
    hidden : tuple of int, default=(16, 16)
    activation : {'tanh', 'relu', 'sigmoid', 'leaky_relu', 'gelu'}, default='tanh'
    loss : {'mse'} or None, default=None
        None means 'mse'.
    optimizer : {'adam', 'sgd', 'adamw', 'rmsprop', 'adagrad'}, default='adam'
    lr : float or None, default=None
        None means the optimizer's default.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    weight_decay : float, default=0.0
    batch_size : int, default=32
    epochs : int, default=200
    validation : float, default=0.2
        Fraction of the rows held out; 0 for none.
    patience : int or None, default=None
        Early stopping on the validation loss (the best weights are kept).
    standardize : bool, default=True
        Standardize the features and the target (False: use both as they are).
    warm_start : bool, default=False
        Go on from the fitted network on the next ``fit``.
    random_state : int, numpy Generator/RandomState or None, default=None
    verbose : int, default=0
    conv, conv_kernel, conv_stride, input_shape
        A convolutional network first, as in :class:`NetClassifier`.
    compile : bool, default=True
        Train through :func:`chainrule.compile` (False: eager steps), as in NetClassifier.
    progress : bool, 'tqdm' or 'rich', default=False
        A progress bar over the epochs, as in :class:`NetClassifier`.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X had column names.
    n_outputs_ : int
        Number of target columns.
    model_ : chainrule.nn.Sequential
    history_ : chainrule.History
    standardizer_, target_standardizer_ : chainrule.data.Standardizer
    loss_ : str
    n_iter_ : int
    loss_curve_ : list of float
    metrics_ : dict
        Final loss (standardized target), mse, rmse, mae and r2 (target's units) on the
        training part and the validation part.
    seed_ : int

    Examples
    --------
    >>> from chainrule.sklearn import NetRegressor
    >>> reg = NetRegressor(hidden=(16,), epochs=100, random_state=0).fit(X, y)
    >>> reg.predict(X[:2])
    """

    _task = "regression"

    def fit(self, X, y, *, callbacks=None, track_grad_norms=False):
        """Train on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_targets).

        Returns self.
        """
        return self._fit(X, y, callbacks=callbacks, track_grad_norms=track_grad_norms)

    def partial_fit(self, X, y):
        """One epoch over (X, y), going on from the current network (as MLPRegressor's).

        The first call fixes the standardization statistics of the features and the target
        (from its rows). Returns self.
        """
        return self._fit(X, y, incremental=True)

    def _encode_y(self, y, first, classes=None):
        y = np.asarray(y, dtype=np.float64)
        k = 1 if y.ndim == 1 else y.shape[1]
        if first:
            self.n_outputs_ = k
        elif k != self.n_outputs_:
            raise DataError(
                f"{type(self).__name__}: y has {k} target columns, but the model "
                f"was fitted on {self.n_outputs_}"
            )
        return y

    def _n_outputs(self, y_fit) -> int:
        return self.n_outputs_

    def _train_targets(self, y_tr, y_va, first):
        from .data import Standardizer

        cols = y_tr.reshape(len(y_tr), -1)
        if first:
            self.target_standardizer_ = (
                Standardizer().fit(cols)
                if self.standardize
                else _identity_standardizer(cols.shape[1])
            )
        scale = self.target_standardizer_

        def fit_units(y):
            return scale.transform(y.reshape(len(y), -1).astype(np.float32))

        t_va = self._loss_targets(fit_units(y_va)) if y_va is not None else None
        return self._loss_targets(fit_units(y_tr)), t_va

    def _measure(self, Xs, t, y_orig, loss_fn) -> dict:
        from .train import evaluate, predict

        m = evaluate(self.model_, loss_fn, Xs, t, metrics=())
        out = np.asarray(predict(self.model_, Xs), dtype=np.float64)
        pred = self.target_standardizer_.inverse_transform(out.reshape(len(out), -1))
        y_orig = np.asarray(y_orig, dtype=np.float64)
        m.update(_regression_metrics(y_orig, pred[:, 0] if y_orig.ndim == 1 else pred))
        return m

    def predict(self, X):
        """Predicted values in the target's own units: shape (n_samples,), or
        (n_samples, n_targets) for a 2-D target; float64."""
        out = self._outputs(X)
        pred = self.target_standardizer_.inverse_transform(out.reshape(len(out), -1))
        return pred[:, 0] if self.n_outputs_ == 1 else pred

    def _extra_preprocessing(self) -> dict:
        return {"target_standardizer": self.target_standardizer_.to_dict()}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


# ---------------------------------------------------------------------------------------------
# Loading a model file
# ---------------------------------------------------------------------------------------------


def _architecture_settings(spec: dict):
    """(hidden sizes, activation) read from a Sequential of Linear/activation layers."""
    children = spec.get("children", [spec])
    inverse = {cls: name for name, cls in ACTIVATIONS.items()}
    linears = [c for c in children if facts_of(c.get("type", "")).role == "linear"]
    hidden = [c["config"]["out_features"] for c in linears[:-1]]
    acts = [inverse[c["type"]] for c in children if c.get("type") in inverse]
    return hidden, (acts[0] if acts else "tanh")


def _file_task(path, info) -> tuple:
    """(preprocessing, task, loss) of an estimator's model file, checked."""
    pre = info.get("preprocessing")
    if not isinstance(pre, dict) or "feature_names" not in pre or "standardizer" not in pre:
        raise ModelFileError(
            f"{path} is a chainrule model file without preprocessing "
            "(saved with cr.save?); chainrule.sklearn.load needs one written by "
            "'chainrule train' or an estimator's save()"
        )
    task = pre.get("task")
    if task not in ("classification", "regression"):
        raise ModelFileError(
            f"{path}: the preprocessing names task {task!r}; expected "
            "'classification' or 'regression'"
        )
    loss = pre.get("loss") or DEFAULT_LOSS[task]
    if loss not in LOSSES or LOSSES[loss][1] != task:
        raise ModelFileError(f"{path}: loss {loss!r} does not fit a {task} model")
    return pre, task, loss


_SAVED_HYPERPARAMETERS = (
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "epochs",
    "validation",
    "patience",
    "standardize",
)


def _saved_params(info, tr, loss) -> dict:
    """The estimator's hyperparameters from a model file's training settings (the network's
    hidden sizes and activation from its architecture when the settings lack them)."""
    hidden, activation = _architecture_settings(info["architecture"])
    params = {
        "hidden": tuple(tr.get("hidden", hidden)),
        "activation": tr.get("activation", activation),
        "loss": loss,
    }
    for key in _SAVED_HYPERPARAMETERS:
        if tr.get(key) is not None:
            params[key] = tr[key]
    if tr.get("seed") is not None:
        params["random_state"] = tr["seed"]
    conv = tr.get("conv")
    if isinstance(conv, dict):
        params.update(
            conv=tuple(conv.get("channels") or ()),
            conv_stride=conv.get("stride", 2),
            conv_kernel=None if conv.get("kernel") is None else tuple(conv["kernel"]),
            input_shape=None if conv.get("input_shape") is None else tuple(conv["input_shape"]),
        )
    return params


def _restore_fitted(est, pre, model, loss, task):
    """What fit learns, from the preprocessing: features, standardizer(s), network, loss,
    classes (or the target's statistics and the number of outputs)."""
    from .data import Standardizer

    names = [str(n) for n in pre["feature_names"]]
    est.n_features_in_ = len(names)
    if names != [f"x{j + 1}" for j in range(len(names))]:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.standardizer_ = Standardizer.from_dict(pre["standardizer"])
    est.model_ = model
    est.loss_ = loss
    if task == "classification":
        if pre.get("classes") is not None:
            est.classes_ = np.asarray(pre["classes"])
        else:
            est.classes_ = np.asarray(pre.get("label_names") or [], dtype=object)
    else:
        if "target_standardizer" in pre:
            est.target_standardizer_ = Standardizer.from_dict(pre["target_standardizer"])
        else:
            est.target_standardizer_ = _identity_standardizer(1)
        est.n_outputs_ = int(est.target_standardizer_.n_features_in_)


def _saved_history(tr):
    """The History kept in a model file's training settings."""
    from .train import History

    h = History()
    hd = tr.get("history") or {}
    h.epochs = list(hd.get("epochs", []))
    h.history = {k: list(v) for k, v in (hd.get("history") or {}).items()}
    h.grad_norms = {k: list(v) for k, v in (hd.get("grad_norms") or {}).items()}
    h.best_epoch, h.stopped_epoch = hd.get("best_epoch"), hd.get("stopped_epoch")
    h.stop_reason, h.seconds = hd.get("stop_reason"), float(hd.get("seconds") or 0.0)
    return h


def _saved_file_info(pre, tr) -> dict:
    """What save() writes back beside the network: target, id columns, source, dropped rows."""
    file_info = {"target": pre.get("target", "y"), "id_columns": pre.get("id_columns") or []}
    source = {k: tr[k] for k in ("dataset", "samples", "noise", "data") if k in tr}
    if source:
        file_info["source"] = source
    if "dropped_rows" in tr:
        file_info["dropped_rows"] = tr["dropped_rows"]
    return file_info


def load(path):
    """A fitted NetClassifier or NetRegressor from a model file.

    Any file written by ``chainrule train`` or by ``NetClassifier.save`` /
    ``NetRegressor.save`` works: the network, the standardization statistics, the classes (or
    the target's statistics), the feature names, the training settings (as the estimator's
    hyperparameters) and the history come back. ``partial_fit`` or ``fit`` with
    ``warm_start=True`` go on from it (with a new optimizer).
    """
    from .io import load as load_file

    path = os.fspath(path)
    model, info = load_file(path, with_info=True)
    pre, task, loss = _file_task(path, info)
    tr = info.get("training") or {}
    params = _saved_params(info, tr, loss)
    est = (NetClassifier if task == "classification" else NetRegressor)(**params)
    try:
        est._check_params()
    except ConfigError as err:
        raise ModelFileError(
            f"{path}: the training settings do not fit an estimator: {err}"
        ) from None
    _restore_fitted(est, pre, model, loss, task)
    h = _saved_history(tr)
    est.history_ = h
    est.n_iter_ = int(tr.get("epochs_run", len(h.epochs)))
    est.loss_curve_ = list(h.history.get("loss", []))
    est.metrics_ = info.get("metrics") or {}
    est.seed_ = tr.get("seed")
    est.n_train_, est.n_validation_ = tr.get("n_train"), tr.get("n_validation")
    est._training_settings = {
        "hidden": list(params["hidden"]),
        "lr": float(tr.get("lr", est._check_params()["lr"])),
        "validation": tr.get("validation", est.validation),
        "stop_reason": tr.get("stop_reason"),
        "best_epoch": tr.get("best_epoch"),
        "conv": est._check_params()["conv"],
    }
    est._file_info = _saved_file_info(pre, tr)
    return est


# ---------------------------------------------------------------------------------------------
# Tables (chainrule.tabular.Data): what the command does with a dataset or a user's file
# ---------------------------------------------------------------------------------------------


def table_estimator(data, task=None, **params):
    """An unfitted NetClassifier or NetRegressor for a table (a ``chainrule.tabular.Data``).

    The task is ``task``, else the built-in dataset's, else inferred from the target
    (``chainrule.data.infer_task``: text or a few whole numbers mean classification);
    ``params`` are the estimator's hyperparameters.
    """
    from .data import infer_task

    task = task or data.task or infer_task(data.y_raw)
    if task not in ("classification", "regression"):
        raise ConfigError(f"task {task!r} is not known; expected 'classification' or 'regression'")
    return (NetClassifier if task == "classification" else NetRegressor)(**params)


def fit_table(
    est,
    data,
    *,
    source=None,
    id_columns=(),
    callbacks=None,
    track_grad_norms=False,
    fit_options=None,
):
    """Train ``est`` (from :func:`table_estimator`) on a table, as ``chainrule train`` does.

    A classifier's ``classes_`` become the label names as text (a built-in dataset's in its
    own order; a file's sorted as ``chainrule.data.encode_labels`` sorts them), so that a
    saved file names them. ``source`` (how the table was made) and ``id_columns`` go into the
    saved file. Returns the fitted estimator.
    """
    from .data import encode_labels

    classes = names = None
    if isinstance(est, NetClassifier):
        if data.y_codes is not None:
            y, names = np.asarray(data.y_codes, dtype=np.int64), list(data.label_names)
            # all of a built-in dataset's classes, also when a small sample misses one
            classes = np.arange(len(names))
        else:
            y = data.y_raw
            names = encode_labels(y)[1]
        if len(names) < 2:
            raise DataError(
                f"target column '{data.target}' of {data.source} holds one label "
                f"only ('{names[0]}'); classification needs at least two"
            )
    else:
        y = _regression_target(data)
    if data.n < 2:
        raise DataError(f"{data.source} has {data.n} row; training needs at least 2")
    est._file_info = {
        "target": data.target,
        "id_columns": list(id_columns),
        "source": dict(source or {}),
        "dropped_rows": int(data.dropped),
    }
    est._fit(
        data.X,
        y,
        classes=classes,
        callbacks=callbacks,
        track_grad_norms=track_grad_norms,
        fit_options=fit_options,
    )
    if names is not None:
        est.classes_ = np.asarray(names, dtype=object)
    features = [str(f) for f in data.feature_names]
    if features != [f"x{j + 1}" for j in range(len(features))]:
        est.feature_names_in_ = np.asarray(features, dtype=object)
    return est


def table_columns(est) -> dict:
    """The columns a fitted estimator reads: ``{"features", "target", "id_columns"}``."""
    check_is_fitted(est, "model_")
    info = getattr(est, "_file_info", {})
    return {
        "features": est._feature_names(),
        "target": info.get("target", "y"),
        "id_columns": list(info.get("id_columns", [])),
    }


def _label_names(est) -> list[str]:
    return est._label_names()


def table_targets(est, data) -> np.ndarray:
    """The true values of a table as the estimator knows them: class indices (a label the
    model never saw is a DataError naming the row), or the numbers of a regression target."""
    from .tabular import label_codes, numeric_target

    if isinstance(est, NetClassifier):
        return label_codes(data.y_raw, data, _label_names(est))
    return numeric_target(data.y_raw, data)


def _regression_target(data) -> np.ndarray:
    """A regression table's target as numbers (float64)."""
    from .tabular import numeric_target

    if data.y_codes is not None:
        return np.asarray(data.y_codes, dtype=np.float64)
    return numeric_target(data.y_raw, data)


def search_targets(est, data) -> np.ndarray:
    """The targets a search over ``est``'s settings fits on (``chainrule tune``): class indices
    (a built-in dataset's own, or a file's labels in the order ``encode_labels`` sorts them),
    or the numbers of a regression target."""
    if isinstance(est, NetClassifier):
        if data.y_codes is not None:
            return np.asarray(data.y_codes)
        from .data import encode_labels

        return encode_labels(data.y_raw)[0]
    return _regression_target(data)


def network_data(est, X, y=None):
    """X (and y) as the network sees them: standardized float32 features and, with ``y``, the
    loss targets (class indices, a 0/1 column, or the standardized target).

    ``y`` is what :func:`table_targets` returns (class indices for a classifier).
    """
    Xs = est._inputs(X)
    if y is None:
        return Xs, None
    if isinstance(est, NetRegressor):
        y = np.asarray(y, dtype=np.float64)
        y = est.target_standardizer_.transform(y.reshape(len(y), -1).astype(np.float32))
    return Xs, loss_targets(y, est._task, est.loss_)


def evaluate_table(est, data) -> dict:
    """The numbers ``chainrule evaluate`` prints for a table.

    Classification: ``accuracy``, ``loss`` (None when the loss cannot be computed), and
    ``precision``, ``recall``, ``f1``, ``support`` (per class) and ``confusion`` (rows: true
    class). Regression: ``mse``, ``rmse``, ``mae``, ``r2`` in the target's units. Both: ``rows``.
    """
    from .errors import ChainruleError
    from .metrics import accuracy, confusion_matrix, precision_recall_f1
    from .train import evaluate as evaluate_loss

    y = table_targets(est, data)
    if isinstance(est, NetRegressor):
        pred = est.predict(data.X)
        return {**_regression_metrics(y, pred), "rows": data.n}
    k = len(est.classes_)
    pred = output_classes(est._outputs(data.X), est.loss_)
    loss = None
    try:
        Xs, t = network_data(est, data.X, y)
        loss = evaluate_loss(est.model_, make_loss(est.loss_), Xs, t, metrics=())["loss"]
    except ChainruleError:
        pass
    precision, recall, f1, support = precision_recall_f1(y, pred, n_classes=k)
    return {
        "accuracy": accuracy(y, pred),
        "loss": loss,
        "rows": data.n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "confusion": confusion_matrix(y, pred, n_classes=k),
    }


# ---------------------------------------------------------------------------------------------
# Sweeps: GridSearchCV over the estimator's hyperparameters, locally or on a Dask cluster
# ---------------------------------------------------------------------------------------------


def grid_search(est, X, y, grid: dict, cv=3, scoring=None, scheduler=None, n_jobs=-1, refit=True):
    """Run scikit-learn's ``GridSearchCV(est, grid, cv=cv, scoring=scoring)`` on (X, y).

    Locally the candidates run in joblib's worker processes (``n_jobs``, -1: all cores). With
    ``scheduler`` (a Dask scheduler's address, such as ``tcp://host:8786``) they run on that
    existing cluster through joblib's Dask backend (needs ``distributed``; the workers need
    chainrule installed). Returns the fitted GridSearchCV.
    """
    import joblib
    from sklearn.metrics import get_scorer_names
    from sklearn.model_selection import GridSearchCV

    if scoring is not None and scoring not in get_scorer_names():
        near = [s for s in get_scorer_names() if scoring.lower() in s]
        hint = f" (did you mean {', '.join(near[:4])}?)" if near else ""
        raise ConfigError(
            f"scoring {scoring!r} is not a scikit-learn scorer{hint}; see "
            "sklearn.metrics.get_scorer_names()"
        )
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and cv < 2:
        raise ConfigError(f"cv={cv} is not valid; expected at least 2 folds")
    if scheduler is None:
        search = GridSearchCV(est, grid, cv=cv, scoring=scoring, n_jobs=n_jobs, refit=refit)
        with joblib.parallel_backend("loky"):
            return search.fit(X, y)
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            "a Dask scheduler needs the distributed package, which is not "
            'installed: pip install "chainrule[dask]"'
        ) from None
    try:
        client = Client(scheduler, timeout="15s")
    except (OSError, TimeoutError, ValueError) as err:
        raise ConfigError(
            f"could not reach the Dask scheduler at {scheduler} "
            f"({' '.join(str(err).split())}); expected the address of a "
            "running scheduler, such as tcp://host:8786"
        ) from None
    try:
        search = GridSearchCV(est, grid, cv=cv, scoring=scoring, n_jobs=-1, refit=refit)
        with joblib.parallel_backend("dask"):
            return search.fit(X, y)
    finally:
        client.close()
