"""Surges: when a rule's matching stories per window rise well above the rule's baseline.

Pure: counts and times in, a decision out; the caller counts stories and remembers when a surge
fired. Time is cut into windows (``window`` seconds, 1 h by default) numbered from the epoch.
For the window that holds ``now``, with ``baseline`` the mean count of the complete windows
before it (at most ``baseline_windows`` of them, none from before the rule was first observed),
a surge fires when all of these hold:

- warm-up: at least ``warmup`` complete windows were observed (a new rule has no baseline);
- no surge fired within ``cooldown`` seconds;
- count >= max(min_count, factor x baseline), from >= ``min_publishers`` publishers;
- the Poisson upper tail P(X >= count | mean = baseline) < ``max_p`` (so a noisy rule with a
  high baseline needs more than ``factor`` alone).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

_TAIL_EPSILON = 1e-17  # terms smaller than this share of the sum no longer change a float


@dataclass(frozen=True)
class SurgeSpec:
    """A rule's ``surge:`` settings (defaults as in DESIGN.md's example)."""

    window: float = 3600.0
    factor: float = 3.0
    min_count: int = 5
    min_publishers: int = 2
    max_p: float = 1e-3
    warmup: int = 2
    baseline_windows: int = 24
    cooldown: float = 6 * 3600.0


@dataclass(frozen=True)
class SurgeDecision:
    """Whether to fire now, and the figures a surge alert shows.

    ``reason``: ``surge`` when it fires, else the first condition that failed:
    ``warm-up``, ``cooldown``, ``below-threshold``, ``publishers`` or ``not-significant``.
    """

    fire: bool
    reason: str
    count: int
    baseline: float
    threshold: float
    p: float
    publishers: int


def window_of(moment: datetime, window: float) -> int:
    """The number of the window that holds ``moment`` (aware)."""
    return math.floor(moment.timestamp() / window)


def counts_per_window(times: Iterable[datetime], window: float) -> dict[int, int]:
    """How many of ``times`` (e.g. when each story first matched the rule) fall in each window."""
    return dict(Counter(window_of(moment, window) for moment in times))


def poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X Poisson with ``mean``, computed from the terms (exact to float)."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if count <= mean:  # the tail is most of the mass: one minus the few terms below count
        below = math.fsum(math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(count))
        return min(1.0, max(0.0, 1.0 - below))
    term = math.exp(count * math.log(mean) - mean - math.lgamma(count + 1))
    terms = [term]
    k = count
    while term > terms[0] * _TAIL_EPSILON:
        k += 1
        term *= mean / k
        terms.append(term)
    return min(1.0, math.fsum(terms))


def decide(spec: SurgeSpec, counts: Mapping[int, int], publishers: int, now: datetime,
           started_at: datetime, last_fired: datetime | None = None) -> SurgeDecision:
    """The surge decision for the window holding ``now``.

    ``counts``: matching stories per window number (``counts_per_window``); ``publishers``: the
    distinct publishers of the current window's stories; ``started_at``: when the rule was first
    observed (loaded); ``last_fired``: when its last surge fired, if ever.
    """
    current = window_of(now, spec.window)
    first_complete = math.ceil(started_at.timestamp() / spec.window)
    history = range(max(first_complete, current - spec.baseline_windows), current)
    count = counts.get(current, 0)
    baseline = math.fsum(counts.get(w, 0) for w in history) / len(history) if history else 0.0
    threshold = max(float(spec.min_count), spec.factor * baseline)
    p = poisson_tail(count, baseline)

    def decision(reason: str) -> SurgeDecision:
        return SurgeDecision(reason == "surge", reason, count, baseline, threshold, p, publishers)

    if len(history) < spec.warmup:
        return decision("warm-up")
    if last_fired is not None and now - last_fired < timedelta(seconds=spec.cooldown):
        return decision("cooldown")
    if count < threshold:
        return decision("below-threshold")
    if publishers < spec.min_publishers:
        return decision("publishers")
    if p >= spec.max_p:
        return decision("not-significant")
    return decision("surge")
