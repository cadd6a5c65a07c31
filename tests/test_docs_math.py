"""The documentation site's math: the notebook hook (tools/mkdocs_math.py) turns the Markdown
cells' ``$...$`` / ``$$...$$`` into MathML with the docstrings' converter (tools/griffe_math.py),
so the rendered tutorial needs no MathJax from a CDN. Checked on HTML that nbconvert itself makes
from a small notebook, as mkdocs-jupyter does."""

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("latex2mathml")
pytest.importorskip("griffe")
nbformat = pytest.importorskip("nbformat")
nbconvert = pytest.importorskip("nbconvert")

TOOLS = Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))
try:
    import griffe_math
    import mkdocs_math
finally:
    sys.path.remove(str(TOOLS))

MARKDOWN = r"""## The loss

The output is $z = w^T x + w_0$, and $a < b$ holds.

$$\frac{\partial \mathcal{L}}{\partial w} = \frac{\partial z}{\partial w} \quad (3)$$

Money is not math: between $5 and $10. Code is not math: `$x$`.
"""
CODE = 'print("$y$ stays")'


@pytest.fixture(scope="module")
def page():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(MARKDOWN),
        nbformat.v4.new_code_cell(
            CODE, outputs=[nbformat.v4.new_output("stream", name="stdout", text="$y$ stays\n")]
        ),
    ]
    body, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body


def _markdown_cells(html):
    return re.findall(r'<div class="[^"]*jp-RenderedMarkdown[^"]*"[^>]*>(.*?)</div>', html, re.S)


def test_markdown_math_becomes_mathml(page):
    (before,) = _markdown_cells(page)
    assert "$z = w^T x + w_0$" in before  # nbconvert leaves the TeX for MathJax
    out = mkdocs_math.render_notebook_math(page)
    (cell,) = _markdown_cells(out)
    inline = griffe_math.tex_to_mathml("z = w^T x + w_0")
    assert inline in cell and 'display="inline"' in inline
    assert griffe_math.tex_to_mathml("a < b") in cell  # the escaped '<' is unescaped first
    display = griffe_math.tex_to_mathml(
        r"\frac{\partial \mathcal{L}}{\partial w} = \frac{\partial z}{\partial w} \quad (3)",
        display=True,
    )
    assert display in cell and 'display="block"' in display
    assert cell.count("<math") == 3
    assert "between $5 and $10" in cell
    assert "<code>$x$</code>" in cell
    assert "holds." in cell and "The output is <math" in cell


def test_code_cells_outputs_and_mathjax(page):
    out = mkdocs_math.render_notebook_math(page)
    assert out.count("<math") == 3  # the code cell and its output keep their dollars
    assert out.count("$y$ stays") == page.count("$y$ stays") >= 2
    # nbconvert's MathJax loader (from a CDN) has nothing left to typeset: no request for it
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in page and "MathJax.Hub" in page
    assert "mathjax" not in out.lower()
    assert out.count("<div") == page.count("<div") and out.count("</div>") == page.count("</div>")


def test_pages_without_notebooks_are_untouched():
    html = "<p>Price: $5 and $x$</p><pre>$y$</pre>"
    assert mkdocs_math.render_notebook_math(html) == html
    assert mkdocs_math.on_page_content(html, page=None, config=None, files=None) == html


def test_the_docstring_extension_uses_the_same_converter():
    tex = r"m_t = \beta_1 m_{t-1}"
    expected = "Adam: " + griffe_math.tex_to_mathml(tex) + "."
    assert griffe_math.render_math(f"Adam: :math:`{tex}`.") == expected
