"""Warnings about rules that load but likely do not say what their author meant. Pure.

A warning is printed by ``rules check`` and does not fail it: the rule is valid, only suspicious.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from monitor.errors import RuleError, did_you_mean
from monitor.rules.loader import RuleSpec
from monitor.rules.query import Not
from monitor.units import format_duration


def _story_warnings(spec: RuleSpec, poll: float | None) -> list[tuple[str, str, str]]:
    """Story keys that load but do nothing, or can hardly work: (key, message, hint)."""
    policy = spec.stories
    found: list[tuple[str, str, str]] = []
    official, least = policy.min_official, policy.min_sources
    if official and not policy.gated:
        found.append(("min_official", f"warning: min_official {official} does nothing while min_sources is 1 "
                      "and no tiers are set: the first publisher already releases the alert",
                      "set min_sources: 2 or more (or tiers) for official sources to matter"))
    elif official and official >= least:  # official publishers count toward min_sources whatever the tiers
        found.append(("min_official", f"warning: min_official {official} is not below min_sources {least}, "
                      "so it never releases an alert sooner",
                      f"raise min_sources above {official}, or drop min_official"))
    low = [rung for rung in policy.updates if rung <= least]
    if least > 1 and low:
        found.append(("updates", f"warning: updates {low} are not above min_sources {least}: the first "
                      "alert already has that many publishers", "drop them from updates"))
    if poll is None:
        return found
    every = f"the feeds' poll interval {format_duration(poll)}"
    if policy.gated and policy.within < poll:
        found.append(("within", f"warning: within {format_duration(policy.within)} is shorter than {every}, "
                      "so other publishers can rarely corroborate in time",
                      f"set within: to {format_duration(poll * 2)} or more"))
    if policy.surge is not None and policy.surge.window < poll:
        found.append(("surge", f"warning: surge.window {format_duration(policy.surge.window)} is shorter than "
                      f"{every}, so stories arrive in bursts of polls, not per window",
                      f"set surge: {{window: {format_duration(poll * 2)}}} or more"))
    return found


def rule_warnings(specs: Iterable[RuleSpec], feeds: Collection[str] | None = None,
                  tags: Collection[str] | None = None, poll: float | None = None) -> list[RuleError]:
    """A query that is only ``NOT …`` (it matches nearly every item); with a config's feed names and
    tags, each ``feed:``/``tag:`` of a query that names none of them (it can never hold); story keys
    that do nothing; with ``poll``, the shortest interval a feed is polled at, a gate's ``within`` or
    a surge window shorter than it."""
    found: list[RuleError] = []
    for spec in specs:
        places = dict(spec.story_places)
        found.extend(RuleError(places.get(key, spec.location), message, hint)
                     for key, message, hint in _story_warnings(spec, poll))
        if isinstance(spec.query, Not):
            found.append(RuleError(spec.query_location or spec.location,
                                   "warning: the query is only NOT …, so it matches nearly every item",
                                   "say what an item must hold too, as in drone AND NOT camera"))
        for kind, value, where in spec.meta_places:
            known = feeds if kind == "feed" else tags
            if known is not None and value not in known:
                found.append(RuleError(where, f"warning: {kind}:{value}: no such {kind} in the config, "
                                       "so this term never holds", did_you_mean(value, sorted(known), f"{kind}s")))
    return found
