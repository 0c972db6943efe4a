"""docs/security.md and the suite agree: each test it names exists, each security test is named."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "security.md").read_text("utf-8")
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
# Helpers and this file's own checks are not defences.
NOT_DEFENCES = {"test_docs.py"}


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def _referenced() -> set[tuple[str, str]]:
    return set(TEST_ID.findall(DOC))


def test_every_test_the_threat_table_names_exists() -> None:
    missing = [
        f"{path}::{name}"
        for path, name in sorted(_referenced())
        if not (ROOT / path).is_file() or name not in _test_functions(ROOT / path)
    ]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
    assert len(_referenced()) > 50


def test_every_security_test_is_in_the_threat_table() -> None:
    named = _referenced()
    unlisted = [
        f"{path.relative_to(ROOT)}::{name}"
        for path in sorted((ROOT / "tests" / "security").glob("test_*.py"))
        if path.name not in NOT_DEFENCES
        for name in sorted(_test_functions(path))
        if (str(path.relative_to(ROOT)), name) not in named
    ]
    assert not unlisted, f"security tests missing from docs/security.md: {unlisted}"


def test_every_removable_defence_is_still_in_the_code() -> None:
    """remove_each_defence.py edits each defence by its exact text: an entry whose text the code
    no longer holds once (a refactor) says STALE only when someone runs it, and that defence
    silently stops being proven. Its tests must exist too."""
    from tests.security.remove_each_defence import MUTANTS

    stale = [m.name for m in MUTANTS if (ROOT / m.path).read_text("utf-8").count(m.defence) != 1]
    assert not stale, f"remove_each_defence.py entries the code no longer matches: {stale}"
    missing = [
        f"{m.name}: tests/{path}::{name}"
        for m in MUTANTS
        for path, name in m.tests
        if not (ROOT / "tests" / path).is_file()
        or (name and name not in _test_functions(ROOT / "tests" / path))
    ]
    assert not missing, f"remove_each_defence.py names tests that do not exist: {missing}"
