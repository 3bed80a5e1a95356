"""Surges in the store (issue 15): the figures read for a rule, the surge alert and its deliveries, the
warm-up, the cooldown and two daemons deciding at once, on SQLite and PostgreSQL with an injected clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from monitor.store.repo import Store
from monitor.store.surges import SurgeRule, Surges
from monitor.stories.surge import SurgeSpec, decide, window_of
from tests.helpers import PG_URL, AlertRow, DeliveryRow, FeedRow, ItemRow, MatchRow, StoryRow, fresh_database

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]
HOUR = 3600.0
# Mid-window: 10:30 on a day, so the current window (10:00-11:00) holds what the tests put at 10:00-10:29.
NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
SPEC = SurgeSpec(window=HOUR, factor=3, min_count=5, min_publishers=2, warmup=2, baseline_windows=24, cooldown=6 * HOUR)
RULE = SurgeRule("drones", "Drones over a border", "high", ("airspace",), SPEC, ("ops", "wire-desk"))


@pytest.fixture(params=DATABASES)
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    store = Store(fresh_database(request.param, tmp_path))
    yield store
    store.close()


class Seed:
    """Stories, items and matches written as the write path leaves them, at chosen times."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with Session(store.engine) as session:
            feed = FeedRow(name="f", config_url="https://f.example/", url="https://f.example/")
            session.add(feed)
            session.commit()
            assert feed.id is not None
            self.feed_id = feed.id

    def story(self, at: datetime, publishers: list[str], rule: str = "drones", title: str = "",
              matched: list[bool] | None = None, published: datetime | None = None) -> int:
        """A story of one item per publisher, seen a minute apart from ``at``; the rule matches the
        items flagged in ``matched`` (all by default) when each is seen."""
        with Session(self.store.engine) as session:
            story = StoryRow(key=uuid.uuid4().hex, first_seen_at=at, last_seen_at=at, title=title,
                             publishers=sorted(publishers), item_count=len(publishers))
            session.add(story)
            session.flush()
            assert story.id is not None
            for number, publisher in enumerate(publishers):
                seen = at + timedelta(minutes=number)
                item = ItemRow(feed_id=self.feed_id, story_id=story.id, guid=uuid.uuid4().hex,
                               url=f"https://{publisher}/{story.id}/{number}", title=f"{title} ({publisher})",
                               published_at=published or seen, first_seen_at=seen, updated_at=seen, content_hash="h",
                               publisher=publisher)
                session.add(item)
                session.flush()
                assert item.id is not None
                if matched is None or matched[number]:
                    session.add(MatchRow(item_id=item.id, rule=rule, severity="high", created_at=seen))
            session.commit()
            return story.id

    def quiet_history(self, hours: int, per_hour: int = 1, end: datetime = NOW) -> None:
        """``per_hour`` stories of the rule in each of the ``hours`` complete windows before ``end``'s."""
        start = datetime.fromtimestamp(window_of(end, HOUR) * HOUR, UTC)
        for back in range(1, hours + 1):
            for number in range(per_hour):
                self.story(start - timedelta(hours=back) + timedelta(minutes=5 + number * 10),
                           ["calm.example"], title=f"quiet {back}.{number}")

    def burst(self, count: int, at: datetime = NOW - timedelta(minutes=29), publishers: int = 3) -> list[int]:
        """``count`` stories in the window of ``at``; story n has min(n + 1, publishers) publishers."""
        return [self.story(at + timedelta(seconds=number),
                           [f"p{k}.example" for k in range(min(number + 1, publishers))], title=f"burst {number}")
                for number in range(count)]


def alerts(store: Store) -> list[AlertRow]:
    with Session(store.engine) as session:
        return list(session.exec(select(AlertRow).order_by(AlertRow.created_at)).all())


def deliveries(store: Store) -> list[DeliveryRow]:
    with Session(store.engine) as session:
        return list(session.exec(select(DeliveryRow).order_by(DeliveryRow.channel)).all())


def test_a_burst_fires_one_surge_alert_with_its_figures_and_top_stories(store: Store) -> None:
    seed = Seed(store)
    seed.quiet_history(hours=30)  # one story an hour for longer than the 24-window baseline
    burst = seed.burst(12)
    outcome = Surges(store).check(RULE, NOW)
    assert outcome.decision.fire and outcome.decision.reason == "surge"
    assert (outcome.decision.count, outcome.decision.baseline, outcome.decision.publishers) == (12, 1.0, 3)
    [alert] = alerts(store)
    assert alert.id == outcome.alert_id
    assert (alert.kind, alert.key, alert.rule, alert.rule_title, alert.severity, alert.tags) == (
        "surge", f"surge:drones:{window_of(NOW, HOUR)}", "drones", "Drones over a border", "high", ["airspace"])
    assert alert.reason == "12 stories in 1h against a baseline of 1"
    assert alert.created_at.replace(tzinfo=UTC) == NOW
    # The top stories: most publishers first (stories 2..11 have 3), then the earliest matched.
    top_ids = burst[2:7]
    assert alert.story_id == burst[2]
    with Session(store.engine) as session:
        first_item = session.exec(select(ItemRow).where(ItemRow.story_id == burst[2]).order_by(ItemRow.id)).first()
        assert first_item is not None
        match = session.exec(select(MatchRow).where(MatchRow.item_id == first_item.id)).one()
    assert (alert.item_id, alert.match_id) == (first_item.id, match.id)
    assert alert.detail == {
        "surge": {"count": 12, "baseline": 1.0, "window": 3600.0, "publishers": 3,
                  "top": [{"id": sid, "title": f"burst {sid - burst[0]}", "url": f"https://p0.example/{sid}/0",
                           "publishers": 3} for sid in top_ids]},
        "story": {"publishers": ["p0.example", "p1.example", "p2.example"], "items": 3,
                  "first_seen_at": "2026-03-04T10:01:02Z", "last_seen_at": "2026-03-04T10:03:02Z"}}
    assert [(d.channel, d.status, d.alert_id) for d in deliveries(store)] == [
        ("ops", "pending", alert.id), ("wire-desk", "pending", alert.id)]


def test_a_rule_first_seen_inside_the_baseline_waits_two_complete_windows(store: Store) -> None:
    seed = Seed(store)
    seed.story(NOW - timedelta(hours=1, minutes=10), ["calm.example"])  # first match ever: 09:20, window 9 incomplete
    seed.burst(12)
    outcome = Surges(store).check(RULE, NOW)
    assert (outcome.decision.fire, outcome.decision.reason, outcome.alert_id) == (False, "warm-up", None)
    assert alerts(store) == [] and deliveries(store) == []
    # A rule first seen before the burst's window by two complete windows is warm: the same burst fires.
    seed.story(NOW - timedelta(hours=3), ["calm.example"], title="older")
    assert Surges(store).check(RULE, NOW).decision.reason == "surge"


def test_a_rule_that_never_matched_has_nothing_to_fire(store: Store) -> None:
    Seed(store)
    decision = Surges(store).check(RULE, NOW).decision
    assert (decision.fire, decision.count) == (False, 0)


def test_the_same_window_or_the_cooldown_fires_no_second_surge(store: Store) -> None:
    seed = Seed(store)
    seed.quiet_history(hours=30)
    seed.burst(12)
    surges = Surges(store)
    assert surges.check(RULE, NOW).alert_id is not None
    seed.burst(3, at=NOW + timedelta(minutes=5))  # more of it in the same window
    again = surges.check(RULE, NOW + timedelta(minutes=20))
    assert (again.decision.reason, again.decision.count, again.alert_id) == ("cooldown", 15, None)
    later = NOW + timedelta(hours=2)  # a new burst two windows on: still within the 6 h cooldown
    seed.burst(12, at=later - timedelta(minutes=20))
    assert Surges(store).check(RULE, later).decision.reason == "cooldown"
    assert len(alerts(store)) == 1 and len(deliveries(store)) == 2
    # Past the cooldown a new burst is a new surge, of its own window.
    past = NOW + timedelta(hours=7)
    seed.burst(30, at=past - timedelta(minutes=20))
    fired = Surges(store).check(RULE, past)
    assert fired.decision.reason == "surge" and fired.alert_id is not None
    assert [a.key for a in alerts(store)] == [f"surge:drones:{window_of(NOW, HOUR)}",
                                              f"surge:drones:{window_of(past, HOUR)}"]
    assert len(deliveries(store)) == 4


def test_two_stores_deciding_at_once_write_one_surge_alert(store: Store) -> None:
    seed = Seed(store)
    seed.quiet_history(hours=30)
    seed.burst(12)
    other = Store(store.url)
    try:
        first, second = Surges(store), Surges(other)
        # Both read the figures and decide before either writes, as two daemons at one moment.
        seen = [surges.figures(RULE.id, SPEC, NOW) for surges in (first, second)]
        decisions = [decide(SPEC, f.counts, f.publishers, NOW, f.started_at, f.last_fired) for f in seen]
        assert [d.fire for d in decisions] == [True, True]
        written = [surges._write(RULE, f, d, NOW) for surges, f, d in zip((first, second), seen, decisions,
                                                                        strict=True)]
    finally:
        other.close()
    assert written[0] is not None and written[1] is None
    assert [a.id for a in alerts(store)] == [written[0]]
    assert [d.alert_id for d in deliveries(store)] == [written[0]] * 2


def test_a_story_counts_in_the_window_the_rule_first_matched_it(store: Store) -> None:
    seed = Seed(store)
    seed.quiet_history(hours=30)
    # A story the rule first matched yesterday that grows now counts yesterday, not in this window.
    old = seed.story(NOW - timedelta(hours=20), ["a.example"], title="old")
    with Session(store.engine) as session:
        item = ItemRow(feed_id=seed.feed_id, story_id=old, guid="late", url="https://b.example/late", title="late",
                       published_at=NOW, first_seen_at=NOW, updated_at=NOW, content_hash="h", publisher="b.example")
        session.add(item)
        session.flush()
        assert item.id is not None
        session.add(MatchRow(item_id=item.id, rule="drones", severity="high", created_at=NOW - timedelta(minutes=1)))
        session.commit()
    # Another story: an item the rule did not match came first; the window is that of the rule's match.
    seed.story(NOW - timedelta(hours=1, minutes=50), ["c.example", "d.example"], matched=[False, True])
    seed.story(NOW - timedelta(minutes=10), ["e.example"], rule="other-rule")  # another rule's story
    figures = Surges(store).figures("drones", SPEC, NOW)
    current = window_of(NOW, HOUR)
    assert figures.counts[current - 20] == 2 and figures.counts.get(current, 0) == 0
    assert figures.counts[current - 2] == 2  # the quiet one and the one matched at 08:41
    assert figures.stories == () and figures.publishers == 0
    assert figures.started_at == datetime.fromtimestamp((current - 24) * HOUR, UTC)  # matched before the period


def test_a_backlog_of_old_items_is_no_surge(store: Store) -> None:
    seed = Seed(store)
    seed.quiet_history(hours=30)
    for number in range(20):  # a new feed's first poll: twenty stories published days ago, matched now
        seed.story(NOW - timedelta(minutes=20), [f"p{number % 3}.example"], published=NOW - timedelta(days=3))
    assert Surges(store).check(RULE, NOW, max_age=2 * 86400).decision.count == 0
    assert Surges(store).check(RULE, NOW).decision.count == 20  # without an age limit they count
