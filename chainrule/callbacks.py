"""Callbacks for :func:`chainrule.fit`: a progress bar, live training plots, early stopping.

    import chainrule as cr
    history = cr.fit(model, loss_fn, opt, X, y, epochs=200, progress=True)      # a bar
    live = cr.callbacks.LivePlot()                  # curves (+ decision boundary for 2 features)
    history = cr.fit(model, loss_fn, opt, X, y, epochs=200, callbacks=[live])

A callback is an object with the hooks of :class:`chainrule.train.Callback`
(``on_train_begin``, ``on_epoch_begin``, ``on_batch_end``, ``on_epoch_end``, ``on_train_end``);
each receives the :class:`~chainrule.train.TrainState`.

The bar uses ``tqdm`` when it is installed (``tqdm.auto``: a widget in a notebook with
ipywidgets, text in a terminal) and ``rich`` otherwise; ``pip install 'chainrule[notebook]'``
brings tqdm, ipywidgets and matplotlib. LivePlot needs matplotlib, and IPython to redraw in a
notebook. All of them are imported when a callback starts, never by ``import chainrule``.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

from ._views import provide
from .display import in_notebook
from .train import Callback, EarlyStopping

__all__ = ["Callback", "EarlyStopping", "ProgressBar", "LivePlot", "progress_bar", "is_interactive"]


def is_interactive(stream=None) -> bool:
    """True in a Jupyter kernel or when ``stream`` (default: standard error) is a terminal."""
    if in_notebook():
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _logs_postfix(logs: dict, first_lr) -> dict:
    """The epoch's numbers for the bar: loss and metrics, the learning rate once it changed."""
    out = {}
    for k, v in logs.items():
        if k == "lr" and (first_lr is None or v == first_lr):
            continue
        out[k] = f"{v:.4g}"
    return out


class ProgressBar(Callback):
    """One bar over the epochs with the latest loss and metrics beside it.

    Parameters
    ----------
    backend : 'auto', 'tqdm' or 'rich'
        'auto' takes tqdm when it is installed (``tqdm.auto``: the notebook widget when
        ipywidgets is there, text otherwise), rich otherwise.
    file : stream, optional
        Where a text bar is written (standard error by default).
    leave : bool
        Keep the finished bar on screen.

    Within long epochs the bar also shows the step and the latest batch's loss (at most twice
    a second). The bar is closed when training ends (with ``fit(progress=...)`` also when
    it fails).
    """

    def __init__(self, backend: str = "auto", file=None, leave: bool = True):
        if backend not in ("auto", "tqdm", "rich"):
            raise ValueError(
                f"ProgressBar: backend must be 'auto', 'tqdm' or 'rich', got {backend!r}"
            )
        if backend == "auto":
            if not (_has("tqdm") or _has("rich")):
                raise ImportError(
                    "a progress bar needs tqdm or rich: pip install 'chainrule[notebook]'"
                )
            backend = "tqdm" if _has("tqdm") else "rich"
        self.backend, self.file, self.leave = backend, file, leave
        self._bar = self._progress = None
        self._last_step_draw = 0.0
        self._first_lr = None

    # --- tqdm ----------------------------------------------------------------------------------
    def _tqdm_class(self):
        try:
            import tqdm  # noqa: F401
        except ImportError:
            raise ImportError("ProgressBar(backend='tqdm') needs tqdm: pip install tqdm") from None
        if in_notebook() and self.file is None and _has("ipywidgets"):
            from tqdm.notebook import tqdm as cls  # what tqdm.auto picks in a notebook

            return cls
        # tqdm.auto without ipywidgets falls back to this one too (after a warning we spare)
        from tqdm.std import tqdm as cls

        return cls

    def on_train_begin(self, state):
        self._first_lr = None
        self._last_step_draw = 0.0
        if self.backend == "tqdm":
            cls = self._tqdm_class()
            self._bar = cls(
                total=state.epochs,
                desc="epoch",
                unit="epoch",
                leave=self.leave,
                file=self.file,
                dynamic_ncols=True,
            )
        else:
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
            except ImportError:
                raise ImportError(
                    "ProgressBar(backend='rich') needs rich: pip install rich"
                ) from None
            console = Console(file=self.file if self.file is not None else sys.stderr)
            self._progress = Progress(
                TextColumn("epoch"),
                MofNCompleteColumn(),
                BarColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[logs]}"),
                console=console,
                transient=not self.leave,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=state.epochs, logs="")

    def _text(self, postfix: dict) -> str:
        return "  ".join(f"{k} {v}" for k, v in postfix.items())

    def on_batch_end(self, state):
        if state.steps_per_epoch < 2:
            return
        now = time.perf_counter()
        if now - self._last_step_draw < 0.5:
            return
        self._last_step_draw = now
        text = f"step {state.step}/{state.steps_per_epoch}  batch loss {state.batch_loss:.4g}"
        if self._bar is not None:
            self._bar.set_postfix_str(text)
        elif self._progress is not None:
            self._progress.update(self._task, logs=text)

    def on_epoch_end(self, state):
        if self._first_lr is None:
            self._first_lr = state.logs.get("lr")
        post = _logs_postfix(state.logs, self._first_lr)
        if self._bar is not None:
            self._bar.set_postfix(post, refresh=False)
            self._bar.update(1)
        elif self._progress is not None:
            self._progress.update(self._task, advance=1, logs=self._text(post))

    def on_train_end(self, state):
        self.close()

    def close(self):
        """Finish the bar (fit calls this also when training stops with an error)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def progress_bar(progress, file=None):
    """The bar ``fit(progress=...)`` asks for, or None.

    ``True``: a bar when the output is interactive (a notebook, or standard error is a
    terminal) and nothing otherwise (logs, pipes, CI). ``'tqdm'`` / ``'rich'``: that library,
    shown even when the output is not interactive. ``False`` / ``None``: nothing. A
    :class:`ProgressBar` is used as it is.
    """
    if progress is None or progress is False:
        return None
    if isinstance(progress, ProgressBar):
        return progress
    if progress is True:
        if not is_interactive(file):
            return None
        try:
            return ProgressBar("auto", file=file)
        except ImportError as err:
            warnings.warn(f"fit(progress=True): {err}", stacklevel=3)
            return None
    if progress in ("tqdm", "rich", "auto"):
        return ProgressBar(progress, file=file)
    raise ValueError(
        f"fit: progress must be True, False, 'tqdm', 'rich' or a ProgressBar, got {progress!r}"
    )


class LivePlot(Callback):
    """The loss and metric curves, redrawn in place while training (and, for inputs with two
    features, the decision boundary beside them, Playground style).

    In a notebook the picture is one output that is updated (an IPython display handle); in a
    terminal, give ``path`` to have a PNG (or SVG/PDF, by its suffix) rewritten instead. After
    training, ``live.figure`` is the last picture (a figure that a notebook shows by itself).

    Parameters
    ----------
    X, y : arrays, optional
        The points for the decision-boundary panel (the features as the model sees them);
        by default the training data of ``fit``.
    boundary : bool or 'auto'
        Draw the decision boundary: 'auto' when X has exactly two features.
    every : float, optional
        Seconds between two redraws (0: every epoch). By default at least 0.5 s, and at least
        twice as long as the last redraw took, so that drawing never takes more than a third of
        the time. The last epoch is always drawn.
    path : str, optional
        Outside a notebook, write the picture to this file (replaced atomically) when redrawn.
    standardizer, label_names, output_kind, feature_names
        Passed to :func:`chainrule.viz.plots.decision_boundary`.
    resolution : int
        Grid points per side of the decision boundary (smaller draws faster).
    """

    def __init__(
        self,
        X=None,
        y=None,
        boundary="auto",
        every: float | None = None,
        path=None,
        standardizer=None,
        label_names=None,
        output_kind=None,
        feature_names=None,
        resolution: int = 80,
        title: str | None = None,
    ):
        if boundary not in (True, False, "auto"):
            raise ValueError(f"LivePlot: boundary must be True, False or 'auto', got {boundary!r}")
        if every is not None and every < 0:
            raise ValueError(f"LivePlot: every must be >= 0 seconds, got {every}")
        self.X, self.y, self.boundary, self.every, self.path = X, y, boundary, every, path
        self.standardizer, self.label_names = standardizer, label_names
        self.output_kind, self.feature_names = output_kind, feature_names
        self.resolution, self.title = resolution, title
        self.figure = None
        self.redraws = 0
        self._handle = None
        self._next = -np.inf
        self._layout = None
        self._drawn_epoch = None

    def on_train_begin(self, state):
        from .viz import plots

        plots._mpl()  # the friendly error before training starts, not after the first epoch
        self._handle, self._next, self._drawn_epoch, self.redraws = None, -np.inf, None, 0
        self._layout = None
        X = self.X if self.X is not None else getattr(state, "X", None)
        y = self.y if self.y is not None else getattr(state, "y", None)
        self._points = None
        if X is not None and y is not None:
            X = np.asarray(X)
            if X.ndim == 2 and X.shape[1] == 2 and self.boundary in (True, "auto"):
                y = np.asarray(y)
                if y.ndim == 2 and y.shape[1] > 1:  # one-hot targets -> class indices
                    y = y.argmax(axis=1)
                self._points = (X, y.reshape(-1))
        if self.boundary is True and self._points is None:
            raise ValueError(
                "LivePlot(boundary=True): the decision boundary needs inputs with "
                "exactly 2 features (give X and y)"
            )
        self._notebook = in_notebook()

    def on_epoch_end(self, state):
        if not self._notebook and self.path is None:
            return  # nowhere to show it: only the final picture is drawn (live.figure)
        last_epoch = state.epoch == state.epochs or state.stop_training
        if last_epoch or time.perf_counter() >= self._next:
            start = time.perf_counter()
            self._draw(state)
            took = time.perf_counter() - start
            # by default 0.5 s apart at least, and drawing takes at most a third of the time
            wait = max(0.5, 2 * took) if self.every is None else self.every
            self._next = time.perf_counter() + wait

    def on_train_end(self, state):
        if self._drawn_epoch != state.epoch:
            self._draw(state)

    def draw(self, state):
        """The picture for this state of training (a new figure)."""
        from .viz import plots

        panels = plots.curve_panels(state.history)
        n = len(panels) + (self._points is not None)
        fig = plots._figure(max(4.6, 3.6 * n), 3.3)
        axes = fig.subplots(1, n, squeeze=False)[0]
        plots.loss_curves(state.history, axes=axes[: len(panels)])
        if self._points is not None:
            X, y = self._points
            plots.decision_boundary(
                state.model,
                X,
                y,
                standardizer=self.standardizer,
                label_names=self.label_names,
                output_kind=self.output_kind,
                feature_names=self.feature_names,
                resolution=self.resolution,
                ax=axes[-1],
                title="decision boundary",
            )
        fig.suptitle(self.title or f"epoch {state.epoch} of {state.epochs}", fontsize=10)
        if self._layout is None or self._layout[0] != n:
            fig.tight_layout()  # once: later pictures reuse its margins (it costs a drawing)
            p = fig.subplotpars
            self._layout = (
                n,
                dict(
                    left=p.left,
                    right=p.right,
                    bottom=p.bottom,
                    top=p.top,
                    wspace=p.wspace,
                    hspace=p.hspace,
                ),
            )
        else:
            fig.subplots_adjust(**self._layout[1])
        return fig

    def _draw(self, state):
        if not state.history.epochs:
            return
        fig = self.draw(state)
        self._drawn_epoch = state.epoch
        self.redraws += 1
        old, self.figure = self.figure, fig
        if old is not None:
            old.clear()
        if self._notebook:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(fig, display_id=True)
            else:
                self._handle.update(fig)
        elif self.path is not None:
            from ._files import replacing

            suffix = os.path.splitext(os.fspath(self.path))[1].lstrip(".").lower() or "png"
            with replacing(self.path) as tmp:
                fig.savefig(tmp, format=suffix, dpi=100, facecolor="white")


provide("progress_bar", progress_bar)  # fit(progress=...) asks chainrule._views for it
