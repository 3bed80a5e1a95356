"""Shared fixtures: the project's folders and a helper to run the CLI as users do."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.pgdb import own_database

# Each pytest run gets a PostgreSQL database of its own (made from the URL CI gives, dropped at
# the end): runs side by side on one server (several branches, several helpers) never meet.
own_database()
# Compiled rules are cached under XDG_CACHE_HOME (monitor/rules/cache.py): the tests, and the CLI they run,
# keep theirs in a folder of this run, not in the user's ~/.cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="crisis-monitor-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)

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
