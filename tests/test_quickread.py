"""``items list`` on SQLite reads through the standard library (issue 21 point 12): the same rows as the
Store gives, for every filter; another schema version, a damaged or missing file, or PostgreSQL fall back
to the Store; and the listing imports no SQLAlchemy."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from monitor.store import schema
from monitor.store.quickread import SCHEMA, open_items_reader
from monitor.store.repo import ITEMS, Store
from tests.conftest import ROOT, run_cli
from tests.webseed import seed

NOW = datetime(2026, 12, 3, 10, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "m.db"
    store = Store(f"sqlite:///{path}")
    seeded = seed(store, NOW, items=120, feeds=5, days=10)
    with store.engine.begin() as connection:  # what full text, odd titles and ties leave in a row
        connection.execute(update(ITEMS).where(ITEMS.c.id == seeded.item_ids[0]).values(
            full_text="Весь текст статьи " * 20, full_text_status="ok", title="Новости: «дроны» <b>&amp;</b>"))
        connection.execute(update(ITEMS).where(ITEMS.c.id == seeded.item_ids[1]).values(
            full_text_status="error", full_text_error="HTTP 404 from the server"))
        connection.execute(update(ITEMS).where(ITEMS.c.id.in_(seeded.item_ids[2:6])).values(first_seen_at=NOW))
    store.close()
    return path


def test_schema_is_the_latest_migration() -> None:
    assert SCHEMA == schema.LATEST, "a migration was added: check quickread's queries against it, then SCHEMA"


@pytest.mark.parametrize(("since", "feed", "limit"), [
    (None, None, None), (None, None, 7), (timedelta(days=3), None, None), (None, "feed-02", None),
    (timedelta(days=5), "feed-01", 4), (timedelta(seconds=0), None, None), (None, "no-such-feed", None)])
def test_the_reader_gives_the_store_s_rows(database: Path, since: timedelta | None, feed: str | None,
                                           limit: int | None) -> None:
    url = f"sqlite:///{database}"
    moment = NOW - since if since is not None else None
    store = Store(url)
    reader = open_items_reader(url)
    assert reader is not None
    try:
        expected = list(store.iter_items(moment, feed, limit))
        assert list(reader.iter_items(moment, feed, limit)) == expected
        assert reader.count_items(moment, feed) == store.count_items(moment, feed)
        assert reader.feed_names() == store.feed_names()
    finally:
        reader.close()
        store.close()
    if feed is None and since is None and limit is None:  # the comparison covered every kind of row
        assert len(expected) == 120 and len({row["first_seen_at"] for row in expected[:6]}) < 6
        assert any(row["full_text_chars"] for row in expected) and any(row["full_text_error"] for row in expected)


def test_anything_but_this_schema_on_a_plain_sqlite_file_is_left_to_the_store(database: Path,
                                                                                 tmp_path: Path) -> None:
    assert open_items_reader("postgresql+psycopg://postgres@127.0.0.1/x") is None
    assert open_items_reader(f"sqlite:///{database}?timeout=5") is None
    assert open_items_reader(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()  # read-only: nothing made
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert open_items_reader(f"sqlite:///{tmp_path / 'junk.db'}") is None
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE schema_version SET version = ?", (SCHEMA - 1,))
    connection.close()
    assert open_items_reader(f"sqlite:///{database}") is None


def config_for(tmp_path: Path, database: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "sqlite:///{database}"\n'
                      '[[feeds]]\nname = "feed-00"\nurl = "http://127.0.0.1:9/rss"\n')
    return config


def test_items_list_imports_no_sqlalchemy_and_prints_the_rows(database: Path, tmp_path: Path) -> None:
    config = config_for(tmp_path, database)
    probe = ("import sys\nfrom monitor.cli import main\n"
             f"status = main(['items', 'list', '--config', {str(config)!r}, '--format', 'json', '--limit', '5'])\n"
             "print(status, sorted(m for m in ('sqlalchemy', 'sqlmodel') if m in sys.modules), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stderr.splitlines()[-1] == "0 []", result.stderr
    rows = json.loads(result.stdout)
    store = Store(f"sqlite:///{database}")
    try:
        assert rows == [{key: row[key] for key in rows[0]} for row in store.iter_items(limit=5)]
    finally:
        store.close()
    shown = run_cli("items", "list", "--config", str(config), "--feed", "feed-03", "--limit", "2")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 3  # a header and two rows
    assert shown.stderr.startswith("showing 2 of ")
    wrong = run_cli("items", "list", "--config", str(config), "--feed", "feed-3")
    assert wrong.returncode == 1 and "did you mean" in wrong.stderr and "Traceback" not in wrong.stderr


def test_a_store_of_another_version_gets_the_store_s_answer(database: Path, tmp_path: Path) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE schema_version SET version = ?", (SCHEMA + 1,))
    connection.close()
    result = run_cli("items", "list", "--config", str(config_for(tmp_path, database)))
    assert result.returncode == 1 and "newer" in result.stderr and len(result.stderr.splitlines()) == 1
