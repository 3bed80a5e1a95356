"""``rules backtest`` throughput: the shipped rules over 100,000 stored items, on one core.

Fills a fresh SQLite store with feed-item-sized documents (a title and a summary of one to four
sentences, drawn from the evaluation set and the seed articles, so about one in six matches a
rule), then times, in one process (no worker pool):
- a plain backtest (every rule over every item, items read from the store in batches);
- a backtest against a baseline in which one rule differs (that rule is matched twice);
- a backtest against a baseline whose gazetteer differs (every rule is matched twice).
Times are CPU seconds of the one process (and wall seconds, which include whatever else the machine
runs). Run: python bench/backtest_bench.py [--items 100000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import insert

from monitor import backtest as bt
from monitor.cli import packaged
from monitor.rules.entities import Gazetteer
from monitor.rules.query import Or, parse
from monitor.store.repo import Store
from monitor.store.tables import FeedRow, ItemRow, StoryRow

ROOT = Path(__file__).resolve().parent.parent
SEED = 20251202


def texts() -> list[str]:
    cases = yaml.safe_load((ROOT / "tests" / "data" / "core_rules_eval.yaml").read_text(encoding="utf-8"))["cases"]
    out = [str(case["text"]) for case in cases]
    for path in sorted(packaged("seeds").glob("*.txt")):
        out += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 80]
    return out


def fill(store: Store, count: int, rng: random.Random) -> int:
    """``count`` items in one feed and story; their mean length in characters."""
    pool = texts()
    now = datetime.now(UTC)
    total = 0
    with store.engine.begin() as connection:
        feed = connection.execute(insert(FeedRow.__table__).values(  # type: ignore[attr-defined]
            name="bench", config_url="https://x.example/", url="https://x.example/")).inserted_primary_key[0]
        story = connection.execute(insert(StoryRow.__table__).values(  # type: ignore[attr-defined]
            key="bench", first_seen_at=now)).inserted_primary_key[0]
        for start in range(0, count, 5000):
            rows = []
            for number in range(start, min(count, start + 5000)):
                summary = " ".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))
                title = summary.split(". ")[0][:110]
                total += len(title) + len(summary)
                rows.append({"feed_id": feed, "story_id": story, "guid": f"g{number}", "url": f"https://x.example/{number}",
                             "title": title, "summary": summary, "content": "", "tags": [], "published_at": now,
                             "first_seen_at": now, "updated_at": now, "content_hash": str(number)})
            connection.execute(insert(ItemRow.__table__), rows)  # type: ignore[attr-defined]
    return total // count


def timed(store: Store, the_plan: bt.Plan) -> tuple[float, float, int, int]:
    """CPU seconds of this process (what one core spends, whatever else runs on the machine), wall
    seconds, items read, matches counted."""
    cpu, wall = time.process_time(), time.perf_counter()
    count, results = bt.run(the_plan, store.documents(), limit=20, workers=1)
    return time.process_time() - cpu, time.perf_counter() - wall, count, sum(r.matched.count for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    rules = bt.load(packaged("rules"))
    specs, gazetteer = rules
    one_changed = [replace(s, query=Or((s.query, parse("zzzunseen")))) if i == 0 else s for i, s in enumerate(specs)]
    other_gazetteer = Gazetteer(dict(gazetteer.entities))
    other_gazetteer.entities.pop(next(iter(other_gazetteer.entities)))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            mean = fill(store, args.items, random.Random(SEED))
            print(f"{args.items} stored items, mean {mean} characters (title and summary); {len(specs)} shipped rules")
            for label, the_plan in (
                    ("plain backtest", bt.plan(rules, None)),
                    ("against a baseline with one rule changed", bt.plan(rules, (one_changed, gazetteer))),
                    ("against a baseline with other entities (every rule twice)",
                     bt.plan(rules, (specs, other_gazetteer)))):
                cpu, wall, count, matched = timed(store, the_plan)
                print(f"{label}: {cpu:.1f} s of CPU for {count} items ({count / cpu:.0f} items/s on one core; "
                      f"{wall:.1f} s wall), {matched} matches")
        finally:
            store.close()


if __name__ == "__main__":
    main()
