"""Helpers for tests that run the ingestion path: a config for a local server, one poll cycle, the stored rows."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from sqlmodel import Session, select

from monitor.config import Config, load
from monitor.daemon import Runtime
from monitor.pipeline import PollSummary
from monitor.store.tables import AlertRow, DeliveryRow, FeedRow, ItemRow, MatchRow, StoryRow, metadata

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("CRISIS_MONITOR_TEST_DATABASE_URL", "")


def fresh_database(kind: str, tmp_path: Path) -> str:
    """A SQLAlchemy URL to an empty database of ``kind`` (sqlite or postgresql)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    from sqlalchemy import MetaData, create_engine, text

    engine = create_engine(PG_URL)
    with engine.begin() as connection:
        # Every table there, not only today's: another branch's tests may have left newer ones
        # (with foreign keys into these) in the shared test database.
        present = MetaData()
        present.reflect(connection)
        present.drop_all(connection)
        metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS schema_version"))
    engine.dispose()
    return PG_URL


def make_config(tmp_path: Path, feeds: dict[str, str], database: str = "", extra: str = "",
                rules: Path | None = None) -> Config:
    lines = ["[monitor]", f'rules = "{rules or ROOT / "rules"}"', "parse_workers = 0",
             f'database = "{database or "sqlite:///" + str(tmp_path / "monitor.db")}"', extra]
    for name, url in feeds.items():
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"']
    text = "\n".join(lines) + "\n"
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load(text, path, {})


def poll_once(config: Config, feeds: list[str] | None = None) -> dict[str, PollSummary]:
    async def cycle() -> list[PollSummary]:
        async with Runtime(config) as runtime:
            specs = [f for f in config.feeds if feeds is None or f.name in feeds]
            return await runtime.poll_all(specs)

    return {s.feed: s for s in asyncio.run(cycle())}


def rows(config: Config, table: Any) -> list[Any]:
    from monitor.store.repo import Store

    store = Store(config.database)
    try:
        with Session(store.engine) as session:
            return list(session.exec(select(table)).all())
    finally:
        store.close()


def items_by_feed(config: Config) -> dict[str, list[ItemRow]]:
    names = {f.id: f.name for f in rows(config, FeedRow)}
    out: dict[str, list[ItemRow]] = {}
    for item in sorted(rows(config, ItemRow), key=lambda i: i.id or 0):
        out.setdefault(names[item.feed_id], []).append(item)
    return out


# Distinct events that the airspace-violation rule matches: each names its own aircraft, country and
# place, so story clustering keeps them apart (tests/test_story_lifecycle.py checks that it does).
_EVENTS = [("MiG-31", "Estonian", "Tallinn", "for 12 minutes"), ("Su-27", "Polish", "Warsaw", "near the coast"),
           ("Tu-95", "Latvian", "Riga", "over the northern lakes"), ("Su-35", "Lithuanian", "Vilnius", "at dawn"),
           ("MiG-29", "Finnish", "Helsinki", "above a naval base"),
           ("Su-24", "Romanian", "Bucharest", "close to the border river"),
           ("Su-30", "Slovak", "Bratislava", "during an exercise"), ("Il-20", "Hungarian", "Budapest", "over farmland"),
           ("Su-34", "Bulgarian", "Sofia", "near the capital airport"),
           ("Tu-22M", "Czech", "Prague", "above the mountains"), ("Su-57", "French", "Paris", "over the sea lanes")]


def distinct_events(count: int) -> list[tuple[str, str]]:
    """``count`` (title, text) pairs of different airspace violations (at most 11)."""
    assert count <= len(_EVENTS), f"only {len(_EVENTS)} distinct events"
    return [(f"{plane} violated {adjective} airspace {detail}",
             f"A {plane} violated {adjective} airspace {detail}, officials in {city} said.")
            for plane, adjective, city, detail in _EVENTS[:count]]


__all__ = ["AlertRow", "DeliveryRow", "FeedRow", "ItemRow", "MatchRow", "StoryRow", "distinct_events", "fresh_database",
           "items_by_feed", "make_config", "poll_once", "rows"]


# Queries for the property tests of the presearcher and the engine (tests/test_presearch.py, test_engine.py).
POSITIONAL = ["drones", "jets", "airspace", "shot", "down", "hobby", "dro*", "air*", "jet*", '"shot down"',
              '"jet* down"', '"mig 31"', "mig-31", "@estonia", "@mig-31", "@drone-generic", "@nato-member"]


def positional_queries() -> st.SearchStrategy[str]:
    """What NEAR may join: words, phrases, entities, OR groups of them, and NEAR of those."""
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
            st.tuples(inner, inner, st.integers(1, 4), st.booleans()).map(
                lambda p: f"({p[0]} NEAR/{p[2]}{'f' if p[3] else ''} {p[1]})"),
        )
    return st.recursive(st.sampled_from(POSITIONAL), extend, max_leaves=3)
