"""The code's own rules, checked on the source (issue 12, section 4): no private names used across modules, one
module runs PostgreSQL programs and processes, specific exceptions from one module, no server <-> pitr cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gitinsight_analytics"
OWN = ("gitinsight_analytics", "tests", "benchmarks", "migrations")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _sources(*roots: str) -> Iterator[tuple[Path, ast.Module]]:
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            yield path, ast.parse(path.read_text(), filename=str(path))


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _imported(path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of what ``node`` imports from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = _module(path).split(".")[: -node.level]
    return ".".join([*package, *([node.module] if node.module else [])])


def _private_uses(path: Path, tree: ast.Module) -> Iterator[str]:
    """Private names of another of our modules that ``path`` uses (a private module only inside its package)."""
    package = _module(path).rsplit(".", 1)[0]
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported(path, node)
            if source.split(".")[0] not in OWN:
                continue
            parts = source.split(".")
            for i, part in enumerate(parts):
                if _private(part) and ".".join(parts[:i]) != package:
                    yield f"line {node.lineno}: private module {source}"
            for alias in node.names:
                if _private(alias.name):
                    yield f"line {node.lineno}: {source}.{alias.name}"
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in OWN)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            yield f"line {node.lineno}: {node.value.id}.{node.attr}"


@pytest.mark.parametrize(("path", "tree"), list(_sources(*OWN)), ids=lambda v: str(v)[len(str(ROOT)) + 1:]
                         if isinstance(v, Path) else "")
def test_no_private_names_across_modules(path: Path, tree: ast.Module) -> None:
    assert list(_private_uses(path, tree)) == []


def test_the_rule_sees_a_private_use() -> None:
    tree = ast.parse("from gitinsight_analytics import server\nfrom ..queries._frame import x\nserver._run()\n")
    found = list(_private_uses(PACKAGE / "alerts" / "run.py", tree))
    assert found == ["line 2: private module gitinsight_analytics.queries._frame", "line 3: server._run"]


def test_one_module_runs_postgresql_processes() -> None:
    """Port checks, free ports and postmaster lookups are pgproc's; nobody else probes a port with a socket."""
    for path, tree in _sources("gitinsight_analytics", "tests", "benchmarks"):
        if path.name == "pgproc.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "connect_ex":
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.attr}: use gitinsight_analytics.pgproc")
            if isinstance(node, ast.FunctionDef) and node.name in {"free_port", "port_taken", "_port_taken",
                                                                   "postmaster", "_free_port_block"}:
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} defines {node.name}: use pgproc's")


def _imports_of(module: str) -> set[str]:
    path = ROOT / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            source = _imported(path, node)
            found.add(source)
            found.update(f"{source}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("module", ["gitinsight_analytics.server", "gitinsight_analytics.archiving",
                                    "gitinsight_analytics.pgproc"])
def test_the_server_does_not_depend_on_pitr(module: str) -> None:
    assert not any(name.startswith("gitinsight_analytics.pitr") for name in _imports_of(module))


def test_exceptions_are_specific_and_in_one_module() -> None:
    """No ``raise GitInsightError(...)``; every GitInsightError subclass is defined in exceptions.py."""
    from gitinsight_analytics import exceptions

    for path, tree in _sources("gitinsight_analytics"):
        for node in ast.walk(tree):
            if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and isinstance(node.exc.func, ast.Name) and node.exc.func.id == "GitInsightError"):
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} raises the base class: use a specific one")
            if path.name != "exceptions.py" and isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id in exceptions.__all__ for b in node.bases):
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} defines {node.name}: put it in exceptions.py")
    assert all(issubclass(getattr(exceptions, name), exceptions.GitInsightError) for name in exceptions.__all__)


def test_the_package_ships_its_type_hints() -> None:
    import tomllib

    assert (PACKAGE / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["gitinsight_analytics"]
