"""Pictures of chainrule's record: the graph behind a tensor (more views are added beside it).

Importing this package is cheap: it needs numpy only. Modules that plot with matplotlib import
it themselves, when they are called.

    >>> from chainrule.viz import graph
    >>> graph(loss).save("loss.svg")
"""

from . import plots  # noqa: E402,F401 - imports matplotlib only when called
from .graph import Graph, graph

__all__ = ["graph", "Graph"]
