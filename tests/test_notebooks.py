"""The notebooks in docs/ run top to bottom in a real Jupyter kernel, and every chainrule object
in them displays as what it is: pictures as image/png or image/svg+xml, tables and explanations
as text/html — never the text '<Figure size ...>' and never an error.

The kernel is this interpreter (a temporary kernelspec that points at sys.executable, with this
checkout first on its PYTHONPATH), so the test works in a fresh virtual environment without
installing a kernel anywhere.
"""

import json
import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "tutorial": ROOT / "docs" / "tutorial.ipynb",
    "quickstart": ROOT / "docs" / "notebooks" / "quickstart.ipynb",
}

PNG, SVG, HTML = "image/png", "image/svg+xml", "text/html"
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernelspec for this interpreter in a temporary JUPYTER_PATH (restored afterwards)."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / "chainrule-test"
    spec.mkdir(parents=True)
    pythonpath = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "chainrule test kernel",
                "language": "python",
                "env": {"PYTHONPATH": pythonpath},
            }
        )
    )
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
    os.environ["JUPYTER_PATH"] = str(home)
    os.environ["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
    os.environ["IPYTHONDIR"] = str(home / "ipython")
    yield "chainrule-test"
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def execute(path, kernel_name, workdir):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name=kernel_name, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return nb


def mime_types(cell) -> set:
    kinds = set()
    for out in cell.get("outputs", []):
        if out["output_type"] in ("display_data", "execute_result"):
            kinds |= set(out["data"])
        else:
            kinds.add(out["output_type"] + (":" + out.get("name", "") if "name" in out else ""))
    return kinds


def expected(source: str) -> set:
    """What the cell's last statement must display, from what it calls."""
    last = source.strip().splitlines()[-1].strip()
    head = source.strip().split("\n\n")[-1]
    if "LivePlot" in source:
        return {PNG, HTML}  # the live picture, then the History
    if last.startswith("cr.viz.graph(") or head.startswith("cr.viz.graph("):
        return {SVG}
    if head.startswith("plots.") or head.startswith("cr.viz.plots."):
        return {PNG}
    if any(k in last for k in (".summary(", "cr.explain(", "demo(")) or last in ("history", "info"):
        return {HTML}
    return set()


@pytest.fixture(scope="module")
def executed(kernel_name, tmp_path_factory):
    return {
        name: execute(path, kernel_name, tmp_path_factory.mktemp(name))
        for name, path in NOTEBOOKS.items()
    }


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs_and_displays_every_object(executed, name):
    nb = executed[name]
    checked = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        kinds = mime_types(cell)
        where = f"{name} cell {i} ({cell.source.strip().splitlines()[-1][:60]!r})"
        assert "error" not in kinds, (
            where
            + ": "
            + "\n".join(o.get("evalue", "") for o in cell.outputs if o["output_type"] == "error")
        )
        for out in cell.outputs:
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            assert "<Figure size" not in text, where + " printed a figure as text"
            if out.get("name") == "stderr":
                assert "Warning" not in text and "Traceback" not in text, where + ": " + text
        want = expected(cell.source)
        missing = want - kinds
        assert not missing, f"{where}: expected {sorted(want)}, got {sorted(kinds)}"
        checked += bool(want)
    assert checked >= (10 if name == "tutorial" else 4)


def test_progress_bar_shows_in_the_notebook(executed):
    """fit(progress=True) in a kernel draws a bar: the tqdm widget (with ipywidgets) or tqdm's
    text bar on standard error, ending at the last epoch."""
    for nb in executed.values():
        for cell in nb.cells:
            if cell.cell_type == "code" and "progress=True" in cell.source:
                kinds = mime_types(cell)
                if WIDGET in kinds:
                    continue
                err = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
                assert "epoch" in err and "100%" in err, kinds


def test_tutorial_follows_the_notes_in_order():
    """The notes' section titles and definitions appear in the tutorial in the notes' order."""
    nb = nbformat.read(NOTEBOOKS["tutorial"], as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    order = [
        "Review: LLC as Neuron",
        "our first unit Σ is our **linear** component",
        "missing** the **loss function",
        "LLC Forward-Pass",
        "Definition 1",
        "$f(x) = x + 2$",
        "$h(g) = \\sin(g)$",
        "LLC Back-propagation",
        "(1)$$",
        "(2)$$",
        "(3)$$",
        "Definition 2",
        "Summary of neural network gradient descent",
        "Concept 3",
        "**Repeat** until satisfied",
    ]
    positions = [text.find(s) for s in order]
    missing = [s for s, p in zip(order, positions, strict=True) if p < 0]
    assert not missing, missing
    assert positions == sorted(positions)


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebooks_are_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS[name], as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
