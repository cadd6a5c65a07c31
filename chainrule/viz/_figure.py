"""The matplotlib Figure that chainrule's plots return: it shows itself in a notebook.

IPython draws an object that has a ``_repr_png_`` method; a plain ``matplotlib.figure.Figure``
on an Agg canvas has none (matplotlib-inline registers one only after ``%matplotlib inline`` or
an import of pyplot), so Jupyter printed ``<Figure size 820x330 with 2 Axes>``. This subclass
adds the method and nothing else: no pyplot, no global state, no change of backend, and
``savefig`` writes files exactly as before. It imports matplotlib, so ``plots`` imports this
module only when it draws.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["PlotFigure", "new_figure"]


class PlotFigure(Figure):
    """A ``matplotlib.figure.Figure`` drawn on its own Agg canvas that Jupyter shows as PNG.

    Everything a Figure does still works (``savefig('x.png' / 'x.svg' / 'x.pdf')``, axes,
    ``tight_layout``); ``_repr_png_`` is what IPython calls to display it.
    """

    def _repr_png_(self):
        import io

        buf = io.BytesIO()
        # one drawing pass (the figures are laid out already; bbox 'tight' would draw twice),
        # at 160 dpi shown at half size, so it stays sharp on high-density screens
        self.savefig(buf, format="png", dpi=160, metadata={"Software": None}, facecolor="white")
        data = buf.getvalue()
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return data, {"width": w // 2, "height": h // 2}

    def __repr__(self) -> str:
        w, h = self.get_size_inches() * self.dpi
        return f"<chainrule figure {w:.0f}x{h:.0f} with {len(self.axes)} Axes>"


def new_figure(width: float, height: float, **kwargs) -> PlotFigure:
    """A PlotFigure of ``width`` x ``height`` inches at 100 dpi with an Agg canvas attached."""
    fig = PlotFigure(figsize=(width, height), dpi=100, **kwargs)
    FigureCanvasAgg(fig)
    return fig
