"""Facts about the package's shape, for the architecture note (issue 15).

    python benchmarks/tools/arch_facts.py [--root chainrule]

prints the internal import graph (module-level and lazy edges), its cycles, the name-keyed
tables (dict/set literals whose keys are the names of the package's classes),
the ``type(...).__name__`` checks and the functions longer than 80 lines.
"""

import argparse
import ast
import pathlib

PKG = "chainrule"


def module_name(path, root):
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node, modname, is_pkg):
    """Absolute module named by an ImportFrom/Import node (internal ones only)."""
    out = []
    if isinstance(node, ast.Import):
        out = [a.name for a in node.names]
    else:
        if node.level:
            base = modname.split(".")
            if not is_pkg:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        # "from . import x" / "from .nn import layers": x may be a submodule (then the edge goes
        # to it; the package's __init__ is not what is used)
        out = [(f"{mod}.{a.name}", mod) for a in node.names]
        return [m for m in out if m[1] == PKG or m[1].startswith(PKG + ".")]
    return [(m, None) for m in out if m == PKG or m.startswith(PKG + ".")]


def import_edges(root):
    """{(src, dst): 'top'|'lazy'} between modules of the package."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root): f for f in files}
    edges = {}
    for mod, f in modules.items():
        tree = ast.parse(f.read_text())
        top = set(id(n) for n in tree.body)
        # imports guarded by TYPE_CHECKING are not run
        tc = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                tc |= {id(m) for m in ast.walk(n)}
        for n in ast.walk(tree):
            if not isinstance(n, (ast.Import, ast.ImportFrom)) or id(n) in tc:
                continue
            kind = "top" if id(n) in top else "lazy"
            for dst, parent in _resolve(n, mod, f.name == "__init__.py"):
                if dst not in modules and parent is not None:
                    dst = parent  # "from pkg import name": a name of the package itself
                while dst not in modules and "." in dst:
                    dst = dst.rsplit(".", 1)[0]
                if dst in modules and dst != mod and edges.get((mod, dst)) != "top":
                    edges[(mod, dst)] = kind
    return modules, edges


def cycles(nodes, edges):
    """Strongly connected components with more than one module (Tarjan; a graph of modules is
    shallow enough for recursion)."""
    graph = {n: [] for n in nodes}
    for a, b in edges:
        graph[a].append(b)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def layer_of(module: str) -> str:
    """``chainrule.nn.layers`` -> ``nn``; ``chainrule.io`` -> ``io``; the package ->
    ``chainrule``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_graph(edges):
    """Edges between layers (the package's __init__, which gathers everything, left out)."""
    out = {}
    for (a, b), kind in edges.items():
        la, lb = layer_of(a), layer_of(b)
        if la == lb or PKG in (la, lb) or la == "__main__":
            continue
        if out.get((la, lb)) != "top":
            out[(la, lb)] = kind
    return out


def _parents(tree):
    for p in ast.walk(tree):
        for c in ast.iter_child_nodes(p):
            c._parent = p


def package_packages_roots(root):
    return [p for p in root.rglob("*.py")]


def class_names(root):
    names = set()
    for f in root.rglob("*.py"):
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.ClassDef):
                names.add(n.name)
    return names


def name_keyed_tables(root, classes):
    """Dict/set/tuple/list literals with >= 2 string elements (keys) naming package classes,
    and comparisons of a class name against string constants."""
    out = []
    for f in sorted(root.rglob("*.py")):
        tree = ast.parse(f.read_text())
        exported = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets
            ):
                exported.add(id(n.value))
        for n in ast.walk(tree):
            if id(n) in exported:
                continue
            if isinstance(n, ast.Dict):
                elts = n.keys
            elif isinstance(n, (ast.Set, ast.Tuple, ast.List)):
                elts = n.elts
            else:
                continue
            strs = [
                e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
            hits = [s for s in strs if s in classes]
            if len(hits) >= 2:
                out.append((f.relative_to(root.parent), n.lineno, type(n).__name__, hits))
    return out


def _decides(expr, scope):
    """Is ``expr`` (or the variable it is stored in) compared with a string, tested with ``in``
    or used as a table key inside ``scope``?"""

    def used_as_key(node):
        p = getattr(node, "_parent", None)
        if isinstance(p, ast.Compare):
            return True
        if isinstance(p, ast.Subscript) and p.slice is node:
            return True
        if (
            isinstance(p, ast.Call)
            and isinstance(p.func, ast.Attribute)
            and p.func.attr in ("get", "pop")
            and node in p.args
        ):
            return True
        return isinstance(p, ast.Attribute) and p.attr in ("startswith", "endswith")

    if used_as_key(expr):
        return True
    p = getattr(expr, "_parent", None)
    if isinstance(p, ast.IfExp) and used_as_key(p):
        return True
    if isinstance(p, ast.Assign) and len(p.targets) == 1 and isinstance(p.targets[0], ast.Name):
        var = p.targets[0].id
        return any(
            isinstance(n, ast.Name)
            and n.id == var
            and isinstance(n.ctx, ast.Load)
            and used_as_key(n)
            for n in ast.walk(scope)
        )
    return False


def type_name_checks(root):
    """``type(x).__name__`` used to decide something (compared with a name, looked up as a
    table key, directly or through the variable it is stored in), not written into a message."""
    out = []
    for f in sorted(root.rglob("*.py")):
        tree = ast.parse(f.read_text())
        _parents(tree)
        for n in ast.walk(tree):
            if not (
                isinstance(n, ast.Attribute)
                and n.attr == "__name__"
                and isinstance(n.value, ast.Call)
                and isinstance(n.value.func, ast.Name)
                and n.value.func.id == "type"
            ):
                continue
            scope = n
            while not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
                scope = scope._parent
            if _decides(n, scope):
                stmt = n
                while not isinstance(stmt, ast.stmt):
                    stmt = stmt._parent
                out.append(
                    (f.relative_to(root.parent), n.lineno, ast.unparse(stmt).splitlines()[0][:100])
                )
    return out


def name_comparisons(root, classes):
    """Comparisons of some value with a string naming one of the package's classes
    (``kind == "Linear"``, ``name in ("ReLU", "Tanh")`` is counted with the tables)."""
    out = []
    for f in sorted(root.rglob("*.py")):
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.Compare):
                for c in [n.left, *n.comparators]:
                    if (
                        isinstance(c, ast.Constant)
                        and isinstance(c.value, str)
                        and c.value in classes
                    ):
                        out.append((f.relative_to(root.parent), n.lineno, ast.unparse(n)[:100]))
                        break
    return out


def long_functions(root, limit=80):
    out = []
    for f in sorted(root.rglob("*.py")):
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = n.end_lineno - n.lineno + 1
                if length > limit:
                    out.append((length, f"{f.relative_to(root.parent)}:{n.lineno} {n.name}"))
    return sorted(out, reverse=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parents[2] / PKG))
    args = ap.parse_args(argv)
    root = pathlib.Path(args.root).resolve()
    modules, edges = import_edges(root)
    print("# import edges (src -> dst  [top|lazy])")
    for (a, b), kind in sorted(edges.items()):
        print(f"{a} -> {b}  [{kind}]")
    top = {e for e, k in edges.items() if k == "top"}
    print("\n# cycles, module-level imports only")
    for c in cycles(modules, top) or [["(none)"]]:
        print("  " + " <-> ".join(c))
    print("\n# cycles, counting lazy (in-function) imports too")
    for c in cycles(modules, edges) or [["(none)"]]:
        print("  " + " <-> ".join(c))
    layer_edges = layer_graph(edges)
    print("\n# the same graph between layers (a subpackage counts as one layer), lazy imports too")
    for (a, b), kind in sorted(layer_edges.items()):
        print(f"{a} -> {b}  [{kind}]")
    layers = {a for a, _ in layer_edges} | {b for _, b in layer_edges}
    print("\n# cycles between layers")
    for c in cycles(layers, layer_edges) or [["(none)"]]:
        print("  " + " <-> ".join(c))
    classes = class_names(root)
    tables = name_keyed_tables(root, classes)
    print(f"\n# name-keyed tables (literals naming >= 2 package classes): {len(tables)}")
    for path, line, kind, hits in tables:
        print(f"  {path}:{line} {kind} {hits}")
    checks = type_name_checks(root)
    print(f"\n# type(...).__name__ checks: {len(checks)}")
    for path, line, src in checks:
        print(f"  {path}:{line} {src}")
    comps = name_comparisons(root, classes)
    print(f"\n# comparisons with a class-name string: {len(comps)}")
    for path, line, src in comps:
        print(f"  {path}:{line} {src}")
    longs = long_functions(root)
    print(f"\n# functions over 80 lines: {len(longs)}")
    for length, where in longs:
        print(f"  {length:4d}  {where}")


if __name__ == "__main__":
    main()
