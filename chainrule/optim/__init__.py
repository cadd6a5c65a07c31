"""Optimizers and learning-rate schedules: gradient descent and its variants.

Each optimizer reads the ``.grad`` that back-propagation left on every parameter and updates
``.data`` in place; none computes a derivative. Names, defaults and update rules are PyTorch's
(``torch.optim``), so that the same parameters and gradients give the same trajectory.

    >>> opt = cr.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    >>> opt.zero_grad(); loss.backward(); opt.step()

Optimizers: :class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`RMSprop`, :class:`Adagrad`.
Schedules (``lr_scheduler``): :class:`StepLR`, :class:`ExponentialLR`,
:class:`CosineAnnealingLR`, :class:`ReduceLROnPlateau`.
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "lr_scheduler",
    "LRScheduler",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
]
