"""Model files: one ``.safetensors`` file with the weights and, in its metadata, JSON describing
the architecture, the preprocessing, the training settings and the final metrics.

Loading never runs code: safetensors holds plain arrays, the architecture is rebuilt from a
registry of chainrule layers (``chainrule.registry``), and pickles are refused. Saving is atomic:
the file is written under a temporary name in the same folder and renamed over the old one, so an
interrupted save never destroys the previous model.

    cr.save(model, "model.safetensors", preprocessing={...}, training={...}, metrics={...})
    model = cr.load("model.safetensors")
    model, info = cr.load("model.safetensors", with_info=True)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

import numpy as np

from . import registry
from ._files import write_atomic
from ._views import view
from .errors import ChainruleError, ModelFileError

__all__ = [
    "save",
    "load",
    "read_info",
    "describe",
    "build",
    "FORMAT",
    "FORMAT_VERSION",
    "LOSS_CLASSES",
]

FORMAT = "chainrule"
FORMAT_VERSION = "1"


class _LossNames(Mapping):
    """``{short name: class name}`` of the registered losses, read live from the registry."""

    def _table(self):
        return {
            f.short_name: name
            for name, cls in registry.registered("loss").items()
            if (f := registry.facts_of(cls)).short_name
        }

    def __getitem__(self, key):
        return self._table()[key]

    def __iter__(self):
        return iter(self._table())

    def __len__(self):
        return len(self._table())

    def __repr__(self):
        return repr(self._table())


#: the short loss names that model files (and the command's --loss) use -> chainrule.nn classes
#: (each loss states its ``short_name`` in its class line; see chainrule.registry)
LOSS_CLASSES = _LossNames()


def describe(module) -> dict:
    """The architecture of ``module`` as plain JSON-ready data (registered layers only)."""
    kind = type(module).__name__
    facts = registry.facts_of(module)
    if facts.role == "container" and registry.lookup(kind) is type(module):
        return {"type": kind, "children": [describe(m) for m in module]}
    if facts.config is None or registry.lookup(kind) is not type(module):
        savable = ", ".join(
            sorted(
                n
                for n, c in registry.registered(savable=True).items()
                if registry.facts_of(c).role != "container"
            )
        )
        raise ModelFileError(
            f"save: cannot describe a module of type {kind}: model files hold architectures "
            f"built from chainrule layers ({savable}, in Sequential); "
            "save the weights alone with save(..., weights_only=True)"
        )
    config = {}
    for name in facts.config:
        value = getattr(module, name)
        if name in module._parameters:  # a parameter argument (Linear's bias): whether it exists
            value = value is not None
        config[name] = value
    return {"type": kind, "config": config}


def build(spec: dict):
    """Rebuild a module from :func:`describe`'s output (no code is run but registered layers')."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ModelFileError(
            f"load: the architecture entry {spec!r:.80} is not a layer description"
        )
    kind = spec["type"]
    cls = registry.lookup(kind) if isinstance(kind, str) else None
    facts = registry.facts_of(cls) if cls is not None else None
    if cls is not None and facts is not None and facts.role == "container":
        return cls._from_children([build(c) for c in spec.get("children", [])])
    if cls is None or facts is None or facts.config is None:
        raise ModelFileError(f"load: unknown layer type {kind!r} in the model file")
    config = spec.get("config", {})
    unknown = set(config) - set(facts.config)
    if unknown:
        raise ModelFileError(f"load: layer {kind} has unknown settings {sorted(unknown)}")
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:  # a setting missing or of the wrong kind
        if isinstance(err, ChainruleError):  # a chainrule error says it well itself
            raise
        raise ModelFileError(
            f"load: layer {kind} cannot be built from the file's settings "
            f"{str(config)[:80]}: {str(err).splitlines()[0]}"
        ) from None


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def save(
    model,
    path,
    preprocessing: dict | None = None,
    training: dict | None = None,
    metrics: dict | None = None,
    extra: dict | None = None,
    weights_only: bool = False,
) -> str:
    """Write ``model`` to ``path`` (``.safetensors``) atomically; return the path.

    ``preprocessing`` (feature names, standardization statistics, label names, task),
    ``training`` (settings) and ``metrics`` (final numbers) are stored as JSON in the metadata so
    that the file alone is enough to predict. ``weights_only`` skips the architecture (for
    models that are not built from chainrule layers; load those with ``model.load_state_dict``).
    """
    try:
        from safetensors.numpy import save as to_bytes
    except ImportError:
        raise ModelFileError(
            "save: model files need safetensors: pip install 'chainrule[io]'"
        ) from None
    path = os.fspath(path)
    state = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION}
    if not weights_only:
        meta["architecture"] = json.dumps(describe(model))
    for key, value in (
        ("preprocessing", preprocessing),
        ("training", training),
        ("metrics", metrics),
        ("extra", extra),
    ):
        if value is not None:
            meta[key] = json.dumps(value, default=_json_default)
    # serialized in memory and written by write_atomic: no temporary file outlives a kill
    write_atomic(path, to_bytes(state, metadata=meta), ModelFileError)
    return path


def _read(path, any_safetensors: bool = False):
    """The arrays and the metadata of a model file, after checking the header and every
    metadata section against the schema (nothing is allocated before that)."""
    try:
        import safetensors  # noqa: F401
    except ImportError:
        raise ModelFileError(
            "load: model files need safetensors: pip install 'chainrule[io]'"
        ) from None
    from ._schema import _parse, check_file

    path = os.fspath(path)
    tensors, meta = check_file(path)  # a regular file with a well-formed header, or an error
    for key, (dtype, _, _) in tensors.items():
        if dtype in ("BF16", "F8_E4M3", "F8_E5M2"):  # numpy holds them only with ml_dtypes
            raise ModelFileError(
                f"{path}: tensor '{key}' has dtype {dtype}, which numpy cannot "
                "hold; save it as float32 (tensor.float()) before loading it "
                "into chainrule"
            )
    if any_safetensors and meta.get("format") != FORMAT:
        return _tensors(path), {"format_version": None}
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is a safetensors file but not a chainrule model "
            "(no chainrule metadata); to load its weights into a network "
            "you built, use cr.load(path, into=model)"
        )
    info = {}
    for key in ("architecture", "preprocessing", "training", "metrics", "extra"):
        if key in meta:
            info[key] = _parse(path, key, meta[key])
    info["format_version"] = meta.get("format_version")
    _check(path, tensors, info)  # before a single weight is read or a layer built
    arrays = _tensors(path)
    for name, a in arrays.items():
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0]
            where = f"[{', '.join(map(str, bad))}]" if a.ndim else ""
            raise ModelFileError(
                f"{path}: weight {name}{where} is {a[tuple(bad)]}; a model "
                "with NaN or infinite weights cannot predict (was training "
                "diverging when it was saved?)"
            )
    return arrays, view("model_info")(info)  # a dict shown as tables (from chainrule.display)


def _tensors(path) -> dict:
    """Every tensor of a (header-checked) safetensors file, as numpy arrays."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            # safe_open is not a dict: it has keys() but cannot be iterated
            return {k: _get_tensor(f, k, path) for k in f.keys()}  # noqa: SIM118
    except ModelFileError:
        raise
    except Exception as err:  # noqa: BLE001 - safetensors raises several kinds for bad files
        raise ModelFileError(
            f"{path} is not a readable safetensors file ({str(err).splitlines()[0]}): "
            "it may be truncated or of another format"
        ) from None


def _n_outputs(spec):
    """The width of the last Linear layer of an architecture description (None if unknown)."""
    last = None
    stack = [spec]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            facts = (
                registry.facts_of(node.get("type")) if isinstance(node.get("type"), str) else None
            )
            if facts is not None and facts.role == "container":
                stack[:0] = list(node.get("children") or [])
            elif facts is not None and facts.role == "linear":
                last = (node.get("config") or {}).get("out_features")
    return last if isinstance(last, int) else None


def _check(path, tensors, info):
    from ._schema import check_architecture, check_info

    values = sum(math.prod(shape) for _, shape, _ in tensors.values())
    spec = info.get("architecture")
    if spec is not None:
        savable = registry.registered(savable=True)
        containers = tuple(
            n for n, c in savable.items() if registry.facts_of(c).role == "container"
        )
        known = {
            n: registry.facts_of(c).settings for n, c in savable.items() if n not in containers
        }
        counts = {n: registry.facts_of(c).values for n, c in savable.items()}
        check_architecture(path, spec, known, containers, values, counts)
    check_info(path, info, _n_outputs(spec) if spec is not None else None, tuple(LOSS_CLASSES))


def _get_tensor(f, key: str, path: str) -> np.ndarray:
    try:
        return f.get_tensor(key)
    except TypeError as err:  # a dtype numpy has no type for (bfloat16, float8)
        try:  # ml_dtypes (which onnx and jax install) teaches numpy those types
            import ml_dtypes  # noqa: F401

            return f.get_tensor(key)
        except (ImportError, TypeError):
            pass
        dtype = f.get_slice(key).get_dtype()
        raise ModelFileError(
            f"{path}: tensor '{key}' has dtype {dtype}, which numpy cannot hold; "
            "save it as float32 (tensor.float()) before loading it "
            f"into chainrule, or pip install ml-dtypes "
            f"({str(err).splitlines()[0]})"
        ) from None


def read_info(path) -> dict:
    """The metadata of a model file (architecture, preprocessing, training, metrics)."""
    return _read(path)[1]


def _scalars_as_model(model, arrays: dict) -> None:
    """safetensors may store a 0-d array (BatchNorm's num_batches_tracked) with shape (1,)."""
    for key, ref in model.state_dict().items():
        a = arrays.get(key)
        if a is not None and np.ndim(ref) == 0 and a.shape == (1,):
            arrays[key] = a.reshape(())


def load(path, with_info: bool = False, *, into=None, strict: bool = True):
    """Rebuild the model saved at ``path``; with ``with_info`` also return its metadata dict.

    ``into=model`` loads the weights of any ``.safetensors`` file (a chainrule model file, or
    weights only, as ``safetensors.torch.save_file(net.state_dict(), path)`` writes them) into
    that existing module with ``model.load_state_dict(..., strict=strict)`` and returns it
    (its training mode is left as it was). Keys are PyTorch's dotted names ('0.weight'); each
    array takes the dtype of the parameter it goes into.
    """
    if into is not None:
        from .nn import Module

        if not isinstance(into, Module):
            raise ModelFileError(
                f"load: into= takes a chainrule module to fill, got {type(into).__name__}"
            )
        arrays, info = _read(path, any_safetensors=True)
        _scalars_as_model(into, arrays)
        try:
            into.load_state_dict(arrays, strict=strict)
        except ModelFileError as err:
            raise ModelFileError(f"{os.fspath(path)}: {err}") from None
        return (into, info) if with_info else into
    arrays, info = _read(path)
    if "architecture" not in info:
        raise ModelFileError(
            f"{os.fspath(path)} holds weights only (saved with weights_only=True): "
            "build the model yourself and load them with "
            "cr.load(path, into=model)"
        )
    model = build(info["architecture"])
    _scalars_as_model(model, arrays)
    try:
        model.load_state_dict(arrays)
    except Exception as err:  # noqa: BLE001
        raise ModelFileError(
            f"{os.fspath(path)}: the weights do not fit the architecture: {err}"
        ) from None
    model.eval()
    return (model, info) if with_info else model
