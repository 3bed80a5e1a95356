"""Frozen value types shared across the package.

Rules (``Rule``, ``RuleSet``) live with their compiler in ``monitor.rules``;
this module holds what crosses module boundaries as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SEVERITIES = ("info", "low", "medium", "high", "critical")
FIELDS = ("title", "summary", "content")


@dataclass(frozen=True)
class Document:
    """A text the rules run over: a feed item, or a file given to ``scan``."""

    id: str
    title: str = ""
    summary: str = ""
    content: str = ""
    feed: str = ""
    tags: tuple[str, ...] = ()
    url: str = ""
    published_at: datetime | None = None


@dataclass(frozen=True)
class Match:
    """A rule that fired on a document, and why.

    ``terms`` are the matched terms as they read in the normalised text
    (``"violated … airspace"`` for a proximity hit), ``entities`` the canonical
    ids of the gazetteer entities found, ``snippet`` the display text around
    the first hit, and ``highlights`` the (start, end) spans of hits in it.
    """

    rule: str
    severity: str
    title: str
    terms: tuple[str, ...]
    entities: tuple[str, ...]
    snippet: str
    highlights: tuple[tuple[int, int], ...] = field(default=(), compare=False)
    score: float = 0.0
    tags: tuple[str, ...] = ()
