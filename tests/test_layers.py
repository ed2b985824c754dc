"""The layers, read from the source: no import cycles, the store at the bottom, the query service apart
from the build step, the core naming nothing of the web layer (not even in a string), library errors
without HTTP statuses, evaluation used by nothing in the core, the HTTP app on the public API only, and
no long positional parameter lists."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import recommender
from tests.conftest import ROOT

CORE = ROOT / "recommender"
WEB = ROOT / "web"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for folder in (CORE, WEB) for p in sorted(folder.rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every project module a file imports, at the top or inside a function (lazy imports count)."""
    here = _module(path).split(".")
    package = here if path.stem == "__init__" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:  # `from pkg import module` names a module; `from module import name` its module
                found.add(f"{module}.{a.name}" if f"{module}.{a.name}" in known else module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known}


PACKAGES = {name for name, path in _modules().items() if path.stem == "__init__"}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {m for m in _imports(path, known) if m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in PACKAGES:
                continue  # a package's __init__ re-exports its modules; modules do not import it
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
    # the tokenizer rule (text.lexical) is the only text rule the store needs: its full-text index splits words by it
    assert _graph()["recommender.index.store"] <= {"recommender.errors", "recommender.config", "recommender.text.dates",
                                                   "recommender.text.lexical"}


def test_text_and_evidence_import_nothing_above_them():
    """Reading an article and weighing a pair's evidence know nothing of the index, the model or the
    query service: those build on them (an article says what is stored of it, Article.stored; the index
    makes the record)."""
    below = ("recommender.errors", "recommender.evidence", "recommender.text")
    for name, imports in _graph().items():
        if name.startswith(("recommender.text", "recommender.evidence")):
            assert all(m.startswith(below) for m in imports), (name, sorted(imports))
        if name.startswith("recommender.evidence"):
            assert not any(m.startswith("recommender.text") for m in imports), (name, sorted(imports))


def test_the_query_service_does_not_import_the_build_step():
    assert not _graph()["recommender.query.service"] & {"recommender.index.indexing", "recommender.facade",
                                                  "recommender.evaluation.runs", "web.cli"}


# The command line and the server launcher sit above both the core and the HTTP app.
ABOVE_BOTH = {WEB / "cli.py", WEB / "serving.py"}


def test_the_http_app_uses_only_the_public_api():
    public = set(recommender.__all__)
    for path in sorted(WEB.glob("*.py")):
        if path in ABOVE_BOTH:
            continue
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


def _names_web(path: Path) -> list[str]:
    """Where a core file imports the web layer or names one of its modules in a string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("web", "flask"):
            found.append(f"{path.name}:{node.lineno} imports {node.module}")
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] in ("web", "flask") for a in node.names):
            found.append(f"{path.name}:{node.lineno} imports the web layer")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"\bweb[.:][A-Za-z_]", node.value):
            found.append(f"{path.name}:{node.lineno} names {node.value!r}")
    return found


def test_the_core_names_nothing_of_the_web_layer():
    found = [hit for path in sorted(CORE.rglob("*.py")) for hit in _names_web(path)]
    assert not found, found


def test_the_web_check_finds_a_string(tmp_path):
    planted = tmp_path / "serving.py"
    planted.write_text('APP = "web:create_app()"\n')
    assert _names_web(planted)


ERRORS = {"BadInput", "ArticleNotFound", "IndexNotReady", "IndexMismatch"}


def _statuses(path: Path) -> list[str]:
    """Class attributes of library errors that carry an HTTP status."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        bases = {getattr(b, "id", getattr(b, "attr", "")) for b in getattr(node, "bases", ())}
        if isinstance(node, ast.ClassDef) and any(b.endswith(("Error", "Exception")) or b in ERRORS for b in bases):
            for stmt in node.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                if any(isinstance(t, ast.Name) and t.id in ("status", "status_code", "http_status") for t in targets):
                    found.append(f"{path.name}:{stmt.lineno} {node.name}")
    return found


def test_no_library_error_carries_an_http_status():
    found = [hit for path in sorted(CORE.rglob("*.py")) for hit in _statuses(path)]
    assert not found, found
    for name in ("NewsrecError", "BadInput", "ArticleNotFound", "IndexNotReady", "IndexMismatch", "ConfigError"):
        assert not hasattr(getattr(recommender, name), "status"), name


def test_every_library_error_has_a_status_in_the_web_table():
    from web.errors import status_of

    errors = [getattr(recommender, n) for n in recommender.__all__
              if isinstance(getattr(recommender, n), type) and issubclass(getattr(recommender, n), recommender.NewsrecError)]
    assert {e.__name__: status_of(e("x")) for e in errors} == {
        "ArticleNotFound": 404, "BadInput": 400, "ConfigError": 500, "IndexMismatch": 503, "IndexNotReady": 503,
        "NewsrecError": 500}


def test_evaluation_is_imported_by_nothing_in_the_core():
    graph = _graph()
    users = sorted(m for m, deps in graph.items() if m.startswith("recommender") and not m.startswith("recommender.evaluation")
                   and any(d.startswith("recommender.evaluation") for d in deps))
    assert not users, users


def _long_positional(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
            if len(names) > 6:
                found.append(f"{path.name}:{node.lineno} {node.name}({', '.join(names)})")
    return found


def test_no_function_takes_more_than_six_positional_parameters():
    offenders = [hit for folder in (CORE, ROOT / "bench") for path in sorted(folder.rglob("*.py"))
                 for hit in _long_positional(path)]
    assert not offenders, "use a dataclass or keyword-only parameters: " + "; ".join(offenders)


def test_folders_are_the_map():
    """The core's modules live in subpackages named for their job; only the public facade, the
    settings and the error types sit at its top."""
    assert {p.name for p in CORE.glob("*.py")} == {"__init__.py", "config.py", "errors.py", "facade.py"}
