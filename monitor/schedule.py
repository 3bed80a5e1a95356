"""When to poll a feed next: pure scheduling maths, tested with tables.

- A healthy feed starts at its configured interval. Each poll that brings new items
  halves it, each run of quiet polls doubles it, within ``[min_interval, max_interval]``
  (widened to include the configured interval itself, so a user's choice is never
  overruled by the bounds).
- The publisher's hints, the feed's ``<ttl>`` and ``Cache-Control: max-age``, are a
  floor: we never poll faster than asked (up to ``max_interval``).
- Errors back off exponentially from the interval to ``max_interval`` and keep polling
  there: a feed is never given up on. ``Retry-After`` is honoured (up to a day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

QUIET_POLLS_PER_STEP = 3
MAX_RETRY_AFTER = 86400.0


@dataclass(frozen=True)
class Bounds:
    base: float
    min_interval: float
    max_interval: float

    @property
    def low(self) -> float:
        return min(self.min_interval, self.base)

    @property
    def high(self) -> float:
        return max(self.max_interval, self.base)


def healthy_interval(bounds: Bounds, current: float, new_items: int, quiet_polls: int,
                     hint: float | None = None) -> float:
    """The interval after a successful poll that found ``new_items``."""
    if new_items:
        interval = current / 2
    elif quiet_polls and quiet_polls % QUIET_POLLS_PER_STEP == 0:
        interval = current * 2
    else:
        interval = current
    if hint:
        interval = max(interval, min(hint, bounds.high))
    return min(max(interval, bounds.low), bounds.high)


def backoff(bounds: Bounds, failures: int, retry_after: float | None = None) -> float:
    """The wait after the ``failures``-th consecutive failure (1 for the first)."""
    delay = min(bounds.base * 2.0 ** min(failures - 1, 30), bounds.high)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def jitter(interval: float, fraction: float) -> float:
    """Spread polls of feeds with the same interval: ``fraction`` in [-1, 1] scales ±10%."""
    return interval * (1 + 0.1 * max(-1.0, min(1.0, fraction)))


def is_stale(now: datetime, last_new_item_at: datetime | None, added_at: datetime | None,
             stale_after: float) -> bool:
    """A feed silent (no new item) for longer than ``stale_after``."""
    since = last_new_item_at or added_at
    return since is not None and now - since > timedelta(seconds=stale_after)
