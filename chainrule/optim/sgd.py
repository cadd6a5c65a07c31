"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .optimizer import Optimizer, ParamGroup, Params, check_nonnegative, effective_grad

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Gradient descent: :math:`w \leftarrow w - \eta\, g`, as ``torch.optim.SGD``.

    For each parameter, with :math:`g` its gradient (``p.grad``):

    .. math::
        g &\leftarrow g + \lambda w                  && \text{(weight\_decay } \lambda \ne 0)\\
        b &\leftarrow g \text{ at the first step, else } \mu b + (1 - \tau) g
                                                      && \text{(momentum } \mu \ne 0)\\
        g &\leftarrow g + \mu b \text{ if nesterov, else } b \\
        w &\leftarrow w - \eta g

    Parameters
    ----------
    params : iterable of Tensors or of dicts (parameter groups)
    lr : float, default 1e-3
        Learning rate :math:`\eta` (PyTorch 2.x's default).
    momentum : float, default 0
        Momentum factor :math:`\mu`.
    dampening : float, default 0
        Dampening :math:`\tau` of the gradient added to the momentum buffer.
    weight_decay : float, default 0
        L2 penalty :math:`\lambda` (added to the gradient).
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend the objective (use :math:`-g`).

    Notes
    -----
    State per parameter: ``'momentum_buffer'`` (when momentum != 0).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        name = type(self).__name__
        check_nonnegative(name, "learning rate", group["lr"])
        check_nonnegative(name, "momentum value", group["momentum"])
        check_nonnegative(name, "weight_decay value", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ConfigError(
                f"{name}: Nesterov momentum requires a momentum and zero dampening "
                f"(got momentum={group['momentum']}, dampening={group['dampening']})"
            )

    def _step_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        momentum = group["momentum"]
        dampening = group["dampening"]
        weight_decay = group["weight_decay"]
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        for _, w, g, st in self._with_grads(group):
            g, owned = effective_grad(g, w, weight_decay, maximize)
            if momentum != 0:
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = g if owned else np.array(g, dtype=w.dtype, copy=True)
                    st["momentum_buffer"] = buf
                    owned = False  # g is now the buffer
                else:
                    buf *= momentum
                    if dampening == 0:
                        buf += g
                    else:
                        buf += np.multiply(g, 1 - dampening)
                if nesterov:
                    # g + momentum * buf
                    t = np.multiply(buf, momentum)
                    g = np.add(g, t, out=t)
                    owned = True
                else:
                    g = buf
                    owned = False
            # w <- w - lr * g
            if owned:
                np.multiply(g, lr, out=g)
                w -= g
            else:
                w -= np.multiply(g, lr)
