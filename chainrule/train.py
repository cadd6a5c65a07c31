"""The training loop: the course's three steps, repeated.

For every mini-batch: a **forward pass** (model outputs, then the loss), **back-propagation**
(``loss.backward()`` fills every parameter's ``.grad``), and a **gradient-descent step**
(``optimizer.step()``). An epoch is one pass over the shuffled training set; after it the loop
evaluates the validation set, records the history and lets callbacks act (progress bars, plots,
early stopping).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, KeysView, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike

from ._validate import Interval, check_params
from ._views import view
from .compile import compile as _compile
from .errors import ConfigError, DataError, TrainingError
from .metrics import compute_metric, output_kind
from .optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from .random import get_rng
from .tensor import Context, Grads, Tensor, Unit, no_grad

if TYPE_CHECKING:
    from .callbacks import ProgressBar
    from .nn.module import Module
    from .optim.optimizer import Optimizer

#: A metric: a name ('accuracy', 'mse', 'mae', 'r2') or ``f(y_true, outputs) -> float``.
Metric = str | Callable[[np.ndarray, np.ndarray], float]
#: A loss: ``loss_fn(outputs, targets)`` gives a scalar tensor (a chainrule.nn loss module).
LossFn = Callable[[Tensor, Any], Tensor]
#: A file path.
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["fit", "evaluate", "predict", "History", "Callback", "EarlyStopping", "TrainState"]


class History:
    """Per-epoch records of a training run.

    ``history.history`` is a plain dict of lists (``'loss'``, ``'accuracy'``, ``'val_loss'``,
    ``'val_accuracy'``, ``'lr'``, ...), one entry per epoch; ``history['loss']`` reads it.
    ``grad_norms`` maps parameter names to the per-epoch mean L2 norm of their gradient (when
    ``fit(track_grad_norms=True)``).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.grad_norms: dict[str, list[float]] = {}
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.stop_reason: str | None = None
        self.seconds: float = 0.0

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def keys(self) -> KeysView[str]:
        return self.history.keys()

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epochs.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def last(self) -> dict[str, float]:
        """The last epoch's numbers."""
        return {k: v[-1] for k, v in self.history.items() if v}

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain Python (JSON-ready; no pandas needed)."""
        return {
            "epochs": list(self.epochs),
            "history": {k: list(v) for k, v in self.history.items()},
            "grad_norms": {k: list(v) for k, v in self.grad_norms.items()},
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
        }

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items())
        return f"History({len(self.epochs)} epochs: {last})"

    def _repr_html_(self) -> str:
        """In a notebook: a small table of the first and last epochs, and the curves."""
        return view("history_html")(self)  # chainrule.display provides it

    def plot(self, title: str | None = None) -> Any:  # a matplotlib Figure
        """The loss and metric curves (``chainrule.viz.plots.loss_curves``; needs matplotlib)."""
        return view("loss_curves")(self, title=title)  # chainrule.viz.plots provides it


class TrainState:
    """What callbacks see: the model, optimizer, progress, the latest logs and the history."""

    def __init__(
        self,
        model: Module,
        loss_fn: LossFn,
        optimizer: Optimizer,
        epochs: int,
        steps_per_epoch: int,
        history: History,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.epochs, self.steps_per_epoch, self.history = epochs, steps_per_epoch, history
        self.epoch = 0
        self.step = 0
        self.batch_loss = math.nan
        self.logs: dict[str, float] = {}
        self.stop_training = False
        # the training data (LivePlot draws its decision boundary)
        self.X: np.ndarray | None = None
        self.y: np.ndarray | None = None


class Callback:
    """Hooks into :func:`fit`; override what you need.

    Set ``state.stop_training = True`` to stop."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_begin(self, state: TrainState) -> None: ...

    def on_batch_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model gets back the weights of its best epoch at the end.
    ``monitor`` defaults to 'val_loss' (falling back to 'loss' when there is no validation set).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ) -> None:
        if patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be >= 0, got {patience}")
        if mode not in ("auto", "min", "max"):
            raise ConfigError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.mode, self.restore_best_weights = mode, restore_best_weights

    def on_train_begin(self, state: TrainState) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None
        self.wait = 0

    def _key(self, logs: dict[str, float]) -> str:
        if self.monitor in logs:
            return self.monitor
        if self.monitor.startswith("val_") and self.monitor[4:] in logs:
            return self.monitor[4:]
        raise ConfigError(
            f"EarlyStopping: metric {self.monitor!r} is not recorded; recorded: {', '.join(logs)}"
        )

    def on_epoch_end(self, state: TrainState) -> None:
        key = self._key(state.logs)
        value = state.logs[key]
        maximize = self.mode == "max" or (self.mode == "auto" and ("acc" in key or "r2" in key))
        better = self.best is None or (
            value > self.best + self.min_delta if maximize else value < self.best - self.min_delta
        )
        if better:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            state.history.best_epoch = state.epoch
            if self.restore_best_weights:
                self.best_weights = state.model.state_dict()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop_training = True
                state.history.stop_reason = (
                    f"early stopping: {key} did not improve for "
                    f"{self.patience} epochs (best {self.best:.4g} at "
                    f"epoch {self.best_epoch})"
                )

    def on_train_end(self, state: TrainState) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (the best weights under ``'arrays'``)."""
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "arrays": dict(self.best_weights or {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = dict(state.get("arrays") or {}) or None


def _as_numpy(a: Tensor | ArrayLike, what: str) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.data
    try:
        a = np.asarray(a)
    except Exception as err:  # noqa: BLE001 - anything numpy cannot read
        raise DataError(f"fit: {what} cannot be read as an array: {err}") from None
    if a.dtype.kind == "O":
        raise DataError(f"fit: {what} holds non-numeric values (dtype object); encode labels first")
    return a


def _outputs(model: Module, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for all of X, in eval mode, without recording (in chunks to bound memory)."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            parts = [model(X[i : i + batch_size]).data for i in range(0, len(X), batch_size)]
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return np.concatenate(parts, axis=0) if parts else np.zeros((0,))


def predict(model: Module, X: Tensor | ArrayLike, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for X (eval mode, nothing recorded), as a numpy array."""
    return _outputs(model, _as_numpy(X, "X"), batch_size)


def evaluate(
    model: Module,
    loss_fn: LossFn,
    X: Tensor | ArrayLike,
    y: Tensor | ArrayLike,
    metrics: Sequence[Metric] | None = ("accuracy",),
    batch_size: int = 1024,
) -> dict[str, float]:
    """Loss and metrics of the model on (X, y): a dict like ``{'loss': ..., 'accuracy': ...}``."""
    X, y = _as_numpy(X, "X"), _as_numpy(y, "y")
    out = _outputs(model, X, batch_size)
    with no_grad():
        loss = float(loss_fn(Tensor(out), y).data.mean())
    kind = output_kind(loss_fn)
    logs = {"loss": loss}
    for m in metrics or ():
        logs[m if isinstance(m, str) else getattr(m, "__name__", "metric")] = compute_metric(
            m, out, y, kind
        )
    return logs


def _diverged(model: Module, out: Any, value: float, epoch: int, step: int, steps: int) -> str:
    """Say in words what became NaN or infinite: the weights (steps too large) or only the
    outputs/loss (inputs or targets too large for float32)."""
    where = f"the loss became {value} at epoch {epoch}, step {step} of {steps}"
    named = list(model.named_parameters()) if hasattr(model, "named_parameters") else []
    for name, p in named:
        data = np.asarray(p.data)
        if data.dtype.kind in "fc" and not np.isfinite(data).all():
            return (
                f"{where}: the weights '{name}' hold {data[~np.isfinite(data)][0]} values, "
                "so training diverged (the steps grew too large); try a smaller learning "
                "rate, or standardize the features"
            )
    sizes = [
        (float(np.abs(np.asarray(p.data)).max()), name)
        for name, p in named
        if np.asarray(p.data).size
    ]
    if sizes and max(sizes)[0] > 1e10:
        size, name = max(sizes)
        return (
            f"{where}: the weights grew to {size:.3g} (in '{name}'), so training diverged "
            "(the steps grew too large); try a smaller learning rate, or standardize the "
            "features"
        )
    data = np.asarray(getattr(out, "data", out))
    if data.size and not np.isfinite(data).all():
        return (
            f"{where}: the model's outputs hold {data[~np.isfinite(data)].flat[0]} while "
            "every weight is finite, so the inputs are too large for float32; standardize "
            "or rescale the features"
        )
    return (
        f"{where} with finite weights and outputs: the targets are too large or not valid "
        "for this loss; rescale the targets (or check their values)"
    )


def _checkpoint_error() -> type[Exception]:
    from .errors import ModelFileError

    return ModelFileError


_FIT_CONSTRAINTS = {"epochs": Interval(int, 1, None), "batch_size": Interval(int, 1, None)}


def _fit_error(name: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"fit: {name} must be {expected}, got {value!r}")


class _NonFinite(Exception):
    def __init__(self, value: float, out: Tensor | None = None) -> None:
        super().__init__(value)
        self.value, self.out = value, out


class _CheckFinite(Unit):
    """The identity, raising when its (loss) value is NaN or infinite: the divergence check of
    fit, as a unit so that a compiled step makes it too, before backward and the update."""

    name = "check_finite"

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, out: Tensor) -> np.ndarray:
        v = float(x) if x.size == 1 else float(x.sum())
        if not math.isfinite(v):
            raise _NonFinite(v, out)  # the model's outputs, for the message
        return x

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Grads:
        return grad, None


#: One training step: a batch in, (the loss, the model's outputs) out.
StepFn = Callable[[np.ndarray, np.ndarray], tuple[Tensor, Tensor]]


def _step_function(
    model: Module,
    loss_fn: LossFn,
    optimizer: Optimizer,
    X: np.ndarray,
    y: np.ndarray,
    compiled: bool,
) -> tuple[StepFn, np.ndarray, np.ndarray]:
    """The training step (zero_grad, forward, loss, divergence check, backward, update) and the
    data it takes: float features (and float targets) in the parameters' dtype once, up front,
    instead of batch by batch in the layers (the same values)."""
    dt = None
    for p in getattr(model, "parameters", lambda: ())():
        if p.data.dtype.kind == "f":
            dt = p.data.dtype
            break
    if dt is not None and X.dtype.kind == "f" and X.dtype != dt:
        X = X.astype(dt)
    y_step = y
    if compiled and dt is not None and y.dtype.kind == "f" and y.dtype != dt:
        y_step = y.astype(dt)

    if not compiled:

        def eager_step(xb: np.ndarray, yb: np.ndarray) -> tuple[Tensor, Tensor]:
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            value = float(loss.data)
            if not math.isfinite(value):
                raise _NonFinite(value, out)
            loss.backward()
            optimizer.step()
            return loss, out

        return eager_step, X, y_step

    def step(xb: np.ndarray, yb: np.ndarray) -> tuple[Tensor, Tensor]:
        optimizer.zero_grad()
        out = model(xb)
        loss = _CheckFinite.apply(loss_fn(out, yb), out)
        loss.backward()
        optimizer.step()
        return loss, out

    return _compile(step), X, y_step


#: fit's validation: a fraction of the training set held out, or a set (X_val, y_val).
Validation = float | tuple[Any, Any] | list[Any] | None


def _training_data(
    X: Tensor | ArrayLike, y: Tensor | ArrayLike, validation: Validation, seed: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(X, y, X_val, y_val) as numpy arrays, checked: the validation set given, or a fraction
    of (X, y) held out (split with ``seed``), or none (X_val and y_val are None)."""
    from .data import train_test_split

    X, y = _as_numpy(X, "X"), _as_numpy(y, "y")
    if len(X) != len(y):
        raise DataError(f"fit: X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise DataError("fit: the training set is empty")
    if validation is None:
        return X, y, None, None
    if isinstance(validation, (tuple, list)) and len(validation) == 2:
        return X, y, _as_numpy(validation[0], "X_val"), _as_numpy(validation[1], "y_val")
    if isinstance(validation, (float, int)) and not isinstance(validation, bool):
        if not 0 < validation < 1:
            raise ConfigError(
                f"fit: validation must be a fraction between 0 and 1, got {validation}"
            )
        X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=validation, seed=seed)
        return X_fit, y_fit, X_val, y_val
    raise ConfigError("fit: validation must be a fraction or a pair (X_val, y_val)")


def _add_progress_bar(progress: bool | str, callbacks: list[Callback]) -> ProgressBar | None:
    """fit(progress=...)'s bar, appended to the callbacks (None when there is none to show)."""
    if not progress:
        return None
    bar = view("progress_bar")(progress)  # chainrule.callbacks provides it
    if bar is not None:
        callbacks.append(bar)
    return bar


class _EpochSums:
    """What one pass over the mini-batches adds up: the loss summed over the samples, the
    outputs and targets kept for the epoch's metrics, each parameter's gradient norms."""

    __slots__ = ("total_loss", "seen", "out_parts", "y_parts", "norms")

    def __init__(self, named: Sequence[tuple[str, Tensor]]) -> None:
        self.total_loss, self.seen = 0.0, 0
        self.out_parts: list[np.ndarray] = []
        self.y_parts: list[np.ndarray] = []
        self.norms = {name: 0.0 for name, _ in named}


def _train_epoch(
    state: TrainState,
    run_step: StepFn,
    epoch_batches: Iterable[tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    y_step: np.ndarray,
    metrics: Sequence[Metric],
    named: Sequence[tuple[str, Tensor]],
    callbacks: Sequence[Callback],
) -> _EpochSums:
    """One epoch's steps over ``epoch_batches``; returns its :class:`_EpochSums`. ``y_step`` is
    ``y`` in the parameters' dtype when it differs (the batches then carry row indices)."""
    sums = _EpochSums(named)
    norms = sums.norms
    total_loss, seen = 0.0, 0
    out_parts, y_parts = sums.out_parts, sums.y_parts
    by_index = y_step is not y
    for step, (xb, yb) in enumerate(epoch_batches, start=1):
        state.step = step
        if by_index:  # float targets in the model's dtype for the step
            yb, ys = y[yb], y_step[yb]
        else:
            ys = yb
        try:
            loss, out = run_step(xb, ys)
        except _NonFinite as err:
            message = _diverged(
                state.model, err.out, err.value, state.epoch, step, state.steps_per_epoch
            )
            raise TrainingError(message, state.history) from None
        value = float(loss.data)
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
    sums.total_loss, sums.seen = total_loss, seen
    return sums


def _epoch_logs(
    state: TrainState,
    sums: _EpochSums,
    metrics: Sequence[Metric],
    kind: str,
    validation: tuple[np.ndarray | None, np.ndarray | None],
) -> dict[str, float]:
    """The epoch's record: mean training loss, training metrics (on the batches as they were
    trained), validation loss and metrics, the learning rate."""
    logs = {"loss": sums.total_loss / sums.seen}
    if metrics:
        train_out = np.concatenate(sums.out_parts)
        train_y = np.concatenate(sums.y_parts)
        for m in metrics:
            name = m if isinstance(m, str) else getattr(m, "__name__", "metric")
            logs[name] = compute_metric(m, train_out, train_y, kind)
    X_val, y_val = validation
    if X_val is not None and y_val is not None and len(X_val):
        val = evaluate(state.model, state.loss_fn, X_val, y_val, metrics)
        logs.update({"val_" + k: v for k, v in val.items()})
    groups = getattr(state.optimizer, "param_groups", None)
    if groups:
        logs["lr"] = float(groups[0]["lr"])
    return logs


def _record_epoch(
    state: TrainState, sums: _EpochSums, logs: dict[str, float], verbose: bool
) -> None:
    """The epoch's logs and gradient norms into the history (and printed when ``verbose``)."""
    history, epoch = state.history, state.epoch
    history.append(epoch, logs)
    for name, total in sums.norms.items():
        history.grad_norms.setdefault(name, []).append(total / state.steps_per_epoch)
    state.logs = logs
    if verbose:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in logs.items())
        print(f"epoch {epoch}/{state.epochs}: {shown}")


def _end_epoch(
    state: TrainState, callbacks: list[Callback], run: _Snapshots | None, start: float
) -> bool:
    """Callbacks' on_epoch_end, then the epoch's checkpoint; True when training stops here."""
    for cb in callbacks:
        cb.on_epoch_end(state)
    if state.stop_training:
        state.history.stopped_epoch = state.epoch
    if run is not None:
        state.history.seconds = time.perf_counter() - start
        run.after_epoch(state.epoch)
    return state.stop_training


def _step_scheduler(scheduler: LRScheduler | None, logs: dict[str, float]) -> None:
    """A schedule steps once per epoch; ReduceLROnPlateau on the monitored loss."""
    if scheduler is None:
        return
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(logs.get("val_loss", logs["loss"]))
    else:
        scheduler.step()


class _Snapshots:
    """fit's checkpoints: what identifies the run (settings and data fingerprint), the snapshot
    of the last finished epoch (written after every epoch with ``checkpoint=``, or only on
    Ctrl-C with ``interrupt_checkpoint=``), and resuming from one."""

    def __init__(
        self,
        state: TrainState,
        rng: np.random.Generator,
        scheduler: LRScheduler | None,
        callbacks: list[Callback],
        settings: dict[str, Any] | None,
        path: PathLike | None,
    ) -> None:
        self.state, self.rng, self.scheduler = state, rng, scheduler
        self.callbacks, self.settings, self.path = callbacks, settings, path
        self.snapshot: bytes | None = None
        self.epoch = 0

    def describe_fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None,
        batch_size: int,
        shuffle: bool,
        seed: int | None,
        metrics: Sequence[Metric],
    ) -> None:
        from .checkpoint import data_fingerprint

        self.fit_settings: dict[str, Any] = {
            "batch_size": int(batch_size),
            "shuffle": bool(shuffle),
            "seed": seed,
            "n_train": len(X),
            "n_validation": None if X_val is None else len(X_val),
            "metrics": [m if isinstance(m, str) else getattr(m, "__name__", "") for m in metrics],
            "loss": type(self.state.loss_fn).__name__,
        }
        self.fingerprint = data_fingerprint(X, y)

    def resume(self, path: PathLike) -> int:
        """Load the checkpoint at ``path`` into the run; the first epoch still to train."""
        from .checkpoint import load_checkpoint

        state = self.state
        record = load_checkpoint(
            path,
            model=state.model,
            optimizer=state.optimizer,
            rng=self.rng,
            history=state.history,
            scheduler=self.scheduler,
            callbacks=self.callbacks,
            fit_settings=self.fit_settings,
            fingerprint=self.fingerprint,
        )
        return state.epochs + 1 if record.get("stopped") else record["epoch"] + 1

    def after_epoch(self, epoch: int) -> None:
        from .checkpoint import checkpoint_bytes

        state = self.state
        self.snapshot = checkpoint_bytes(
            model=state.model,
            optimizer=state.optimizer,
            epoch=epoch,
            history=state.history,
            rng=self.rng,
            scheduler=self.scheduler,
            callbacks=self.callbacks,
            fit_settings=self.fit_settings,
            settings=self.settings,
            fingerprint=self.fingerprint,
            stopped=state.stop_training,
        )
        self.epoch = epoch
        if self.path is not None:
            from ._files import write_atomic

            write_atomic(self.path, self.snapshot, _checkpoint_error())

    def on_interrupt(
        self, interrupt: KeyboardInterrupt, interrupt_checkpoint: PathLike | None
    ) -> None:
        """Ctrl-C: the last finished epoch's snapshot is on disk (written now for
        ``interrupt_checkpoint``); the KeyboardInterrupt carries where and which epoch."""
        where = self.path if self.path is not None else interrupt_checkpoint
        if where is None or self.snapshot is None:
            return
        if self.path is None:
            from ._files import write_atomic

            write_atomic(where, self.snapshot, _checkpoint_error())
        # what the caller (the command) reports: where the snapshot is, and its epoch
        interrupt.checkpoint = os.fspath(where)  # type: ignore[attr-defined]
        interrupt.epoch = self.epoch  # type: ignore[attr-defined]


def fit(
    model: Module,
    loss_fn: LossFn,
    optimizer: Optimizer,
    X: Tensor | ArrayLike,
    y: Tensor | ArrayLike,
    epochs: int = 10,
    batch_size: int = 32,
    validation: Validation = None,
    metrics: Sequence[Metric] | None = ("accuracy",),
    callbacks: Iterable[Callback] | None = (),
    scheduler: LRScheduler | None = None,
    seed: int | None = 0,
    shuffle: bool = True,
    track_grad_norms: bool = False,
    verbose: bool = False,
    progress: bool | str = False,
    checkpoint: PathLike | None = None,
    resume: PathLike | None = None,
    interrupt_checkpoint: PathLike | None = None,
    settings: dict[str, Any] | None = None,
    compile: bool = True,  # noqa: A002 - the name users expect
) -> History:
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
    compile : bool, default True
        Run the training step through :func:`chainrule.compile`: traced on its first calls,
        replayed afterwards (the same numbers, less Python per step). ``False``: eager steps.
    checkpoint : path, optional
        Write a checkpoint (:mod:`chainrule.checkpoint`) there, atomically, after every epoch:
        weights, optimizer, scheduler, callbacks' state, random generators, history.
    resume : path, optional
        Go on from a checkpoint: the run then ends with exactly the weights the uninterrupted
        run would have (build the model, optimizer and scheduler as for the first run; the
        data and the fit settings must be the same; ``epochs`` may be larger).
    interrupt_checkpoint : path, optional
        Write the checkpoint of the last finished epoch there only when the run is interrupted
        (Ctrl-C); the KeyboardInterrupt then carries ``.checkpoint`` and ``.epoch``.
    settings : dict, optional
        JSON-ready settings stored in the checkpoint for the caller (the command keeps its
        options and data source there).

    Raises
    ------
    TrainingError
        When the loss becomes NaN or infinite (naming the epoch and step); its ``.history``
        holds the epochs done.
    """
    from .data import batches as _batches

    check_params({"epochs": epochs, "batch_size": batch_size}, _FIT_CONSTRAINTS, _fit_error)
    X, y, X_val, y_val = _training_data(X, y, validation, seed)
    metrics = list(metrics or ())
    kind = output_kind(loss_fn)
    state = TrainState(model, loss_fn, optimizer, epochs, math.ceil(len(X) / batch_size), History())
    history = state.history
    callbacks = list(callbacks or ())
    bar = _add_progress_bar(progress, callbacks)
    state.X, state.y = X, y
    named = list(model.named_parameters()) if track_grad_norms else []
    rng = get_rng(seed=seed)  # the default generator (cr.manual_seed) when seed is None
    start = time.perf_counter()
    if hasattr(model, "train"):
        model.train()
    for cb in callbacks:
        cb.on_train_begin(state)
    run = None
    if checkpoint is not None or interrupt_checkpoint is not None or resume is not None:
        run = _Snapshots(state, rng, scheduler, callbacks, settings, checkpoint)
        run.describe_fit(X, y, X_val, batch_size, shuffle, seed, metrics)
    first = 1
    if run is not None and resume is not None:
        first = run.resume(resume)
        start -= history.seconds
    # numeric trouble is reported in words (the loss check below), not as numpy warnings
    quiet_numpy = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    quiet_numpy.__enter__()
    run_step, X, y_step = _step_function(model, loss_fn, optimizer, X, y, compile)
    idx = None if y_step is y else np.arange(len(y))
    try:
        for epoch in range(first, epochs + 1):
            state.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(state)
            batches = _batches(
                X, y if idx is None else idx, batch_size=batch_size, shuffle=shuffle, rng=rng
            )
            done = _train_epoch(state, run_step, batches, y, y_step, metrics, named, callbacks)
            logs = _epoch_logs(state, done, metrics, kind, (X_val, y_val))
            _record_epoch(state, done, logs, verbose)
            _step_scheduler(scheduler, logs)
            if _end_epoch(state, callbacks, run, start):
                break
    except KeyboardInterrupt as interrupt:
        if run is not None:
            run.on_interrupt(interrupt, interrupt_checkpoint)
        raise
    finally:
        quiet_numpy.__exit__(None, None, None)
        history.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()  # also when training failed: no bar left half-drawn
    for cb in callbacks:
        cb.on_train_end(state)
    return history
