"""Shared fixtures: the project's folders and a helper to run the CLI as users do."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pgdb import own_database

# Each pytest run gets a PostgreSQL database of its own (made from the URL CI gives, dropped at
# the end): runs side by side on one server (several branches, several helpers) never meet.
own_database()

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"


def run_cli(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m monitor ARGS`` in a subprocess, as a user would run it."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "monitor", *args], input=stdin, text=True,
                          capture_output=True, cwd=cwd or ROOT, env=env, timeout=120)


@pytest.fixture(scope="session")
def rule_set():  # type: ignore[no-untyped-def]
    from monitor.scan import load_rules

    return load_rules(RULES)


@pytest.fixture
def feed_server():  # type: ignore[no-untyped-def]
    from tests.feedserver import FeedServer

    server = FeedServer().start()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _collect_garbage():  # type: ignore[no-untyped-def]
    """Collect after each test, so a resource a test leaks (an unclosed socket) fails that test,
    not whichever test the garbage collector happens to run in."""
    yield
    gc.collect()
