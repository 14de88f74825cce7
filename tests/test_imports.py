"""The packages' imports go one way, lazy imports included: puzzles ← models ← training ←
evaluation ← the command line, and no module reaches back into one that imports it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("puzzles", "hrm", "baselines", "eval")
# each module's layer, by the longest prefix of its name listed here
LAYERS = {
    "puzzles": 0,
    "hrm": 1, "hrm.layers": 1, "hrm.segment_model": 1, "hrm.model": 1, "hrm.act": 1,
    "hrm.trm": 1, "hrm.flops": 1, "hrm.kinds": 1, "hrm.inference": 1, "baselines": 1,
    "hrm.config": 2, "hrm.train": 2, "hrm.checkpoint": 2, "hrm.presets": 2, "hrm.progress": 2,
    "eval": 3,
    "hrm.cli": 4,
}
TOP = "hrm.cli"  # the command reaches everything


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


def runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``, which never runs."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
            continue
        yield child
        yield from runtime_nodes(child)


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from package import module`` imports that module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def layer(name: str) -> int:
    prefix = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def test_every_module_has_a_layer():
    for name in graph():
        layer(name)  # raises where no prefix matches


def test_imports_never_reach_a_higher_layer():
    wrong = [f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
             for name, targets in graph().items() for target in targets
             if layer(target) > layer(name)]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = {name: {t for t in targets if t != TOP} for name, targets in graph().items()
             if name != TOP}
    state: dict[str, str] = {}  # "open" while on the DFS path, then "done"

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(edges.get(name, ())):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])


def test_the_checker_sees_lazy_imports_and_cycles(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from hrm.train import train\n")
    assert imports_of("baselines.x", path, {"hrm.train"}) == {"hrm.train"}
    assert layer("hrm.train") > layer("baselines.x")
