"""mkdocs hook: the notebooks' ``$...$`` and ``$$...$$`` math as MathML, made at build time.

mkdocs-jupyter renders a notebook's Markdown cells with nbconvert, which leaves the math as TeX
between dollars for MathJax to typeset in the reader's browser; MathJax would have to come from a
CDN, so a reader offline (or behind a strict network) saw raw TeX. This hook finds the math in the
rendered Markdown cells and replaces it with MathML, which browsers draw themselves, using the
same converter as the API reference's docstrings (tools/griffe_math.py, latex2mathml). It also
drops nbconvert's MathJax loader, which has nothing left to do.

Only the text of Markdown cells is touched: not code cells, not outputs, not ``<code>`` or
``<pre>`` inside the Markdown. Inline math follows the usual rule (as pandoc and Jupyter do):
``$`` followed by a non-space, closed by ``$`` after a non-space and not before a digit, so
"between $5 and $10" stays text.
"""

from __future__ import annotations

import html
import re

from griffe_math import tex_to_mathml

# the body of a rendered Markdown cell (nbconvert's lab and classic templates)
_MARKDOWN_CELL = re.compile(r"""<div\b[^>]*\bclass=["'][^"']*\bjp-RenderedMarkdown\b[^>]*>""")
# a tag or a comment; attribute values may hold '>'
_TAG = re.compile(r"""<!--.*?-->|<(/?)([A-Za-z][\w-]*)(?:[^>"']|"[^"]*"|'[^']*')*>""", re.S)
_DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?=[^\s$])((?:\\.|[^$\\])+?)(?<=\S)\$(?!\d)", re.S)
_VERBATIM = {"code", "pre", "kbd", "samp", "script", "style", "math"}
_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


def _convert(tex: str, display: bool) -> str:
    return tex_to_mathml(html.unescape(tex).strip(), display=display)


def math_to_mathml(text: str) -> str:
    """The ``$$...$$`` and ``$...$`` math in one run of HTML text (no tags) -> MathML."""
    if "$" not in text:
        return text
    text = _DISPLAY.sub(lambda m: _convert(m.group(1), display=True), text)
    return _INLINE.sub(lambda m: _convert(m.group(1), display=False), text)


def _markdown_cell(page: str, start: int) -> tuple[int, str]:
    """Convert the math in the Markdown cell whose opening tag ends at ``start``; return where
    the cell ends and its new inside."""
    depth, verbatim, out, pos = 1, 0, [], start
    for tag in _TAG.finditer(page, start):
        text = page[pos : tag.start()]
        out.append(text if verbatim else math_to_mathml(text))
        out.append(tag.group(0))
        pos = tag.end()
        closing, name = tag.group(1), (tag.group(2) or "").lower()
        if name == "div":
            depth += -1 if closing else 1
            if depth == 0:
                return pos, "".join(out)
        elif name in _VERBATIM and not tag.group(0).endswith("/>"):
            verbatim += -1 if closing else 1
            verbatim = max(verbatim, 0)
    # an unclosed cell (not produced by nbconvert): its text to the end of the page
    out.append(page[pos:] if verbatim else math_to_mathml(page[pos:]))
    return len(page), "".join(out)


def render_notebook_math(page: str) -> str:
    """Every rendered Markdown cell's math in a page -> MathML; nbconvert's MathJax loader gone."""
    if "jp-RenderedMarkdown" not in page:
        return page
    out, pos = [], 0
    while (cell := _MARKDOWN_CELL.search(page, pos)) is not None:
        out.append(page[pos : cell.end()])
        pos, inside = _markdown_cell(page, cell.end())
        out.append(inside)
    out.append(page[pos:])
    return _MATHJAX.sub("", "".join(out))


def on_page_content(content: str, page, config, files) -> str:
    return render_notebook_math(content)
