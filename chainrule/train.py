"""The training loop: the course's three steps, repeated.

For every mini-batch: a **forward pass** (model outputs, then the loss), **back-propagation**
(``loss.backward()`` fills every parameter's ``.grad``), and a **gradient-descent step**
(``optimizer.step()``). An epoch is one pass over the shuffled training set; after it the loop
evaluates the validation set, records the history and lets callbacks act (progress bars, plots,
early stopping).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .errors import ConfigError, DataError, TrainingError
from .metrics import compute_metric, output_kind
from .optim.lr_scheduler import ReduceLROnPlateau
from .random import get_rng
from .tensor import Tensor, no_grad

__all__ = ["fit", "evaluate", "predict", "History", "Callback", "EarlyStopping", "TrainState"]


class History:
    """Per-epoch records of a training run.

    ``history.history`` is a plain dict of lists (``'loss'``, ``'accuracy'``, ``'val_loss'``,
    ``'val_accuracy'``, ``'lr'``, ...), one entry per epoch; ``history['loss']`` reads it.
    ``grad_norms`` maps parameter names to the per-epoch mean L2 norm of their gradient (when
    ``fit(track_grad_norms=True)``).
    """

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epochs: list[int] = []
        self.grad_norms: dict[str, list] = {}
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.stop_reason: str | None = None
        self.seconds: float = 0.0

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def keys(self):
        return self.history.keys()

    def append(self, epoch: int, logs: dict):
        self.epochs.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def last(self) -> dict:
        """The last epoch's numbers."""
        return {k: v[-1] for k, v in self.history.items() if v}

    def to_dict(self) -> dict:
        """Everything as plain Python (JSON-ready; no pandas needed)."""
        return {"epochs": list(self.epochs), "history": {k: list(v) for k, v in self.history.items()},
                "grad_norms": {k: list(v) for k, v in self.grad_norms.items()},
                "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch,
                "stop_reason": self.stop_reason, "seconds": self.seconds}

    def __repr__(self):
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items())
        return f"History({len(self.epochs)} epochs: {last})"

    def _repr_html_(self):
        """In a notebook: a small table of the first and last epochs, and the curves."""
        from .display import history_html
        return history_html(self)

    def plot(self, title: str | None = None):
        """The loss and metric curves (``chainrule.viz.plots.loss_curves``; needs matplotlib)."""
        from .viz.plots import loss_curves
        return loss_curves(self, title=title)


class TrainState:
    """What callbacks see: the model, optimizer, progress, the latest logs and the history."""

    def __init__(self, model, loss_fn, optimizer, epochs, steps_per_epoch, history):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.epochs, self.steps_per_epoch, self.history = epochs, steps_per_epoch, history
        self.epoch = 0
        self.step = 0
        self.batch_loss = math.nan
        self.logs: dict = {}
        self.stop_training = False
        self.X = self.y = None   # the training data (LivePlot draws its decision boundary)


class Callback:
    """Hooks into :func:`fit`; override what you need. Set ``state.stop_training = True`` to stop."""

    def on_train_begin(self, state: TrainState): ...

    def on_epoch_begin(self, state: TrainState): ...

    def on_batch_end(self, state: TrainState): ...

    def on_epoch_end(self, state: TrainState): ...

    def on_train_end(self, state: TrainState): ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model gets back the weights of its best epoch at the end.
    ``monitor`` defaults to 'val_loss' (falling back to 'loss' when there is no validation set).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be >= 0, got {patience}")
        if mode not in ("auto", "min", "max"):
            raise ConfigError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.mode, self.restore_best_weights = mode, restore_best_weights

    def on_train_begin(self, state):
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0

    def _key(self, logs):
        if self.monitor in logs:
            return self.monitor
        if self.monitor.startswith("val_") and self.monitor[4:] in logs:
            return self.monitor[4:]
        raise ConfigError(f"EarlyStopping: metric {self.monitor!r} is not recorded; "
                          f"recorded: {', '.join(logs)}")

    def on_epoch_end(self, state):
        key = self._key(state.logs)
        value = state.logs[key]
        maximize = self.mode == "max" or (self.mode == "auto" and ("acc" in key or "r2" in key))
        better = (self.best is None or
                  (value > self.best + self.min_delta if maximize else value < self.best - self.min_delta))
        if better:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            state.history.best_epoch = state.epoch
            if self.restore_best_weights:
                self.best_weights = state.model.state_dict()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop_training = True
                state.history.stop_reason = (f"early stopping: {key} did not improve for "
                                             f"{self.patience} epochs (best {self.best:.4g} at "
                                             f"epoch {self.best_epoch})")

    def on_train_end(self, state):
        if self.restore_best_weights and self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)


def _as_numpy(a, what):
    if isinstance(a, Tensor):
        a = a.data
    try:
        a = np.asarray(a)
    except Exception as err:  # noqa: BLE001 - anything numpy cannot read
        raise DataError(f"fit: {what} cannot be read as an array: {err}") from None
    if a.dtype.kind == "O":
        raise DataError(f"fit: {what} holds non-numeric values (dtype object); encode labels first")
    return a


def _outputs(model, X, batch_size=1024) -> np.ndarray:
    """Model outputs for all of X, in eval mode, without recording (in chunks to bound memory)."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            parts = [model(X[i:i + batch_size]).data for i in range(0, len(X), batch_size)]
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return np.concatenate(parts, axis=0) if parts else np.zeros((0,))


def predict(model, X, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for X (eval mode, nothing recorded), as a numpy array."""
    return _outputs(model, _as_numpy(X, "X"), batch_size)


def evaluate(model, loss_fn, X, y, metrics=("accuracy",), batch_size: int = 1024) -> dict:
    """Loss and metrics of the model on (X, y): a dict like ``{'loss': ..., 'accuracy': ...}``."""
    X, y = _as_numpy(X, "X"), _as_numpy(y, "y")
    out = _outputs(model, X, batch_size)
    with no_grad():
        loss = float(loss_fn(Tensor(out), y).data.mean())
    kind = output_kind(loss_fn)
    logs = {"loss": loss}
    for m in metrics or ():
        logs[m if isinstance(m, str) else getattr(m, "__name__", "metric")] = compute_metric(m, out, y, kind)
    return logs


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"fit: {name} must be a positive whole number, got {value!r}")


def fit(model, loss_fn, optimizer, X, y, epochs: int = 10, batch_size: int = 32, validation=None,
        metrics=("accuracy",), callbacks=(), scheduler=None, seed: int | None = 0,
        shuffle: bool = True, track_grad_norms: bool = False, verbose: bool = False,
        progress=False) -> History:
    """Train ``model`` on (X, y) by mini-batch gradient descent; return the :class:`History`.

    Parameters
    ----------
    model : Module
        Maps a batch ndarray of shape (batch, n_features) to outputs.
    loss_fn : callable
        ``loss_fn(outputs, y_batch)`` returns a scalar Tensor (a chainrule.nn loss).
    optimizer : Optimizer
        Steps the parameters against their gradients.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Integer class labels, or float targets.
    epochs, batch_size : int
    validation : float or (X_val, y_val), optional
        A fraction of (X, y) held out (split with ``seed``), or a validation set.
    metrics : sequence of str or callables
        'accuracy', 'mse', 'mae', 'r2', or ``f(y_true, outputs) -> float``; reported for train
        and validation (train metrics are measured on the batches as they were trained).
    callbacks : sequence of Callback
    scheduler : a learning-rate schedule, stepped once per epoch (ReduceLROnPlateau gets the
        validation loss, or the training loss without validation).
    seed : int
        Seeds the validation split and the shuffling of mini-batches.
    track_grad_norms : bool
        Record each parameter's mean gradient L2 norm per epoch in ``history.grad_norms``.
    progress : bool, 'tqdm' or 'rich'
        A progress bar over the epochs with the latest loss and metrics
        (:class:`chainrule.callbacks.ProgressBar`): ``True`` shows one when the output is
        interactive (a notebook or a terminal) and nothing otherwise; 'tqdm' or 'rich' asks
        for that library even when it is not.

    Raises
    ------
    TrainingError
        When the loss becomes NaN or infinite (naming the epoch and step); its ``.history``
        holds the epochs done.
    """
    from .data import batches as _batches, train_test_split

    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    X, y = _as_numpy(X, "X"), _as_numpy(y, "y")
    if len(X) != len(y):
        raise DataError(f"fit: X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise DataError("fit: the training set is empty")
    X_val = y_val = None
    if validation is not None:
        if isinstance(validation, (tuple, list)) and len(validation) == 2:
            X_val, y_val = _as_numpy(validation[0], "X_val"), _as_numpy(validation[1], "y_val")
        elif isinstance(validation, (float, int)) and not isinstance(validation, bool):
            if not 0 < validation < 1:
                raise ConfigError(f"fit: validation must be a fraction between 0 and 1, got {validation}")
            if validation > 0:
                X, X_val, y, y_val = train_test_split(X, y, test_size=validation, seed=seed)
        else:
            raise ConfigError("fit: validation must be a fraction or a pair (X_val, y_val)")
    metrics = list(metrics or ())
    kind = output_kind(loss_fn)
    history = History()
    steps = math.ceil(len(X) / batch_size)
    state = TrainState(model, loss_fn, optimizer, epochs, steps, history)
    callbacks = list(callbacks or ())
    bar = None
    if progress:
        from .callbacks import progress_bar
        bar = progress_bar(progress)
        if bar is not None:
            callbacks.append(bar)
    state.X, state.y = X, y
    named = list(model.named_parameters()) if track_grad_norms else []
    rng = get_rng(seed=seed)  # the default generator (cr.manual_seed) when seed is None
    start = time.perf_counter()
    if hasattr(model, "train"):
        model.train()
    for cb in callbacks:
        cb.on_train_begin(state)
    try:
        for epoch in range(1, epochs + 1):
            state.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(state)
            total_loss, seen = 0.0, 0
            out_parts, y_parts = [], []
            norms = {name: 0.0 for name, _ in named}
            for step, (xb, yb) in enumerate(_batches(X, y, batch_size=batch_size, shuffle=shuffle,
                                                     rng=rng), start=1):
                state.step = step
                optimizer.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                value = float(loss.data)
                if not math.isfinite(value):
                    raise TrainingError(
                        f"the loss became {value} at epoch {epoch}, step {step} of {steps}: "
                        "training diverged; try a smaller learning rate (or standardize the "
                        "features)", history)
                loss.backward()
                optimizer.step()
                total_loss += value * len(xb)
                seen += len(xb)
                if metrics:
                    out_parts.append(out.data)
                    y_parts.append(yb)
                for name, p in named:
                    if p.grad is not None:
                        norms[name] += float(np.sqrt(np.vdot(p.grad, p.grad)))
                state.batch_loss = value
                for cb in callbacks:
                    cb.on_batch_end(state)
            logs = {"loss": total_loss / seen}
            if metrics:
                train_out = np.concatenate(out_parts)
                train_y = np.concatenate(y_parts)
                for m in metrics:
                    name = m if isinstance(m, str) else getattr(m, "__name__", "metric")
                    logs[name] = compute_metric(m, train_out, train_y, kind)
            if X_val is not None and len(X_val):
                val = evaluate(model, loss_fn, X_val, y_val, metrics)
                logs.update({"val_" + k: v for k, v in val.items()})
            groups = getattr(optimizer, "param_groups", None)
            if groups:
                logs["lr"] = float(groups[0]["lr"])
            history.append(epoch, logs)
            for name in norms:
                history.grad_norms.setdefault(name, []).append(norms[name] / steps)
            state.logs = logs
            if verbose:
                print(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
            if scheduler is not None:
                if isinstance(scheduler, ReduceLROnPlateau):  # steps on the monitored loss
                    scheduler.step(logs.get("val_loss", logs["loss"]))
                else:
                    scheduler.step()
            for cb in callbacks:
                cb.on_epoch_end(state)
            if state.stop_training:
                history.stopped_epoch = epoch
                break
    finally:
        history.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()   # also when training failed: no bar left half-drawn
    for cb in callbacks:
        cb.on_train_end(state)
    return history
