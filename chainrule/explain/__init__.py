"""Explain back-propagation with numbers: the forward pass and every chain-rule term.

The course notes draw a neuron as units in a row, values flowing forward and derivative terms
flowing back and multiplying:

    ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w        (the notes' equation 3)

``explain(model, x, y, loss_fn)`` makes that picture real for a chainrule model and one sample
(or a small batch):

1. the **forward pass**: every unit in order, with its input and output values (z, a and
   L(a, y) for the logistic classifier);
2. **back-propagation**: for every parameter, the chain of local terms from the loss back to it,
   each named after its unit (loss unit, activation σ, linear unit Σ), with its value, the
   product, the gradient autodiff computed and a central-difference check beside it. For a
   deeper network the terms are shown layer by layer: the gradient each layer receives
   (∂L/∂ its output), its local term, and what it hands on to the layer before it.

Nothing here knows a derivative formula. The numbers come from the record the forward pass left
behind: the model runs once (on a float64 copy, so that the central differences are exact),
forward hooks on its layers keep each layer's input and output, and the engine's own
back-propagation — ``loss.backward()`` for ``.grad``, and its traced walk, which reports every
gradient and each unit's hand-back after the engine's unbroadcast and dtype cast — gives every
term; a layer's local term is that walk started at its output. The formulas printed beside the
numbers (``a(1 − a)``, ``(a − y)/(a(1 − a))``) are labels for the reader.

``demo('llc')`` and ``demo('composition')`` walk through the notes' two examples.

The package keeps measuring apart from showing:

- ``measure.py``: the one measuring path (also the playground's chain-rule panel's):
  :func:`~chainrule.explain.measure.record` runs a model and keeps every gradient on record;
  central differences beside the engine's gradient;
- ``neuron.py``, ``network.py``, ``demos.py``: the typed records of ``records.py``
  (ForwardStep, LayerStep, ChainTerm, ParameterTerms, GradientCheck, Explanation), named in
  the notes' notation; ``labels.py``: the formulas printed beside the numbers;
- ``text.py`` and ``html.py``: the two views, which read the records only.
"""

from __future__ import annotations

import time
from typing import Any

from . import demos as _demos
from . import measure as _measure
from . import network as _network
from . import neuron as _neuron
from .records import Explanation

__all__ = ["explain", "demo", "Explanation", "DEMOS"]

DEMOS = _demos.DEMOS


def explain(model: Any, x: Any, y: Any, loss_fn: Any, check: bool = True) -> Explanation:
    """Explain the forward pass and back-propagation of ``model`` on one sample or a small batch.

    Parameters
    ----------
    model : Module
        Any chainrule model; a Sequential of Linear and activation layers reads best. It is not
        changed: a float64 copy in eval mode runs.
    x : ndarray of shape (n, d) or (d,)
        The input (already preprocessed as the model expects).
    y : labels or targets, as ``loss_fn`` expects them (a number for one sample is fine)
    loss_fn : the loss unit L, e.g. ``cr.nn.BCELoss()`` or ``cr.nn.CrossEntropyLoss()``
    check : bool
        Compare each gradient with central differences (every entry for models of up to
        2,000 parameters; the largest and three random entries per parameter above that).

    Returns
    -------
    Explanation
        ``print(...)`` it, ``.to_html()``, or read ``.forward``, ``.layers``, ``.terms``.
    """
    start = time.perf_counter()
    xa, ya = _measure.check_inputs(model, x, y)
    run = _measure.float64_model(model, loss_fn)
    try:
        m = _measure.record(run.model, xa, ya, run.loss_fn, run.dtype)
        loss_at = _measure.LossAt(m, xa, run.dtype, run.eps) if check else None
        build = _neuron.build if _neuron.is_neuron(m) else _network.build
        expl = build(m, loss_at)
    finally:
        run.restore()
    expl.heading = expl.title
    expl.seconds = time.perf_counter() - start
    return expl


def demo(name: str) -> Explanation:
    """Walk through one of the notes' examples: 'llc' (the logistic classifier as one neuron,
    equation 3) or 'composition' (f(x) = x + 2, g(f) = 3f, h(g) = sin(g) at x = 10)."""
    return _demos.demo(name, explain)
