"""What an alert shows of why it fired: the clauses that held, the terms, the entities of the snippet.

Pure. A document can mention forty entities and a clause of a lexicon can hit twenty words;
a person reading an alert needs what decided the match, so each list is capped, and says
"+N more" when it was cut (and nothing when it was not). Webhooks carry the full lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.notify.base import plain
from monitor.types import Alert

MAX_TERMS = 6
MAX_ENTITIES = 6
MAX_CLAUSES = 4


def capped(values: Sequence[str], limit: int) -> str:
    """``values`` joined with commas, the first ``limit`` of them and "+N more" for the rest."""
    shown = ", ".join(plain(v) for v in values[:limit])
    rest = len(values) - limit
    return f"{shown} +{rest} more" if rest > 0 else shown


def why(alert: Alert) -> str:
    """The named clauses that held (empty for a rule without them)."""
    return capped(alert.clauses, MAX_CLAUSES)


def terms(alert: Alert) -> str:
    return capped(alert.terms, MAX_TERMS)


def entities(alert: Alert) -> str:
    """The entities the snippet names (not every entity of the document)."""
    return capped(alert.snippet_entities, MAX_ENTITIES)
