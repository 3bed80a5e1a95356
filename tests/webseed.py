"""Stored data for the dashboard's tests, screenshots and bench: feeds, stories, items, matches, alerts.

Rows are written with bulk INSERTs straight into a real store (SQLite or PostgreSQL), as the
pipeline would have left them, so a store of 100,000 items takes seconds, and a test can
also plant what a hostile feed might have got stored (markup in a title or snippet).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from monitor.store.repo import Store
from monitor.store.tables import AlertRow, DeliveryRow, FeedRow, ItemRow, MatchRow, StoryRow

PUBLISHERS = ["news.err.ee", "www.lrt.lt", "www.reuters.com", "apnews.com", "www.bbc.co.uk", "www.dw.com",
              "notesfrompoland.com", "www.nato.int", "kyivindependent.com", "www.rferl.org", "lsm.lv", "www.ft.com"]
EVENTS = [
    ("airspace-violation", "high", ["violated … airspace", "mig 31"], ["estonia", "russia", "mig-31"],
     "Three Russian MiG-31 jets violated Estonian airspace over Vaindloo island for 12 minutes"),
    ("article-4", "critical", ["article 4", "north atlantic council"], ["nato", "poland"],
     "Poland requests Article 4 consultations; the North Atlantic Council meets on Wednesday"),
    ("shoot-down", "high", ["shot down", "drones"], ["poland", "drone"],
     "Polish and Dutch F-35s shot down drones that entered Polish airspace overnight"),
    ("drone-critical-sites", "medium", ["drones", "airport"], ["denmark", "drone"],
     "Copenhagen airport closed for hours after drones were seen over the runways"),
    ("nuclear-signalling", "medium", ["nuclear", "exercise"], ["russia", "belarus"],
     "Russia and Belarus begin a nuclear forces exercise near the Lithuanian border"),
]


@dataclass(frozen=True)
class Seeded:
    feeds: list[str]
    story_ids: list[int]
    item_ids: list[int]
    dead_alerts: list[str]


def _spans(snippet: str, terms: Sequence[str]) -> list[list[int]]:
    """Where each term (or, for "a … b", each side) reads in the snippet, as the engine would mark it."""
    spans = []
    lowered = snippet.lower()
    for term in terms:
        for side in term.split(" … "):
            at = lowered.find(side)
            if at >= 0:
                spans.append([at, at + len(side)])
    return spans


def _ids(store: Store, table: Any, column: Any) -> dict[Any, int]:
    """Every row's id by ``column`` (one scan: the bench's tables are filled once)."""
    with store.engine.connect() as connection:
        return {key: rid for rid, key in connection.execute(select(table.c.id, column))}


def seed(store: Store, now: datetime, items: int = 200, feeds: int = 12, per_story: int = 4,
         match_every: int = 3, days: int = 30, rng: random.Random | None = None) -> Seeded:
    """``items`` items in stories of about ``per_story`` over ``days`` days; every ``match_every``-th
    story matched a rule, and its first match alerted (one in ten of those deliveries is dead)."""
    rng = rng or random.Random(7)
    feed_rows = [{"name": f"feed-{n:02d}", "config_url": f"https://{PUBLISHERS[n % len(PUBLISHERS)]}/rss",
                  "url": f"https://{PUBLISHERS[n % len(PUBLISHERS)]}/rss", "status": "error" if n == 3 else "ok",
                  "interval": 300.0, "consecutive_failures": 4 if n == 3 else 0,
                  "last_error": "HTTP 503 from the server" if n == 3 else None, "last_polled_at": now,
                  "next_poll_at": now + timedelta(minutes=5), "added_at": now - timedelta(days=days)}
                 for n in range(feeds)]
    tables = {t: t.__table__ for t in (FeedRow, StoryRow, ItemRow, MatchRow, AlertRow, DeliveryRow)}
    with store.engine.begin() as connection:
        connection.execute(insert(tables[FeedRow]), feed_rows)
    feed_ids = _ids(store, tables[FeedRow], tables[FeedRow].c.name)
    stories = max(1, items // per_story)
    span = timedelta(days=days).total_seconds()
    starts = sorted(now - timedelta(seconds=rng.uniform(0, span)) for _ in range(stories))
    keys = [f"https://{PUBLISHERS[n % len(PUBLISHERS)]}/story/{uuid.uuid4().hex[:12]}" for n in range(stories)]
    with store.engine.begin() as connection:
        connection.execute(insert(tables[StoryRow]), [{"key": k, "first_seen_at": t} for k, t in zip(keys, starts,
                                                                                                        strict=True)])
    story_ids = _ids(store, tables[StoryRow], tables[StoryRow].c.key)
    item_rows, match_plan = [], []
    for n in range(items):
        s = n % stories
        event = EVENTS[s % len(EVENTS)]
        feed = feed_rows[(n // stories) % feeds]["name"]
        seen = min(now, starts[s] + timedelta(minutes=7 * (n // stories)))
        guid = f"{keys[s]}#{n}"
        host = PUBLISHERS[(s + n // stories) % len(PUBLISHERS)]
        item_rows.append({"feed_id": feed_ids[feed], "story_id": story_ids[keys[s]], "guid": guid,
                          "url": f"https://{host}/a/{n}", "title": event[4], "summary": event[4],
                          "content": "", "tags": [], "published_at": seen, "first_seen_at": seen, "updated_at": seen,
                          "content_hash": uuid.uuid4().hex})
        if s % match_every == 0:
            match_plan.append((guid, s, event, seen))
    with store.engine.begin() as connection:
        for start in range(0, len(item_rows), 2000):
            connection.execute(insert(tables[ItemRow]), item_rows[start:start + 2000])
    item_ids = _ids(store, tables[ItemRow], tables[ItemRow].c.guid)
    dead = _matches_and_alerts(store, tables, match_plan, item_ids, story_ids, keys)
    return Seeded([f["name"] for f in feed_rows], [story_ids[k] for k in keys], list(item_ids.values()), dead)


def _matches_and_alerts(store: Store, tables: dict[Any, Any], plan: list[Any], item_ids: dict[str, int],
                        story_ids: dict[str, int], keys: list[str]) -> list[str]:
    match_rows = [{"item_id": item_ids[guid], "rule": e[0], "severity": e[1], "terms": e[2], "entities": e[3],
                   "snippet": e[4] + ".", "highlights": _spans(e[4], e[2]), "created_at": seen}
                  for guid, _, e, seen in plan]
    with store.engine.begin() as connection:
        for start in range(0, len(match_rows), 2000):
            connection.execute(insert(tables[MatchRow]), match_rows[start:start + 2000])
        match_ids = {(i, r): m for m, i, r in connection.execute(
            select(tables[MatchRow].c.id, tables[MatchRow].c.item_id, tables[MatchRow].c.rule))}
    alerts, deliveries, dead, alerted = [], [], [], set()
    for guid, s, e, seen in plan:
        if (s, e[0]) in alerted:
            continue
        alerted.add((s, e[0]))
        alert_id = str(uuid.uuid4())
        item_id = item_ids[guid]
        alerts.append({"id": alert_id, "rule": e[0], "rule_title": e[0].replace("-", " ").capitalize(),
                       "severity": e[1], "tags": [], "story_id": story_ids[keys[s]], "item_id": item_id,
                       "match_id": match_ids[item_id, e[0]], "created_at": seen,
                       "key": f"alert:{e[0]}:{story_ids[keys[s]]}", "kind": "alert"})
        status = "dead" if len(alerts) % 10 == 0 else "delivered"
        dead += [alert_id] if status == "dead" else []
        deliveries.append({"alert_id": alert_id, "channel": "ops-webhook", "status": status,
                           "attempts": 8 if status == "dead" else 1, "next_attempt_at": seen, "created_at": seen,
                           "last_error": "HTTP 500 from the receiver" if status == "dead" else None,
                           "delivered_at": seen if status == "delivered" else None})
    with store.engine.begin() as connection:
        for start in range(0, len(alerts), 2000):
            connection.execute(insert(tables[AlertRow]), alerts[start:start + 2000])
            connection.execute(insert(tables[DeliveryRow]), deliveries[start:start + 2000])
    return dead


def add_story(store: Store, now: datetime, title: str, url: str, snippet: str, feed: str = "feed-00",
              rule: str = "airspace-violation", severity: str = "high", terms: Sequence[str] = ("violated",),
              highlights: Sequence[Sequence[int]] = ()) -> int:
    """One new matched story of one item (text stored as given: this is where a test plants markup)."""
    tables = {t: t.__table__ for t in (FeedRow, StoryRow, ItemRow, MatchRow)}
    key = f"{url}#{uuid.uuid4().hex[:8]}"
    with store.engine.begin() as connection:
        feed_id = connection.execute(select(tables[FeedRow].c.id).where(tables[FeedRow].c.name == feed)).scalar_one()
        story_id = connection.execute(insert(tables[StoryRow]).values(key=key, first_seen_at=now)
                                      .returning(tables[StoryRow].c.id)).scalar_one()
        item_id = connection.execute(insert(tables[ItemRow]).values(
            feed_id=feed_id, story_id=story_id, guid=key, url=url, title=title, summary=snippet, content="", tags=[],
            published_at=now, first_seen_at=now, updated_at=now, content_hash=uuid.uuid4().hex)
            .returning(tables[ItemRow].c.id)).scalar_one()
        connection.execute(insert(tables[MatchRow]).values(
            item_id=item_id, rule=rule, severity=severity, terms=list(terms), entities=[], snippet=snippet,
            highlights=[list(h) for h in highlights], created_at=now))
    return int(story_id)
