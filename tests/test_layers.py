"""The layers, read from the source: no import cycles, the store at the bottom, the query service apart
from the build step, the web layer on the public API only, and no long positional parameter lists."""
from __future__ import annotations

import ast
from pathlib import Path

import recommender
from tests.conftest import ROOT

CORE = ROOT / "recommender"
WEB = ROOT / "web"


def _imports(path: Path, package: str) -> set[str]:
    """Every project module a file imports, at the top or inside a function (lazy imports count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: .x or .
                base = node.module or ""
                if base:
                    found.add(f"{package}.{base.split('.')[0]}")
                else:
                    found.update(f"{package}.{a.name}" for a in node.names)
            elif node.module and node.module.split(".")[0] in ("recommender", "web"):
                parts = node.module.split(".")
                found.add(".".join(parts[:2]) if len(parts) > 1 else parts[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in ("recommender", "web"):
                    found.add(".".join(a.name.split(".")[:2]))
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for folder, package in ((CORE, "recommender"), (WEB, "web")):
        for path in folder.glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            graph[name] = {m for m in _imports(path, package) if m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in ("recommender", "web"):
                continue  # the package's own __init__ re-exports; modules do not import it
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    assert _cycle(_graph()) is None, f"import cycle: {' -> '.join(_cycle(_graph()))}"


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_store_imports_nothing_above_it():
    assert _graph()["recommender.store"] <= {"recommender.errors", "recommender.config", "recommender.dates"}


def test_the_query_service_does_not_import_the_build_step():
    assert not _graph()["recommender.service"] & {"recommender.indexing", "recommender.facade",
                                                  "recommender.evaluation", "recommender.cli"}


def test_web_uses_only_the_public_api():
    public = set(recommender.__all__)
    for path in WEB.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("recommender"):
                assert node.module == "recommender", f"{path.name} imports {node.module}: use `from recommender import ...`"
                assert {a.name for a in node.names} <= public, f"{path.name} imports a name not in recommender.__all__"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("recommender.") for a in node.names), path.name


def test_every_public_name_exists():
    for name in recommender.__all__:
        assert hasattr(recommender, name), name


def test_no_function_takes_more_than_six_positional_parameters():
    offenders = []
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(names) > 6:
                    offenders.append(f"{path.name}:{node.lineno} {node.name}({', '.join(names)})")
    assert not offenders, "use a dataclass or keyword-only parameters: " + "; ".join(offenders)
