"""When and how a channel's due alerts go out: quiet hours, digests, grouping. Pure.

``decide`` turns the alerts claimed for one channel into actions: send one, send a group
as one message, or postpone to a time. Times are aware UTC; quiet hours are read in the
channel's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.config import ChannelSpec
from monitor.types import Alert


@dataclass(frozen=True)
class Send:
    alerts: tuple[Alert, ...]

    @property
    def grouped(self) -> bool:
        return len(self.alerts) > 1


@dataclass(frozen=True)
class Postpone:
    alerts: tuple[Alert, ...]
    until: datetime


Action = Send | Postpone


def quiet_until(now: datetime, window: tuple[int, int] | None, timezone: str) -> datetime | None:
    """The end of the quiet window ``now`` is in (aware UTC), or None outside it."""
    if window is None:
        return None
    start, end = window
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start <= end else (minute >= start or minute < end)
    if not inside or start == end:
        return None
    days = 1 if start > end and minute >= start else 0
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    local_end = (midnight + timedelta(days=days)).replace(hour=end // 60, minute=end % 60)
    return local_end.astimezone(UTC)


def digest_due(created_at: datetime, period: float) -> datetime:
    """The end of the digest period an alert falls in (periods aligned to the Unix epoch)."""
    stamp = created_at.timestamp()
    return datetime.fromtimestamp((stamp // period + 1) * period, UTC)


def decide(channel: ChannelSpec, alerts: Sequence[Alert], now: datetime,
           recent: Mapping[str, int], groupable: bool) -> list[Action]:
    """What to do with ``alerts`` (claimed for ``channel``), given how many alerts of each rule
    this channel has had within its ``group_window`` (``recent``)."""
    actions: list[Action] = []
    quiet = quiet_until(now, channel.quiet_hours, channel.timezone)
    ready = []
    for alert in alerts:
        if quiet is not None and alert.severity != "critical":
            actions.append(Postpone((alert,), quiet))
        else:
            ready.append(alert)
    digest = channel.options.get("digest")
    if digest and ready:
        due = [a for a in ready if digest_due(a.created_at, digest) <= now]
        for alert in ready:
            if alert not in due:
                actions.append(Postpone((alert,), digest_due(alert.created_at, digest)))
        return actions + ([Send(tuple(due))] if due else [])
    if not groupable or not channel.group_window or channel.group_max is None:
        return actions + [Send((a,)) for a in ready]
    by_rule: dict[str, list[Alert]] = {}
    for alert in ready:
        by_rule.setdefault(alert.rule, []).append(alert)
    window = timedelta(seconds=channel.group_window)
    for rule, batch in by_rule.items():
        # Alerts whose window has ended were held back as the rest of a burst (or are late
        # retries): they go as one message now, whatever was sent since; the alerts sent alone
        # at the start of their burst may be out of the window by then.
        held = tuple(a for a in batch if a.created_at + window <= now)
        if held:
            actions.append(Send(held))
        fresh = [a for a in batch if a.created_at + window > now]
        seen = recent.get(rule, 0)
        if seen + len(fresh) <= channel.group_max:
            actions += [Send((a,)) for a in fresh]
            continue
        alone = fresh[:max(0, channel.group_max - seen)]
        rest = tuple(fresh[len(alone):])
        actions += [Send((a,)) for a in alone]
        actions.append(Postpone(rest, min(a.created_at for a in rest) + window))
    return actions
