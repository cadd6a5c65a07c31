"""RMSprop: gradient descent scaled by a running root-mean-square of the gradient."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, ParamGroup, Params, check_nonnegative, effective_grad

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), as ``torch.optim.RMSprop``.

    For each parameter :math:`w` with gradient :math:`g`:

    .. math::
        g &\leftarrow g + \lambda w                  && \text{(weight\_decay } \lambda \ne 0)\\
        s &\leftarrow \alpha s + (1 - \alpha) g^2 \\
        \bar g &\leftarrow \alpha \bar g + (1 - \alpha) g   && \text{(centered)}\\
        d &\leftarrow \sqrt{s - \bar g^2} + \epsilon\text{ if centered, else } \sqrt{s} + \epsilon\\
        b &\leftarrow \mu b + g / d,\quad w \leftarrow w - \eta b
                                                      && \text{(momentum } \mu > 0)\\
        w &\leftarrow w - \eta\, g / d                && \text{(otherwise)}

    (:math:`s, \bar g, b` start at 0.)

    Parameters
    ----------
    params : iterable of Tensors or of dicts (parameter groups)
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the running average of :math:`g^2`.
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
        Normalize by an estimate of the gradient's variance instead of its second moment.
    maximize : bool, default False

    Notes
    -----
    State per parameter: ``'step'``, ``'square_avg'``, and ``'momentum_buffer'`` (momentum > 0),
    ``'grad_avg'`` (centered).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        name = type(self).__name__
        check_nonnegative(name, "learning rate", group["lr"])
        check_nonnegative(name, "epsilon value", group["eps"])
        check_nonnegative(name, "momentum value", group["momentum"])
        check_nonnegative(name, "weight_decay value", group["weight_decay"])
        check_nonnegative(name, "alpha value", group["alpha"])

    def _step_group(self, group: ParamGroup) -> None:
        lr = group["lr"]
        alpha = group["alpha"]
        eps = group["eps"]
        weight_decay = group["weight_decay"]
        momentum = group["momentum"]
        centered = group["centered"]
        maximize = group["maximize"]
        one_minus_alpha = 1 - alpha
        for _, w, g, st in self._with_grads(group):
            if not st:
                st["step"] = 0
                st["square_avg"] = np.zeros_like(w)
                if momentum > 0:
                    st["momentum_buffer"] = np.zeros_like(w)
                if centered:
                    st["grad_avg"] = np.zeros_like(w)
            st["step"] += 1
            g, _ = effective_grad(g, w, weight_decay, maximize)
            s = st["square_avg"]
            # s <- alpha s + (1 - alpha) g^2
            t = np.multiply(g, one_minus_alpha)
            t *= g
            s *= alpha
            s += t
            if centered:
                ga = st.get("grad_avg")
                if ga is None:
                    ga = st["grad_avg"] = np.zeros_like(w)
                # ga <- ga + (1 - alpha) (g - ga)
                np.subtract(g, ga, out=t)
                t *= one_minus_alpha
                ga += t
                np.multiply(ga, ga, out=t)
                np.subtract(s, t, out=t)
                np.sqrt(t, out=t)
            else:
                np.sqrt(s, out=t)
            t += eps  # t is now the denominator d
            if momentum > 0:
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = np.zeros_like(w)
                np.divide(g, t, out=t)
                buf *= momentum
                buf += t
                np.multiply(buf, lr, out=t)
            else:
                np.divide(g, t, out=t)
                t *= lr
            w -= t
