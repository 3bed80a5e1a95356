"""Surge maths: the decision table, the baseline, warm-up, cooldown and the exact Poisson tail."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from monitor.stories.surge import SurgeSpec, counts_per_window, decide, poisson_tail, window_of

HOUR = 3600.0
START = datetime(2025, 9, 1, 0, 0, tzinfo=UTC)  # on a window boundary
NOW = START + timedelta(hours=30, minutes=20)  # window 30 since START
CURRENT = window_of(NOW, HOUR)
SPEC = SurgeSpec()


def history(per_window: int, windows: int = 24, current: int = 0) -> dict[int, int]:
    counts = {CURRENT - k: per_window for k in range(1, windows + 1)}
    counts[CURRENT] = current
    return counts


@pytest.mark.parametrize(("counts", "publishers", "started", "last_fired", "reason", "baseline"), [
    # A quiet rule (one story in 24 h) that now has 6 stories from 3 publishers: a surge.
    ({CURRENT - 5: 1, CURRENT: 6}, 3, START, None, "surge", 1 / 24),
    # min_count: 4 stories are below 5, however quiet the rule was.
    ({CURRENT: 4}, 3, START, None, "below-threshold", 0.0),
    # factor: a rule with 3 stories an hour needs 9 (3 x 3).
    (history(3, current=8), 5, START, None, "below-threshold", 3.0),
    # ... and at 9 the Poisson tail (p = 0.0038 for mean 3) still says it is not unusual enough.
    (history(3, current=9), 5, START, None, "not-significant", 3.0),
    (history(3, current=12), 5, START, None, "surge", 3.0),
    # One publisher is not a surge, whatever the count.
    ({CURRENT: 20}, 1, START, None, "publishers", 0.0),
    # Warm-up: two complete windows must have been observed before the current one.
    ({CURRENT: 20}, 3, NOW - timedelta(hours=1), None, "warm-up", 0.0),
    ({CURRENT: 20}, 3, NOW - timedelta(hours=2, minutes=20), None, "surge", 0.0),
    # Cooldown: six hours after a surge, no other.
    ({CURRENT: 20}, 3, START, NOW - timedelta(hours=5, minutes=59), "cooldown", 0.0),
    ({CURRENT: 20}, 3, START, NOW - timedelta(hours=6), "surge", 0.0),
    # The baseline covers at most 24 windows: a busy day a week ago does not count.
    ({**{CURRENT - 100 - k: 50 for k in range(24)}, CURRENT: 6}, 3, START - timedelta(days=7), None, "surge", 0.0),
])
def test_decision_table(counts: dict[int, int], publishers: int, started: datetime, last_fired: datetime | None,
                        reason: str, baseline: float) -> None:
    decision = decide(SPEC, counts, publishers, NOW, started, last_fired)
    assert decision.reason == reason
    assert decision.fire is (reason == "surge")
    assert decision.count == counts.get(CURRENT, 0)
    assert decision.baseline == pytest.approx(baseline)
    assert decision.threshold == max(5, 3 * baseline)
    assert decision.publishers == publishers


def test_the_baseline_starts_when_the_rule_was_first_observed() -> None:
    # Observed for 4 complete windows with 2 stories each: the baseline is 2, not 8/24.
    started = START + timedelta(hours=26)
    decision = decide(SPEC, history(2, windows=4, current=7), 3, NOW, started)
    assert decision.baseline == 2.0
    # 7 passes 3 x 2, but P(X >= 7 | mean 2) = 0.0045 is not below 1e-3.
    assert decision.reason == "not-significant"
    assert decision.p == pytest.approx(poisson_tail(7, 2.0))


def test_a_surge_then_its_cooldown_then_another() -> None:
    spec = SurgeSpec(cooldown=3 * HOUR)
    counts = {window_of(START + timedelta(hours=h), HOUR): 1 for h in range(10)}
    counts[window_of(START + timedelta(hours=10), HOUR)] = 8
    counts[window_of(START + timedelta(hours=11), HOUR)] = 9
    counts[window_of(START + timedelta(hours=13), HOUR)] = 12
    fired: datetime | None = None
    reasons = []
    for hour in (10, 11, 13):
        now = START + timedelta(hours=hour, minutes=30)
        decision = decide(spec, counts, 4, now, START, fired)
        reasons.append(decision.reason)
        if decision.fire:
            fired = now
    assert reasons == ["surge", "cooldown", "surge"]


def test_counts_per_window() -> None:
    times = [START + timedelta(minutes=m) for m in (0, 10, 59, 60, 61, 200)]
    base = window_of(START, HOUR)
    assert counts_per_window(times, HOUR) == {base: 3, base + 1: 2, base + 3: 1}


def _tail_by_definition(count: int, mean: float) -> float:
    return 1.0 - math.fsum(math.exp(-mean) * mean ** k / math.factorial(k) for k in range(count))


@pytest.mark.parametrize(("count", "mean"), [(0, 2.0), (1, 0.5), (5, 1.0), (9, 3.0), (3, 10.0), (30, 25.0),
                                             (12, 3.0)])
def test_poisson_tail_is_the_definition(count: int, mean: float) -> None:
    assert poisson_tail(count, mean) == pytest.approx(_tail_by_definition(count, mean), rel=1e-9)


def test_poisson_tail_far_out_keeps_its_precision() -> None:
    # 1 - (1 - tiny) loses a tiny tail; summing the tail keeps it: P(X >= 40 | 2) = 2^40 e^-2 / 40! (1 + ...).
    first = math.exp(40 * math.log(2.0) - 2.0 - math.lgamma(41))
    assert poisson_tail(40, 2.0) == pytest.approx(first * (1 + 2 / 41 + 4 / (41 * 42) + 8 / (41 * 42 * 43)),
                                                  rel=1e-6)
    assert 0 < poisson_tail(40, 2.0) < 1e-30
    assert poisson_tail(5, 0.0) == 0.0 and poisson_tail(0, 0.0) == 1.0
