"""The package's layout holds: layers import only downwards, no module imports
itself back through others, and imports inside functions say why they are there.

The import graph is read from the source (``ast``), so the check sees imports
inside functions too, which the running interpreter would only meet late.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vidnas"

# Lower layers first; a module may import from its own layer and the layers below.
LAYERS = [
    {"vidnas.errors"},
    {"vidnas.config"},
    {"vidnas.engine"},
    {"vidnas.data"},
    {"vidnas.models"},
    {"vidnas.nas"},
    {"vidnas.report"},
    {"vidnas.loops"},
    {"vidnas.apps", "vidnas", "vidnas.__main__"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    for i, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name != "vidnas" and module.startswith(name + ".")):
                return i
    raise AssertionError(f"{module} is in no layer of tests/test_layout.py")


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported vidnas module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module, child.lineno, in_function))
                # `from vidnas.data import synth` imports the module vidnas.data.synth
                out.extend(
                    (f"{child.module}.{a.name}", child.lineno, in_function)
                    for a in child.names
                    if (SRC.parent / child.module.replace(".", "/") / f"{a.name}.py").exists()
                )
            visit(child, inner)

    visit(tree, False)
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _, _ in _imports(path):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def test_layers_import_only_downwards():
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            if module == "vidnas":  # the package's lazy face may name anything
                continue
            if _layer(target) > _layer(module):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that run up the layers:\n" + "\n".join(sorted(wrong))


def test_config_imports_only_the_errors():
    targets = _graph()["vidnas.config"]
    assert targets <= {"vidnas.errors"}, targets
    assert _graph()["vidnas.errors"] == set()


def test_no_import_cycles():
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_inside_functions_say_why():
    """Only lazy imports (CLI start-up) and optional dependencies may hide in a
    function, each with a comment on its line or the line above."""
    silent = []
    for path in SRC.rglob("*.py"):
        lines = path.read_text().splitlines()
        for target, line, in_function in _imports(path):
            if not in_function:
                continue
            here, above = lines[line - 1], lines[line - 2] if line > 1 else ""
            if "#" not in here and not above.strip().startswith("#"):
                silent.append(f"{path.relative_to(SRC.parent)}:{line}: {target}")
    assert not silent, "imports inside functions without a reason:\n" + "\n".join(silent)
