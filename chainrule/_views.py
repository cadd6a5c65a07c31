"""Where the core finds the views of what it returns, without importing them.

``Module.summary()`` returns a table a notebook shows, ``load(with_info=True)`` a dict shown as
tables, a ``History`` shows itself and plots its curves, ``fit(progress=...)`` draws a bar. The
modules that draw them (``display.py``, ``callbacks.py``, ``viz/plots.py``) sit above the core
in the layer order (ARCHITECTURE.md), and they import the core. So the dependency is inverted:
each of them *provides* its views here by name when it is imported, which ``import chainrule``
always does, and the core asks for them by name. No module of the core imports a view, so there
is no import cycle, not even a lazy one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ChainruleError

__all__ = ["provide", "view", "VIEWS"]

#: the views the core asks for, and which module provides each
VIEWS = {
    "summary": "chainrule.display (Summary: the str Module.summary() returns)",
    "model_info": "chainrule.display (ModelInfo: the dict load(with_info=True) returns)",
    "history_html": "chainrule.display (History._repr_html_)",
    "loss_curves": "chainrule.viz.plots (History.plot)",
    "progress_bar": "chainrule.callbacks (fit(progress=...))",
}

_provided: dict[str, Callable[..., Any]] = {}


def provide(name: str, fn: Callable[..., Any]) -> None:
    """Register ``fn`` as the view ``name`` (one of VIEWS)."""
    if name not in VIEWS:
        raise ChainruleError(f"views: unknown view {name!r}; expected one of {', '.join(VIEWS)}")
    _provided[name] = fn


def view(name: str) -> Callable[..., Any]:
    """The view ``name``, as its module provided it."""
    try:
        return _provided[name]
    except KeyError:
        raise ChainruleError(
            f"views: no {name!r} view has been provided; it comes from {VIEWS.get(name, '?')}, "
            "which `import chainrule` imports"
        ) from None
