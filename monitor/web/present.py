"""Pure helpers that shape stored data for the dashboard's templates.

Highlighted snippets as (text, marked) segments the template escapes one by one, bar
charts as rectangles, feed ordering, the severity filter, rule example results and the
check that a feed-provided URL may become a link. No I/O; ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from monitor.rules.engine import RuleSet
from monitor.types import SEVERITIES

# Failing feeds first: the ones an operator has to look at.
_FEED_RANK = {"error": 0, "gone": 1, "stale": 2, "never": 3, "not_modified": 4, "ok": 5}
FEED_SORTS = ("health", "name", "status", "items", "last_polled_at", "next_poll_at", "consecutive_failures")


def segments(text: str, spans: Iterable[Sequence[int]]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, highlighted) pairs; overlapping or out-of-range spans are clipped."""
    out: list[tuple[str, bool]] = []
    last = 0
    for start, end in sorted({(max(0, int(s[0])), min(len(text), int(s[1]))) for s in spans}):
        if start < last:
            start = last
        if start >= end:
            continue
        if start > last:
            out.append((text[last:start], False))
        out.append((text[start:end], True))
        last = end
    if last < len(text):
        out.append((text[last:], False))
    return out


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) link, else None: a feed could send ``javascript:`` or ``data:``."""
    if not url:
        return None
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None


def at_least(severity: str | None) -> set[str] | None:
    """The severities at or above ``severity``; None (no filter) for an empty or unknown one."""
    if severity not in SEVERITIES:
        return None
    return set(SEVERITIES[SEVERITIES.index(severity):])


def last_days(now: datetime, count: int) -> list[str]:
    """The ``count`` UTC days up to and including today's, oldest first, as 'YYYY-MM-DD'."""
    today = now.date()
    return [(today - timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]


def day_bounds(days: Sequence[str]) -> list[datetime]:
    """The UTC midnights that start each of ``days``, and the one after the last: count windows."""
    starts = [datetime.fromisoformat(f"{day}T00:00:00+00:00") for day in days]
    return [*starts, starts[-1] + timedelta(days=1)] if starts else []


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: str
    count: int


def bars(counts: Mapping[str, int], days: Sequence[str], width: float, height: float) -> list[Bar]:
    """One bar per day, scaled so the busiest day fills ``height``; a day with matches is never flat."""
    peak = max((counts.get(d, 0) for d in days), default=0) or 1
    step = width / max(len(days), 1)
    out = []
    for n, day in enumerate(days):
        count = counts.get(day, 0)
        tall = max(1.0, height * count / peak) if count else 0.0
        out.append(Bar(round(n * step, 2), round(height - tall, 2), round(max(step - 1, 1), 2), round(tall, 2),
                       day, count))
    return out


def sort_feeds(rows: Sequence[dict[str, Any]], key: str, descending: bool = False) -> list[dict[str, Any]]:
    """Feeds by ``key``; "health" puts failing feeds first, then by failures, then by name."""
    if key == "health" or key not in FEED_SORTS:
        return sorted(rows, key=lambda r: (_FEED_RANK.get(r["status"], 9), -r["consecutive_failures"], r["name"]))
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    return sorted(present, key=lambda r: (r[key], r["name"]), reverse=descending) + missing


@dataclass(frozen=True)
class ExampleResult:
    passed: int
    total: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.passed == self.total


def example_results(rule_set: RuleSet) -> dict[str, ExampleResult]:
    """What ``rules test`` says of each rule: its examples run against the whole rule set."""
    out = {}
    for rule in rule_set.rules:
        spec = rule.spec
        failures = []
        cases = [(True, d) for d in spec.examples_match] + [(False, d) for d in spec.examples_no_match]
        for expected, doc in cases:
            if any(m.rule == spec.id for m in rule_set.match(doc)) != expected:
                text = " ".join((doc.title or doc.content or doc.summary).split())[:100]
                failures.append(f"{'match' if expected else 'no_match'}: {text}")
        out[spec.id] = ExampleResult(len(cases) - len(failures), len(cases), tuple(failures))
    return out
