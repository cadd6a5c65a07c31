"""The layers of ARCHITECTURE.md: the core imports numpy alone."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "chainrule"
CORE = ["tensor.py", "units.py", "units_conv.py", "gradcheck.py", "errors.py", "random.py", "metrics.py",
        "train.py", "nn", "optim"]
HEAVY = {"matplotlib", "click", "rich", "safetensors", "pandas", "pyarrow", "sklearn", "torch",
         "typer", "mnist1d", "playwright"}


def _top_level_imports(path):
    """Modules imported at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _files(entry):
    p = ROOT / entry
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


@pytest.mark.parametrize("entry", CORE)
def test_core_imports_numpy_alone(entry):
    files = _files(entry)
    if not files or not files[0].exists():
        pytest.skip(f"{entry} not present")
    for f in files:
        bad = _top_level_imports(f) & HEAVY
        assert not bad, f"{f.relative_to(ROOT)} imports {bad} at module level"


def test_import_chainrule_pulls_in_no_optional_library():
    import subprocess
    import sys
    code = ("import sys, chainrule; heavy = %r; "
            "print(sorted(m for m in heavy if m in sys.modules))" % sorted(HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
