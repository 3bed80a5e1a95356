"""Retention (issue 20): what is older than ``[monitor] retention`` goes, in small batches.

An item first seen before the cutoff goes with its matches and story signature, keeping only
``(feed, hash of its guid)`` in ``pruned_items``, which ``Store.known_items`` consults so that
the item, should its feed still carry it, is not new again. An alert goes with its deliveries
and their attempts when its story is over: every item of the story is older than the cutoff
and every delivery of every alert on it delivered. An alert with a pending or dead delivery
keeps its story alive, and so itself, its item and its match. An item of a live story goes
unless an alert refers to it. A story goes when no item and no alert is left on it: at the end
of the batch that took its last item, else (two daemons took its last items at once, each
seeing the other's) in a sweep of the old stories left empty that ends every run.

Each batch is one short write transaction (``BATCH`` items), so polls and deliveries wait at
most one batch for the write lock; on PostgreSQL the batch's items are locked ``FOR UPDATE
SKIP LOCKED``, so two daemons pruning at once take different items and a poll updating an
item is never undone. A dry run makes the same decisions in read transactions and deletes
nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, or_, select, text
from sqlmodel import Session

from monitor.dedupe import guid_key
from monitor.store.repo import Store, _chunks, insert_ignoring, utc
from monitor.store.schema import sqlite_file
from monitor.store.tables import (
    AlertRow,
    AttemptRow,
    DeliveryRow,
    ItemRow,
    MatchRow,
    PrunedItemRow,
    SignatureRow,
    StoryRow,
    metadata,
)

ITEMS: Table = ItemRow.__table__  # type: ignore[attr-defined]
MATCHES: Table = MatchRow.__table__  # type: ignore[attr-defined]
STORIES: Table = StoryRow.__table__  # type: ignore[attr-defined]
SIGNATURES: Table = SignatureRow.__table__  # type: ignore[attr-defined]
ALERTS: Table = AlertRow.__table__  # type: ignore[attr-defined]
DELIVERIES: Table = DeliveryRow.__table__  # type: ignore[attr-defined]
ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[attr-defined]
PRUNED: Table = PrunedItemRow.__table__  # type: ignore[attr-defined]

BATCH = 200


@dataclass
class PruneCounts:
    """Rows that go (or went), per table; ``kept_alerts``: alerts on stories older than the cutoff
    kept because a delivery is pending or dead."""

    items: int = 0
    full_texts: int = 0
    matches: int = 0
    story_signatures: int = 0
    alerts: int = 0
    deliveries: int = 0
    delivery_attempts: int = 0
    stories: int = 0
    kept_alerts: int = 0
    batches: int = 0

    def add(self, other: PruneCounts) -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def tables(self) -> dict[str, int]:
        """Rows per table (and ``full_texts``: the pruned items that had an article's text)."""
        return {name: getattr(self, name) for name in ("items", "full_texts", "matches", "story_signatures", "alerts",
                                                       "deliveries", "delivery_attempts", "stories")}

    def rows(self) -> list[dict[str, object]]:
        """One row per table, for a listing."""
        return [{"table": name, "rows": rows} for name, rows in self.tables().items()]


@dataclass
class _Seen:
    """What a run remembers across batches, so a row is counted once: a dry run's alerts and stories
    (a real run deletes them), the alerts kept (seen again in each batch of their story)."""

    alerts: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    stories: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Plan:
    items: list[int]
    alerts: list[str]
    stories: list[int]  # the batch's stories with no young item and no undelivered alert
    kept: set[str]
    last: int


def prune(store: Store, cutoff: datetime, dry_run: bool = False, batch: int = BATCH) -> PruneCounts:
    """Everything ``batches`` does, at once: the counts of the whole run."""
    total = PruneCounts()
    for counts in batches(store, cutoff, dry_run, batch):
        total.add(counts)
    return total


def batches(store: Store, cutoff: datetime, dry_run: bool = False, batch: int = BATCH) -> Iterator[PruneCounts]:
    """Prune what is older than ``cutoff``, one transaction per batch of items, yielding each batch's
    counts (the daemon lets polls and deliveries in between); with ``dry_run`` count, delete nothing."""
    moment = utc(cutoff)
    lock = not dry_run and store.engine.dialect.name == "postgresql"
    last = 0
    seen = _Seen()
    while True:
        with _step(store, dry_run) as (connection, session):
            plan = _plan(connection, moment, last, batch, lock)
            if plan is None:
                break
            counts = _count(connection, plan, seen) if session is None else _delete(session, plan, seen)
        last = plan.last
        counts.batches = 1
        yield counts
    # Then the old stories left with no item and no alert: those whose last items two daemons pruned
    # at once (each saw the other's, not yet deleted), or a run cut short between two batches.
    last = 0
    while True:
        with _step(store, dry_run) as (connection, session):
            empty = _empty_stories(connection, moment, last, batch, lock)
            if not empty:
                return
            if session is not None:
                _delete_stories(connection, empty)
        last = empty[-1]
        yield PruneCounts(stories=len(empty), batches=1)


@contextlib.contextmanager
def _step(store: Store, dry_run: bool) -> Iterator[tuple[Connection, Session | None]]:
    """One batch's transaction: a read for a dry run, else a write (with its session)."""
    if dry_run:
        with store.engine.connect() as connection:
            yield connection, None
    else:
        with store.writing() as session:
            yield session.connection(), session


def _no_item_nor_alert() -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (~select(ITEMS.c.id).where(ITEMS.c.story_id == STORIES.c.id).exists(),
            ~select(ALERTS.c.id).where(ALERTS.c.story_id == STORIES.c.id).exists())


def _empty_stories(connection: Connection, cutoff: datetime, after: int, batch: int, lock: bool) -> list[int]:
    """Stories last seen before ``cutoff`` (ids above ``after``) with no item and no alert."""
    old = or_(STORIES.c.last_seen_at < cutoff, and_(STORIES.c.last_seen_at.is_(None), STORIES.c.first_seen_at < cutoff))
    query = (select(STORIES.c.id).where(STORIES.c.id > after, old, *_no_item_nor_alert())
             .order_by(STORIES.c.id).limit(batch))
    if lock:
        query = query.with_for_update(skip_locked=True)
    return list(connection.execute(query).scalars())


def _delete_stories(connection: Connection, ids: list[int]) -> None:
    connection.execute(delete(SIGNATURES).where(SIGNATURES.c.story_id.in_(ids)))
    connection.execute(delete(STORIES).where(STORIES.c.id.in_(ids)))


def _plan(connection: Connection, cutoff: datetime, after: int, batch: int, lock: bool) -> _Plan | None:
    """The next batch of items first seen before ``cutoff`` (ids above ``after``), and what goes with
    them; None when there are no more."""
    query = (select(ITEMS.c.id, ITEMS.c.story_id).where(ITEMS.c.first_seen_at < cutoff, ITEMS.c.id > after)
             .order_by(ITEMS.c.id).limit(batch))
    if lock:
        query = query.with_for_update(skip_locked=True)
    candidates = connection.execute(query).all()
    if not candidates:
        return None
    ids = [item_id for item_id, _ in candidates]
    # The alerts on these items, on their matches, or on their stories.
    match_ids = list(connection.execute(select(MATCHES.c.id).where(MATCHES.c.item_id.in_(ids))).scalars())
    stories = {story_id for _, story_id in candidates}
    touching = ALERTS.c.item_id.in_(ids) | ALERTS.c.story_id.in_(sorted(stories))
    if match_ids:
        touching = touching | ALERTS.c.match_id.in_(match_ids)
    alerts = connection.execute(select(ALERTS.c.id, ALERTS.c.story_id, ALERTS.c.item_id, MATCHES.c.item_id)
                                .join(MATCHES, MATCHES.c.id == ALERTS.c.match_id).where(touching)).all()
    stories |= {story_id for _, story_id, _, _ in alerts}
    undelivered = set(connection.execute(select(DELIVERIES.c.alert_id).where(
        DELIVERIES.c.alert_id.in_([alert_id for alert_id, _, _, _ in alerts]),
        DELIVERIES.c.status != "delivered")).scalars()) if alerts else set()
    live = set(connection.execute(select(ITEMS.c.story_id).where(
        ITEMS.c.story_id.in_(sorted(stories)), ITEMS.c.first_seen_at >= cutoff).distinct()).scalars())
    # A story with an undelivered alert (on any of its items) is live too: it keeps all its alerts.
    live |= set(connection.execute(select(ALERTS.c.story_id).join(DELIVERIES, DELIVERIES.c.alert_id == ALERTS.c.id)
                                   .where(ALERTS.c.story_id.in_(sorted(stories)),
                                          DELIVERIES.c.status != "delivered").distinct()).scalars())
    kept = [(alert_id, item_id, match_item) for alert_id, story_id, item_id, match_item in alerts
            if story_id in live or alert_id in undelivered]
    protected = {item for _, item_id, match_item in kept for item in (item_id, match_item)}
    return _Plan(items=[item_id for item_id in ids if item_id not in protected],
                 alerts=sorted({alert_id for alert_id, _, _, _ in alerts} - {alert_id for alert_id, _, _ in kept}),
                 stories=sorted(stories - live), kept=undelivered, last=ids[-1])


def _scalar(connection: Connection, table: Table, *where: ColumnElement[bool]) -> int:
    return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _counts(connection: Connection, plan: _Plan, alerts: list[str]) -> PruneCounts:
    """The rows of ``plan``'s items and of ``alerts``, before anything goes."""
    counts = PruneCounts(items=len(plan.items))
    for chunk in _chunks(plan.items):
        counts.full_texts += _scalar(connection, ITEMS, ITEMS.c.id.in_(chunk), ITEMS.c.full_text != "")
        counts.matches += _scalar(connection, MATCHES, MATCHES.c.item_id.in_(chunk))
        counts.story_signatures += _scalar(connection, SIGNATURES, SIGNATURES.c.item_id.in_(chunk))
    counts.alerts = len(alerts)
    for chunk in _chunks(alerts):
        counts.deliveries += _scalar(connection, DELIVERIES, DELIVERIES.c.alert_id.in_(chunk))
        counts.delivery_attempts += _scalar(connection, ATTEMPTS, ATTEMPTS.c.delivery_id.in_(
            select(DELIVERIES.c.id).where(DELIVERIES.c.alert_id.in_(chunk))))
    return counts


def _count(connection: Connection, plan: _Plan, seen: _Seen) -> PruneCounts:
    alerts = [alert_id for alert_id in plan.alerts if alert_id not in seen.alerts]
    seen.alerts.update(alerts)
    counts = _counts(connection, plan, alerts)
    # A story with no young item and no undelivered alert loses every item and alert in time.
    counts.stories = len(set(plan.stories) - seen.stories)
    seen.stories.update(plan.stories)
    counts.kept_alerts = len(plan.kept - seen.kept)
    seen.kept |= plan.kept
    return counts


def _delete(session: Session, plan: _Plan, seen: _Seen) -> PruneCounts:
    connection = session.connection()
    counts = _counts(connection, plan, plan.alerts)
    counts.kept_alerts = len(plan.kept - seen.kept)
    seen.kept |= plan.kept
    for chunk in _chunks(plan.alerts):
        deliveries = select(DELIVERIES.c.id).where(DELIVERIES.c.alert_id.in_(chunk))
        connection.execute(delete(ATTEMPTS).where(ATTEMPTS.c.delivery_id.in_(deliveries)))
        connection.execute(delete(DELIVERIES).where(DELIVERIES.c.alert_id.in_(chunk)))
        connection.execute(delete(ALERTS).where(ALERTS.c.id.in_(chunk)))
    now = datetime.now(UTC)
    for chunk in _chunks(plan.items):
        keys = [{"feed_id": feed_id, "guid_hash": guid_key(guid), "pruned_at": now}
                for feed_id, guid in connection.execute(select(ITEMS.c.feed_id, ITEMS.c.guid)
                                                        .where(ITEMS.c.id.in_(chunk)))]
        if keys:
            connection.execute(insert_ignoring(session, PRUNED, ["feed_id", "guid_hash"]), keys)
        connection.execute(delete(SIGNATURES).where(SIGNATURES.c.item_id.in_(chunk)))
        connection.execute(delete(MATCHES).where(MATCHES.c.item_id.in_(chunk)))
        connection.execute(delete(ITEMS).where(ITEMS.c.id.in_(chunk)))
    for chunk in _chunks(plan.stories):
        empty = list(connection.execute(select(STORIES.c.id).where(STORIES.c.id.in_(chunk),
                                                                  *_no_item_nor_alert())).scalars())
        if empty:
            _delete_stories(connection, empty)
        counts.stories += len(empty)
    return counts


@dataclass(frozen=True)
class Vacuumed:
    """What ``vacuum`` did: the database's size before and after, in bytes (SQLite: the file with its WAL)."""

    dialect: str
    before: int
    after: int


def _sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def vacuum(store: Store) -> Vacuumed:
    """SQLite: VACUUM (the file shrinks by the pages pruned rows freed), then a WAL checkpoint that
    truncates the WAL. PostgreSQL: VACUUM (ANALYZE) of crisis-monitor's tables, which makes the space of
    deleted rows reusable at once and refreshes the planner's statistics without blocking the daemon;
    the files keep their size (giving it back needs VACUUM FULL, which locks each table)."""
    dialect = store.engine.dialect.name
    if dialect == "sqlite":
        path = sqlite_file(store.url)
        before = _sqlite_size(path) if path else 0
        raw = store.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")  # the connection is in autocommit mode (schema._sqlite_pragmas)
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
        return Vacuumed(dialect, before, _sqlite_size(path) if path else 0)
    size = text("SELECT pg_database_size(current_database())")
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        before = int(connection.execute(size).scalar_one())
        for table in metadata.sorted_tables:
            connection.execute(text(f'VACUUM (ANALYZE) "{table.name}"'))
        after = int(connection.execute(size).scalar_one())
    return Vacuumed(dialect, before, after)
