"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, check_nonnegative, effective_grad

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    For each parameter :math:`w` with gradient :math:`g`, at step :math:`t = 1, 2, \dots`:

    .. math::
        g &\leftarrow g + \lambda w                  && \text{(weight\_decay } \lambda \ne 0)\\
        \tilde\eta &= \eta / (1 + (t - 1)\,\delta)  && \text{(lr\_decay } \delta)\\
        S &\leftarrow S + g^2 \\
        w &\leftarrow w - \tilde\eta\, g / (\sqrt{S} + \epsilon)

    (:math:`S` starts at ``initial_accumulator_value``.)

    Parameters
    ----------
    params : iterable of Tensors or of dicts (parameter groups)
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False

    Notes
    -----
    State per parameter (created with the optimizer, as PyTorch does): ``'step'``, ``'sum'``.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        name = type(self).__name__
        check_nonnegative(name, "learning rate", group["lr"])
        check_nonnegative(name, "lr_decay value", group["lr_decay"])
        check_nonnegative(name, "weight_decay value", group["weight_decay"])
        check_nonnegative(
            name, "initial_accumulator_value value", group["initial_accumulator_value"]
        )
        check_nonnegative(name, "epsilon value", group["eps"])

    def _init_state(self, group: ParamGroup, p: Tensor) -> None:
        st = self.state[p]
        if not st:
            st["step"] = 0
            st["sum"] = np.full_like(p.data, group["initial_accumulator_value"])

    def _step_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        lr_decay = group["lr_decay"]
        eps = group["eps"]
        weight_decay = group["weight_decay"]
        maximize = group["maximize"]
        for p, w, g, st in self._with_grads(group):
            if not st:
                self._init_state(group, p)
            step = st["step"] + 1
            st["step"] = step
            g, _ = effective_grad(g, w, weight_decay, maximize)
            clr = lr / (1 + (step - 1) * lr_decay)
            acc = st["sum"]
            t = np.multiply(g, g)
            acc += t
            np.sqrt(acc, out=t)
            t += eps
            np.divide(g, t, out=t)
            t *= clr
            w -= t
