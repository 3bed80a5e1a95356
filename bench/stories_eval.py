"""Story clustering on labelled syndication: quality, the threshold sweep behind the defaults, alerts, cost.

Reads tests/data/stories_eval.yaml (events republished by several outlets, followed up in other words and
languages, and different events that share a rule, entities and a day), runs the shipped rules over every item
for its entities and matching rules, streams the items oldest first through StoryIndex, and prints:
- pairwise and B-cubed precision / recall / F1 of the stories against the event labels, per half (the
  defaults were chosen on the tune half only; the held-out half is only measured), and how each item was
  assigned (reasons);
- the sweep on the tune half behind DEFAULT_THRESHOLDS: B-cubed F1 for each same-event threshold, entity
  weight and half-life, with the mean F1 of each point's neighbourhood (a plateau, not a lucky point, is
  chosen), then the generic entities' weight and the near-duplicate threshold;
- alerts per event before stories (one per item and matching rule) and after (one per rule and story);
- the cost per item of signature + assign + add, on the labelled items and on ingest-bench-like items
  streamed through an index holding a full window of them, and the index's memory per item held.
Run: python bench/stories_eval.py [--sweep] [--repeat 5]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from monitor.scan import load_rules
from monitor.stories.cluster import DEFAULT_THRESHOLDS, StoryIndex, Thresholds, signature
from monitor.stories.evaluate import Labelled, alerts, bcubed, cluster, labelled_items, pairwise, signatures
from monitor.types import Document

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "stories_eval.yaml"
WINDOW = 96 * 3600.0
SAME_EVENT = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
ENTITY_WEIGHT = (0.3, 0.4, 0.5, 0.6, 0.7)
HALF_LIFE_HOURS = (6, 12, 24, 48, 96, float("inf"))
# bench/ingest_bench.py's words
BENCH_TEXT = ("the minister said talks on trade and energy would continue next week while officials in the capital "
              "reviewed budget plans for schools hospitals roads and the regional council met to discuss housing "
              "prices inflation farming exports weather tourism football elections culture museums")
NEAR = (0.6, 0.7, 0.8, 0.9, 0.95)
GENERIC = (0.0, 0.1, 0.25, 0.5, 1.0)


def quality(part: Sequence[Labelled], thresholds: Thresholds = DEFAULT_THRESHOLDS) -> str:
    labels = [item.event for item in part]
    stories = cluster(signatures(part), WINDOW, thresholds)
    pair, cube = pairwise(labels, stories), bcubed(labels, stories)
    return (f"pairwise P {pair.precision:.3f} R {pair.recall:.3f} F1 {pair.f1:.3f} | "
            f"B-cubed P {cube.precision:.3f} R {cube.recall:.3f} F1 {cube.f1:.3f} | "
            f"{len(set(labels))} events -> {len(set(stories))} stories")


def reasons(part: Sequence[Labelled]) -> Counter[str]:
    index = StoryIndex(WINDOW)
    counts: Counter[str] = Counter()
    for number, sig in enumerate(signatures(part)):
        found = index.assign(sig)
        counts[found.reason] += 1
        index.add(number if found.story_id is None else found.story_id, sig)
    return counts


def _f1(part: Sequence[Labelled], signed: list, thresholds: Thresholds) -> float:  # type: ignore[type-arg]
    return bcubed([item.event for item in part], cluster(signed, WINDOW, thresholds)).f1


def sweep(part: Sequence[Labelled]) -> None:
    """B-cubed F1 on the tune half over the grid; each point also with its neighbourhood's mean."""
    signed = signatures(part)
    grid = {}
    for (t, w, h) in itertools.product(range(len(SAME_EVENT)), range(len(ENTITY_WEIGHT)), range(len(HALF_LIFE_HOURS))):
        chosen = replace(DEFAULT_THRESHOLDS, same_event=SAME_EVENT[t], entity_weight=ENTITY_WEIGHT[w],
                         half_life=HALF_LIFE_HOURS[h] * 3600)
        grid[(t, w, h)] = _f1(part, signed, chosen)

    def plateau(point: tuple[int, int, int]) -> float:
        near = [grid[n] for n in itertools.product(*(range(max(0, c - 1), c + 2) for c in point)) if n in grid]
        return statistics.fmean(near)

    # The choice: the best mean of a point's F1 and its neighbourhood's, so a small change in the data or
    # in a threshold does not fall off a cliff.
    ranked = sorted(grid, key=lambda p: ((grid[p] + plateau(p)) / 2, grid[p]), reverse=True)
    print("sweep (tune half): same_event x entity_weight x half_life -> B-cubed F1, neighbourhood mean F1")
    for point in ranked[:8]:
        t, w, h = point
        print(f"  same_event {SAME_EVENT[t]:.2f} entity_weight {ENTITY_WEIGHT[w]:.1f} half_life "
              f"{HALF_LIFE_HOURS[h]:g} h: F1 {grid[point]:.3f}, neighbourhood {plateau(point):.3f}")
    for h, hours in enumerate(HALF_LIFE_HOURS):
        best = max((grid[(t, w, h)], t, w) for t in range(len(SAME_EVENT)) for w in range(len(ENTITY_WEIGHT)))
        print(f"  best with half_life {hours:g} h: F1 {best[0]:.3f}")
    for w, weight in enumerate(ENTITY_WEIGHT):
        best = max((grid[(t, w, h)], t, h) for t in range(len(SAME_EVENT)) for h in range(len(HALF_LIFE_HOURS)))
        print(f"  best with entity_weight {weight:.1f}: F1 {best[0]:.3f}")
    for generic in GENERIC:
        chosen = replace(DEFAULT_THRESHOLDS, generic_weight=generic)
        print(f"  generic_weight {generic:.2f}: F1 {_f1(part, signed, chosen):.3f}")
    for near in NEAR:
        chosen = replace(DEFAULT_THRESHOLDS, near_duplicate=near)
        print(f"  near_duplicate {near:.2f}: F1 {_f1(part, signed, chosen):.3f}")


def alert_counts(part: Sequence[Labelled]) -> str:
    before, after = alerts(part, cluster(signatures(part), WINDOW))
    events = len({item.event for item in part if item.rules})
    return (f"{before} alerts before stories, {after} after, for {events} events that match a rule "
            f"({before / events:.1f} -> {after / events:.1f} per event; {before - after} saved)")


def _timed(docs: Sequence[tuple[Document, tuple[str, ...], str, datetime]], index: StoryIndex) -> float:
    """Microseconds per item for signature + assign + add (prune every 64 items, as a daemon might)."""
    started = time.perf_counter()
    for number, (doc, entities, publisher, seen) in enumerate(docs):
        sig = signature(doc, entities, publisher, seen)
        found = index.assign(sig)
        index.add(number if found.story_id is None else found.story_id, sig)
        if number % 64 == 0:
            index.prune(seen)
    return (time.perf_counter() - started) / len(docs) * 1e6


def bench_like(count: int) -> list[tuple[Document, tuple[str, ...], str, datetime]]:
    """Items like bench/ingest_bench.py's: ~2 KB of common words, one in twenty a matching sentence."""
    words = BENCH_TEXT.split()
    matching = "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes before NATO jets intercepted them."
    rng = random.Random(20250919)
    start = datetime(2025, 9, 19, tzinfo=UTC)
    out = []
    for number in range(count):
        text = " ".join(rng.choices(words, k=300))[:1900]
        entities: tuple[str, ...] = ()
        if rng.random() < 0.05:
            text, entities = matching + " " + text, ("russia", "mig-31", "estonia", "nato")
        doc = Document(id=f"f{number % 300}-i{number}", title=" ".join(rng.choices(words, k=8)).capitalize(),
                       summary=text, url=f"https://news{number % 300}.example.org/{number}")
        out.append((doc, entities, f"news{number % 300}.example.org", start + timedelta(seconds=30 * number)))
    return out


def cost(items: Sequence[Labelled], repeat: int) -> None:
    labelled = [(i.doc, i.entities, i.publisher, i.seen_at) for i in items]
    runs = [_timed(labelled, StoryIndex(WINDOW)) for _ in range(repeat)]
    print(f"cost, labelled items ({len(labelled)}, fresh index): {min(runs):.0f}-{max(runs):.0f} us per item")
    like = bench_like(9000)  # 9,000 items 30 s apart: all within the 96 h window, the index ends full
    runs = [_timed(like, StoryIndex(WINDOW)) for _ in range(repeat)]
    print(f"cost, ingest-bench-like items (9,000 in one window): {min(runs):.0f}-{max(runs):.0f} us per item")
    tracemalloc.start()
    index = StoryIndex(WINDOW)
    _timed(like, index)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"  memory of the index: {held / len(index) / 1024:.1f} KiB per item held ({len(index)} items)")
    started = time.perf_counter()
    for doc, entities, publisher, seen in like[:2000]:
        signature(doc, entities, publisher, seen)
    print(f"  of which signature alone: {(time.perf_counter() - started) / 2000 * 1e6:.0f} us per item")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also print the threshold sweep (slow: ~1 min)")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs (figures are min-max)")
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules")
    items = labelled_items(yaml.safe_load(DATA.read_text(encoding="utf-8")), rules)
    halves = {half: [item for item in items if item.half == half] for half in ("tune", "held-out")}
    print(f"{len(items)} items, {len({i.event for i in items})} events; thresholds: {DEFAULT_THRESHOLDS}")
    for half, part in halves.items():
        print(f"{half:8} ({len(part)} items): {quality(part)}")
        print(f"{'':8} assigned by: {dict(reasons(part).most_common())}")
        print(f"{'':8} {alert_counts(part)}")
    for batch in sorted({item.batch for item in items} - {1}):
        part = [item for item in halves["held-out"] if item.batch == batch]
        print(f"held-out batch {batch} ({len(part)} items, written after the thresholds): {quality(part)}")
        print(f"{'':8} {alert_counts(part)}")
    print(f"both     ({len(items)} items): {quality(items)}")
    print(f"{'':8} {alert_counts(items)}")
    if args.sweep:
        sweep(halves["tune"])
    cost(items, args.repeat)


if __name__ == "__main__":
    main()
