"""The errors chainrule raises for user mistakes.

Every message is one line that names the thing, the value and what was expected, so that the
command-line tool can print it as it is (no traceback) and a Python user can read it at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .train import History


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose."""


class ShapeError(ChainruleError, ValueError):
    """A unit got inputs whose shapes do not fit (the message names the unit and the shapes)."""


class GradcheckError(ChainruleError, AssertionError):
    """Autodiff and central differences disagree (the message names the input and the element)."""


class DataError(ChainruleError, ValueError):
    """A dataset, file, column or value is not what was expected."""


class ModelFileError(ChainruleError, ValueError):
    """A model file is missing, truncated, not a chainrule file, or does not fit the model."""


class ConfigError(ChainruleError, ValueError):
    """A hyperparameter or option has a value that cannot work (the message echoes the value)."""


class TrainingError(ChainruleError, RuntimeError):
    """Training cannot go on (for example the loss became NaN); ``.history`` holds what was done."""

    def __init__(self, message: str, history: History | None = None) -> None:
        super().__init__(message)
        self.history = history


class OutputError(ChainruleError, OSError):
    """A file cannot be written (a full disk, no permission, a folder or a pipe as its name)."""
