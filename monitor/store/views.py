"""The dashboard's read queries: rule activity per day, stories with their items and matches, one story.

Every query here is bounded by the page it serves (a limit, a time window or one id) and
walks an index, so a page costs the same with a thousand stored items or a million.
The JSON listings the CLI prints stay in ``repo.Store``; the web API calls those.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, bindparam, func, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from monitor.store.repo import ITEMS, MATCHES, STORIES, Store, utc
from monitor.store.tables import AlertRow, DeliveryRow, FeedRow, ItemRow, MatchRow, StoryRow
from monitor.stories.publisher import publisher_of
from monitor.types import iso

# Matches read per step while collecting the newest stories: a story with many matching items
# takes several rows, so a page of 50 stories usually needs one or two steps.
_STEP = 500
_MAX_STEPS = 20


@dataclass(frozen=True)
class StoryFilter:
    """Which matches put a story on the stories page; ``rules`` None means every rule."""

    rules: Collection[str] | None = None
    severities: Collection[str] | None = None
    since: datetime | None = None


def publisher(url: str) -> str:
    """Who published an item: the registrable domain of its URL (``news.bbc.co.uk`` -> ``bbc.co.uk``);
    ``-`` when the URL has no host."""
    return publisher_of(url) or "-"


@functools.lru_cache(maxsize=8)
def _day_counts(windows: int) -> TextClause:
    # Written out once per number of windows: a statement object of this size would cost more
    # to build and key for SQLAlchemy's cache on every call than the counts cost SQLite.
    parts = [f"SELECT {n} AS n, COUNT(*) AS c FROM matches WHERE rule = :rule "
             f"AND created_at >= :d{n} AND created_at < :d{n + 1}" for n in range(windows)]
    stamp = MATCHES.c.created_at.type
    return text(" UNION ALL ".join(parts)).bindparams(*(bindparam(f"d{n}", type_=stamp) for n in range(windows + 1)))


def rule_days(store: Store, rules: Sequence[str], days: Sequence[datetime]) -> dict[str, list[int]]:
    """Each rule's matches in each window ``[days[i], days[i+1])``.

    One COUNT per rule and window, sent as one UNION ALL per rule: each reads a range of the
    (rule, created_at) index and nothing else, where a GROUP BY over the day of every match
    would sort all of them (ten times slower at 30,000 matches a month).
    """
    windows = len(days) - 1
    if windows < 1:
        return {rule: [] for rule in rules}
    bounds = {f"d{n}": utc(day) for n, day in enumerate(days)}
    out: dict[str, list[int]] = {}
    with store.engine.connect() as connection:
        for rule in rules:
            counts = [0] * windows
            for n, count in connection.execute(_day_counts(windows), {"rule": rule, **bounds}):
                counts[int(n)] = int(count)
            out[rule] = counts
    return out


def last_matches(store: Store, rules: Sequence[str]) -> dict[str, str | None]:
    """The time of each rule's newest match: one indexed lookup per rule."""
    with Session(store.engine) as session:
        return {rule: iso(session.execute(sa_select(func.max(col(MatchRow.created_at)))
                                          .where(col(MatchRow.rule) == rule)).scalar_one())
                for rule in rules}


def _newest_matches(session: Session, where: StoryFilter, rule: str | None) -> Iterator[tuple[Any, int, int]]:
    """(created_at, match id, story id) of ``rule``'s matches (or all), newest first, read a step at a time."""
    m = MATCHES.c
    query = (sa_select(m.created_at, m.id, col(ItemRow.story_id)).join(ItemRow, col(ItemRow.id) == m.item_id)
             .order_by(m.created_at.desc(), m.id.desc()))
    if rule is not None:
        query = query.where(m.rule == rule)
    if where.severities is not None:
        query = query.where(m.severity.in_(sorted(where.severities)))
    if where.since is not None:
        query = query.where(m.created_at >= utc(where.since))
    for step in range(_MAX_STEPS):
        rows = session.execute(query.offset(step * _STEP).limit(_STEP)).all()
        yield from ((at, mid, sid) for at, mid, sid in rows)
        if len(rows) < _STEP:
            return


def _story_ids(session: Session, where: StoryFilter, limit: int) -> list[int]:
    """The ``limit`` stories with the newest matches passing ``where``, newest first.

    With a set of rules, each rule's newest matches come from its own range of the
    (rule, created_at) index and are merged here: ``rule IN (…)`` would make the database
    sort every match of those rules.
    """
    rules: list[str | None] = [None] if where.rules is None else [*sorted(where.rules)]
    streams = [_newest_matches(session, where, rule) for rule in rules]
    seen: dict[int, None] = {}
    for _, _, story_id in heapq.merge(*streams, key=lambda row: (row[0], row[1]), reverse=True):
        seen.setdefault(story_id, None)
        if len(seen) == limit:
            break
    return list(seen)


def _items_of(session: Session, story_ids: Sequence[int]) -> list[dict[str, Any]]:
    query = (sa_select(col(ItemRow.id), col(ItemRow.story_id), col(ItemRow.title), col(ItemRow.url),
                       col(ItemRow.published_at), col(ItemRow.first_seen_at), col(FeedRow.name),
                       col(ItemRow.publisher))
             .join(FeedRow, col(FeedRow.id) == ItemRow.feed_id).where(col(ItemRow.story_id).in_(story_ids))
             .order_by(col(ItemRow.first_seen_at), col(ItemRow.id)))
    return [{"id": i, "story_id": s, "title": title, "url": url, "published_at": iso(published),
             "first_seen_at": iso(seen), "feed": feed, "publisher": stored or publisher(url)}
            for i, s, title, url, published, seen, feed, stored in session.execute(query)]


def _matches_of(session: Session, item_ids: Sequence[int]) -> list[dict[str, Any]]:
    m = MATCHES.c
    query = (sa_select(m.id, m.item_id, m.rule, m.severity, m.terms, m.entities, m.snippet, m.highlights,
                       m.created_at).where(m.item_id.in_(item_ids)).order_by(m.created_at, m.id))
    return [{"id": mid, "item_id": item, "rule": rule, "severity": severity, "terms": terms, "entities": entities,
             "snippet": snippet, "highlights": highlights, "created_at": iso(created)}
            for mid, item, rule, severity, terms, entities, snippet, highlights, created in session.execute(query)]


def _summary(story_id: int, key: str, items: list[dict[str, Any]], matches: list[dict[str, Any]]) -> dict[str, Any]:
    newest = matches[-1] if matches else None
    return {"id": story_id, "key": key, "title": items[0]["title"] if items else "",
            "url": items[0]["url"] if items else key, "items": len(items),
            "publishers": len({i["publisher"] for i in items}),
            "first_seen_at": items[0]["first_seen_at"] if items else None,
            "last_seen_at": max(i["first_seen_at"] for i in items) if items else None,
            "rules": sorted({m["rule"] for m in matches}),
            "terms": sorted({t for m in matches for t in m["terms"]}),
            "snippet": newest["snippet"] if newest else "", "highlights": newest["highlights"] if newest else [],
            "severities": sorted({m["severity"] for m in matches})}


def _by_story(items: list[dict[str, Any]], matches: list[dict[str, Any]]
              ) -> tuple[dict[int, list[dict[str, Any]]], dict[int, list[dict[str, Any]]]]:
    """Items and matches grouped by the story of their item."""
    by_story: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        by_story.setdefault(item["story_id"], []).append(item)
    story_of = {i["id"]: i["story_id"] for i in items}
    matched: dict[int, list[dict[str, Any]]] = {}
    for match in matches:
        matched.setdefault(story_of[match["item_id"]], []).append(match)
    return by_story, matched


def stories(store: Store, where: StoryFilter, limit: int = 50) -> list[dict[str, Any]]:
    """The newest matched stories, each with its item and publisher counts, rules and latest snippet."""
    with Session(store.engine) as session:
        ids = _story_ids(session, where, limit)
        if not ids:
            return []
        keys: dict[int, str] = {sid: key for sid, key in session.execute(
            sa_select(col(StoryRow.id), col(StoryRow.key)).where(col(StoryRow.id).in_(ids)))}
        items = _items_of(session, ids)
        matches = _matches_of(session, [i["id"] for i in items])
        kinds = _alert_kinds(session, ids)
    by_story, matched = _by_story(items, matches)
    return [{**_summary(sid, keys.get(sid, ""), by_story.get(sid, []), matched.get(sid, [])), "alerts": kinds[sid]}
            for sid in ids]


def _alerts_of(session: Session, story_id: int) -> list[dict[str, Any]]:
    alerts = session.execute(sa_select(AlertRow).where(col(AlertRow.story_id) == story_id)
                             .order_by(col(AlertRow.created_at))).scalars().all()
    deliveries: dict[str, list[dict[str, Any]]] = {}
    if alerts:
        query = (sa_select(DeliveryRow).where(col(DeliveryRow.alert_id).in_([a.id for a in alerts]))
                 .order_by(col(DeliveryRow.channel)))
        for d in session.execute(query).scalars():
            deliveries.setdefault(d.alert_id, []).append(
                {"channel": d.channel, "status": d.status, "attempts": d.attempts, "last_error": d.last_error,
                 "delivered_at": iso(d.delivered_at), "next_attempt_at": iso(d.next_attempt_at)})
    return [{"id": a.id, "kind": a.kind, "rule": a.rule, "rule_title": a.rule_title, "severity": a.severity,
             "item_id": a.item_id, "created_at": iso(a.created_at), "reason": a.reason, "thread": a.thread,
             "deliveries": deliveries.get(a.id, [])}
            for a in alerts]


def story(store: Store, story_id: int) -> dict[str, Any] | None:
    """One story: its items by time (each with its matches), publishers, alerts and their deliveries."""
    with Session(store.engine) as session:
        key = session.execute(sa_select(col(StoryRow.key)).where(col(StoryRow.id) == story_id)).scalar_one_or_none()
        if key is None:
            return None
        items = _items_of(session, [story_id])
        matches = _matches_of(session, [i["id"] for i in items])
        alerts = _alerts_of(session, story_id)
    for item in items:
        item["matches"] = [m for m in matches if m["item_id"] == item["id"]]
    summary = _summary(story_id, key, items, matches)
    publishers: dict[str, int] = {}
    for item in items:
        publishers[item["publisher"]] = publishers.get(item["publisher"], 0) + 1
    return {**summary, "item_list": items, "publisher_list": sorted(publishers.items()), "alerts": alerts}


def delivery_counts(store: Store) -> dict[str, int]:
    """Deliveries per status (pending, delivered, dead)."""
    with Session(store.engine) as session:
        return {status: int(n) for status, n in session.execute(
            sa_select(col(DeliveryRow.status), func.count()).group_by(col(DeliveryRow.status)))}


def story_count(store: Store) -> int:
    """How many stories hold at least one item."""
    with Session(store.engine) as session:
        return int(session.execute(sa_select(func.count(func.distinct(col(ItemRow.story_id))))).scalar_one())


# --- the CLI's stories list and stories show (issue 15) ------------------------------------------
# Read-only. Until the stories core lands its own columns (last_seen_at, publishers, item_count,
# rules), these are computed from the items, their matches and the alerts.

STORY_COLUMNS = ("id", "last_seen_at", "items", "publishers", "rules", "alerts", "title")


def _matched_stories(rule: str | None, since: datetime | None) -> Any:
    """The ids of the stories a rule (or any) matched, seen since ``since``: the stories' own columns
    (``last_seen_at``, indexed) filtered by the stories among the matches' items, never an aggregate over
    every item of the store (which took 19 s at 1 M items, bench/scale_bench.py)."""
    i, m, s = ITEMS.c, MATCHES.c, STORIES.c
    matched = sa_select(i.story_id).join(MATCHES, m.item_id == i.id)
    if rule:
        matched = matched.where(m.rule == rule)
    query = sa_select(s.id, s.last_seen_at).where(s.id.in_(matched))
    if since is not None:
        query = query.where(s.last_seen_at >= utc(since))
    return query


def count_stories(store: Store, rule: str | None = None, since: datetime | None = None) -> int:
    """How many stories ``iter_stories`` yields with no limit."""
    with store.engine.connect() as connection:
        return int(connection.execute(sa_select(func.count()).select_from(
            _matched_stories(rule, since).subquery())).scalar_one())


def _kinds(alerts: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = {"alert": 0, "update": 0, "surge": 0}
    for alert in alerts:
        counts[alert["kind"]] = counts.get(alert["kind"], 0) + 1
    return counts


def _alert_kinds(session: Session, story_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for sid, kind in session.execute(sa_select(col(AlertRow.story_id), col(AlertRow.kind))
                                     .where(col(AlertRow.story_id).in_(story_ids))):
        out.setdefault(sid, []).append({"kind": kind})
    return {sid: _kinds(out.get(sid, [])) for sid in story_ids}


def _story_row(story_id: int, items: list[dict[str, Any]], matches: list[dict[str, Any]],
               kinds: dict[str, int]) -> dict[str, Any]:
    publishers = list(dict.fromkeys(i["publisher"] for i in items))
    return {"id": story_id, "title": items[0]["title"] if items else "", "url": items[0]["url"] if items else "",
            "items": len(items), "publishers": publishers,
            "first_seen_at": items[0]["first_seen_at"] if items else None,
            "last_seen_at": max(i["first_seen_at"] for i in items) if items else None,
            "rules": sorted({m["rule"] for m in matches}), "alerts": kinds}


def iter_stories(store: Store, rule: str | None = None, since: datetime | None = None,
                 limit: int | None = None, batch: int = 200) -> Iterator[dict[str, Any]]:
    """The stories a rule (``rule``, or any) matched, last seen newest first, at most ``limit`` (None: all):
    id, title and url (of the first item), items, publishers (names, first first), first and last seen,
    the rules that matched and the alerts sent per kind. Read ``batch`` stories at a time."""
    query = _matched_stories(rule, since).order_by(STORIES.c.last_seen_at.desc(), STORIES.c.id.desc())
    offset = 0
    while limit is None or offset < limit:
        size = batch if limit is None else min(batch, limit - offset)
        with Session(store.engine) as session:
            ids = [row[0] for row in session.execute(query.offset(offset).limit(size))]
            if not ids:
                return
            items = _items_of(session, ids)
            matches = _matches_of(session, [i["id"] for i in items])
            kinds = _alert_kinds(session, ids)
        by_story, matched = _by_story(items, matches)
        yield from (_story_row(sid, by_story.get(sid, []), matched.get(sid, []), kinds[sid]) for sid in ids)
        if len(ids) < size:
            return
        offset += len(ids)


def story_detail(store: Store, story_id: int) -> dict[str, Any] | None:
    """``stories show``: the story's row as ``iter_stories`` gives it, plus its items by time (feed,
    publisher, time, url, the rules each matched), a timeline (each item and alert, in time order)
    and the alerts sent, each with its kind and deliveries. None when there is no such story."""
    with Session(store.engine) as session:
        if session.execute(sa_select(col(StoryRow.id)).where(col(StoryRow.id) == story_id)).first() is None:
            return None
        items = _items_of(session, [story_id])
        matches = _matches_of(session, [i["id"] for i in items])
        alerts = _alerts_of(session, story_id)
    rules_of: dict[int, list[str]] = {}
    for match in matches:
        rules_of.setdefault(match["item_id"], []).append(match["rule"])
    listed = [{"id": i["id"], "first_seen_at": i["first_seen_at"], "published_at": i["published_at"],
               "feed": i["feed"], "publisher": i["publisher"], "title": i["title"], "url": i["url"],
               "rules": sorted(rules_of.get(i["id"], []))} for i in items]
    timeline = sorted([{"at": i["first_seen_at"], "event": "item", "id": i["id"], "publisher": i["publisher"],
                        "title": i["title"]} for i in items]
                      + [{"at": a["created_at"], "event": a["kind"], "id": a["id"], "rule": a["rule"]}
                         for a in alerts], key=lambda e: (e["at"] or "", e["event"] != "item"))
    return {**_story_row(story_id, items, matches, _kinds(alerts)), "item_list": listed, "timeline": timeline,
            "alert_list": alerts}
