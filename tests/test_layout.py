"""The house rules of the layout, checked on the source: layers import one way, no import circle, each
heavy dependency stays in its room.

Read from the files with ``ast`` (nothing is imported), so a rule broken by a lazy import inside a function
is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

LAYERS = ("events", "projections", "pipelines")  # each may import only the ones before it
# Third-party packages that belong to one room: (package, the module paths allowed to import it).
# Which other rooms of pipelines/ each room may use (modules directly in pipelines/, like exit_codes, serve all).
ROOM_USES = {
    "cli": {"collector", "demo", "ingest", "orchestration", "streaming", "web"},
    "collector": {"ingest", "streaming"},
    "demo": {"ingest", "orchestration"},
    "streaming": {"ingest", "orchestration"},
    "ingest": set(),
    "orchestration": set(),
    "web": set(),
}
ROOMS = {
    "dagster": ("pipelines/orchestration/",),
    "faust": ("pipelines/streaming/",),
    "kafka": ("pipelines/streaming/", "events/emitter.py"),
    "aiokafka": ("pipelines/streaming/",),
    "starlette": ("pipelines/collector/", "pipelines/web/"),
    "jinja2": ("pipelines/web/",),
    "uvicorn": ("pipelines/collector/",),
    "psycopg": ("events/storage/postgres/",),
}


def _modules() -> dict[str, Path]:
    found = {}
    for layer in LAYERS:
        for path in (REPO_ROOT / layer).rglob("*.py"):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file; ``from pkg import sub`` counts as ``pkg.sub``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & MODULES.keys()
            names |= submodules if len(submodules) == len(node.names) else {node.module} | submodules
    return names


GRAPH = {name: {i for i in _imports(path) if i in MODULES} - {name} for name, path in MODULES.items()}


def test_the_source_was_found() -> None:
    assert {"events.storage.store", "projections.tables", "pipelines.cli.main"} <= MODULES.keys()
    assert GRAPH["pipelines.cli.main"], "imports of our own modules are seen"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layers_import_one_way(name: str) -> None:
    layer = LAYERS.index(name.split(".")[0])
    upward = sorted(i for i in GRAPH[name] if LAYERS.index(i.split(".")[0]) > layer)
    assert not upward, f"{name} imports from a layer above it: {upward}"


def _room(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "pipelines" and len(parts) > 2 else None


def test_every_room_of_pipelines_is_listed() -> None:
    assert {_room(n) for n in MODULES} - {None} == ROOM_USES.keys()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _room(n)))
def test_rooms_of_pipelines_use_only_the_rooms_they_may(name: str) -> None:
    room = _room(name)
    used = {_room(i) for i in GRAPH[name]} - {None, room}
    assert used <= ROOM_USES[room], f"{name} ({room}/) uses {sorted(used - ROOM_USES[room])}/"


def test_no_import_circle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("package", sorted(ROOMS))
def test_each_heavy_dependency_stays_in_its_room(package: str) -> None:
    outside = sorted(
        str(path.relative_to(REPO_ROOT)) for path in MODULES.values()
        if any(i == package or i.startswith(package + ".") for i in _imports(path))
        and not str(path.relative_to(REPO_ROOT)).startswith(ROOMS[package])
    )
    assert not outside, f"{package} is imported outside {ROOMS[package]}: {outside}"


def test_the_contract_does_not_reach_into_storage() -> None:
    reaching = sorted(n for n in MODULES if n.startswith("events.contract")
                      and any(i.startswith("events.storage") for i in GRAPH[n]))
    assert not reaching, reaching
