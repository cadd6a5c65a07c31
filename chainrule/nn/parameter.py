"""Parameter: a tensor that a module learns (a weight or a bias)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..tensor import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A :class:`~chainrule.Tensor` that a :class:`Module` registers as learnable.

    Assigning a Parameter to a module attribute (``self.weight = Parameter(...)``) adds it to
    ``module.parameters()``, which is what an optimizer steps.

    Parameters
    ----------
    data : array-like, optional
        A floating numpy array keeps its dtype (and is not copied); anything else (a list, a
        number, an integer array) becomes float32, as PyTorch's default dtype.
    requires_grad : bool, default True
    """

    __slots__ = ()

    def __init__(
        self,
        data: Tensor | ArrayLike | None = None,
        requires_grad: bool = True,
        dtype: DTypeLike | None = None,
    ) -> None:
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None:
            if isinstance(data, np.ndarray) and data.dtype.kind == "f":
                dtype = data.dtype
            else:
                dtype = np.float32
        super().__init__(data, requires_grad=requires_grad, dtype=np.dtype(dtype))

    def __repr__(self) -> str:
        body = np.array2string(
            self.data, precision=4, threshold=20, edgeitems=3, prefix="Parameter("
        )
        extra = ""
        if self.data.dtype != np.float32:
            extra += f", dtype={self.data.dtype}"
        if not self.requires_grad:
            extra += ", requires_grad=False"
        return f"Parameter({body}{extra})"

    def __reduce_ex__(  # pickling/copy: __slots__ classes need help
        self, protocol: Any
    ) -> tuple[Any, tuple[np.ndarray, bool]]:
        return (_rebuild_parameter, (self.data, self.requires_grad))

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        p = Parameter(self.data.copy(), requires_grad=self.requires_grad)
        if self.grad is not None:
            p.grad = self.grad.copy()
        memo[id(self)] = p
        return p


def _rebuild_parameter(data: np.ndarray, requires_grad: bool) -> Parameter:
    return Parameter(data, requires_grad=requires_grad)
