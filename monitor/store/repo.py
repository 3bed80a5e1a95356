"""The queries the rest of the code calls: feeds and their fetch state, items, matches, alerts.

``Store`` is synchronous (SQLAlchemy engine and sessions); the daemon calls it from a
worker thread so the event loop never waits on the disk. A poll's items, matches,
alerts and deliveries are written in one transaction.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, bindparam, func, or_, text, update
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from monitor.config import STORY_WINDOW, FeedSpec, reveal
from monitor.dedupe import PRUNED, Known, guid_key
from monitor.store.clusters import Clusters
from monitor.store.lifecycle import OWED, Fresh, Lifecycle
from monitor.store.schema import open_engine
from monitor.store.tables import AlertRow, DeliveryRow, FeedRow, ItemRow, MatchRow, PrunedItemRow, StoryRow
from monitor.stories.cluster import Assignment
from monitor.types import Document, FeedState, FeedUpdate, ItemWrite, Match, iso

if TYPE_CHECKING:
    from monitor.rules.loader import RuleSpec

Route = Callable[[Match], Sequence[str]]
# Core tables for the hot path: bulk statements without the ORM's per-row bookkeeping.
FEEDS: Table = FeedRow.__table__  # type: ignore[attr-defined]
ITEMS: Table = ItemRow.__table__  # type: ignore[attr-defined]
MATCHES: Table = MatchRow.__table__  # type: ignore[attr-defined]
STORIES: Table = StoryRow.__table__  # type: ignore[attr-defined]
PRUNED_ITEMS: Table = PrunedItemRow.__table__  # type: ignore[attr-defined]


def utc(moment: datetime) -> datetime:
    """An aware UTC time, as the columns take it (a naive one is taken to be UTC already)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass(frozen=True)
class PollWrite:
    """What one poll has to write: its items (with their matches) and the feed's new state."""

    feed_id: int
    update: FeedUpdate | None  # None: items a hub pushed, outside any poll (the fetch state stays)
    items: Sequence[ItemWrite]
    route: Route
    now: datetime
    # the rules in force, by id: their story policies decide alerts and updates (empty: every
    # rule alerts on a story's first match, as its match says)
    rules: Mapping[str, RuleSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class PollRecord:
    """What one poll wrote."""

    new_items: int = 0
    updated_items: int = 0
    matches: int = 0
    alerts: int = 0


def insert_ignoring(session: Session, table: Table, keys: list[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO NOTHING, in the dialect of the session's database."""
    name = session.get_bind().dialect.name  # each dialect's insert imported when used: listings import none
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)
    return sa_insert(table).prefix_with("IGNORE")  # MySQL and MariaDB


def _state(row: FeedRow) -> FeedState:
    assert row.id is not None
    return FeedState(id=row.id, name=row.name, url=row.url, status=row.status, etag=row.etag,
                     last_modified=row.last_modified, body_hash=row.body_hash, interval=row.interval,
                     quiet_polls=row.quiet_polls, consecutive_failures=row.consecutive_failures,
                     last_success_at=aware(row.last_success_at), last_new_item_at=aware(row.last_new_item_at),
                     added_at=aware(row.added_at), claimed_by=row.claimed_by)


def _feed_values(u: FeedUpdate) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": u.status, "interval": u.interval, "lease_until": None, "claimed_by": None,
        "last_polled_at": utc(u.polled_at), "next_poll_at": utc(u.next_poll_at),
        "consecutive_failures": u.consecutive_failures, "quiet_polls": u.quiet_polls,
        "last_error": u.last_error, "warning": u.warning}
    values.update({key: getattr(u, key) for key in ("etag", "last_modified", "body_hash", "url", "title")
                   if getattr(u, key) is not None})
    if u.success:
        values["last_success_at"] = utc(u.polled_at)
    if u.new_items:
        values["last_new_item_at"] = utc(u.polled_at)
    return values


def _full_text_values(write: ItemWrite) -> dict[str, Any]:
    full = write.full_text
    if full is None:
        return {"full_text": "", "full_text_status": None, "full_text_error": None}
    return {"full_text": full.text, "full_text_status": full.status, "full_text_error": full.error or None}


def _chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """``values`` in slices small enough for any database's limit on bound parameters."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Store:
    """The database. Write transactions go through ``writing()``: on SQLite they take the
    write lock up front (BEGIN IMMEDIATE) and queue on an in-process lock first, so threads
    of one daemon wait in turn instead of sleeping in SQLite's busy handler."""

    def __init__(self, url: str, story_window: float = STORY_WINDOW, max_item_age: float | None = None) -> None:
        self.url = url
        self.clusters = Clusters(story_window)
        self.max_item_age = max_item_age  # a held alert is released only for items this recent
        self.engine: Engine = open_engine(url)
        self._writer = self.engine.execution_options(immediate=True)
        self._lock = threading.Lock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        with self._lock, Session(self._writer) as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def probe_write(self) -> None:
        """Raise unless the database takes a write: a lock, a read-only file or a full disk
        still let SQLite read, so a read says too little after an outage."""
        with self.writing() as session:
            session.execute(text("UPDATE schema_version SET version = version WHERE id = 1"))

    def ping(self) -> bool:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(FeedRow)).one() >= 0

    # --- feeds -------------------------------------------------------------------------------

    def sync_feeds(self, specs: Iterable[FeedSpec], now: datetime, default_interval: float) -> None:
        """Make a row for every configured feed; a changed config URL resets the fetch state.

        New rows are inserted ignoring a name already there: daemons sharing a database that start
        together each add the feeds, and the first to commit wins (no unique-key error)."""
        with self.writing() as session:
            rows = {row.name: row for row in session.exec(select(FeedRow))}
            new = []
            for spec in specs:
                url = reveal(spec.url)
                row = rows.get(spec.name)
                if row is None:
                    new.append(FeedRow(name=spec.name, config_url=url, url=url, next_poll_at=utc(now),
                                       added_at=utc(now), interval=spec.interval or default_interval)
                               .model_dump(exclude={"id"}))
                elif row.config_url != url:
                    row.config_url = row.url = url
                    row.etag = row.last_modified = row.body_hash = None
                    row.next_poll_at, row.status, row.consecutive_failures = utc(now), "never", 0
            if new:
                session.connection().execute(insert_ignoring(session, FEEDS, ["name"]), new)

    def claim(self, name: str, now: datetime, lease: float, force: bool = False) -> FeedState | None:
        """Take the feed for one poll, unless it is not due or another poller holds it."""
        return self.claim_many([name], now, lease, force).get(name)

    def claim_many(self, names: Sequence[str], now: datetime, lease: float,
                   force: bool = False) -> dict[str, FeedState]:
        """Take the feeds among ``names`` that are due (all with ``force``) and not held by
        another poller, for one poll each.

        The claim is one conditional UPDATE that stamps a fresh token, atomic on SQLite and
        PostgreSQL alike, so daemons sharing a database poll each feed once per interval.
        """
        if not names:
            return {}
        moment = utc(now)
        token = uuid.uuid4().hex
        due = or_(FEEDS.c.next_poll_at.is_(None), FEEDS.c.next_poll_at <= moment)
        free = or_(FEEDS.c.lease_until.is_(None), FEEDS.c.lease_until <= moment)
        condition = [FEEDS.c.name.in_(names), free] + ([] if force else [due])
        with self.writing() as session:
            connection = session.connection()
            connection.execute(update(FEEDS).where(*condition)
                               .values(lease_until=moment + timedelta(seconds=lease), claimed_by=token))
            rows = session.exec(select(FeedRow).where(FeedRow.claimed_by == token)).all()
            return {row.name: _state(row) for row in rows}

    def release(self, name: str, token: str | None = None) -> None:
        """Give a claimed feed back without recording a poll (with ``token``: only that claim,
        not one another daemon took since)."""
        condition = [col(FeedRow.name) == name] + ([] if token is None else [col(FeedRow.claimed_by) == token])
        with self.writing() as session:
            session.execute(update(FeedRow).where(*condition).values(lease_until=None, claimed_by=None))

    def next_poll_at(self, name: str) -> datetime | None:
        with Session(self.engine) as session:
            row = session.exec(select(FeedRow).where(FeedRow.name == name)).first()
            return aware(row.next_poll_at) if row else None

    def known_items(self, feed_id: int, guids: Sequence[str]) -> dict[str, Known]:
        if not guids:
            return {}
        with Session(self.engine) as session:
            rows = session.exec(select(ItemRow.id, ItemRow.guid, ItemRow.content_hash)
                                .where(ItemRow.feed_id == feed_id, col(ItemRow.guid).in_(guids))).all()
            ids = [row[0] for row in rows]
            matched: dict[int, set[str]] = {}
            if ids:
                for item_id, rule in session.exec(select(MatchRow.item_id, MatchRow.rule)
                                                  .where(col(MatchRow.item_id).in_(ids))):
                    matched.setdefault(item_id, set()).add(rule)
            known = {guid: Known(item_id, digest, frozenset(matched.get(item_id, ())))
                     for item_id, guid, digest in rows if item_id is not None}
            missing = {guid_key(guid): guid for guid in guids if guid not in known}
            if missing:  # items retention pruned stay known by the hash of their guid
                for chunk in _chunks(sorted(missing)):
                    for digest in session.connection().execute(sa_select(PRUNED_ITEMS.c.guid_hash).where(
                            PRUNED_ITEMS.c.feed_id == feed_id, PRUNED_ITEMS.c.guid_hash.in_(chunk))).scalars():
                        known[missing[digest]] = PRUNED
            return known

    def record(self, feed_id: int, update_: FeedUpdate, items: Sequence[ItemWrite], route: Route,
               now: datetime) -> PollRecord:
        """Write a poll in one transaction: items, stories, matches, alerts, deliveries, feed state."""
        return self.record_many([PollWrite(feed_id, update_, items, route, now)])[0]

    def record_many(self, polls: Sequence[PollWrite]) -> list[PollRecord]:
        """Write several polls in one transaction (a group commit): all or none of them.

        Bulk statements for all the polls together (one INSERT for every new item, one for
        every match, one UPDATE per shape of feed state) rather than ORM objects or a
        statement per row: a busy cycle writes thousands of rows a second.
        """
        try:
            with self.writing() as session:
                return self._record(session, polls)
        except BaseException:
            self.clusters.reset()  # it may hold signatures that were never committed
            raise

    def _record(self, session: Session, polls: Sequence[PollWrite]) -> list[PollRecord]:
        connection = session.connection()
        written = [(poll, write) for poll in polls for write in poll.items]
        new = [(poll, w) for poll, w in written if w.item_id is None]
        signed = [(poll, w) for poll, w in new if w.signature is not None]
        if signed:
            self.clusters.lock(session)  # before any write: see monitor/store/clusters.py
        story_of = self._story_of(session, new, signed)
        placed = self._new_items(session, new, story_of)
        self.clusters.remember(session, [(placed[id(w)][0], placed[id(w)][1], w.signature)
                                         for _, w in signed if w.signature is not None])
        placed.update(self._changed_items(session, [(poll, w) for poll, w in written if w.item_id is not None]))
        found = [(poll, write, match) for poll, write in written for match in write.matches]
        fresh: list[Fresh] = []
        number = {id(poll): n for n, poll in enumerate(polls)}
        if found:
            connection.execute(sa_insert(MATCHES), [
                {"item_id": placed[id(write)][0], "rule": match.rule, "severity": match.severity,
                 "terms": list(match.terms), "entities": list(match.entities), "snippet": match.snippet,
                 "highlights": [list(span) for span in match.highlights], "created_at": utc(poll.now),
                 "clauses": list(match.clauses), "snippet_entities": list(match.snippet_entities)}
                for poll, write, match in found])
            match_ids = {(item_id, rule): match_id for chunk in _chunks(sorted({placed[id(w)][0] for _, w, _ in found}))
                         for match_id, item_id, rule in connection.execute(
                             sa_select(MATCHES.c.id, MATCHES.c.item_id, MATCHES.c.rule)
                             .where(MATCHES.c.item_id.in_(chunk)))}
            for poll, write, match in found:
                if match.rule in write.alert_rules:
                    item_id, story_id = placed[id(write)]
                    fresh.append(Fresh(story_id, item_id, match_ids[item_id, match.rule], match, poll.route,
                                       number[id(poll)]))
        self._story_columns(session, new, placed, found)
        alerts: dict[int, int] = {}
        if signed or fresh:
            last = polls[-1]
            touched = {placed[id(w)][1]: number[id(poll)] for poll, w in reversed(signed)}
            alerts = Lifecycle(session, last.rules, last.route, utc(last.now), self.max_item_age).run(touched, fresh)
        self._feeds(session, polls)
        records = []
        for n, poll in enumerate(polls):
            added = sum(1 for w in poll.items if w.item_id is None)
            records.append(PollRecord(added, len(poll.items) - added, sum(len(w.matches) for w in poll.items),
                                      alerts.get(n, 0)))
        return records

    def send_owed_updates(self, now: datetime, rules: Mapping[str, RuleSpec], route: Route,
                          lookback: float = 7 * 24 * 3600.0) -> int:
        """Send the ladder updates a cooldown held back: a story that reached a rung within a rule's
        cooldown is marked ``owed`` and gets its update once the cooldown is over, even if no later
        item comes. How many updates were written."""
        moment = utc(now)
        owed = sa_select(STORIES.c.id).where(STORIES.c.last_seen_at >= moment - timedelta(seconds=lookback),
                                             STORIES.c.state == OWED)
        with Session(self.engine) as session:  # a read first (on the last_seen_at index): most passes find none
            stories = sorted(session.execute(owed).scalars())
        if not stories:
            return 0
        with self.writing() as session:
            self.clusters.lock(session)  # as a poll's write: one decision at a time per story
            sent = Lifecycle(session, rules, route, moment, self.max_item_age).run({sid: 0 for sid in stories}, [])
        return sum(sent.values())

    def _story_of(self, session: Session, new: list[tuple[PollWrite, ItemWrite]],
                  signed: list[tuple[PollWrite, ItemWrite]]) -> dict[int, int]:
        """The story of each new item, ``id(write)`` -> story id: a matching (signed) item's as
        clustering decides, the others' by their URL (``story_key``)."""
        clustered = {id(w) for _, w in signed}
        plain = [(poll, w) for poll, w in new if id(w) not in clustered]
        keys = self._stories(session, {w.story_key: utc(poll.now) for poll, w in reversed(plain)})
        story_of = {id(w): keys[w.story_key] for _, w in plain}
        if signed:
            writes = {id(w): (poll, w) for poll, w in signed}

            def new_story(key: int) -> int:
                poll, w = writes[key]
                return self._stories(session, {w.story_key: utc(poll.now)})[w.story_key]

            now = max(utc(poll.now) for poll, _ in signed)
            decided: dict[int, tuple[int, Assignment]] = self.clusters.place(
                session, [(id(w), w.signature) for _, w in signed if w.signature is not None], now, new_story)
            story_of.update({key: story for key, (story, _) in decided.items()})
        return story_of

    def _new_items(self, session: Session, writes: list[tuple[PollWrite, ItemWrite]],
                   story_of: dict[int, int]) -> dict[int, tuple[int, int]]:
        """Insert new items; ``id(write)`` -> (item id, story id)."""
        if not writes:
            return {}
        rows = [{"feed_id": poll.feed_id, "story_id": story_of[id(w)], "guid": w.doc.id, "url": w.doc.url,
                 "title": w.doc.title, "summary": w.doc.summary, "content": w.doc.content, "tags": list(w.doc.tags),
                 "published_at": utc(w.published_at), "first_seen_at": utc(poll.now), "updated_at": utc(poll.now),
                 "content_hash": w.content_hash, "publisher": w.publisher, "tier": w.tier, **_full_text_values(w)}
                for poll, w in writes]
        # A plain executemany, then SELECTs for the ids: RETURNING with several rows would
        # make SQLite insert them one statement at a time.
        connection = session.connection()
        connection.execute(sa_insert(ITEMS), rows)
        feed_ids = sorted({poll.feed_id for poll, _ in writes})
        ids: dict[tuple[int, str], int] = {}
        for chunk in _chunks(sorted({w.doc.id for _, w in writes})):
            ids.update({(feed_id, guid): item_id for item_id, feed_id, guid in connection.execute(
                sa_select(ITEMS.c.id, ITEMS.c.feed_id, ITEMS.c.guid)
                .where(ITEMS.c.feed_id.in_(feed_ids), ITEMS.c.guid.in_(chunk)))})
        return {id(w): (ids[poll.feed_id, w.doc.id], story_of[id(w)]) for poll, w in writes}

    def _changed_items(self, session: Session,
                       writes: list[tuple[PollWrite, ItemWrite]]) -> dict[int, tuple[int, int]]:
        """Update items whose content changed; ``id(write)`` -> (item id, story id)."""
        placed = {}
        for poll, w in writes:
            assert w.item_id is not None
            story_id = session.execute(
                update(ItemRow).where(col(ItemRow.id) == w.item_id)
                .values(title=w.doc.title, summary=w.doc.summary, content=w.doc.content, url=w.doc.url,
                        content_hash=w.content_hash, updated_at=utc(poll.now))
                .returning(col(ItemRow.story_id))).scalar_one()
            placed[id(w)] = (w.item_id, story_id)
        return placed

    def _stories(self, session: Session, keys: dict[str, datetime]) -> dict[str, int]:
        """Story ids for ``keys`` (key -> first seen), made where missing."""
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(keys)):
            found.update({key: sid for sid, key in session.exec(select(StoryRow.id, StoryRow.key)
                                                                .where(col(StoryRow.key).in_(chunk)))
                          if sid is not None})
        missing = sorted(keys.keys() - found.keys())
        if missing:
            # Another poll (another feed, or another daemon) may insert the same story at the
            # same moment: insert-or-ignore, then read back what is there.
            rows = [{"key": key, "first_seen_at": keys[key]} for key in missing]
            session.connection().execute(insert_ignoring(session, STORIES, ["key"]), rows)
            for chunk in _chunks(missing):
                found.update({key: sid for sid, key in session.exec(select(StoryRow.id, StoryRow.key)
                                                                    .where(col(StoryRow.key).in_(chunk)))
                              if sid is not None})
        return found

    def _story_columns(self, session: Session, new: list[tuple[PollWrite, ItemWrite]],
                       placed: dict[int, tuple[int, int]], found: list[tuple[PollWrite, ItemWrite, Match]]) -> None:
        """Keep each touched story's summary columns (issue 15) true: item count, last seen,
        title (its first item's), publishers and rules matched, as sorted lists."""
        grown: dict[int, list[tuple[datetime, str, str]]] = {}
        for poll, w in new:
            grown.setdefault(placed[id(w)][1], []).append((utc(poll.now), w.doc.title, w.publisher))
        ruled: dict[int, set[str]] = {}
        for _, w, match in found:
            ruled.setdefault(placed[id(w)][1], set()).add(match.rule)
        touched = sorted(grown.keys() | ruled.keys())
        if not touched:
            return
        connection = session.connection()
        values = []
        for chunk in _chunks(touched):
            for sid, count, last, title, publishers, rules in connection.execute(
                    sa_select(STORIES.c.id, STORIES.c.item_count, STORIES.c.last_seen_at, STORIES.c.title,
                              STORIES.c.publishers, STORIES.c.rules).where(STORIES.c.id.in_(chunk))):
                added = grown.get(sid, [])
                moments = [moment for moment, _, _ in added] + ([utc(last)] if last else [])
                values.append({"sid": sid, "item_count": (count or 0) + len(added),
                               "last_seen_at": max(moments) if moments else last,
                               "title": title or next((t for _, t, _ in added if t), ""),
                               "publishers": sorted(set(publishers or ()) | {p for _, _, p in added if p}),
                               "rules": sorted(set(rules or ()) | ruled.get(sid, set()))})
        # one executemany for all of them: a busy cycle touches thousands of stories
        connection.execute(update(STORIES).where(STORIES.c.id == bindparam("sid")).values(
            {key: bindparam(key) for key in ("item_count", "last_seen_at", "title", "publishers", "rules")}), values)

    def _feeds(self, session: Session, polls: Sequence[PollWrite]) -> None:
        """Each poll's feed state: one executemany per set of columns written."""
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for poll in polls:
            if poll.update is None:
                if any(write.item_id is None for write in poll.items):  # pushed items are news too (stale)
                    shapes.setdefault(("feed_id", "last_new_item_at"), []).append(
                        {"feed_id": poll.feed_id, "last_new_item_at": utc(poll.now)})
                continue
            values = _feed_values(poll.update)
            values["feed_id"] = poll.feed_id
            shapes.setdefault(tuple(sorted(values)), []).append(values)
        for keys, rows in shapes.items():
            statement = update(FEEDS).where(FEEDS.c.id == bindparam("feed_id")).values(
                {key: bindparam(key) for key in keys if key != "feed_id"})
            session.connection().execute(statement, rows)

    # --- listings ----------------------------------------------------------------------------

    def feed_names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.exec(select(FeedRow.name).order_by(FeedRow.name)))

    def feeds(self) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            counts: dict[int, int] = dict(session.execute(sa_select(col(ItemRow.feed_id), func.count())
                                          .group_by(col(ItemRow.feed_id))).all())
            return [{"name": r.name, "url": r.url, "config_url": r.config_url, "title": r.title,
                     "status": r.status, "items": counts.get(r.id or 0, 0), "last_polled_at": iso(r.last_polled_at),
                     "next_poll_at": iso(r.next_poll_at), "last_error": r.last_error, "warning": r.warning,
                     "consecutive_failures": r.consecutive_failures, "interval": r.interval}
                    for r in session.exec(select(FeedRow).order_by(FeedRow.name))]

    def _items_query(self, since: datetime | None, feed: str | None) -> Any:
        query = select(ItemRow, FeedRow.name).join(FeedRow, col(FeedRow.id) == ItemRow.feed_id)
        if since:
            query = query.where(ItemRow.first_seen_at >= utc(since))
        if feed:
            query = query.where(FeedRow.name == feed)
        return query

    def items(self, since: datetime | None = None, feed: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        return list(self.iter_items(since, feed, limit))

    def iter_items(self, since: datetime | None = None, feed: str | None = None,
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Stored items, newest first, at most ``limit`` (None: all), read in batches as they are used."""
        query = self._items_query(since, feed).order_by(col(ItemRow.first_seen_at).desc(), col(ItemRow.id).desc())
        for item, name in self._stream(query.limit(limit)):
            yield {"id": item.id, "feed": name, "title": item.title, "url": item.url,
                   "published_at": iso(item.published_at), "first_seen_at": iso(item.first_seen_at),
                   "full_text_status": item.full_text_status, "full_text_error": item.full_text_error,
                   "full_text_chars": len(item.full_text)}

    def count_items(self, since: datetime | None = None, feed: str | None = None) -> int:
        return self._count(self._items_query(since, feed))

    def _stream(self, query: Any, batch: int = 500) -> Iterator[Any]:
        """The rows of ``query``, fetched ``batch`` at a time (a server-side cursor on PostgreSQL)."""
        with Session(self.engine) as session:
            result = session.exec(query.execution_options(yield_per=batch))
            try:
                yield from result
            finally:
                result.close()  # a reader that stops early must not leave PostgreSQL's cursor open

    def _count(self, query: Any) -> int:
        with Session(self.engine) as session:
            return int(session.execute(sa_select(func.count()).select_from(query.subquery())).scalar_one())

    def documents(self, since: datetime | None = None, batch: int = 2000) -> Iterator[Document]:
        """Every stored item (first seen since ``since``) as a Document, in id order: read ``batch`` at
        a time (keyset pages, plain rows rather than ORM objects), so a backtest never holds them all."""
        columns = (ITEMS.c.id, ITEMS.c.title, ITEMS.c.summary, ITEMS.c.content, FEEDS.c.name, ITEMS.c.tags,
                   ITEMS.c.url, ITEMS.c.published_at)
        last = 0
        while True:
            query = (sa_select(*columns).join(FEEDS, FEEDS.c.id == ITEMS.c.feed_id).where(ITEMS.c.id > last)
                     .order_by(ITEMS.c.id).limit(batch))
            if since:
                query = query.where(ITEMS.c.first_seen_at >= utc(since))
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
            for key, title, summary, content, feed, tags, url, published in rows:
                yield Document(id=str(key), title=title, summary=summary, content=content, feed=feed,
                               tags=tuple(tags or ()), url=url, published_at=aware(published))
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def _matches_query(self, since: datetime | None, rule: str | None) -> Any:
        query = (select(MatchRow, ItemRow, FeedRow.name).join(ItemRow, col(ItemRow.id) == MatchRow.item_id)
                 .join(FeedRow, col(FeedRow.id) == ItemRow.feed_id))
        if since:
            query = query.where(MatchRow.created_at >= utc(since))
        if rule:
            query = query.where(MatchRow.rule == rule)
        return query

    def matches(self, since: datetime | None = None, rule: str | None = None,
                limit: int = 1000) -> list[dict[str, Any]]:
        return list(self.iter_matches(since, rule, limit))

    def iter_matches(self, since: datetime | None = None, rule: str | None = None,
                     limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Matches, newest first, at most ``limit`` (None: all), read in batches as they are used."""
        query = self._matches_query(since, rule).order_by(col(MatchRow.created_at).desc(), col(MatchRow.id).desc())
        for m, item, name in self._stream(query.limit(limit)):
            yield {"rule": m.rule, "severity": m.severity, "story": item.story_id,
                   "item": {"id": item.id, "feed": name, "title": item.title, "url": item.url},
                   "clauses": m.clauses, "terms": m.terms, "entities": m.entities, "snippet": m.snippet,
                   "created_at": iso(m.created_at)}

    def has_matches(self, rule: str) -> bool:
        """Whether ``rule`` has any stored match (one indexed lookup)."""
        with Session(self.engine) as session:
            return session.exec(select(MatchRow.id).where(MatchRow.rule == rule).limit(1)).first() is not None

    def count_matches(self, since: datetime | None = None, rule: str | None = None) -> int:
        return self._count(self._matches_query(since, rule))

    def _alerts_query(self, status: str | None, rule: str | None, since: datetime | None) -> Any:
        query = (select(DeliveryRow, AlertRow, ItemRow.url).join(AlertRow, col(AlertRow.id) == DeliveryRow.alert_id)
                 .join(ItemRow, col(ItemRow.id) == AlertRow.item_id))
        if status:
            query = query.where(DeliveryRow.status == status)
        if rule:
            query = query.where(AlertRow.rule == rule)
        if since:
            query = query.where(DeliveryRow.created_at >= utc(since))
        return query

    def alerts(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        return list(self.iter_alerts(status, limit=limit))

    def iter_alerts(self, status: str | None = None, rule: str | None = None, since: datetime | None = None,
                    limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Deliveries, newest first, at most ``limit`` (None: all), read in batches as they are used."""
        query = self._alerts_query(status, rule, since).order_by(col(DeliveryRow.created_at).desc(),
                                                                 col(DeliveryRow.id).desc())
        for d, a, url in self._stream(query.limit(limit)):
            yield {"id": a.id, "rule": a.rule, "story": a.story_id, "item_url": url, "channel": d.channel,
                   "status": d.status,
                   "attempts": d.attempts, "last_error": d.last_error, "created_at": iso(d.created_at)}

    def count_alerts(self, status: str | None = None, rule: str | None = None, since: datetime | None = None) -> int:
        return self._count(self._alerts_query(status, rule, since))
