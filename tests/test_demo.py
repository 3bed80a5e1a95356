"""The demo's outlets: the seed articles as several outlets' feeds, originals first and then
republished copies under other headlines, links and boilerplate; the line saying what stories saved."""

from __future__ import annotations

from datetime import UTC, datetime

import feedparser

from monitor.demo import OUTLETS, Outcome, outlet_feeds, reports, saved_line
from monitor.stories.publisher import publisher_of
from tests.conftest import SEEDS

NOW = datetime(2025, 9, 26, 12, 0, tzinfo=UTC)


def test_each_seed_is_first_at_one_outlet_then_copied_by_others_in_their_own_words() -> None:
    carried = reports(SEEDS, NOW)
    originals = [r for r in carried if not r.copy]
    assert len(originals) == len(list(SEEDS.glob("*.txt"))) == 5
    assert len({publisher_of(f"https://www.{o.domain}/x") for o in OUTLETS}) == len(OUTLETS)  # four publishers, not one
    for original in originals:
        copies = [r for r in carried if r.copy and r.text.find(original.text) >= 0]
        assert copies, original.title
        assert len({c.outlet for c in copies} | {original.outlet}) == len(copies) + 1  # each at another outlet
        for copy in copies:
            assert copy.link != original.link and copy.guid != original.guid
            assert copy.text != original.text and copy.published > original.published
            assert copy.outlet.footer in copy.text and copy.outlet.byline in copy.text
        assert any(c.title != original.title for c in copies)


def test_the_first_round_carries_the_originals_and_the_second_adds_the_copies() -> None:
    carried = reports(SEEDS, NOW)
    first, second = outlet_feeds(carried, second_round=False), outlet_feeds(carried, second_round=True)
    assert set(first) == set(second) == {f"/{o.feed}.xml" for o in OUTLETS}
    count = {path: len(feedparser.parse(body).entries) for path, body in first.items()}
    more = {path: len(feedparser.parse(body).entries) for path, body in second.items()}
    assert sum(count.values()) == 5 and sum(more.values()) == len(carried)
    entry = feedparser.parse(second["/nordic-daily.xml"]).entries[-1]
    assert entry.link.startswith("https://www.nordicdaily.example/") and entry.title.startswith("Analysis: ")


def test_the_saved_line() -> None:
    outcome = Outcome(reports=14, matches=46, stories=5, deliveries=54, delivered=54)
    assert saved_line(outcome, {"alert": 19, "update": 8}) == (
        "14 reports → 5 stories: 19 alerts + 8 updates instead of 46 alerts")
    assert saved_line(outcome, {"alert": 19, "surge": 1}).endswith("19 alerts + 0 updates + 1 surges instead of "
                                                                   "46 alerts")
