"""The outbox: deliveries claimed, sent, retried, postponed, declared dead, and retried by hand.

A claim takes due pending deliveries in one write transaction: on PostgreSQL with
``FOR UPDATE SKIP LOCKED`` so several daemons sharing the database never claim the same
row; on SQLite the write transaction itself (BEGIN IMMEDIATE) makes the claim atomic.
A claim is a lease: if the daemon dies mid-send, the delivery is claimable again when the
lease runs out, and sent again with the same alert id (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, or_, update
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from monitor.store.repo import Store, aware, utc
from monitor.store.tables import AlertRow, AttemptRow, DeliveryRow, FeedRow, ItemRow, MatchRow, StoryRow
from monitor.types import Alert, StoryRef, SurgeRef, SurgeTop

DELIVERIES = DeliveryRow.__table__  # type: ignore[attr-defined]
ATTEMPTS = AttemptRow.__table__  # type: ignore[attr-defined]


def _history(session: Session, ids: Sequence[int], now: datetime, outcome: str, error: str | None = None,
             status_code: int | None = None) -> None:
    """A line in ``delivery_attempts`` for each of ``ids``: the attempt's number, time, outcome ("delivered",
    "retry", "dead"; "retried" for a retry by hand, numbered as the last attempt), error and status code."""
    columns = ATTEMPTS.c
    shown = (literal(utc(now), columns.at.type), literal(outcome, columns.outcome.type),
             literal(error, columns.error.type), literal(status_code, columns.status_code.type))
    step = 0 if outcome == "retried" else 1
    session.execute(sa_insert(ATTEMPTS).from_select(
        ["delivery_id", "attempt", "at", "outcome", "error", "status_code"],
        sa_select(DELIVERIES.c.id, DELIVERIES.c.attempts + step, *shown).where(DELIVERIES.c.id.in_(list(ids)))))


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, channels: Sequence[str], now: datetime, lease: float, limit: int = 200) -> list[Alert]:
        """Due pending deliveries to ``channels``, claimed for ``lease`` seconds."""
        if not channels:
            return []
        moment = utc(now)
        free = or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= moment)
        due = (sa_select(DELIVERIES.c.id).where(DELIVERIES.c.status == "pending", DELIVERIES.c.channel.in_(channels),
                                                DELIVERIES.c.next_attempt_at <= moment, free)
               .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id).limit(limit))
        with self.store.writing() as session:
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(session.execute(due).scalars())
            if ids:
                session.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(ids))
                                .values(claimed_until=moment + timedelta(seconds=lease)))
        return self._alerts(ids)

    def _alerts(self, delivery_ids: list[int]) -> list[Alert]:
        if not delivery_ids:
            return []
        query = (sa_select(DeliveryRow, AlertRow, ItemRow, MatchRow, col(FeedRow.name), StoryRow)
                 .join(AlertRow, col(AlertRow.id) == DeliveryRow.alert_id)
                 .join(StoryRow, col(StoryRow.id) == AlertRow.story_id)
                 .join(ItemRow, col(ItemRow.id) == AlertRow.item_id)
                 .join(MatchRow, col(MatchRow.id) == AlertRow.match_id)
                 .join(FeedRow, col(FeedRow.id) == ItemRow.feed_id)
                 .where(col(DeliveryRow.id).in_(delivery_ids)).order_by(col(DeliveryRow.id)))
        with Session(self.store.engine) as session:
            return [Alert(id=a.id, created_at=aware(a.created_at) or a.created_at, rule=a.rule,
                          rule_title=a.rule_title, severity=a.severity, tags=tuple(a.tags), item_title=item.title,
                          item_url=item.url, published_at=aware(item.published_at), feed=feed,
                          terms=tuple(m.terms), entities=tuple(m.entities), snippet=m.snippet,
                          clauses=tuple(m.clauses), snippet_entities=tuple(m.snippet_entities),
                          highlights=tuple((int(x), int(y)) for x, y in m.highlights), channel=d.channel,
                          delivery_id=d.id or 0, attempts=d.attempts, kind=a.kind or "alert",
                          story=_story(a.story_id, a.detail, story), thread=a.thread, reason=a.reason,
                          surge=_surge(a.detail) if a.kind == "surge" else None)
                    for d, a, item, m, feed, story in session.execute(query)]

    def _set(self, ids: Sequence[int], **values: Any) -> None:
        if ids:
            with self.store.writing() as session:
                session.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(list(ids))).values(**values))

    def _attempted(self, ids: Sequence[int], now: datetime, outcome: str, error: str | None = None,
                   status_code: int | None = None, **values: Any) -> None:
        """Record an attempt of each of ``ids`` and set ``values`` on the deliveries, in one transaction."""
        if ids:
            with self.store.writing() as session:
                _history(session, ids, now, outcome, error, status_code)
                session.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(list(ids))).values(**values))

    def delivered(self, ids: Sequence[int], now: datetime) -> None:
        self._attempted(ids, now, "delivered", status="delivered", delivered_at=utc(now), claimed_until=None,
                        attempts=DELIVERIES.c.attempts + 1, last_error=None)

    def failed(self, ids: Sequence[int], error: str, retry_at: datetime | None, now: datetime | None = None,
               status_code: int | None = None) -> None:
        """A failed attempt (at ``now``, the receiver's answer ``status_code`` if it gave one): tried again
        at ``retry_at``, or ``dead`` when None (kept, visible, retryable)."""
        values: dict[str, Any] = {"attempts": DELIVERIES.c.attempts + 1, "last_error": error[:1000],
                                  "claimed_until": None}
        if retry_at is None:
            values["status"] = "dead"
        else:
            values["next_attempt_at"] = utc(retry_at)
        self._attempted(ids, now or datetime.now(UTC), "retry" if retry_at else "dead", error[:1000], status_code,
                        **values)

    def postpone(self, ids: Sequence[int], until: datetime) -> None:
        """Not an attempt: quiet hours, a digest period or a grouping window holds these back."""
        self._set(ids, next_attempt_at=utc(until), claimed_until=None)

    def retry(self, now: datetime, alert_id: str | None = None, dead: bool = False) -> int:
        """Make dead (or one alert's undelivered) deliveries pending again, their attempts counted
        afresh; how many. Their attempt history stays, and says when they were retried by hand."""
        query = sa_select(DELIVERIES.c.id).where(DELIVERIES.c.status != "delivered")
        if alert_id is not None:
            query = query.where(DELIVERIES.c.alert_id == alert_id)
        if dead:
            query = query.where(DELIVERIES.c.status == "dead")
        with self.store.writing() as session:
            ids = list(session.execute(query).scalars())
            if ids:
                _history(session, ids, now, "retried")
                session.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(ids)).values(
                    status="pending", attempts=0, next_attempt_at=utc(now), claimed_until=None))
            return len(ids)

    def recent(self, channel: str, since: datetime) -> dict[str, int]:
        """Alerts per rule sent (or being sent) to ``channel`` since ``since``: for grouping."""
        query = (sa_select(col(AlertRow.rule), func.count()).join(DeliveryRow, col(DeliveryRow.alert_id) == AlertRow.id)
                 .where(col(DeliveryRow.channel) == channel, col(DeliveryRow.status) == "delivered",
                        col(DeliveryRow.delivered_at) >= utc(since))
                 .group_by(col(AlertRow.rule)))
        with Session(self.store.engine) as session:
            return {rule: int(count) for rule, count in session.execute(query)}

    def pending(self) -> int:
        with Session(self.store.engine) as session:
            return int(session.execute(sa_select(func.count()).select_from(DELIVERIES)
                                       .where(DELIVERIES.c.status == "pending")).scalar_one())


def _moment(value: Any, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
    return default


def _story(story_id: int, detail: dict[str, Any] | None, row: StoryRow) -> StoryRef:
    """The story as the alert was made about it (its snapshot in ``detail``, so a retried delivery
    sends the same body), else as it stands (alerts written before stories had snapshots)."""
    first = aware(row.first_seen_at) or row.first_seen_at
    last = aware(row.last_seen_at) or first
    snap = (detail or {}).get("story")
    if not isinstance(snap, dict):
        return StoryRef(story_id, tuple(row.publishers or ()), row.item_count or 0, first, last)
    return StoryRef(story_id, tuple(str(p) for p in snap.get("publishers", ())), int(snap.get("items", 0)),
                    _moment(snap.get("first_seen_at"), first), _moment(snap.get("last_seen_at"), last))


def _surge(detail: dict[str, Any] | None) -> SurgeRef | None:
    """A surge alert's figures, from its ``detail``."""
    surge = (detail or {}).get("surge")
    if not isinstance(surge, dict):
        return None
    top = tuple(SurgeTop(int(t.get("id", 0)), str(t.get("title", "")), str(t.get("url", "")),
                         int(t.get("publishers", 0))) for t in surge.get("top", ()) if isinstance(t, dict))
    return SurgeRef(int(surge.get("count", 0)), float(surge.get("baseline", 0.0)), float(surge.get("window", 3600.0)),
                    int(surge.get("publishers", 0)), top)

