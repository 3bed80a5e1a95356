"""``items list`` of a SQLite store without SQLAlchemy: the standard library's sqlite3 reads the rows.

Importing SQLAlchemy and SQLModel costs more CPU than the rest of a small listing together (half a
second; bench/startup_bench.py), and listing items needs none of what they do. This reader opens a
SQLite file read-only and only when its ``schema_version`` is exactly ``SCHEMA``, the version its
queries are written for (tests keep ``SCHEMA`` equal to the latest migration and the rows equal to
``Store.iter_items``'s). Anything else — another version (to be migrated), PostgreSQL, a URL with
options, a missing, locked or damaged file — gives None, and the caller opens the ``Store``, which
migrates, creates, or says in one line what is wrong.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.types import iso

SCHEMA = 7
_STORED = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime keeps a (UTC) time in SQLite
_ITEMS = ("SELECT items.id, feeds.name, items.title, items.url, items.published_at, items.first_seen_at, "
          "items.full_text_status, items.full_text_error, length(items.full_text) "
          "FROM items JOIN feeds ON feeds.id = items.feed_id")


def open_items_reader(url: str) -> ItemsReader | None:
    """A reader of the SQLite file of ``url`` at schema ``SCHEMA``, or None (use the Store)."""
    if not url.startswith("sqlite:///") or "?" in url or url == "sqlite:///:memory:":
        return None
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    try:
        with closing(connection.execute("SELECT version FROM schema_version WHERE id = 1")) as cursor:
            row = cursor.fetchone()
    except sqlite3.Error:
        row = None
    if row is None or row[0] != SCHEMA:
        connection.close()
        return None
    return ItemsReader(connection)


def _stored(moment: datetime) -> str:
    return (moment.astimezone(UTC) if moment.tzinfo else moment).strftime(_STORED)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ItemsReader:
    """What ``items list`` asks of a store: ``feed_names``, ``iter_items`` and ``count_items``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def close(self) -> None:
        self.connection.close()

    def feed_names(self) -> list[str]:
        return [name for (name,) in self.connection.execute("SELECT name FROM feeds ORDER BY name")]

    @staticmethod
    def _where(since: datetime | None, feed: str | None) -> tuple[str, list[Any]]:
        clauses, values = [], []
        if since:
            clauses.append("items.first_seen_at >= ?")
            values.append(_stored(since))
        if feed:
            clauses.append("feeds.name = ?")
            values.append(feed)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), values

    def iter_items(self, since: datetime | None = None, feed: str | None = None,
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
        """As ``Store.iter_items``: newest first, at most ``limit`` (None: all), read as they are used."""
        where, values = self._where(since, feed)
        query = f"{_ITEMS}{where} ORDER BY items.first_seen_at DESC, items.id DESC"
        if limit is not None:
            query += " LIMIT ?"
            values.append(limit)
        with closing(self.connection.execute(query, values)) as rows:
            for id_, name, title, url, published, first_seen, status, error, chars in rows:
                yield {"id": id_, "feed": name, "title": title, "url": url, "published_at": iso(_time(published)),
                       "first_seen_at": iso(_time(first_seen)), "full_text_status": status,
                       "full_text_error": error, "full_text_chars": chars or 0}

    def count_items(self, since: datetime | None = None, feed: str | None = None) -> int:
        where, values = self._where(since, feed)
        row = self.connection.execute(f"SELECT count(*) FROM items JOIN feeds ON feeds.id = items.feed_id{where}",
                                      values).fetchone()
        return int(row[0])
