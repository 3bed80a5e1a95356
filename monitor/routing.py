"""Which channels an alert goes to. Pure.

A rule that names ``channels`` goes to exactly those; otherwise to every channel whose
``min_severity`` the alert reaches and whose ``tags`` (when set) share one with the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.config import ChannelSpec
from monitor.errors import RuleError, RuleSetError
from monitor.rules.loader import RuleSpec
from monitor.types import SEVERITIES, Match

RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def allows(channel: ChannelSpec, severity: str, tags: Iterable[str]) -> bool:
    if RANK.get(severity, 0) < RANK[channel.min_severity]:
        return False
    return not channel.tags or bool(set(channel.tags) & set(tags))


class Router:
    def __init__(self, channels: Sequence[ChannelSpec], specs: Iterable[RuleSpec]) -> None:
        self.channels = list(channels)
        self.named = {spec.id: spec.channels for spec in specs if spec.channels}

    def __call__(self, match: Match) -> list[str]:
        return self.channels_for(match.rule, match.severity, match.tags)

    def channels_for(self, rule: str, severity: str, tags: Iterable[str]) -> list[str]:
        """The channels a message of ``rule`` at ``severity`` with ``tags`` goes to (a surge has no match)."""
        named = self.named.get(rule)
        if named:
            return list(named)
        return [c.name for c in self.channels if allows(c, severity, tags)]


def unknown_channels(specs: Iterable[RuleSpec], channels: Sequence[ChannelSpec]) -> list[RuleError]:
    """A RuleError for each channel a rule names that config.toml does not define."""
    known = {c.name for c in channels}
    return [RuleError(spec.channels_location or spec.location, f"channels: unknown channel {name!r}",
                      f"channels in config.toml: {', '.join(sorted(known))}")
            for spec in specs for name in spec.channels if name not in known]


def check_channels(specs: Iterable[RuleSpec], channels: Sequence[ChannelSpec]) -> None:
    """RuleSetError for every rule that names a channel config.toml does not define."""
    errors = unknown_channels(specs, channels)
    if errors:
        raise RuleSetError(errors)
