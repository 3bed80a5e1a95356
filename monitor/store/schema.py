"""Opening the database and keeping its schema current.

The schema is versioned in ``schema_version``; ``MIGRATIONS[n]`` takes a database from
version n-1 to n inside one transaction, so an upgrade keeps existing data and a crash
mid-upgrade leaves the old version intact. A database newer than this code is refused
rather than guessed at.

SQLite gets WAL (readers never block the writer), a busy timeout (a second process
waits instead of failing) and foreign keys.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import NoSuchModuleError as NoDriver

from monitor.config import redact_url
from monitor.errors import MonitorError
from monitor.store.tables import SchemaVersion, metadata


class StoreError(MonitorError):
    """The database cannot be opened or is not one this version can use."""


def _initial(connection: Connection) -> None:
    metadata.create_all(connection)


def _dashboard_indexes(connection: Connection) -> None:
    """Indexes for the dashboard (issue 16), so its pages cost the same however large the store:
    a rule's newest matches and its matches per day read one range of (rule, created_at); the
    outbox's dead and pending deliveries, newest first, one range of (status, created_at)."""
    connection.execute(text("CREATE INDEX IF NOT EXISTS ix_matches_rule_created ON matches (rule, created_at)"))
    connection.execute(text("CREATE INDEX IF NOT EXISTS ix_deliveries_status_created "
                            "ON deliveries (status, created_at)"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _initial, 2: _dashboard_indexes}
LATEST = max(MIGRATIONS)
BUSY_TIMEOUT_MS = 10_000
MIGRATION_LOCK = 0x63726D6F  # "crmo": the PostgreSQL advisory lock key held while migrating


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling off: _sqlite_begin starts every transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # Switching a new file to WAL takes an exclusive lock. When another connection holds a lock,
    # SQLite says "database is locked" at once, without waiting through its busy timeout (as it
    # does for transactions): so wait here, up to the same timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_begin(connection: Connection) -> None:
    # A write transaction (Store.writing) says BEGIN IMMEDIATE: it takes the write lock up
    # front, waiting up to the busy timeout, so that reading then writing never fails half-way
    # with SQLITE_BUSY when another thread or process wrote in between. Reads stay deferred;
    # in WAL mode they never block and are never blocked.
    immediate = connection.get_execution_options().get("immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def current_version(connection: Connection) -> int:
    if not inspect(connection).has_table(SchemaVersion.__tablename__):
        return 0
    row = connection.execute(text("SELECT version FROM schema_version WHERE id = 1")).first()
    return int(row[0]) if row else 0


def migrate(engine: Engine, migrations: dict[int, Callable[[Connection], None]] | None = None) -> int:
    """Apply every pending migration in order; the schema version reached."""
    steps = MIGRATIONS if migrations is None else migrations
    latest = max(steps)
    with engine.connect() as connection:
        version = current_version(connection)
    if version > latest:
        raise StoreError(f"{redact_url(str(engine.url))}: schema version {version} is newer than this "
                         f"crisis-monitor knows ({latest})", "upgrade crisis-monitor, or point it at another database")
    for number in range(version + 1, latest + 1):
        # Daemons sharing a new database may start together: each step runs under a write lock
        # taken up front (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), and is
        # skipped when another process applied it while this one waited.
        with engine.execution_options(immediate=True).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            if current_version(connection) >= number:
                continue
            SchemaVersion.__table__.create(connection, checkfirst=True)  # type: ignore[attr-defined]
            steps[number](connection)
            connection.execute(text("DELETE FROM schema_version"))
            connection.execute(text("INSERT INTO schema_version (id, version) VALUES (1, :v)"), {"v": number})
    return latest


def open_engine(url: str) -> Engine:
    """An engine for ``url`` with the schema at the latest version; StoreError with a hint otherwise."""
    shown = redact_url(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        folder = Path(url.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise StoreError(f"database {shown}: folder {folder} does not exist",
                             "create it, or change [monitor] database in config.toml")
    try:
        engine = create_engine(url, connect_args={"check_same_thread": False} if url.startswith("sqlite") else {},
                               pool_pre_ping=not url.startswith("sqlite"))
    except (ArgumentError, NoDriver) as error:
        raise StoreError(f"database {shown}: {error}",
                         'write a SQLAlchemy URL such as "sqlite:///monitor.db" or '
                         '"postgresql+psycopg://user@host/db"') from None
    except ImportError as error:
        raise StoreError(f"database {shown}: driver missing: {error}",
                         "install it, e.g. pip install 'psycopg[binary]' for PostgreSQL") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    try:
        migrate(engine)
    except OperationalError as error:
        engine.dispose()
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise StoreError(f"database {shown}: cannot open: {reason}",
                         "check that the database server runs and the URL in [monitor] database") from None
    return engine
