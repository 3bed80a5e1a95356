"""Three `crisis-monitor run` daemons on one PostgreSQL database, end to end (tests/fleet.py runs
the scenario): each feed fetched once per interval across the three, each alert delivered once,
and after SIGKILL of one daemon mid-send the other two honour its claims until their leases run
out, then take over its feed and its delivery."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from tests.fleet import DELIVERY_LEASE, FEED_LEASE, Fleet, agent
from tests.helpers import PG_URL, fresh_database

pytestmark = pytest.mark.skipif(not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set")

SLACK = 1.0  # seconds: the database's timestamps against the servers' clock, and a request's way to the server


def test_three_daemons_poll_once_deliver_once_and_take_over_a_killed_one(tmp_path: Path) -> None:
    with Fleet(tmp_path, fresh_database("postgresql", tmp_path)) as fleet:
        outcome = fleet.outcome
        fleet.start_up()
        fleet.window(intervals=4)
        fleet.kill_mid_send(feed=fleet.matching)
        fleet.take_over()
        feed_requests, posts = list(fleet.feeds.requests), list(fleet.receiver.posts)
        acknowledged = list(fleet.receiver.acknowledged)

    # Once per interval across the three: a feed is due every interval ±10% (jitter), so a window
    # holds at most window / (0.9 x interval) + 1 of its polls; a feed polled by two daemons in one
    # interval would show twice that.
    start, end = outcome.window
    most = math.floor((end - start) / (0.9 * outcome.interval)) + 1
    counts = outcome.requests(feed_requests, start, end)
    assert max(counts.values()) <= most, counts.most_common(5)
    assert min(counts.values()) >= 1, [name for name, n in counts.items() if n == 0]
    # ... shared out: every daemon polled
    assert set(Counter(agent(s) for s in feed_requests if start <= s.at < end)) == {"d0", "d1", "d2"}

    # The killed daemon died mid-send and mid-fetch, holding both claims.
    assert outcome.held_feed and outcome.held_key
    assert outcome.delivery_attempts == 0 and outcome.delivery_claimed_until > outcome.killed_at
    assert outcome.held_feed in outcome.held_feeds  # (and any other poll it had in flight)
    # The survivors left them alone until the leases ran out, then took them over.
    for name, until in outcome.held_feeds.items():
        assert outcome.killed_at < until <= outcome.killed_at + FEED_LEASE + SLACK
        assert outcome.feeds_taken_over_at[name] >= until - SLACK, name
    assert outcome.delivery_taken_over_at >= outcome.delivery_claimed_until - SLACK
    assert outcome.delivery_claimed_until - outcome.killed_at <= DELIVERY_LEASE + SLACK
    # ... and every other feed went on once per interval with two daemons.
    survivors = {"d0", "d1", "d2"} - {outcome.victim}
    after = [s for s in feed_requests if s.at > outcome.killed_at]
    assert {agent(s) for s in after} <= survivors
    start, end = outcome.killed_at, min(outcome.feeds_taken_over_at.values())
    most = math.floor((end - start) / (0.9 * outcome.interval)) + 1
    counts = outcome.requests(after, start, end, exclude=outcome.held_feeds)
    assert max(counts.values()) <= most, counts.most_common(5)
    assert min(counts.values()) >= 1, [name for name, n in counts.items() if n == 0]

    # Each alert delivered once across the three: every alert in the store acknowledged exactly
    # once by its Idempotency-Key; only the one in flight at the kill was POSTed twice (at least
    # once: the same key, which a receiver drops).
    assert len(outcome.alert_ids) == outcome.expected_alerts + 1
    assert Counter(s.headers["idempotency-key"] for s in acknowledged) == Counter(outcome.alert_ids)
    sent = Counter(s.headers["idempotency-key"] for s in posts)
    assert sent == Counter(outcome.alert_ids) + Counter([outcome.held_key])
    assert {agent(s) for s in posts if s.headers["idempotency-key"] == outcome.held_key} == \
        {outcome.victim, agent(next(s for s in acknowledged if s.headers["idempotency-key"] == outcome.held_key))}
    assert outcome.exits[outcome.victim] == -9
    assert all(code == 0 for name, code in outcome.exits.items() if name != outcome.victim), outcome.exits
