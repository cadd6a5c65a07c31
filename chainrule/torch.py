"""PyTorch networks in and out: ``to_torch(module)`` and ``from_torch(module)``.

Both convert ``Sequential`` networks (nested ones included) of the layers the two libraries
share, copying every parameter and buffer exactly and keeping its dtype (a float64 tensor stays
float64), each parameter's ``requires_grad`` and each module's training mode, so that
chainrule -> torch -> chainrule gives back the same arrays bit for bit::

    import chainrule as cr
    from chainrule.torch import from_torch, to_torch
    tnet = to_torch(net)          # a torch.nn.Sequential
    net2 = from_torch(tnet)       # a cr.nn.Sequential

torch is imported lazily, inside these functions; chainrule never needs it otherwise. For
weights alone (``safetensors.torch.save_file``) use ``cr.load(path, into=model)``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from . import registry
from .errors import ConfigError

__all__ = ["to_torch", "from_torch", "SHARED_LAYERS"]  # noqa: F822 - module __getattr__


def _shared_layers() -> dict:
    """layer name (the same in both libraries) -> constructor arguments read from the
    attributes: the ``config`` each chainrule layer states for model files (chainrule.registry),
    for the layers torch.nn has a class of the same name for."""
    torch = _torch()
    return {
        name: registry.facts_of(cls).config
        for name, cls in registry.registered(savable=True).items()
        if registry.facts_of(cls).config is not None
        and isinstance(getattr(torch.nn, name, None), type)
    }


def __getattr__(name):
    if name == "SHARED_LAYERS":  # read live: a layer defined later joins it
        return _shared_layers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_FLOATS = (np.float16, np.float32, np.float64)


def _torch():
    try:
        import torch
    except ImportError:
        raise ConfigError(
            "to_torch/from_torch need PyTorch (pip install torch); chainrule itself never does"
        ) from None
    return torch


def _unsupported(direction: str, where: str, kind: str) -> ConfigError:
    return ConfigError(
        f"{direction}: layer {where or '(the model)'} is a {kind}, which has no "
        f"counterpart; {direction} converts Sequential networks of "
        f"{', '.join(sorted(_shared_layers()))}"
    )


def _config(m, kind: str) -> dict:
    config = {}
    for name in _shared_layers()[kind]:
        value = getattr(m, name)
        if name in m._parameters:  # a parameter argument (Linear's bias): whether it exists
            value = value is not None
        config[name] = value
    return config


# ---------------------------------------------------------------------------------------------


def to_torch(module):
    """A ``torch.nn`` copy of the chainrule network ``module`` (exact weights and dtypes)."""
    torch = _torch()
    from .nn import Module

    if not isinstance(module, Module):
        raise ConfigError(f"to_torch: expected a chainrule module, got {type(module).__name__}")
    return _to_torch(torch, module, "")


def _tensor(torch, a):
    return torch.from_numpy(np.array(a, copy=True))


def _to_torch(torch, m, where):
    kind = type(m).__name__
    if registry.lookup(kind) is not type(m):  # not one of chainrule's layers (nor a subclass)
        raise _unsupported("to_torch", where, kind)
    if registry.facts_of(m).chained:  # Sequential
        children = OrderedDict(
            (name, _to_torch(torch, c, f"{where}.{name}".lstrip(".")))
            for name, c in m.named_children()
        )
        out = torch.nn.Sequential(children)
        out.training = m.training  # this module only: each child kept its own mode
        return out
    if kind not in _shared_layers():
        raise _unsupported("to_torch", where, kind)
    config = _config(m, kind)
    if kind in ("Linear", "Conv1d", "Conv2d") or (kind.startswith("BatchNorm") and m.affine):
        config["bias"] = m.bias is not None
    with torch.device("meta"):  # no initialization work: every tensor is replaced below
        out = getattr(torch.nn, kind)(**config)
    for name, p in m._parameters.items():
        if p is not None:
            setattr(
                out,
                name,
                torch.nn.Parameter(_tensor(torch, p.data), requires_grad=bool(p.requires_grad)),
            )
    for name, b in m._buffers.items():
        if b is not None:
            out.register_buffer(name, _tensor(torch, b), persistent=name not in m._non_persistent)
        elif name in getattr(out, "_buffers", {}):
            out._buffers[name] = None
    out.train(m.training)
    return out


# ---------------------------------------------------------------------------------------------


def from_torch(module):
    """A chainrule copy of the ``torch.nn`` network ``module`` (exact weights and dtypes)."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    return _from_torch(torch, module, "")


def _array(t, where: str, name: str) -> np.ndarray:
    t = t.detach()
    if t.is_floating_point() and t.dtype not in (
        _torch().float16,
        _torch().float32,
        _torch().float64,
    ):
        raise ConfigError(
            f"from_torch: {where}.{name} has dtype {t.dtype}, which numpy cannot "
            "hold; convert the network with .float() first"
        )
    return t.cpu().numpy().copy()


def _from_torch(torch, m, where):
    from . import nn

    kind = type(m).__name__
    cls = getattr(torch.nn, kind, None)
    if cls is None or type(m) is not cls:  # a subclass may compute something else
        raise _unsupported("from_torch", where, f"{type(m).__module__}.{type(m).__qualname__}")
    if kind == "Sequential":
        children = OrderedDict(
            (name, _from_torch(torch, c, f"{where}.{name}".lstrip(".")))
            for name, c in m.named_children()
        )
        out = nn.Sequential(children)
        out.training = m.training
        return out
    if kind not in _shared_layers():
        raise _unsupported("from_torch", where, f"torch.nn.{kind}")
    config = _config(m, kind)
    if kind in ("Softmax", "LogSoftmax") and config["dim"] is None:
        raise ConfigError(
            f"from_torch: layer {where or kind} is a {kind} with dim=None (PyTorch's "
            "implicit, deprecated choice); give it dim=1 or dim=-1"
        )
    if kind.startswith("BatchNorm") and m.affine:
        config["bias"] = m.bias is not None
    if kind.startswith("Conv") and m.padding_mode != "zeros":
        raise ConfigError(
            f"from_torch: layer {where or kind} pads with {m.padding_mode!r}; "
            "chainrule pads with zeros"
        )
    drawn = kind in ("Linear", "Conv1d", "Conv2d")
    if drawn:  # a private generator: the copy must not move cr.manual_seed's stream
        config.update(bias=m.bias is not None, rng=np.random.default_rng(0))
    out = getattr(nn, kind)(**config)
    if drawn:
        out.rng = None
    label = where or kind
    for name in list(out._parameters):
        p = getattr(m, name, None)
        if p is None:
            out._parameters[name] = None
            continue
        out._parameters[name] = nn.Parameter(
            _array(p, label, name), requires_grad=bool(p.requires_grad)
        )
    for name in list(out._buffers):
        b = m._buffers.get(name)
        out._buffers[name] = None if b is None else _array(b, label, name)
    out.training = m.training
    return out
