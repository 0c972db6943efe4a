"""docs/architecture.md's room list is the tree, and proxy/ imports nothing in a circle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "proxy"
DOC = ROOT / "docs" / "architecture.md"


def documented_rooms() -> set[str]:
    """The proxy/ entries of the Rooms block: "auth/", "auth/kit.py", "app.py", ..."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("## Rooms", 1)[1].split("```", 2)[1]
    rooms: set[str] = set()
    folder = sub = ""
    inside = False
    for line in block.splitlines():
        if line == "proxy/":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break  # config/, tests/, ...: the proxy/ tree is over
        if m := re.match(r"^  (\S+)", line):
            name = m.group(1)
            folder = name if name.endswith("/") else ""
            sub = ""
            rooms.add(name)
        elif m := re.match(r"^    (\S+/)(?:\s|$)", line):
            assert folder, f"a folder outside any folder: {line!r}"
            sub = folder + m.group(1)
            rooms.add(sub)
        elif m := re.match(r"^    (\S+\.py)\b", line):
            assert folder, f"a file outside any folder: {line!r}"
            sub = ""
            rooms.add(folder + m.group(1))
        elif m := re.match(r"^      (\S+\.py)\b", line):
            assert sub, f"a file outside any sub-folder: {line!r}"
            rooms.add(sub + m.group(1))
    return rooms


def tree_rooms() -> set[str]:
    rooms: set[str] = set()
    for path in PROXY.rglob("*"):
        rel = path.relative_to(PROXY)
        if "__pycache__" in rel.parts or path.name == "__init__.py":
            continue
        if path.is_dir() and (len(rel.parts) == 1 or any(path.glob("*.py"))):
            rooms.add(f"{rel.as_posix()}/")  # a sub-folder is a room when it holds code
        elif path.suffix == ".py" and len(rel.parts) <= 3:
            rooms.add(rel.as_posix())
    return rooms


def test_the_room_list_names_every_module_and_no_other() -> None:
    documented, actual = documented_rooms(), tree_rooms()
    assert actual - documented == set(), "modules docs/architecture.md does not list"
    assert documented - actual == set(), "rooms docs/architecture.md lists that do not exist"


def test_the_room_list_is_read_at_all() -> None:
    rooms = documented_rooms()
    assert {"app.py", "gate/", "gate/decision.py", "sessions/backends.py"} <= rooms


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the proxy modules it imports anywhere (at the top or inside a function)."""
    paths = {_module(p): p for p in PROXY.rglob("*.py") if "__pycache__" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import"
                base = node.module or ""
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_proxy_imports_nothing_in_a_circle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "proxy.sessions.store" in graph["proxy.sessions.backends"]  # the graph is real
