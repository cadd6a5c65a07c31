"""Adam and AdamW: gradient descent with bias-corrected moment estimates."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ConfigError
from .optimizer import (
    Optimizer,
    ParamGroup,
    Params,
    check_nonnegative,
    check_unit_interval,
    effective_grad,
)

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    For each parameter :math:`w` with gradient :math:`g`, at step :math:`t = 1, 2, \dots`:

    .. math::
        g &\leftarrow g + \lambda w            && \text{(weight\_decay } \lambda \ne 0)\\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &\leftarrow \max(\hat v, v) \text{ if amsgrad, else } v \\
        w &\leftarrow w - \frac{\eta}{1 - \beta_1^t} \cdot
             \frac{m}{\sqrt{\hat v} / \sqrt{1 - \beta_2^t} + \epsilon}

    (:math:`m, v, \hat v` start at 0.) With ``decoupled_weight_decay=True`` the decay is applied
    to the weights instead, :math:`w \leftarrow w (1 - \eta\lambda)`, before the moments: that
    is :class:`AdamW`.

    Parameters
    ----------
    params : iterable of Tensors or of dicts (parameter groups)
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay rates :math:`\beta_1, \beta_2` of the first and second moment estimates, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default 0
        L2 penalty :math:`\lambda`.
    amsgrad : bool, default False
        Use the running maximum of :math:`v` (AMSGrad).
    maximize : bool, default False
    decoupled_weight_decay : bool, default False

    Notes
    -----
    State per parameter: ``'step'``, ``'exp_avg'`` (m), ``'exp_avg_sq'`` (v) and, with amsgrad,
    ``'max_exp_avg_sq'``.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=_as_pair(betas, type(self).__name__),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        name = type(self).__name__
        check_nonnegative(name, "learning rate", group["lr"])
        check_nonnegative(name, "epsilon value", group["eps"])
        betas = group["betas"] = _as_pair(group["betas"], name)
        check_unit_interval(name, "beta parameter at index 0", betas[0])
        check_unit_interval(name, "beta parameter at index 1", betas[1])
        check_nonnegative(name, "weight_decay value", group["weight_decay"])

    def _step_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        weight_decay = group["weight_decay"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        one_minus_b1 = 1 - beta1
        one_minus_b2 = 1 - beta2
        for _, w, g, st in self._with_grads(group):
            if not st:
                st["step"] = 0
                st["exp_avg"] = np.zeros_like(w)
                st["exp_avg_sq"] = np.zeros_like(w)
            step = st["step"] + 1
            st["step"] = step
            if decoupled and weight_decay != 0:
                w *= 1 - lr * weight_decay  # AdamW: decay the weights, not the gradient
            g, _ = effective_grad(g, w, 0 if decoupled else weight_decay, maximize)
            m = st["exp_avg"]
            v = st["exp_avg_sq"]
            # m <- m + (1 - beta1) (g - m)   (= beta1 m + (1 - beta1) g)
            t = np.subtract(g, m)
            t *= one_minus_b1
            m += t
            # v <- beta2 v + (1 - beta2) g^2
            np.multiply(g, one_minus_b2, out=t)
            t *= g
            v *= beta2
            v += t
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5
            if amsgrad:
                vmax = st.get("max_exp_avg_sq")
                if vmax is None:
                    vmax = st["max_exp_avg_sq"] = np.zeros_like(w)
                np.maximum(vmax, v, out=vmax)
                v = vmax
            # w <- w - step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps)
            np.sqrt(v, out=t)
            t /= bias_correction2_sqrt
            t += eps
            np.divide(m, t, out=t)
            t *= step_size
            w -= t


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Same as :class:`Adam`, except that weight decay shrinks the weights directly,
    :math:`w \leftarrow w (1 - \eta \lambda)`, before the moment updates, instead of being added
    to the gradient (so it does not pass through :math:`m` and :math:`v`). Default
    ``weight_decay=1e-2``.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW always decouples, whatever the file says
            group["decoupled_weight_decay"] = True


def _as_pair(betas: Iterable[float], owner: str) -> tuple[float, float]:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ConfigError(
            f"{owner}: betas should be a pair (beta1, beta2), got {betas!r}"
        ) from None
    return (b1, b2)
