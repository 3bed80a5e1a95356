"""The queries the rest of the code calls: feeds and their fetch state, items, matches, alerts.

``Store`` is synchronous (SQLAlchemy engine and sessions); the daemon calls it from a
worker thread so the event loop never waits on the disk. A poll's items, matches,
alerts and deliveries are written in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, update
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from monitor.config import FeedSpec, reveal
from monitor.dedupe import Known
from monitor.store.schema import open_engine
from monitor.store.tables import AlertRow, DeliveryRow, FeedRow, ItemRow, MatchRow, StoryRow
from monitor.types import Alert, FeedState, FeedUpdate, ItemWrite, Match

Route = Callable[[Match], Sequence[str]]


def utc(moment: datetime) -> datetime:
    """An aware UTC time, as the columns take it (a naive one is taken to be UTC already)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def iso(moment: datetime | None) -> str | None:
    value = aware(moment)
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class PollRecord:
    """What one poll wrote."""

    new_items: int = 0
    updated_items: int = 0
    matches: int = 0
    alerts: int = 0


def insert_ignoring(session: Session, table: type[SQLModel], keys: list[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO NOTHING, in the dialect of the session's database."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    if name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)
    return sa_insert(table).prefix_with("IGNORE")  # MySQL and MariaDB


def _state(row: FeedRow) -> FeedState:
    assert row.id is not None
    return FeedState(id=row.id, name=row.name, url=row.url, status=row.status, etag=row.etag,
                     last_modified=row.last_modified, body_hash=row.body_hash, interval=row.interval,
                     quiet_polls=row.quiet_polls, consecutive_failures=row.consecutive_failures,
                     last_success_at=aware(row.last_success_at), last_new_item_at=aware(row.last_new_item_at),
                     added_at=aware(row.added_at))


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = open_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(FeedRow)).one() >= 0

    # --- feeds -------------------------------------------------------------------------------

    def sync_feeds(self, specs: Iterable[FeedSpec], now: datetime, default_interval: float) -> None:
        """Make a row for every configured feed; a changed config URL resets the fetch state."""
        with Session(self.engine) as session, session.begin():
            rows = {row.name: row for row in session.exec(select(FeedRow))}
            for spec in specs:
                url = reveal(spec.url)
                row = rows.get(spec.name)
                if row is None:
                    session.add(FeedRow(name=spec.name, config_url=url, url=url, next_poll_at=utc(now),
                                        added_at=utc(now), interval=spec.interval or default_interval))
                elif row.config_url != url:
                    row.config_url = row.url = url
                    row.etag = row.last_modified = row.body_hash = None
                    row.next_poll_at, row.status, row.consecutive_failures = utc(now), "never", 0

    def claim(self, name: str, now: datetime, lease: float, force: bool = False) -> FeedState | None:
        """Take the feed for one poll, unless it is not due or another poller holds it.

        The claim is one conditional UPDATE, atomic on SQLite and PostgreSQL alike, so
        daemons sharing a database poll each feed once per interval.
        """
        moment = utc(now)
        due = or_(col(FeedRow.next_poll_at).is_(None), col(FeedRow.next_poll_at) <= moment)
        free = or_(col(FeedRow.lease_until).is_(None), col(FeedRow.lease_until) <= moment)
        condition = [col(FeedRow.name) == name, free] + ([] if force else [due])
        with Session(self.engine) as session, session.begin():
            claimed = session.execute(update(FeedRow).where(*condition)
                                      .values(lease_until=moment + timedelta(seconds=lease)))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.exec(select(FeedRow).where(FeedRow.name == name)).one()
            return _state(row)

    def release(self, name: str) -> None:
        """Give a claimed feed back without recording a poll."""
        with Session(self.engine) as session, session.begin():
            session.execute(update(FeedRow).where(col(FeedRow.name) == name).values(lease_until=None))

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
            return {guid: Known(item_id, digest, frozenset(matched.get(item_id, ())))
                    for item_id, guid, digest in rows if item_id is not None}

    def record(self, feed_id: int, update_: FeedUpdate, items: Sequence[ItemWrite], route: Route,
               now: datetime) -> PollRecord:
        """Write a poll in one transaction: items, stories, matches, alerts, deliveries, feed state."""
        moment = utc(now)
        counts = {"new": 0, "updated": 0, "matches": 0, "alerts": 0}
        with Session(self.engine) as session, session.begin():
            stories = self._stories(session, {w.story_key for w in items if w.item_id is None}, moment)
            for write in items:
                item = self._item(session, feed_id, write, stories, moment)
                counts["updated" if write.item_id else "new"] += 1
                for match in write.matches:
                    counts["matches"] += 1
                    assert item.id is not None
                    match_row = MatchRow(item_id=item.id, rule=match.rule, severity=match.severity,
                                         terms=list(match.terms), entities=list(match.entities),
                                         snippet=match.snippet, created_at=moment)
                    session.add(match_row)
                    if match.rule in write.alert_rules:
                        session.flush()
                        counts["alerts"] += self._alert(session, item, match, match_row, route(match), moment)
            self._feed(session, feed_id, update_)
        return PollRecord(counts["new"], counts["updated"], counts["matches"], counts["alerts"])

    def _stories(self, session: Session, keys: set[str], moment: datetime) -> dict[str, int]:
        found = {key: sid for sid, key in session.exec(select(StoryRow.id, StoryRow.key)
                                                       .where(col(StoryRow.key).in_(keys)))
                 if sid is not None} if keys else {}
        missing = sorted(keys - found.keys())
        if missing:
            # Another poll (another feed, or another daemon) may insert the same story at the
            # same moment: insert-or-ignore, then read back what is there.
            rows = [{"key": key, "first_seen_at": moment} for key in missing]
            session.execute(insert_ignoring(session, StoryRow, ["key"]), rows)
            found.update({key: sid for sid, key in session.exec(select(StoryRow.id, StoryRow.key)
                                                                .where(col(StoryRow.key).in_(missing)))
                          if sid is not None})
        return found

    def _item(self, session: Session, feed_id: int, write: ItemWrite, stories: dict[str, int],
              moment: datetime) -> ItemRow:
        doc = write.doc
        if write.item_id is not None:
            item = session.get_one(ItemRow, write.item_id)
            item.title, item.summary, item.content = doc.title, doc.summary, doc.content
            item.url, item.content_hash, item.updated_at = doc.url, write.content_hash, moment
        else:
            item = ItemRow(feed_id=feed_id, story_id=stories[write.story_key], guid=doc.id, url=doc.url,
                           title=doc.title, summary=doc.summary, content=doc.content, tags=list(doc.tags),
                           published_at=utc(write.published_at), first_seen_at=moment, updated_at=moment,
                           content_hash=write.content_hash)
            session.add(item)
        if write.matches or write.item_id is None:
            session.flush()
        return item

    def _alert(self, session: Session, item: ItemRow, match: Match, match_row: MatchRow,
               channels: Sequence[str], moment: datetime) -> int:
        """An alert and its deliveries, unless this rule already alerted on this story."""
        exists = session.exec(select(AlertRow.id).where(AlertRow.rule == match.rule,
                                                        AlertRow.story_id == item.story_id)).first()
        if exists is not None:
            return 0
        assert item.id is not None and match_row.id is not None
        alert = AlertRow(id=str(uuid.uuid4()), rule=match.rule, rule_title=match.title, severity=match.severity,
                         tags=list(match.tags), story_id=item.story_id, item_id=item.id, match_id=match_row.id,
                         created_at=moment)
        try:
            with session.begin_nested():
                session.add(alert)
                session.flush()
        except IntegrityError:  # another daemon alerted on this story a moment ago
            return 0
        for channel in channels:
            session.add(DeliveryRow(alert_id=alert.id, channel=channel, next_attempt_at=moment, created_at=moment))
        return 1

    def _feed(self, session: Session, feed_id: int, u: FeedUpdate) -> None:
        row = session.get_one(FeedRow, feed_id)
        row.status, row.interval, row.lease_until = u.status, u.interval, None
        row.last_polled_at, row.next_poll_at = utc(u.polled_at), utc(u.next_poll_at)
        row.consecutive_failures, row.quiet_polls = u.consecutive_failures, u.quiet_polls
        row.last_error, row.warning = u.last_error, u.warning
        for key in ("etag", "last_modified", "body_hash", "url", "title"):
            value = getattr(u, key)
            if value is not None:
                setattr(row, key, value)
        if u.success:
            row.last_success_at = utc(u.polled_at)
        if u.new_items:
            row.last_new_item_at = utc(u.polled_at)

    # --- listings ----------------------------------------------------------------------------

    def feeds(self) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            counts: dict[int, int] = dict(session.execute(sa_select(col(ItemRow.feed_id), func.count())
                                          .group_by(col(ItemRow.feed_id))).all())
            return [{"name": r.name, "url": r.url, "config_url": r.config_url, "title": r.title,
                     "status": r.status, "items": counts.get(r.id or 0, 0), "last_polled_at": iso(r.last_polled_at),
                     "next_poll_at": iso(r.next_poll_at), "last_error": r.last_error, "warning": r.warning,
                     "consecutive_failures": r.consecutive_failures, "interval": r.interval}
                    for r in session.exec(select(FeedRow).order_by(FeedRow.name))]

    def items(self, since: datetime | None = None, feed: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = select(ItemRow, FeedRow.name).join(FeedRow, col(FeedRow.id) == ItemRow.feed_id)
        if since:
            query = query.where(ItemRow.first_seen_at >= utc(since))
        if feed:
            query = query.where(FeedRow.name == feed)
        query = query.order_by(col(ItemRow.first_seen_at).desc(), col(ItemRow.id).desc()).limit(limit)
        with Session(self.engine) as session:
            return [{"id": item.id, "feed": name, "title": item.title, "url": item.url,
                     "published_at": iso(item.published_at), "first_seen_at": iso(item.first_seen_at)}
                    for item, name in session.exec(query)]

    def matches(self, since: datetime | None = None, rule: str | None = None,
                limit: int = 1000) -> list[dict[str, Any]]:
        query = (select(MatchRow, ItemRow, FeedRow.name).join(ItemRow, col(ItemRow.id) == MatchRow.item_id)
                 .join(FeedRow, col(FeedRow.id) == ItemRow.feed_id))
        if since:
            query = query.where(MatchRow.created_at >= utc(since))
        if rule:
            query = query.where(MatchRow.rule == rule)
        query = query.order_by(col(MatchRow.created_at).desc(), col(MatchRow.id).desc()).limit(limit)
        with Session(self.engine) as session:
            return [{"rule": m.rule, "severity": m.severity,
                     "item": {"id": item.id, "feed": name, "title": item.title, "url": item.url},
                     "terms": m.terms, "entities": m.entities, "snippet": m.snippet, "created_at": iso(m.created_at)}
                    for m, item, name in session.exec(query)]

    def alerts(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = (select(DeliveryRow, AlertRow, ItemRow.url).join(AlertRow, col(AlertRow.id) == DeliveryRow.alert_id)
                 .join(ItemRow, col(ItemRow.id) == AlertRow.item_id))
        if status:
            query = query.where(DeliveryRow.status == status)
        query = query.order_by(col(DeliveryRow.created_at).desc(), col(DeliveryRow.id).desc()).limit(limit)
        with Session(self.engine) as session:
            return [{"id": a.id, "rule": a.rule, "item_url": url, "channel": d.channel, "status": d.status,
                     "attempts": d.attempts, "last_error": d.last_error} for d, a, url in session.exec(query)]

    def count_pending(self) -> int:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(DeliveryRow)
                                .where(DeliveryRow.status == "pending")).one()

    # --- outbox ------------------------------------------------------------------------------

    def claim_deliveries(self, channels: Sequence[str], now: datetime, lease: float, limit: int = 100) -> list[Alert]:
        """Due pending deliveries to ``channels``, each claimed by one conditional UPDATE so
        that two dispatchers never send the same delivery at once."""
        moment = utc(now)
        free = or_(col(DeliveryRow.claimed_until).is_(None), col(DeliveryRow.claimed_until) <= moment)
        due = (select(DeliveryRow.id).where(DeliveryRow.status == "pending", col(DeliveryRow.channel).in_(channels),
                                            DeliveryRow.next_attempt_at <= moment, free)
               .order_by(col(DeliveryRow.next_attempt_at), col(DeliveryRow.id)).limit(limit))
        claimed: list[int] = []
        with Session(self.engine) as session, session.begin():
            for delivery_id in session.exec(due).all():
                result = session.execute(update(DeliveryRow).where(col(DeliveryRow.id) == delivery_id, free)
                                         .values(claimed_until=moment + timedelta(seconds=lease)))
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(delivery_id)  # type: ignore[arg-type]
        return self._alerts(claimed)

    def _alerts(self, delivery_ids: list[int]) -> list[Alert]:
        if not delivery_ids:
            return []
        query = (sa_select(DeliveryRow, AlertRow, ItemRow, MatchRow, col(FeedRow.name))
                 .join(AlertRow, col(AlertRow.id) == DeliveryRow.alert_id)
                 .join(ItemRow, col(ItemRow.id) == AlertRow.item_id)
                 .join(MatchRow, col(MatchRow.id) == AlertRow.match_id)
                 .join(FeedRow, col(FeedRow.id) == ItemRow.feed_id)
                 .where(col(DeliveryRow.id).in_(delivery_ids)).order_by(col(DeliveryRow.id)))
        with Session(self.engine) as session:
            return [Alert(id=a.id, created_at=aware(a.created_at) or a.created_at, rule=a.rule,
                          rule_title=a.rule_title, severity=a.severity, tags=tuple(a.tags), item_title=item.title,
                          item_url=item.url, published_at=aware(item.published_at), feed=feed,
                          terms=tuple(m.terms), entities=tuple(m.entities), snippet=m.snippet, channel=d.channel,
                          delivery_id=d.id or 0, attempts=d.attempts)
                    for d, a, item, m, feed in session.execute(query)]

    def delivered(self, delivery_id: int, now: datetime) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(update(DeliveryRow).where(col(DeliveryRow.id) == delivery_id)
                            .values(status="delivered", delivered_at=utc(now), claimed_until=None,
                                    attempts=DeliveryRow.attempts + 1, last_error=None))

    def failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: retried at ``retry_at``, or ``dead`` when None."""
        values: dict[str, Any] = {"attempts": DeliveryRow.attempts + 1, "last_error": error[:1000],
                                  "claimed_until": None}
        if retry_at is None:
            values["status"] = "dead"
        else:
            values["next_attempt_at"] = utc(retry_at)
        with Session(self.engine) as session, session.begin():
            session.execute(update(DeliveryRow).where(col(DeliveryRow.id) == delivery_id).values(**values))
