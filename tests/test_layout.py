"""The package layout's rules, read from the code's own imports (ast, nothing imported).

* jenga_edge never imports trainer/ or export/, and trainer/ and export/ take
  only jenga_edge.contract from it (plus the version): the bundle is the one
  thing that crosses from the workstation to the gateway;
* no import circles inside jenga_edge;
* no module takes a private (`_name`) name from another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def modules(package: str) -> dict[str, Path]:
    root = REPO / package
    out = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [a.name for a in node.names]
            # `from . import x` imports the submodule x
            out.append((mod, names))
            out += [(f"{mod}.{n}", []) for n in names]
    return out


def test_the_trainer_and_exporter_take_only_the_contract_from_the_edge():
    for package in ("trainer", "export"):
        for name, path in modules(package).items():
            for mod, names in imports(name, path):
                if mod == "jenga_edge":
                    assert set(names) <= {"__version__"}, f"{path}: from jenga_edge import {names}"
                elif mod.startswith("jenga_edge."):
                    assert mod.startswith("jenga_edge.contract"), f"{path} imports {mod}: only jenga_edge.contract"


def test_the_edge_never_imports_the_trainer_or_the_exporter():
    for name, path in modules("jenga_edge").items():
        for mod, _ in imports(name, path):
            assert mod.split(".")[0] not in ("trainer", "export", "torch"), f"{path} imports {mod}"


def _graph() -> dict[str, set[str]]:
    mods = modules("jenga_edge")
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for mod, _ in imports(name, path):
            if mod in mods and mod != name and not name.startswith(mod + "."):
                graph[name].add(mod)  # a package's own __init__ is not a cycle edge
    return graph


def test_no_import_circles_in_the_edge():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path[path.index(n) :], n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_circle_check_finds_a_circle():
    # Guards the test above against passing because it cannot see edges.
    graph = _graph()
    assert "jenga_edge.sources.base" in graph["jenga_edge.sources.tcp"]
    assert "jenga_edge.contract.errors" in graph["jenga_edge.contract.typed"]


def test_no_private_names_cross_modules():
    for package in ("jenga_edge", "trainer", "export"):
        for name, path in modules(package).items():
            for mod, names in imports(name, path):
                if mod == name:
                    continue  # a package naming its own private submodules (native/ its C extensions)
                private = [n for n in names if n.startswith("_") and n != "__version__"]
                assert not private, f"{path} takes {private} from {mod}"
