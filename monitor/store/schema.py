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

from sqlalchemy import Connection, Engine, ForeignKeyConstraint, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.exc import NoSuchModuleError as NoDriver

from monitor.config import redact_url
from monitor.errors import MonitorError
from monitor.store.tables import (
    AlertRow,
    AttemptRow,
    DeliveryRow,
    ItemRow,
    PrunedItemRow,
    SchemaVersion,
    SignatureRow,
    StoryRow,
    SubscriptionRow,
    metadata,
)


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


def _add_columns(connection: Connection, table: str, columns: dict[str, str]) -> None:
    """ALTER TABLE … ADD COLUMN for each of ``columns`` (name -> SQL type and default) that
    ``table`` lacks: a database made by ``_initial`` from today's tables has them already."""
    present = {column["name"] for column in inspect(connection).get_columns(table)}
    for name, definition in columns.items():
        if name not in present:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {definition}"))


def _as_declared(connection: Connection, model: Any, *names: str) -> dict[str, str]:
    """The SQL definitions of ``model``'s columns ``names`` as tables.py declares them (type in the
    connection's dialect, NOT NULL, server default), for ``_add_columns``: a migrated database then
    has the columns a new one gets."""
    table: Table = model.__table__
    definitions = {}
    for name in names:
        column = table.columns[name]
        definition = column.type.compile(dialect=connection.dialect)
        if not column.nullable:
            definition += " NOT NULL"
        if column.server_default is not None:
            definition += f" DEFAULT '{column.server_default.arg}'"  # type: ignore[attr-defined]
        definitions[name] = definition
    return definitions


def _full_text(connection: Connection) -> None:
    """Items keep their article page's text, and why there is none (issue 18)."""
    _add_columns(connection, "items", {"full_text": "TEXT NOT NULL DEFAULT ''", "full_text_status": "VARCHAR",
                                       "full_text_error": "TEXT"})


def _websub(connection: Connection) -> None:
    """Feeds' WebSub subscriptions (issue 18)."""
    SubscriptionRow.__table__.create(connection, checkfirst=True)  # type: ignore[attr-defined]


def _match_evidence(connection: Connection) -> None:
    """A match keeps the named clauses that held and the entities its snippet names (issue 17)."""
    _add_columns(connection, "matches", {"clauses": "JSON NOT NULL DEFAULT '[]'",
                                         "snippet_entities": "JSON NOT NULL DEFAULT '[]'"})


def _stories(connection: Connection) -> None:
    """Stories clustered across outlets, and the alert lifecycle per rule and story (issue 15).

    Stories gain what the lifecycle reads (last seen, publishers, item count, rules, title, state),
    items their publisher and tier, a table keeps the signatures of the window's items. Alerts lose
    their uniqueness on (rule, story_id), since a story now sends updates, and gain a unique ``key``
    with the kind, thread, reason and detail. SQLite cannot drop a constraint, so there alerts and
    deliveries (which refer to them) are rebuilt and copied; PostgreSQL alters them in place.
    """
    _add_columns(connection, "stories", _as_declared(connection, StoryRow, "last_seen_at", "publishers",
                                                     "item_count", "rules", "title", "state"))
    connection.execute(text("CREATE INDEX IF NOT EXISTS ix_stories_last_seen_at ON stories (last_seen_at)"))
    _add_columns(connection, "items", _as_declared(connection, ItemRow, "publisher", "tier"))
    SignatureRow.__table__.create(connection, checkfirst=True)  # type: ignore[attr-defined]
    connection.execute(text(
        "UPDATE stories SET item_count = (SELECT count(*) FROM items WHERE items.story_id = stories.id), "
        "last_seen_at = COALESCE((SELECT max(items.first_seen_at) FROM items WHERE items.story_id = stories.id), "
        "first_seen_at), title = COALESCE((SELECT items.title FROM items WHERE items.story_id = stories.id "
        "ORDER BY items.id LIMIT 1), '') WHERE last_seen_at IS NULL"))
    if "key" in {column["name"] for column in inspect(connection).get_columns("alerts")}:
        return  # made by _initial from today's tables
    if connection.dialect.name == "sqlite":
        _rebuild_alerts_sqlite(connection)
    else:
        unique = [constraint["name"] for constraint in inspect(connection).get_unique_constraints("alerts")]
        for name in unique:
            connection.execute(text(f'ALTER TABLE alerts DROP CONSTRAINT "{name}"'))
        _add_columns(connection, "alerts", _as_declared(connection, AlertRow, *_ALERT_COLUMNS))
        connection.execute(text(_ALERT_KEYS))
        connection.execute(text("ALTER TABLE alerts ADD CONSTRAINT uq_alerts_key UNIQUE (key)"))


_ALERT_COLUMNS = ("key", "kind", "thread", "reason", "detail")
# Alerts before version 6 were each the one alert of their rule and story.
_ALERT_KEYS = "UPDATE alerts SET key = 'alert:' || rule || ':' || CAST(story_id AS VARCHAR)"


def _rebuild_alerts_sqlite(connection: Connection) -> None:
    alerts: Table = AlertRow.__table__  # type: ignore[attr-defined]
    deliveries: Table = DeliveryRow.__table__  # type: ignore[attr-defined]
    scratch = MetaData()
    for table in metadata.sorted_tables:  # what the copies refer to
        table.to_metadata(scratch)
    new_alerts = alerts.to_metadata(scratch, name="alerts_new")
    new_deliveries = deliveries.to_metadata(scratch, name="deliveries_new")
    # Copies without indexes (their names are taken until the old tables go); deliveries_new refers
    # to alerts_new, and SQLite's RENAME rewrites that reference to "alerts".
    for copy in (new_alerts, new_deliveries):
        copy.indexes.clear()
    for column in new_deliveries.columns:
        for foreign in list(column.foreign_keys):
            if foreign.target_fullname.startswith("alerts."):
                column.foreign_keys.discard(foreign)
                new_deliveries.constraints.discard(foreign.constraint)
    new_deliveries.append_constraint(ForeignKeyConstraint(["alert_id"], ["alerts_new.id"]))
    new_alerts.create(connection)
    new_deliveries.create(connection)
    old = ", ".join(column.name for column in alerts.columns if column.name not in _ALERT_COLUMNS)
    connection.execute(text(f"INSERT INTO alerts_new ({old}, key) SELECT {old}, "
                            "'alert:' || rule || ':' || CAST(story_id AS TEXT) FROM alerts"))
    names = ", ".join(column.name for column in deliveries.columns)
    connection.execute(text(f"INSERT INTO deliveries_new ({names}) SELECT {names} FROM deliveries"))
    connection.execute(text("DROP TABLE deliveries"))
    connection.execute(text("DROP TABLE alerts"))
    connection.execute(text("ALTER TABLE alerts_new RENAME TO alerts"))
    connection.execute(text("ALTER TABLE deliveries_new RENAME TO deliveries"))
    for index in list(alerts.indexes) + list(deliveries.indexes):
        index.create(connection)
    _dashboard_indexes(connection)


def _retention(connection: Connection) -> None:
    """Retention and delivery history (issues 20 and 21): the compact record of pruned items, each
    delivery attempt, and indexes on the alerts' story, item and match, by which pruning finds them."""
    for model in (PrunedItemRow, AttemptRow):
        table: Table = model.__table__  # type: ignore[union-attr]
        table.create(connection, checkfirst=True)
    for column in ("story_id", "item_id", "match_id"):
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS ix_alerts_{column} ON alerts ({column})"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _initial, 2: _dashboard_indexes, 3: _full_text,
                                                      4: _websub, 5: _match_evidence, 6: _stories,
                                                      7: _retention}
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
        event.listen(engine, "handle_error", _damage_in_query)
    try:
        migrate(engine)
    except DatabaseError as error:
        engine.dispose()
        raise _open_error(url, error) from None
    return engine


# SQLite's words for a file that is not (or no longer) a database, and for one it may not write.
_DAMAGED = ("file is not a database", "database disk image is malformed", "malformed database schema")
_NOT_WRITABLE = ("unable to open database file", "readonly database")
BACKUP_HINT = ("restore it from your backup, as the README's section \"Run it as a service\" says, "
               "or move it away to start an empty database")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database (or SQLite in memory)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///").split("?")[0])
    return None


def damaged(error: BaseException) -> bool:
    """Whether a driver error says the SQLite file is damaged (or was never a database)."""
    reason = str(getattr(error, "orig", None) or error).lower()
    return any(words in reason for words in _DAMAGED)


def _open_error(url: str, error: DatabaseError) -> StoreError:
    """The one line for a database that cannot be opened: for SQLite, why this file (damaged, or a
    folder SQLite may not write: WAL keeps ``-wal`` and ``-shm`` files beside the database)."""
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    path = sqlite_file(url)
    if path is None:
        return StoreError(f"database {redact_url(url)}: cannot open: {reason}",
                          "check that the database server runs and the URL in [monitor] database")
    if damaged(error):
        return StoreError(f"database {path}: damaged: {reason}", BACKUP_HINT)
    if any(words in reason.lower() for words in _NOT_WRITABLE):
        return StoreError(f"database {path}: cannot open: {reason}",
                          f"the folder {path.parent} and the file must be writable by this user: SQLite's WAL "
                          f"mode keeps {path.name}-wal and {path.name}-shm beside the database")
    return StoreError(f"database {path}: cannot open: {reason}", "check the path in [monitor] database")


def _damage_in_query(context: Any) -> None:
    """``handle_error`` hook: a damaged page met by any later query is the same one line, naming the file."""
    path = sqlite_file(str(context.engine.url)) if context.engine is not None else None
    if path is not None and damaged(context.original_exception):
        raise StoreError(f"database {path}: damaged: {context.original_exception}", BACKUP_HINT)
