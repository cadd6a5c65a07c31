"""The course notes' examples as runnable code:
``python -m chainrule.examples [composition|llc]``."""

from .composition import composition
from .llc import llc

EXAMPLES = {"composition": composition, "llc": llc}

__all__ = ["composition", "llc", "EXAMPLES"]
