"""The layering a newcomer can rely on, checked on the source: arrows point app -> index -> ingest -> models
(so models/ never sees the store, and nothing below app/ sees the demo world), only the store package
speaks SQL, and no product modules import each other in a circle (imports inside functions count: they
used to hide one)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"models": 1, "ingest": 2, "index": 3, "app": 4}
SQL_CALLS = {"execute", "executemany", "executescript"}
STORE = "ingest.store"


def modules() -> dict[str, Path]:
    """Every product module by dotted name (a package by its own name)."""
    out = {}
    for package in FLOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = modules()


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(name: str) -> set[str]:
    """The product modules `name` imports at run time (at the top or inside functions)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import x` names the package being imported already; only x is an edge
            targets = ([base] if node.module else []) + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def test_arrows_point_from_app_to_index_to_ingest_to_models():
    upward = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if FLOORS[target.split(".")[0]] > FLOORS[name.split(".")[0]]
    ]
    assert not upward, "imports from a higher floor:\n" + "\n".join(upward)


def test_only_the_store_speaks_sql():
    offenders = []
    for name, path in MODULES.items():
        if name == STORE or name.startswith(STORE + "."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, (ast.Import, ast.ImportFrom)) and "sqlite3" in ast.unparse(node):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports sqlite3")
    assert not offenders, "SQL outside ingest/store:\n" + "\n".join(offenders)


def test_no_product_modules_import_each_other_in_a_circle():
    cycles, state = [], dict.fromkeys(GRAPH, 0)  # 0 new, 1 on the path, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state[target] == 1:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif state[target] == 0:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(GRAPH):
        if state[name] == 0:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_see_a_violation():
    """The walk itself works: it finds the store's own SQL and index's import of ingest."""
    assert "ingest.store" in GRAPH["index.catalog_index"]
    assert any(
        node.func.attr == "execute"
        for node in ast.walk(ast.parse(MODULES["ingest.store.videos"].read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    )
