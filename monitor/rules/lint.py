"""Warnings about rules that load but likely do not say what their author meant. Pure.

A warning is printed by ``rules check`` and does not fail it: the rule is valid, only suspicious.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from monitor.errors import RuleError, did_you_mean
from monitor.rules.loader import RuleSpec
from monitor.rules.query import Not


def rule_warnings(specs: Iterable[RuleSpec], feeds: Collection[str] | None = None,
                  tags: Collection[str] | None = None) -> list[RuleError]:
    """A query that is only ``NOT …`` (it matches nearly every item); with a config's feed names and
    tags, each ``feed:``/``tag:`` of a query that names none of them (it can never hold)."""
    found = []
    for spec in specs:
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
