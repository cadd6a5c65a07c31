"""Neural-network building blocks with PyTorch's names and meanings.

``Module`` and ``Parameter``; layers (``Linear``, ``BatchNorm1d``, ``Dropout``, ``Flatten``,
activations; convolutional: ``Conv1d``, ``Conv2d``, pooling, ``BatchNorm2d``, ``Unflatten``);
containers (``Sequential``, ``ModuleList``); losses (``MSELoss``, ``BCELoss``,
``BCEWithLogitsLoss``, ``CrossEntropyLoss``, ``NLLLoss``, ``HingeLoss``); ``init`` (weight
initialization schemes) and ``functional`` (everything as functions)::

    import chainrule as cr
    net = cr.nn.Sequential(cr.nn.Linear(2, 16), cr.nn.ReLU(), cr.nn.Linear(16, 3))
    loss = cr.nn.CrossEntropyLoss()(net(X), y)
    loss.backward()
"""

from . import functional, init
from .conv import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    MaxPool1d,
    MaxPool2d,
    Unflatten,
    conv_net,
)
from .layers import (
    GELU,
    BatchNorm1d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, MSELoss, NLLLoss
from .module import Module, ModuleList, Sequential
from .parameter import Parameter

__all__ = [
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "Linear",
    "Identity",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "Softmax",
    "LogSoftmax",
    "GELU",
    "Dropout",
    "BatchNorm1d",
    "Flatten",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "BatchNorm2d",
    "Unflatten",
    "conv_net",
    "MSELoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "HingeLoss",
    "init",
    "functional",
]
