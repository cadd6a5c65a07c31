"""Checkpoints: everything a training run needs to go on exactly where it stopped.

One ``.safetensors`` file (written atomically) holds, after an epoch: the model's weights, the
optimizer's state (moments, step counts, hyperparameters), the learning-rate schedule, the
callbacks' state (early stopping's best value, patience counter and best weights), both random
generators (the shuffling one and the default one that dropout draws from), the history, the
fit settings and the caller's own settings (the command stores its options and data source), and
a fingerprint of the training data. ``fit(..., resume=path)`` restores all of it, so that the
resumed run ends with the same weights, bit for bit, as the run that was never interrupted.

    history = cr.fit(model, loss, opt, X, y, epochs=30, checkpoint="run.ckpt")
    # ... interrupted; later, with the same model/optimizer construction:
    history = cr.fit(model, loss, opt, X, y, epochs=30, resume="run.ckpt")
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from ._files import write_atomic
from .errors import ModelFileError

__all__ = [
    "save_checkpoint",
    "checkpoint_bytes",
    "load_checkpoint",
    "read_checkpoint_settings",
    "FORMAT",
    "data_fingerprint",
]

FORMAT = "chainrule-checkpoint"
FORMAT_VERSION = "1"


def data_fingerprint(X, y) -> str:
    """A short hash of the training data (shape, dtype and bytes), to notice a different file."""
    h = hashlib.sha256()
    for a in (X, y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return h.hexdigest()[:32]


def _rng_state(rng) -> dict:
    return rng.bit_generator.state


def _set_rng_state(rng, state, path, what):
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(
            f"{path}: the {what} random state cannot be restored ({err})"
        ) from None


def _callback_states(callbacks) -> list:
    return [
        (type(cb).__name__, cb.state_dict())
        for cb in callbacks
        if callable(getattr(cb, "state_dict", None))
    ]


def save_checkpoint(path, **state) -> str:
    """Write a checkpoint of a run (the arguments of :func:`checkpoint_bytes`) atomically;
    return the path."""
    write_atomic(path, checkpoint_bytes(**state), ModelFileError)
    return os.fspath(path)


def checkpoint_bytes(
    *,
    model,
    optimizer,
    epoch: int,
    history,
    rng,
    scheduler=None,
    callbacks=(),
    fit_settings: dict | None = None,
    settings: dict | None = None,
    fingerprint: str | None = None,
    stopped: bool = False,
) -> bytes:
    """The checkpoint of a run after ``epoch`` epochs, as the bytes of a safetensors file."""
    try:
        from safetensors.numpy import save as to_bytes
    except ImportError:
        raise ModelFileError("checkpoints need safetensors: pip install 'chainrule[io]'") from None

    from . import random as _random

    tensors = {f"model/{k}": np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    opt_state = (
        optimizer.state_dict() if optimizer is not None else {"state": {}, "param_groups": []}
    )
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in opt_state["state"].items():
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                tensors[f"optim/{idx}/{name}"] = np.ascontiguousarray(value)
            else:
                scalars.setdefault(str(idx), {})[name] = value
    cb_meta = []
    for i, (kind, state) in enumerate(_callback_states(callbacks)):
        arrays = state.pop("arrays", None) or {}
        for k, v in arrays.items():
            tensors[f"callback/{i}/{k}"] = np.ascontiguousarray(v)
        cb_meta.append({"type": kind, "state": state, "arrays": sorted(arrays)})
    record = {
        "epoch": int(epoch),
        "stopped": bool(stopped),
        "optimizer": {
            "type": type(optimizer).__name__,
            "param_groups": opt_state["param_groups"],
            "scalars": scalars,
        },
        "scheduler": (
            {"type": type(scheduler).__name__, "state": scheduler.state_dict()}
            if scheduler is not None
            else None
        ),
        "callbacks": cb_meta,
        "rng": _rng_state(rng),
        "default_rng": _rng_state(_random.default_rng()),
        "history": history.to_dict(),
        "fit": fit_settings or {},
        "settings": settings or {},
        "fingerprint": fingerprint,
        "training_mode": bool(getattr(model, "training", True)),
    }
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "checkpoint": json.dumps(record, default=_json_default),
    }
    try:
        from .io import describe

        meta["architecture"] = json.dumps(describe(model))
    except ModelFileError:
        pass  # a custom module: the weights are enough to resume into the same model
    return to_bytes(tensors, metadata=meta)


def _as_list(value):
    """Lists and tuples compare as lists (a JSON record turns tuples into lists)."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _read(path):
    from safetensors import safe_open

    from ._schema import _parse, check_file

    path = os.fspath(path)
    tensors, meta = check_file(path)
    if meta.get("format") != FORMAT:
        what = "a chainrule model file" if meta.get("format") == "chainrule" else "not a checkpoint"
        raise ModelFileError(
            f"{path} is {what}; --resume/resume= expects a checkpoint written "
            "by --checkpoint/checkpoint="
        )
    record = _parse(path, "checkpoint", meta.get("checkpoint", ""))
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        raise ModelFileError(f"{path}: the checkpoint record is damaged (no epoch)")
    try:
        with safe_open(path, framework="numpy") as f:
            # safe_open is not a dict: it has keys() but cannot be iterated
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as err:  # noqa: BLE001
        raise ModelFileError(
            f"{path} is not a readable checkpoint ({str(err).splitlines()[0]})"
        ) from None
    return record, arrays


def read_checkpoint_settings(path) -> dict:
    """The caller's settings stored in a checkpoint (the command's options and data source),
    with ``'epoch'`` (epochs done) added."""
    record, _ = _read(path)
    settings = dict(record.get("settings") or {})
    settings["epoch"] = record["epoch"]
    return settings


def load_checkpoint(
    path,
    *,
    model,
    optimizer,
    rng,
    history,
    scheduler=None,
    callbacks=(),
    fit_settings: dict | None = None,
    fingerprint: str | None = None,
) -> dict:
    """Restore a run from ``path`` into the given objects; return the checkpoint record
    (``record['epoch']``: the epochs done). Refuses a checkpoint of another model, optimizer,
    schedule, data or fit settings, naming what differs."""
    from . import random as _random

    path = os.fspath(path)
    record, arrays = _read(path)

    def differs(what, saved, now):
        raise ModelFileError(
            f"{path}: the checkpoint was written with {what} {saved}, this run "
            f"has {now}; resume with the same settings"
        )

    saved_fit = record.get("fit") or {}
    for key, now in (fit_settings or {}).items():
        if key in saved_fit and saved_fit[key] != now:
            differs(key, saved_fit[key], now)
    if fingerprint is not None and record.get("fingerprint") not in (None, fingerprint):
        raise ModelFileError(
            f"{path}: the training data differ from the data the checkpoint "
            "was written with; resume with the same data"
        )
    weights = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    own = model.state_dict()
    for k, ref in own.items():
        a = weights.get(k)
        if a is not None and np.ndim(ref) == 0 and a.shape == (1,):
            weights[k] = a.reshape(())
    try:
        model.load_state_dict(weights)
    except Exception as err:  # noqa: BLE001 - a different architecture
        raise ModelFileError(
            f"{path}: the checkpoint's weights do not fit this model: {str(err).splitlines()[0]}"
        ) from None
    saved_opt = record.get("optimizer") or {}
    if optimizer is not None:
        if saved_opt.get("type") != type(optimizer).__name__:
            differs("optimizer", saved_opt.get("type"), type(optimizer).__name__)
        state: dict[str, dict[str, Any]] = {}
        for key, v in arrays.items():
            if key.startswith("optim/"):
                _, idx, name = key.split("/", 2)
                state.setdefault(idx, {})[name] = v
        for idx, entry in (saved_opt.get("scalars") or {}).items():
            state.setdefault(idx, {}).update(entry)
        try:
            optimizer.load_state_dict({"state": state, "param_groups": saved_opt["param_groups"]})
        except Exception as err:  # noqa: BLE001
            raise ModelFileError(
                f"{path}: the optimizer state does not fit this optimizer: "
                f"{str(err).splitlines()[0]}"
            ) from None
    saved_sched = record.get("scheduler")
    if (saved_sched is None) != (scheduler is None):
        differs(
            "a learning-rate schedule" if saved_sched else "no learning-rate schedule",
            "",
            "none" if scheduler is None else type(scheduler).__name__,
        )
    if scheduler is not None:
        if saved_sched["type"] != type(scheduler).__name__:
            differs("schedule", saved_sched["type"], type(scheduler).__name__)
        scheduler.load_state_dict(saved_sched["state"])
    with_state = [cb for cb in callbacks if callable(getattr(cb, "load_state_dict", None))]
    saved_cbs = record.get("callbacks") or []
    if [type(cb).__name__ for cb in with_state] != [c["type"] for c in saved_cbs]:
        differs(
            "callbacks", [c["type"] for c in saved_cbs], [type(cb).__name__ for cb in with_state]
        )
    for i, (cb, saved) in enumerate(zip(with_state, saved_cbs, strict=True)):
        state = dict(saved["state"])
        state["arrays"] = {k: arrays[f"callback/{i}/{k}"] for k in saved.get("arrays", [])}
        cb.load_state_dict(state)
    _set_rng_state(rng, record["rng"], path, "shuffling")
    _set_rng_state(_random.default_rng(), record["default_rng"], path, "default")
    h = record.get("history") or {}
    history.epochs = list(h.get("epochs", []))
    history.history = {k: list(v) for k, v in (h.get("history") or {}).items()}
    history.grad_norms = {k: list(v) for k, v in (h.get("grad_norms") or {}).items()}
    history.best_epoch = h.get("best_epoch")
    history.stopped_epoch = h.get("stopped_epoch")
    history.stop_reason = h.get("stop_reason")
    history.seconds = float(h.get("seconds") or 0.0)
    if hasattr(model, "train"):
        model.train(record.get("training_mode", True))
    return record


#: options of ``chainrule train`` that may differ from the checkpointed run's on --resume
FREE_OPTIONS = ("epochs", "out", "report", "quiet", "checkpoint", "resume")


def resume_options(path, given: dict) -> dict:
    """The command's options for resuming from the checkpoint at ``path``: the stored ones,
    checked against those ``given`` again on the command line (they must agree, except
    ``FREE_OPTIONS``, which override). Raises ConfigError naming the first disagreement."""
    from ._files import same_file
    from .errors import ConfigError

    stored = read_checkpoint_settings(path)
    stored.pop("epoch", None)
    options = stored.get("options")
    if not isinstance(options, dict):
        raise ModelFileError(
            f"{os.fspath(path)} was not written by 'chainrule train "
            "--checkpoint' (no command options in it); resume it from Python "
            "with fit(..., resume=...)"
        )
    merged = dict(options)
    for key, value in given.items():
        if key in FREE_OPTIONS or key not in options:
            merged[key] = value
            continue
        saved = options[key]
        if key == "data_file" and saved and value:
            agree = same_file(saved, value)
        else:
            agree = _as_list(saved) == _as_list(value)
        if not agree:
            flag = "--" + (
                "data"
                if key == "data_file"
                else "id-column"
                if key == "id_columns"
                else key.replace("_", "-")
            )
            raise ConfigError(
                f"{flag} {value} disagrees with the checkpoint {os.fspath(path)}, "
                f"which was trained with {flag} {saved}; leave it out to use the "
                "checkpoint's value"
            )
    return merged
