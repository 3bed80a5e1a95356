"""The surge check's cost (issue 15): one rule's figures read from a store holding weeks of matches of
several rules; prints the median time of a check for a short and a long history, which should be alike
(only the baseline period's matches are read), and on SQLite the plan of each query.

    python bench/surge_bench.py [--per-hour 20] [--rules 8] [--database URL] [--runs 7]

Each hour of history gets --per-hour stories of three items per rule, every item matched by its rule.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402

from monitor.store.repo import FEEDS, ITEMS, MATCHES, STORIES, Store  # noqa: E402
from monitor.store.surges import SurgeRule, Surges  # noqa: E402
from monitor.stories.surge import SurgeSpec  # noqa: E402

NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
SPEC = SurgeSpec()  # 1 h windows, a baseline of 24


def seed(store: Store, hours: int, per_hour: int, rules: int) -> int:
    """``hours`` of history before NOW; the number of matches written."""
    with store.engine.begin() as connection:
        feed = connection.execute(insert(FEEDS).values(name="f", config_url="u", url="u", status="ok",
                                                       interval=300, quiet_polls=0, consecutive_failures=0)
                                  .returning(FEEDS.c.id)).scalar_one()
        story_id = item_id = 0
        stories, items, matches = [], [], []
        for hour in range(hours, -1, -1):
            for rule in range(rules):
                for number in range(per_hour):
                    at = NOW - timedelta(hours=hour, minutes=(number * 7 + rule) % 60)
                    story_id += 1
                    stories.append({"id": story_id, "key": f"s{story_id}", "first_seen_at": at, "last_seen_at": at,
                                    "publishers": [], "item_count": 3, "rules": [f"r{rule}"], "title": "t",
                                    "state": "open"})
                    for k in range(3):
                        item_id += 1
                        items.append({"id": item_id, "feed_id": feed, "story_id": story_id, "guid": f"g{item_id}",
                                      "url": f"https://p{k}.example/{item_id}", "title": "t", "summary": "",
                                      "content": "", "tags": [], "published_at": at, "first_seen_at": at,
                                      "updated_at": at, "content_hash": "h", "full_text": "",
                                      "publisher": f"p{k}.example", "tier": "other"})
                        matches.append({"item_id": item_id, "rule": f"r{rule}", "severity": "high", "terms": [],
                                        "entities": [], "snippet": "", "highlights": [], "created_at": at,
                                        "clauses": [], "snippet_entities": []})
        for table, rows in ((STORIES, stories), (ITEMS, items), (MATCHES, matches)):
            for start in range(0, len(rows), 5000):
                connection.execute(insert(table), rows[start:start + 5000])
    return len(matches)


def measure(url: str, hours: int, per_hour: int, rules: int, runs: int) -> tuple[int, float]:
    store = Store(url)
    try:
        matches = seed(store, hours, per_hour, rules)
        rule = SurgeRule("r0", "t", "high", (), SPEC, ())
        surges = Surges(store)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            surges.figures(rule.id, SPEC, NOW, 2 * 86400.0)
            times.append(time.perf_counter() - start)
        if store.engine.dialect.name == "sqlite" and hours == max(HOURS):
            plans(store)
        return matches, statistics.median(times)
    finally:
        store.close()


def plans(store: Store) -> None:
    """SQLite's plan of each step of the period scan: each should search an index, never walk the
    rule's whole history."""
    start = NOW - timedelta(hours=24)
    steps = [select(ITEMS.c.story_id).join(MATCHES, MATCHES.c.item_id == ITEMS.c.id)
             .where(MATCHES.c.rule == "r0", MATCHES.c.created_at >= start),
             select(ITEMS.c.id, ITEMS.c.story_id, ITEMS.c.published_at).where(ITEMS.c.story_id.in_([1, 2, 3])),
             select(MATCHES.c.item_id, MATCHES.c.created_at, MATCHES.c.id)
             .where(MATCHES.c.item_id.in_([1, 2, 3]), MATCHES.c.rule == "r0")]
    with store.engine.connect() as connection:
        for step in steps:
            compiled = step.compile(store.engine, compile_kwargs={"literal_binds": True})
            for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")):
                print(f"  plan: {row[-1]}")


HOURS = (7 * 24, 60 * 24)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-hour", type=int, default=20)
    parser.add_argument("--rules", type=int, default=8)
    parser.add_argument("--database", default="", help="a SQLAlchemy URL of an empty database (default: SQLite)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for hours in HOURS:
        with tempfile.TemporaryDirectory() as folder:
            url = args.database or f"sqlite:///{Path(folder) / 'bench.db'}"
            matches, seconds = measure(url, hours, args.per_hour, args.rules, args.runs)
            print(f"surge check of one rule, {hours // 24} days of history ({matches:,} matches of {args.rules} "
                  f"rules): {seconds * 1000:.1f} ms (median of {args.runs})")
            if args.database:
                break  # an outside database is not emptied here: one history size


if __name__ == "__main__":
    main()
