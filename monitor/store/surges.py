"""Surges in the store (issue 15): the figures ``monitor.stories.surge.decide`` needs for one rule,
read from the matches of its baseline period only, and the surge alert written when it fires.

- A story counts in the window where the rule first matched it: the earliest of the rule's matches
  on the story's items. Only stories the rule matched within the baseline period (the
  ``baseline_windows`` windows before the current one, and the current one) are read, found by
  ``matches.created_at``; their earlier matches of the rule are read too, so a story the rule first
  matched before the period counts in no window of it.
- "The rule was first observed" (the warm-up) is its first match in the store: a rule that matched
  before the baseline period has its whole baseline; a rule whose first match falls inside it is warm
  ``warmup`` complete windows after that match's window. A rule that has never matched has no
  surge to fire. Retention that deletes old matches moves that moment on, so a baseline never counts
  windows whose matches are gone as quiet ones.
- A match of an item published more than ``max_age`` (``[monitor] max_item_age``) before it was
  found counts no more than it alerts: a new feed's backlog is not a surge.
- The publishers of the current window are those of every item of its stories (``items.publisher``).
- The alert's key ``surge:RULE:WINDOW`` is unique: daemons sharing PostgreSQL that decide at one
  moment insert one alert (insert-or-ignore), and only the one whose insert took writes deliveries.
  The cooldown reads the rule's last surge alert from the store, whichever daemon wrote it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy import select as sa_select
from sqlmodel import Session

from monitor.store.repo import ITEMS, MATCHES, STORIES, Store, _chunks, aware, insert_ignoring, utc
from monitor.store.tables import AlertRow, DeliveryRow
from monitor.stories.surge import SurgeDecision, SurgeSpec, counts_per_window, decide, window_of
from monitor.types import iso
from monitor.units import format_duration

ALERTS: Table = AlertRow.__table__  # type: ignore[attr-defined]
TOP = 5  # the stories a surge alert names


@dataclass(frozen=True)
class SurgeRule:
    """A rule that watches for surges, as a surge alert names and routes it."""

    id: str
    title: str
    severity: str
    tags: tuple[str, ...]
    spec: SurgeSpec
    channels: tuple[str, ...]  # where its messages go (the rule's routing)


@dataclass(frozen=True)
class WindowStory:
    """A story the rule first matched in the current window."""

    id: int
    title: str
    url: str  # of the item the rule first matched in it
    publishers: tuple[str, ...]  # sorted
    items: int
    first_seen_at: datetime
    last_seen_at: datetime
    first_matched_at: datetime
    item_id: int
    match_id: int


@dataclass(frozen=True)
class SurgeFigures:
    """What ``decide`` takes: stories per window, the current window's publishers, when the rule was
    first observed and when it last surged; and the current window's stories, the top first."""

    counts: dict[int, int]
    publishers: int
    started_at: datetime
    last_fired: datetime | None
    stories: tuple[WindowStory, ...]


@dataclass(frozen=True)
class SurgeOutcome:
    decision: SurgeDecision
    alert_id: str | None = None  # the surge alert this check wrote (None: no surge, or another daemon's)


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Surges:
    """The surge side of the store: figures for ``decide``, and the alert when it fires."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def check(self, rule: SurgeRule, now: datetime, max_age: float | None = None) -> SurgeOutcome:
        """Decide for the window that holds ``now``; write the surge alert when it fires."""
        figures = self.figures(rule.id, rule.spec, now, max_age)
        decision = decide(rule.spec, figures.counts, figures.publishers, now, figures.started_at, figures.last_fired)
        if not decision.fire:
            return SurgeOutcome(decision)
        return SurgeOutcome(decision, self._write(rule, figures, decision, now))

    def figures(self, rule: str, spec: SurgeSpec, now: datetime, max_age: float | None = None) -> SurgeFigures:
        current = window_of(now, spec.window)
        start = _moment((current - spec.baseline_windows) * spec.window)
        with Session(self.store.engine) as session:
            firsts = self._first_matches(session, rule, start, max_age)
            before = session.execute(sa_select(MATCHES.c.id).where(
                MATCHES.c.rule == rule, MATCHES.c.created_at < utc(start)).limit(1)).first() is not None
            first_seen = None if before else aware(session.execute(sa_select(func.min(MATCHES.c.created_at)).where(
                MATCHES.c.rule == rule, MATCHES.c.created_at >= utc(start))).scalar())
            last_fired = aware(session.execute(sa_select(func.max(ALERTS.c.created_at)).where(
                ALERTS.c.rule == rule, ALERTS.c.kind == "surge",
                ALERTS.c.created_at > utc(now) - timedelta(seconds=spec.cooldown))).scalar())
            in_period = {sid: first for sid, first in firsts.items() if first[0] >= start}
            present = {sid: first for sid, first in in_period.items() if window_of(first[0], spec.window) == current}
            stories = self._stories(session, present)
        counts = counts_per_window((first[0] for first in in_period.values()), spec.window)
        publishers = len({p for story in stories for p in story.publishers})
        return SurgeFigures(counts, publishers, start if before else first_seen or now, last_fired, stories)

    def _first_matches(self, session: Session, rule: str, start: datetime,
                       max_age: float | None) -> dict[int, tuple[datetime, int, int]]:
        """story id -> (when, match id, item id) of the rule's first match in it, for the stories the
        rule matched since ``start``; matches of items published over ``max_age`` seconds before
        do not count.

        In steps, each on an index: the period's matches of the rule (rule, created_at), the items of
        their stories (story_id), the rule's matches of those items (item_id, rule). One join would let
        the planner walk all of the rule's matches ever."""
        too_old = timedelta(seconds=max_age) if max_age is not None else None
        recent = sorted(set(session.execute(
            sa_select(ITEMS.c.story_id).join(MATCHES, MATCHES.c.item_id == ITEMS.c.id)
            .where(MATCHES.c.rule == rule, MATCHES.c.created_at >= utc(start))).scalars()))
        items: dict[int, tuple[int, datetime]] = {}
        for chunk in _chunks(recent):
            items.update((item_id, (story_id, aware(published) or published)) for item_id, story_id, published in
                         session.execute(sa_select(ITEMS.c.id, ITEMS.c.story_id, ITEMS.c.published_at)
                                         .where(ITEMS.c.story_id.in_(chunk))))
        firsts: dict[int, tuple[datetime, int, int]] = {}
        for chunk in _chunks(sorted(items)):
            for item_id, created_at, match_id in session.execute(
                    sa_select(MATCHES.c.item_id, MATCHES.c.created_at, MATCHES.c.id)
                    .where(MATCHES.c.item_id.in_(chunk), MATCHES.c.rule == rule)):
                story_id, published_at = items[item_id]
                first = (aware(created_at) or created_at, match_id, item_id)
                if too_old is not None and first[0] - published_at > too_old:
                    continue
                if story_id not in firsts or first < firsts[story_id]:
                    firsts[story_id] = first
        return firsts

    def _stories(self, session: Session, present: dict[int, tuple[datetime, int, int]]) -> tuple[WindowStory, ...]:
        """The current window's stories with their publishers, items and times, the top first (most
        publishers, then most items, then the earliest matched)."""
        if not present:
            return ()
        items: dict[int, list[tuple[int, str, datetime, str, str]]] = {}
        titles: dict[int, str] = {}
        for chunk in _chunks(sorted(present)):
            for row in session.execute(sa_select(ITEMS.c.story_id, ITEMS.c.id, ITEMS.c.publisher,
                                                 ITEMS.c.first_seen_at, ITEMS.c.title, ITEMS.c.url)
                                       .where(ITEMS.c.story_id.in_(chunk))):
                items.setdefault(row[0], []).append((row[1], row[2], aware(row[3]) or row[3], row[4], row[5]))
            titles.update((sid, title) for sid, title in session.execute(
                sa_select(STORIES.c.id, STORIES.c.title).where(STORIES.c.id.in_(chunk))))
        out = []
        for sid, (matched_at, match_id, item_id) in present.items():
            rows = items.get(sid, [])
            first_item = next((row for row in rows if row[0] == item_id), None)
            seen = [row[2] for row in rows] or [matched_at]
            out.append(WindowStory(
                id=sid, title=titles.get(sid) or (first_item[3] if first_item else ""),
                url=first_item[4] if first_item else "", publishers=tuple(sorted({row[1] for row in rows if row[1]})),
                items=len(rows), first_seen_at=min(seen), last_seen_at=max(seen), first_matched_at=matched_at,
                item_id=item_id, match_id=match_id))
        out.sort(key=lambda s: (-len(s.publishers), -s.items, s.first_matched_at, s.id))
        return tuple(out)

    def _write(self, rule: SurgeRule, figures: SurgeFigures, decision: SurgeDecision, now: datetime) -> str | None:
        """The surge alert of the current window and its deliveries; None if another daemon (or an
        earlier check) wrote it first."""
        top = figures.stories[0]
        moment = utc(now)
        alert_id = str(uuid.uuid4())
        row = {"id": alert_id, "rule": rule.id, "rule_title": rule.title, "severity": rule.severity,
               "tags": list(rule.tags), "story_id": top.id, "item_id": top.item_id, "match_id": top.match_id,
               "created_at": moment, "key": f"surge:{rule.id}:{window_of(now, rule.spec.window)}", "kind": "surge",
               "thread": None, "reason": reason(decision, rule.spec.window), "detail": detail(figures, decision,
                                                                                           rule.spec.window)}
        with self.store.writing() as session:
            statement = insert_ignoring(session, ALERTS, ["key"]).returning(ALERTS.c.id)
            if session.connection().execute(statement, row).first() is None:
                return None
            session.add_all(DeliveryRow(alert_id=alert_id, channel=channel, next_attempt_at=moment, created_at=moment)
                            for channel in rule.channels)
        return alert_id


def reason(decision: SurgeDecision, window: float) -> str:
    """As in "12 stories in 1h against a baseline of 1.5"."""
    return (f"{decision.count} {'story' if decision.count == 1 else 'stories'} in {format_duration(window)} "
            f"against a baseline of {round(decision.baseline, 2):g}")


def _top(stories: Iterable[WindowStory]) -> list[dict[str, Any]]:
    return [{"id": s.id, "title": s.title, "url": s.url, "publishers": len(s.publishers)} for s in stories]


def detail(figures: SurgeFigures, decision: SurgeDecision, window: float) -> dict[str, Any]:
    """The alert's ``detail``: the surge's figures and its top stories, and the top story as it stands."""
    top: Sequence[WindowStory] = figures.stories
    return {"surge": {"count": decision.count, "baseline": float(decision.baseline), "window": float(window),
                      "publishers": decision.publishers, "top": _top(top[:TOP])},
            "story": {"publishers": list(top[0].publishers), "items": top[0].items,
                      "first_seen_at": iso(top[0].first_seen_at), "last_seen_at": iso(top[0].last_seen_at)}}
