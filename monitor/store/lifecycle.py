"""Alerts per rule and story (issue 15): the first alert once the rule's gate passes, then updates.

Run inside the write transaction of a poll, after its items, stories and matches are written, for
the stories the poll touched. For each rule that matched a story:

- no message yet: the rule alerts when an item the poll brought may alert for it (recent enough)
  and the story passes the rule's gate: ``min_sources`` publishers (of ``tiers`` only, when set)
  carried it within ``within`` of the rule's first match in it, or ``min_official`` official ones
  did. Until then the alert is *held*: nothing is written, and each new item of the story decides
  again (so a held alert needs no state, and a daemon that dies holding one loses nothing). A
  rule's first message on a story that already alerted for a rule of lower severity goes out as an
  update of that alert (``reason`` "higher severity: critical (was high)");
- a message already: when the story's publishers reach a rung of the rule's ``updates`` ladder
  above the count at the first alert, one update for the highest rung reached, unless the rule's
  last message on the story is younger than ``cooldown`` (it goes out with a later item then).

Every message has a unique key (``alert:RULE:STORY``, ``update:RULE:STORY:RUNG``), so several
daemons on one database, or a poll written again after a crash, never send one twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from monitor.store.tables import AlertRow, DeliveryRow, ItemRow, MatchRow, StoryRow
from monitor.stories.policy import DEFAULT_POLICY, StoryPolicy
from monitor.types import SEVERITIES, Match, iso

if TYPE_CHECKING:
    from monitor.rules.loader import RuleSpec

ALERTS: Table = AlertRow.__table__  # type: ignore[attr-defined]
DELIVERIES: Table = DeliveryRow.__table__  # type: ignore[attr-defined]
ITEMS: Table = ItemRow.__table__  # type: ignore[attr-defined]
MATCHES: Table = MatchRow.__table__  # type: ignore[attr-defined]
STORIES: Table = StoryRow.__table__  # type: ignore[attr-defined]
RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
OPEN, OWED = "open", "owed"  # stories.state: owed while a cooldown holds back an update it has reached
Route = Callable[[Match], Sequence[str]]


@dataclass(frozen=True)
class Facts:
    """What an alert needs of its rule (a RuleSpec has all of it)."""

    id: str
    title: str
    severity: str
    tags: tuple[str, ...] = ()
    stories: StoryPolicy = DEFAULT_POLICY

    @classmethod
    def of(cls, spec: RuleSpec) -> Facts:
        return cls(spec.id, spec.title, spec.severity, spec.tags, spec.stories)


@dataclass(frozen=True)
class Fresh:
    """A match the poll wrote that may alert: the item is recent and the rule new to it."""

    story_id: int
    item_id: int
    match_id: int
    match: Match
    route: Route
    poll: int  # which poll of the batch brought it (for its PollRecord's count)


@dataclass
class _Story:
    id: int
    first_seen_at: datetime
    last_seen_at: datetime
    items: int
    state: str = OPEN
    # publisher -> (first seen in the story, tier)
    publishers: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    # rule -> its first match in the story: (created, match id, item id)
    matches: dict[str, tuple[datetime, int, int]] = field(default_factory=dict)
    newest_published: dict[str, datetime | None] = field(default_factory=dict)  # rule -> of its newest item
    alerts: list[dict[str, Any]] = field(default_factory=list)
    newest_item: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {"publishers": sorted(self.publishers), "items": self.items,
                "first_seen_at": iso(self.first_seen_at), "last_seen_at": iso(self.last_seen_at)}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _chunks(values: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Lifecycle:
    """The messages one write transaction sends for the stories its polls touched."""

    def __init__(self, session: Session, specs: Mapping[str, RuleSpec], route: Route, now: datetime,
                 max_item_age: float | None) -> None:
        self.session = session
        self.specs = specs
        self.route = route  # for an alert a held story releases without a match of its own
        self.now = now
        self.max_item_age = max_item_age
        self._touched: Mapping[int, int] = {}
        self._owed: set[int] = set()

    def run(self, touched: Mapping[int, int], fresh: Sequence[Fresh]) -> dict[int, int]:
        """Write the alerts and updates due for the ``touched`` stories (story id -> the poll that
        touched it) and those of the ``fresh`` matches; how many per poll."""
        self._touched = touched
        stories = self._load(sorted(set(touched) | {f.story_id for f in fresh}))
        by_story: dict[int, list[Fresh]] = {}
        for f in fresh:
            by_story.setdefault(f.story_id, []).append(f)
        sent: dict[int, int] = {}
        self._owed = set()
        for story in stories.values():
            offered = by_story.get(story.id, [])
            for rule in sorted(story.matches):
                spec = self._facts(rule, offered)
                if spec is None:  # a rule since removed
                    continue
                poll = self._decide(story, spec, [f for f in offered if f.match.rule == rule])
                if poll is not None:
                    sent[poll] = sent.get(poll, 0) + 1
        changed = [{"sid": story.id, "state": OWED if story.id in self._owed else OPEN} for story in stories.values()
                   if (story.id in self._owed) != (story.state == OWED)]
        if changed:
            self.session.connection().execute(
                update(STORIES).where(STORIES.c.id == bindparam("sid")).values(state=bindparam("state")), changed)
        return sent

    def _facts(self, rule: str, offered: list[Fresh]) -> Facts | None:
        spec = self.specs.get(rule)
        if spec is not None:
            return Facts.of(spec)
        if self.specs:
            return None  # the rule set in force has no such rule (any more)
        # No rule set given (a store used on its own): what the match says of its rule
        match = next((f.match for f in offered if f.match.rule == rule), None)
        return None if match is None else Facts(rule, match.title, match.severity, match.tags)

    # --- reading -----------------------------------------------------------------------------

    def _load(self, ids: list[int]) -> dict[int, _Story]:
        connection = self.session.connection()
        stories: dict[int, _Story] = {}
        for chunk in _chunks(ids):
            for sid, first, last, count, state in connection.execute(
                    sa_select(STORIES.c.id, STORIES.c.first_seen_at, STORIES.c.last_seen_at, STORIES.c.item_count,
                              STORIES.c.state).where(STORIES.c.id.in_(chunk))):
                first = _utc(first) or self.now
                stories[sid] = _Story(sid, first, _utc(last) or first, count or 0, state or OPEN)
            # Aggregates, not rows: a big story has thousands of items, and each poll that touches it
            # reads it again. One row per publisher (its first item in the story) and per rule (its first
            # match, and the newest item it matched).
            for sid, publisher, tier, seen in connection.execute(
                    sa_select(ITEMS.c.story_id, ITEMS.c.publisher, func.min(ITEMS.c.tier),
                              func.min(ITEMS.c.first_seen_at))
                    .where(ITEMS.c.story_id.in_(chunk)).group_by(ITEMS.c.story_id, ITEMS.c.publisher)):
                if publisher:
                    stories[sid].publishers[publisher] = (_utc(seen) or self.now, tier or "other")
            for sid, newest in connection.execute(
                    sa_select(ITEMS.c.story_id, func.max(ITEMS.c.id)).where(ITEMS.c.story_id.in_(chunk))
                    .group_by(ITEMS.c.story_id)):
                stories[sid].newest_item = newest
            firsts: dict[int, tuple[int, str, datetime | None]] = {}
            for sid, rule, first_id, created, published in connection.execute(
                    sa_select(ITEMS.c.story_id, MATCHES.c.rule, func.min(MATCHES.c.id), func.min(MATCHES.c.created_at),
                              func.max(ITEMS.c.published_at))
                    .join(ITEMS, ITEMS.c.id == MATCHES.c.item_id)
                    .where(ITEMS.c.story_id.in_(chunk)).group_by(ITEMS.c.story_id, MATCHES.c.rule)):
                firsts[first_id] = (sid, rule, _utc(created))
                stories[sid].newest_published[rule] = _utc(published)
            for match_id, item_id in connection.execute(
                    sa_select(MATCHES.c.id, MATCHES.c.item_id).where(MATCHES.c.id.in_(sorted(firsts)))):
                sid, rule, created = firsts[match_id]
                stories[sid].matches[rule] = (created or self.now, match_id, item_id)
            for row in connection.execute(
                    sa_select(ALERTS.c.id, ALERTS.c.story_id, ALERTS.c.rule, ALERTS.c.key, ALERTS.c.kind,
                              ALERTS.c.severity, ALERTS.c.created_at, ALERTS.c.detail)
                    .where(ALERTS.c.story_id.in_(chunk), ALERTS.c.kind != "surge")
                    .order_by(ALERTS.c.created_at, ALERTS.c.id)):
                values = dict(row._mapping)
                values["created_at"] = _utc(values["created_at"])
                stories[values["story_id"]].alerts.append(values)
        return stories

    # --- deciding ----------------------------------------------------------------------------

    def _decide(self, story: _Story, spec: Facts, offered: list[Fresh]) -> int | None:
        """Send what is due for ``spec`` on ``story``; the poll it counts for (None: nothing)."""
        policy = spec.stories
        mine = [a for a in story.alerts if a["rule"] == spec.id]
        first = next((a for a in mine if a["key"] == f"alert:{spec.id}:{story.id}"), None)
        if first is None:
            return self._first(story, spec, policy, offered)
        return self._update(story, spec, policy, first, mine, offered)

    def _first(self, story: _Story, spec: Facts, policy: StoryPolicy, offered: list[Fresh]) -> int | None:
        started, first_match, first_item = story.matches[spec.id]
        if not offered and not (policy.gated and self._may_release(story, spec.id, policy)):
            return None
        reason = ""
        if policy.gated:
            counted = self._corroborating(story, policy, started)
            officials = sum(1 for _, tier in counted.values() if tier == "official")
            if policy.min_official and officials >= policy.min_official:
                reason = f"official source: {', '.join(p for p, (_, t) in sorted(counted.items()) if t == 'official')}"
            elif len(counted) >= policy.min_sources:
                reason = f"corroborated by {len(counted)} publishers"
            else:
                return None  # held: the next item of the story decides again
        # The item the alert shows: the offered one, else (a held alert released by another
        # publisher's item) the rule's first match in the story.
        if offered:
            item_id, match_id, route_match, poll = offered[0].item_id, offered[0].match_id, offered[0].match, \
                offered[0].poll
        else:
            match_id, item_id = first_match, first_item
            route_match = Match(rule=spec.id, severity=spec.severity, title=spec.title, terms=(), entities=(),
                                snippet="", tags=spec.tags)
            poll = self._touched.get(story.id, 0)
        channels = (offered[0].route if offered else self.route)(route_match)
        kind, thread = "alert", None
        earlier = [a for a in story.alerts if a["kind"] != "surge"]
        if earlier:
            highest = max(earlier, key=lambda a: RANK.get(a["severity"], 0))
            if RANK.get(spec.severity, 0) > RANK.get(highest["severity"], 0):
                kind, thread = "update", earlier[0]["id"]
                higher = f"higher severity: {spec.severity} (was {highest['severity']})"
                reason = f"{higher}; {reason}" if reason else higher
        detail = {"story": story.snapshot(), "publishers_at_alert": len(story.publishers)}
        written = self._write(story, spec, f"alert:{spec.id}:{story.id}", kind, thread, reason, detail, item_id,
                              match_id, channels)
        return poll if written else None

    def _update(self, story: _Story, spec: Facts, policy: StoryPolicy, first: dict[str, Any],
                mine: list[dict[str, Any]], offered: list[Fresh]) -> int | None:
        count = len(story.publishers)
        at_alert = int((first.get("detail") or {}).get("publishers_at_alert", 0))
        sent = [int(a["key"].rsplit(":", 1)[1]) for a in mine if a["key"].startswith("update:")]
        floor = max([at_alert, *sent])
        reached = [rung for rung in policy.updates if floor < rung <= count]
        if not reached:
            return None
        last = max(a["created_at"] for a in mine)
        if self.now - last < timedelta(seconds=policy.cooldown):
            self._owed.add(story.id)  # Store.send_owed_updates sends it when the cooldown is over
            return None
        rung = max(reached)
        newest = [p for p, (seen, _) in sorted(story.publishers.items(), key=lambda kv: kv[1][0])][-3:]
        reason = f"now {count} sources: {', '.join(newest)}"
        detail = {"story": story.snapshot(), "rung": rung, "publishers_at_alert": at_alert}
        if offered:
            item_id, match_id, poll = offered[0].item_id, offered[0].match_id, offered[0].poll
        else:
            item_id, match_id, poll = story.newest_item, story.matches[spec.id][1], self._touched.get(story.id, 0)
        channels = self._channels_of(first["id"])
        written = self._write(story, spec, f"update:{spec.id}:{story.id}:{rung}", "update", first["id"], reason,
                              detail, item_id, match_id, channels)
        return poll if written else None

    def _may_release(self, story: _Story, rule: str, policy: StoryPolicy) -> bool:
        """Whether a held alert can still go out: the rule's first match in the story is within
        ``within``, and (with ``max_item_age``) the newest item it matched is recent enough to alert on."""
        if self.now - story.matches[rule][0] > timedelta(seconds=policy.within):
            return False
        if self.max_item_age is None:
            return True
        published = story.newest_published.get(rule)
        return published is None or published >= self.now - timedelta(seconds=self.max_item_age)

    def _corroborating(self, story: _Story, policy: StoryPolicy, started: datetime) -> dict[str, tuple[datetime, str]]:
        """The publishers that count for the gate: within ``within`` of the first match, of ``tiers``."""
        until = started + timedelta(seconds=policy.within)
        return {publisher: (seen, tier) for publisher, (seen, tier) in story.publishers.items()
                if seen <= until and (not policy.tiers or tier in policy.tiers or tier == "official")}

    def _channels_of(self, alert_id: str) -> list[str]:
        return list(self.session.connection().execute(
            sa_select(DELIVERIES.c.channel).where(DELIVERIES.c.alert_id == alert_id).order_by(DELIVERIES.c.id))
            .scalars())

    # --- writing -----------------------------------------------------------------------------

    def _write(self, story: _Story, spec: Facts, key: str, kind: str, thread: str | None, reason: str,
               detail: dict[str, Any], item_id: int, match_id: int, channels: Sequence[str]) -> bool:
        alert = AlertRow(id=str(uuid.uuid4()), rule=spec.id, rule_title=spec.title, severity=spec.severity,
                         tags=list(spec.tags), story_id=story.id, item_id=item_id, match_id=match_id,
                         created_at=self.now, key=key, kind=kind, thread=thread, reason=reason, detail=detail)
        try:
            with self.session.begin_nested():
                self.session.add(alert)
                self.session.flush()
        except IntegrityError:  # another daemon sent it a moment ago
            return False
        for channel in channels:
            self.session.add(DeliveryRow(alert_id=alert.id, channel=channel, next_attempt_at=self.now,
                                         created_at=self.now))
        story.alerts.append({"id": alert.id, "story_id": story.id, "rule": spec.id, "key": key, "kind": kind,
                             "severity": spec.severity, "created_at": self.now, "detail": detail})
        return True

