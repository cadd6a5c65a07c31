"""griffe extension: render the docstrings' math as MathML when the documentation site is built.

The docstrings write math as reStructuredText does (``:math:`...``` inline and ``.. math::``
blocks), as PyTorch's and numpy's docstrings do, which reads well in ``help()``. Before
mkdocstrings turns a docstring into HTML, this extension replaces that math with MathML
(latex2mathml), so the pages need no JavaScript and load nothing from a CDN: browsers render
MathML themselves. Sphinx cross-reference roles (``:class:`AdamW```) become plain code.
"""

from __future__ import annotations

import re
import textwrap

import griffe
from latex2mathml.converter import convert

_INLINE = re.compile(r":math:`([^`]+)`")
_ROLE = re.compile(r":(?:class|func|meth|attr|mod|obj|data|exc):`([^`]+)`")
# '.. math::' then the indented lines up to the first line indented less (or the end)
_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n?|[ \t]*\n)+)", re.M
)


def _block(match: re.Match) -> str:
    tex = textwrap.dedent(match.group("body")).strip().replace("\\_", "_")
    if "&" in tex or "\\\\" in tex:
        # reST's align-style blocks as a table: right-aligned left side, the rest left-aligned;
        # '&&' starts a third column (a comment such as "(weight_decay λ ≠ 0)")
        tex = "\\begin{array}{rll}" + tex.replace("&&", "&\\quad ") + "\\end{array}"
    return f'{match.group("indent")}<div class="math">{tex_to_mathml(tex, display=True)}</div>\n\n'


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """One TeX formula as a MathML ``<math>`` element on one line (``display``: a block of its
    own, centred). Shared with tools/mkdocs_math.py, which does the notebook's ``$...$`` math."""
    return convert(tex, display="block" if display else "inline").replace("\n", " ")


def render_math(text: str) -> str:
    """reST math in a docstring -> MathML (block and inline); roles -> code."""
    text = _BLOCK.sub(_block, text)
    text = _INLINE.sub(lambda m: tex_to_mathml(m.group(1)), text)
    return _ROLE.sub(r"`\1`", text)


class MathML(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and (
            ":math:" in obj.docstring.value
            or ".. math::" in obj.docstring.value
            or ":class:" in obj.docstring.value
        ):
            obj.docstring.value = render_math(obj.docstring.value)
