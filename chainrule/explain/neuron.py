"""The records of one neuron: linear unit Σ, maybe an activation σ, the loss unit L — the
notes' equation 3, ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w, with each local term measured per sample."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import facts_of
from .labels import (
    act_derivative,
    loss_derivative,
    loss_formula,
    loss_name,
    reduction_note,
    role,
    scaled,
)
from .measure import LossAt, Measurement, UnitCall, check_gradient, elementwise, local_term
from .records import ChainTerm, Explanation, ForwardStep, LayerStep, NeuronView, ParameterTerms

__all__ = ["is_neuron", "build"]


def is_neuron(m: Measurement) -> bool:
    """One linear unit with one output on x, then at most an elementwise activation."""
    calls = m.calls
    if not calls or role(calls[0].module) != "linear" or calls[0].input is not m.x:
        return False
    if getattr(calls[0].module, "out_features", None) != 1:
        return False
    if len(calls) == 1:
        return calls[0].output is m.out
    act = facts_of(calls[1].module) if len(calls) == 2 else None
    if act is not None and act.role == "activation" and act.elementwise:
        return calls[1].input is calls[0].output and calls[1].output is m.out
    return False


def _view(m: Measurement) -> NeuronView:
    """The neuron's numbers and labels; its local terms per sample, from the engine."""
    lin, act = m.calls[0], (m.calls[1] if len(m.calls) == 2 else None)
    z, a = lin.output, (act.output if act else lin.output)
    o, act_name = ("a", type(act.module).__name__) if act else ("z", None)
    dL_do = np.asarray(m.grad(a), dtype=np.float64).reshape(-1)  # the loss unit's term
    if act is None:
        local = np.ones_like(dL_do)
    elif elementwise(act):  # the activation's (diagonal) local term
        local = local_term(a, z).reshape(-1)
    else:
        local = np.asarray(m.grad(z)).reshape(-1) / np.where(dL_do == 0, np.nan, dL_do)
    n_mean, red = reduction_note(m.loss_fn, m.out)
    lname = loss_name(m.loss_fn)
    lf_facts = facts_of(m.loss_fn)
    return NeuronView(
        x=m.x.data,
        y=np.asarray(m.y, dtype=np.float64).reshape(-1),
        w=lin.module.weight.data,
        b=None if lin.module.bias is None else lin.module.bias.data,
        z=z.data.reshape(-1),
        a=a.data.reshape(-1),
        activation=act_name,
        out_symbol=o,
        loss_name=lname,
        loss_formula=loss_formula(m.loss_fn, lname, o),
        loss_derivative=scaled(red, loss_derivative(m.loss_fn, o)),
        activation_derivative=(
            act_derivative(act.module, str(act_name), "a", "z", "a²", "z") if act else ""
        ),
        n_mean=n_mean,
        dL_dout=dL_do,
        local=local,
        x_grad=m.grad(m.x),
        by_hand=act is not None
        and facts_of(act.module).output_kind == "probability"
        and lf_facts.role == "loss"
        and lf_facts.output_kind == "probability",
    )


def _forward(m: Measurement, v: NeuronView, lin: UnitCall, act: UnitCall | None) -> list:
    X, z = v.x, lin.output
    rows = [ForwardStep(0, "input", "input", "", "", "x", "x", None, X.copy(), X.shape)]
    formula = "z = wᵀx + w₀" if v.b is not None else "z = wᵀx"
    lname = m.names.get(id(lin.module), "")
    lin_layer = type(lin.module).__name__
    rows.append(
        ForwardStep(
            1,
            "linear",
            "linear unit Σ",
            lin_layer,
            lname,
            "z",
            formula,
            X.copy(),
            z.data.copy(),
            z.shape,
        )
    )
    a = z
    if act is not None:
        a = act.output
        aname = m.names.get(id(act.module), "")
        formula = f"a = σ(z) = {v.activation}(z)"
        rows.append(
            ForwardStep(
                2,
                "activation",
                "activation σ",
                str(v.activation),
                aname,
                "a",
                formula,
                z.data.copy(),
                a.data.copy(),
                a.shape,
            )
        )
    formula = f"L({v.out_symbol}, y) = {v.loss_formula}"
    L = np.asarray(float(m.loss.data))
    rows.append(
        ForwardStep(
            len(rows),
            "loss",
            "loss unit",
            v.loss_name,
            "",
            "L",
            formula,
            a.data.copy(),
            L,
            (),
            v.y.copy(),
        )
    )
    return rows


def _layers(m: Measurement, v: NeuronView, lin: UnitCall, act: UnitCall | None) -> list:
    """Back-propagation from the loss: the loss unit, the activation, the linear unit."""
    a_shape = (act or lin).output.shape
    dz = np.asarray(m.grad(lin.output)).copy()
    steps = [
        LayerStep(
            name="",
            layer=v.loss_name,
            kind="loss",
            upstream=np.ones(()),
            upstream_symbol="∂L/∂L",
            local=None,
            local_symbol=None,
            local_text=None,
            handed_on=v.dL_dout.reshape(a_shape),
            handed_symbol=f"∂L/∂{v.out_symbol}",
            params=[],
        )
    ]
    if act is not None:
        steps.append(
            LayerStep(
                name=m.names.get(id(act.module), ""),
                layer=str(v.activation),
                kind="activation",
                upstream=v.dL_dout.reshape(a_shape),
                upstream_symbol="∂L/∂a",
                local=v.local.reshape(a_shape),
                local_symbol="∂a/∂z",
                local_text=v.activation_derivative,
                handed_on=dz.copy(),
                handed_symbol="∂L/∂z",
                params=[],
            )
        )
    x_grad = m.grad(m.x)
    steps.append(
        LayerStep(
            name=m.names.get(id(lin.module), ""),
            layer=type(lin.module).__name__,
            kind="linear",
            upstream=dz,
            upstream_symbol="∂L/∂z",
            local=None,
            local_symbol="∂z/∂w",
            local_text="x",
            handed_on=None if x_grad is None else x_grad.copy(),
            handed_symbol="∂L/∂x",
            params=[nm for nm, p in m.params if p is lin.module.weight or p is lin.module.bias],
        )
    )
    return steps


def _term(m: Measurement, v: NeuronView, lin: UnitCall, p: Any, sym: str) -> ParameterTerms:
    """∂L/∂w (or ∂L/∂w₀): the chain per sample, summed over the batch."""
    n = v.x.shape[0]
    dz_dp = v.x if sym == "w" else np.ones((n, 1))
    chain = [ChainTerm(f"∂L/∂{v.out_symbol}", "loss unit", v.loss_derivative, v.dL_dout)]
    if v.activation is not None:
        chain.append(ChainTerm("∂a/∂z", "activation σ", v.activation_derivative, v.local))
    chain.append(ChainTerm(f"∂z/∂{sym}", "linear unit Σ", "x" if sym == "w" else "1", dz_dp.copy()))
    dL_dz = v.dL_dout * v.local
    by_hand = None
    if v.by_hand:  # a probability into a loss of probabilities: the product is (a − y)·x
        by_hand = ((v.a - v.y)[:, None] * dz_dp).sum(0)
        by_hand = by_hand / v.n_mean if v.n_mean > 1 else by_hand
    return ParameterTerms(
        parameter=next(nm for nm, q in m.params if q is p),
        layer=m.names.get(id(lin.module), ""),
        symbol=sym,
        chain=chain,
        equation=f"∂L/∂{sym} = " + " · ".join(c.symbol for c in chain),
        # the product, sample by sample: (scalar chain) · ∂z/∂p, summed over the batch
        product=(dL_dz[:, None] * dz_dp).sum(axis=0).reshape(p.data.shape),
        autodiff=np.asarray(p.grad, dtype=np.float64).copy(),
        n_entries=p.data.size,
        # and the linear unit's own hand-back of ∂L/∂z gives the same
        unit_product=m.handed(lin.output, p),
        by_hand=by_hand,
    )


def build(m: Measurement, loss_at: LossAt | None) -> Explanation:
    """The records of one neuron (``is_neuron(m)``), its gradients checked when ``loss_at``."""
    lin, act = m.calls[0], (m.calls[1] if len(m.calls) == 2 else None)
    v = _view(m)
    w, b = lin.module.weight, lin.module.bias
    rng = np.random.default_rng(0)
    n_params = sum(q.data.size for _, q in m.params)
    terms = []
    for p, sym in ((w, "w"), (b, "w₀")):
        if p is None:
            continue
        t = _term(m, v, lin, p, sym)
        if loss_at is not None:
            t.check = check_gradient(loss_at, p, n_params, rng, loss_at.eps)
        terms.append(t)
    names = {id(w): "w", id(m.x): "x", id(lin.output): "z", id(m.loss): "L"}
    if b is not None:
        names[id(b)] = "w₀"
    if act is not None:
        names[id(act.output)] = "a"
    title = (
        "One neuron: x → [linear unit Σ: z = wᵀx + w₀] → "
        + ("[activation σ: a = σ(z)] → " if act else "")
        + f"[loss unit L({v.out_symbol}, y)]"
    )
    return Explanation(
        title=title,
        kind="neuron",
        forward=_forward(m, v, lin, act),
        layers=_layers(m, v, lin, act),
        terms=terms,
        loss=float(m.loss.data),
        view=v,
        loss_tensor=m.loss,
        graph_params=m.params,
        graph_names=names,
    )
