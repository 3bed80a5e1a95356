"""Pure modules (text, rules, feed parsing) never import I/O frameworks or read the clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "monitor"
PURE = [PACKAGE / "text.py", PACKAGE / "units.py", PACKAGE / "types.py", PACKAGE / "feeds" / "parse.py",
        PACKAGE / "dedupe.py", PACKAGE / "schedule.py", PACKAGE / "routing.py", PACKAGE / "config.py",
        PACKAGE / "feeds" / "opml.py", PACKAGE / "notify" / "policy.py", PACKAGE / "notify" / "payload.py",
        *sorted((PACKAGE / "rules").glob("*.py")),
        *(PACKAGE / "stories" / name for name in ("__init__.py", "cluster.py", "signature.py", "publisher.py",
                                                  "surge.py"))]
FORBIDDEN = {"httpx", "sqlmodel", "sqlalchemy", "apscheduler", "asyncio", "socket", "urllib.request",
             "time", "subprocess"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_module_imports(path: Path) -> None:
    bad = {n for n in imported(path) for f in FORBIDDEN if n == f or n.startswith(f + ".")}
    assert not bad, f"{path.name} imports {bad}"
    assert "datetime.now" not in path.read_text() and "time.time" not in path.read_text()


def test_the_cli_is_imported_by_nothing() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("cli.py", "__main__.py"):
            assert "monitor.cli" not in imported(path), path
