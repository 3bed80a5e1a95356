"""Retention: database size per 1,000 items, prune throughput, how long a prune batch holds the write lock
(what a poll or a delivery may wait), and what vacuum gives back.

N items of ~2,000 characters (as bench/workload.py's documents) are written through Store.record_many
in polls of 100, first seen 200 days ago; 5% match a rule and alert once, their delivery delivered,
except one in 50 alerts left pending (prune must keep those). Then: the size per 1,000 items; a dry
run; the prune of everything older than 180 days, batch by batch, while another thread writes a row
every 10 ms (the longest such write's wait is what the daemon's polls would see); vacuum.
Run: python bench/retention_bench.py [--items 20000] [--database URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from monitor.dedupe import document_hash
from monitor.store.outbox import Outbox
from monitor.store.repo import PollWrite, Store
from monitor.store.retention import batches, prune, vacuum
from monitor.types import Document, FeedUpdate, ItemWrite, Match

_WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have "
         "an had they you were their one all we can her has there been if more when will would who so no "
         "airspace jets ministry border drone missile statement officials defence army navy ports")
WORDS = _WORDS.split()


def text_of(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def fill(store: Store, items: int, when: datetime, rng: random.Random) -> None:
    with store.writing() as session:
        session.execute(text("INSERT INTO feeds (name, config_url, url, status, interval, quiet_polls, "
                             "consecutive_failures) VALUES ('bench', 'u', 'u', 'ok', 300, 0, 0)"))
        feed_id = int(session.execute(text("SELECT id FROM feeds WHERE name = 'bench'")).scalar_one())
    update = FeedUpdate(status="ok", polled_at=when, next_poll_at=when, interval=300.0)
    for start in range(0, items, 100):
        writes = []
        for n in range(start, min(start + 100, items)):
            doc = Document(id=f"guid-{n}", title=text_of(rng, 70), summary=text_of(rng, 300),
                           content=text_of(rng, 1600), url=f"https://news.example/{n}", published_at=when)
            matched = rng.random() < 0.05
            found = (Match("bench-rule", "high", "Bench", ("airspace",), ("russia",), doc.summary[:200]),) \
                if matched else ()
            writes.append(ItemWrite(doc, f"https://news.example/{n}", document_hash(doc), when, found,
                                    ("bench-rule",) if matched else ()))
        store.record_many([PollWrite(feed_id, update, writes, lambda _: ["hook"], when)])
    with store.engine.connect() as connection:
        ids = [int(i) for i in connection.execute(text("SELECT id FROM deliveries ORDER BY id")).scalars()]
    Outbox(store).delivered([i for n, i in enumerate(ids) if n % 50], when)


def size_of(store: Store, path: Path | None) -> int:
    if path is not None:
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    with store.engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--database", help="a SQLAlchemy URL (default: a new SQLite file); its tables are used")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory()
    path = None if args.database else Path(folder.name) / "bench.db"
    store = Store(args.database or f"sqlite:///{path}")
    now = datetime.now(UTC)
    started = time.perf_counter()
    fill(store, args.items, now - timedelta(days=200), random.Random(7))
    filled = size_of(store, path)
    print(f"filled {args.items:,} items in {time.perf_counter() - started:.1f} s: {filled / 1e6:.1f} MB, "
          f"{filled / args.items * 1000 / 1e6:.2f} MB per 1,000 items ({store.engine.dialect.name})")
    cutoff = now - timedelta(days=180)
    started = time.perf_counter()
    dry = prune(store, cutoff, dry_run=True)
    print(f"dry run: {dry.items:,} items, {dry.alerts:,} alerts would go, {dry.kept_alerts:,} kept, "
          f"{time.perf_counter() - started:.1f} s")

    waits: list[float] = []
    stop = threading.Event()

    def writer() -> None:  # a poll's or a delivery's write, every 10 ms
        while not stop.is_set():
            asked = time.perf_counter()
            store.probe_write()
            waits.append(time.perf_counter() - asked)
            time.sleep(0.01)

    other = threading.Thread(target=writer)
    other.start()
    held: list[float] = []
    started = time.perf_counter()
    total = 0
    steps = batches(store, cutoff)
    while True:
        begun = time.perf_counter()
        counts = next(steps, None)
        if counts is None:
            break
        held.append(time.perf_counter() - begun)
        total += counts.items
        time.sleep(0.05)  # the daemon's pause between batches (PRUNE_PAUSE)
    elapsed = time.perf_counter() - started - 0.05 * len(held)
    stop.set()
    other.join()
    print(f"prune: {total:,} items in {len(held)} batches, {total / max(sum(held), 1e-9):,.0f} items/s "
          f"({elapsed:.1f} s without the pauses); a batch holds the write lock p50 "
          f"{statistics.median(held) * 1000:.0f} ms, max {max(held) * 1000:.0f} ms")
    print(f"a concurrent write waited p50 {statistics.median(waits) * 1000:.1f} ms, "
          f"max {max(waits) * 1000:.0f} ms ({len(waits)} writes)")
    before = size_of(store, path)
    started = time.perf_counter()
    done = vacuum(store)
    print(f"vacuum: {before / 1e6:.1f} MB -> {size_of(store, path) / 1e6:.1f} MB in "
          f"{time.perf_counter() - started:.1f} s ({done.dialect})")
    store.close()
    folder.cleanup()


if __name__ == "__main__":
    main()
