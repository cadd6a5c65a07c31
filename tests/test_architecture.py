"""The layers of ARCHITECTURE.md: the core imports numpy alone."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "chainrule"
CORE = [
    "tensor.py",
    "units.py",
    "units_conv.py",
    "gradcheck.py",
    "errors.py",
    "random.py",
    "metrics.py",
    "train.py",
    "nn",
    "optim",
]
HEAVY = {
    "matplotlib",
    "click",
    "rich",
    "safetensors",
    "pandas",
    "pyarrow",
    "sklearn",
    "torch",
    "typer",
    "mnist1d",
    "playwright",
}


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

    code = (
        f"import sys, chainrule; heavy = {sorted(HEAVY)!r}; "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# the internal layer order written in ARCHITECTURE.md, and no import cycles
# ------------------------------------------------------------------------------------------------

import re  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, str(ROOT.parent / "benchmarks" / "tools"))
import arch_facts  # noqa: E402

MAP = ROOT.parent / "ARCHITECTURE.md"


def _documented_order():
    """The entries of the layer list in ARCHITECTURE.md ('tensor', 'nn', ...), top first."""
    text = MAP.read_text()
    block = text.split("## Layers", 1)[1].split("```", 2)[1]
    return [m.group(1) for m in re.finditer(r"^  ([\w]+)(?:\.py|/)\s", block, re.M)]


#: Exceptions to the order: none. (The core used to reach the notebook views lazily; now the
#: views provide themselves through chainrule._views and the core asks for them by name.)
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()


def _graph():
    modules, edges = arch_facts.import_edges(ROOT)
    return modules, {e: k for e, k in edges.items() if e not in KNOWN_BACK_EDGES}


def test_the_documented_order_names_every_module():
    order = _documented_order()
    assert len(order) == len(set(order)), f"ARCHITECTURE.md lists an entry twice: {order}"
    modules, _ = _graph()
    missing = sorted({arch_facts.layer_of(m) for m in modules} - set(order) - {"chainrule"})
    assert not missing, (
        f"chainrule/{missing[0]} is not in ARCHITECTURE.md's layer list: give it "
        "a line where it belongs (it may import only what is above it)"
    )


def test_each_module_imports_only_layers_above_it():
    order = {name: i for i, name in enumerate(_documented_order())}
    _, edges = _graph()
    wrong = []
    for (a, b), kind in sorted(edges.items()):
        la, lb = arch_facts.layer_of(a), arch_facts.layer_of(b)
        if la == lb or "chainrule" in (la, lb) or la == "__main__":
            continue
        if la in order and lb in order and order[lb] > order[la]:
            wrong.append(f"{a} imports {b} ({kind}), which ARCHITECTURE.md puts below it")
    assert not wrong, "; ".join(wrong)


def test_no_import_cycles_between_modules_even_lazy_ones():
    modules, edges = _graph()
    assert arch_facts.cycles(modules, edges) == []


def test_tensor_operators_are_defined_on_the_class():
    """Readers and type checkers find Tensor.__add__ in tensor.py, not attached from elsewhere."""
    from chainrule.tensor import Tensor

    for name in (
        "__add__",
        "__radd__",
        "__mul__",
        "__matmul__",
        "__pow__",
        "__getitem__",
        "__neg__",
        "sum",
        "mean",
        "reshape",
        "exp",
        "T",
    ):
        assert name in Tensor.__dict__, name
        fn = Tensor.__dict__[name]
        fn = fn.fget if isinstance(fn, property) else fn
        assert fn.__module__ == "chainrule.tensor", name


def test_no_tables_of_class_names():
    """Facts about layers live on the classes (chainrule.registry), not in tables of names."""
    classes = arch_facts.class_names(ROOT)
    # the bridges to other libraries speak those libraries' names (ONNX operators such as 'Add'
    # and 'Tanh', torch.nn classes looked up by the name they share with chainrule's)
    bridges = {"onnx.py", "torch.py"}
    tables = [t for t in arch_facts.name_keyed_tables(ROOT, classes) if t[0].name not in bridges]
    assert tables == []
    # a checkpoint records the class of the optimizer/schedule that wrote it and refuses to resume
    # into another: a comparison of identity with the file's record, not a table of facts
    same_class = {("checkpoint.py", "saved_opt"), ("checkpoint.py", "saved_sched")}
    checks = [
        c
        for c in arch_facts.type_name_checks(ROOT)
        if c[0].name not in bridges and not any(c[0].name == f and w in c[2] for f, w in same_class)
    ]
    assert checks == []
