"""Frozen value types shared across the package.

Rules (``Rule``, ``RuleSet``) live with their compiler in ``monitor.rules``;
this module holds what crosses module boundaries as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.stories.signature import Signature

SEVERITIES = ("info", "low", "medium", "high", "critical")


def iso(moment: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC with a ``Z`` (a naive time is taken to be UTC already)."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")
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
    ``clauses`` names the rule's named clauses (``$name``) that held and made
    the match, outermost first; ``snippet_entities`` are the entities the
    snippet names (the evidence an alert shows).
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
    clauses: tuple[str, ...] = ()
    snippet_entities: tuple[str, ...] = ()


FEED_STATUSES = ("ok", "not_modified", "error", "gone", "stale", "never")


@dataclass(frozen=True)
class FeedState:
    """What the store knows of a feed between polls."""

    id: int
    name: str
    url: str
    status: str = "never"
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    interval: float = 300.0
    quiet_polls: int = 0
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_new_item_at: datetime | None = None
    added_at: datetime | None = None
    claimed_by: str | None = None  # the claim's token, so a release gives back only this claim


@dataclass(frozen=True)
class FeedUpdate:
    """The fetch state a poll leaves behind; None keeps a value as it was."""

    status: str
    polled_at: datetime
    next_poll_at: datetime
    interval: float
    consecutive_failures: int = 0
    quiet_polls: int = 0
    last_error: str | None = None
    warning: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    url: str | None = None
    title: str | None = None
    success: bool = False
    new_items: bool = False


@dataclass(frozen=True)
class FullText:
    """The article page of an item, read (``status`` ok) or not (``status`` error, ``error`` why)."""

    status: str
    text: str = ""
    error: str = ""


@dataclass(frozen=True)
class ItemWrite:
    """An item to store: new (``item_id`` None) or changed, with the matches that are new for it.

    ``alert_rules`` are the rules among ``matches`` that may alert (the item is recent
    enough, and the rule did not match this item before).
    """

    doc: Document
    story_key: str
    content_hash: str
    published_at: datetime
    matches: tuple[Match, ...] = ()
    alert_rules: tuple[str, ...] = ()
    item_id: int | None = None
    full_text: FullText | None = None  # None: the feed does not ask for its items' article pages
    publisher: str = ""  # who corroborates (issue 15): the feed's publisher key, else the URL's registrable domain
    tier: str = "other"  # the feed's tier
    # its story signature when it matched a rule: only such items are clustered into stories across
    # feeds (the rest keep the story of their URL)
    signature: Signature | None = None


@dataclass(frozen=True)
class StoryRef:
    """The story an alert is about, as it stood when the alert was made (issue 15): its id is
    stable across the story's alert and updates; the counts are a snapshot, so a retried
    delivery sends the same body."""

    id: int
    publishers: tuple[str, ...]
    items: int
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class SurgeTop:
    """One of the stories a surge alert names."""

    id: int
    title: str
    url: str
    publishers: int


@dataclass(frozen=True)
class SurgeRef:
    """What a surge alert says: ``count`` matching stories of the rule in the current window (of
    ``window`` seconds, counted from the epoch) against a ``baseline`` mean per window, with the top stories."""

    count: int
    baseline: float
    window: float
    publishers: int
    top: tuple[SurgeTop, ...] = ()


@dataclass(frozen=True)
class Alert:
    """An alert as channels send it: one delivery of it to ``channel``.

    ``kind`` is "alert" (the first of a rule on a story), "update" (the story crossed the rule's
    ladder, or a rule of higher severity matched it: ``reason`` says which) or "surge" (``surge``
    set; ``story`` is then its top story). ``thread`` is the id of the first alert of this rule
    and story, for updates (email In-Reply-To/References, Slack threading); None otherwise.
    """

    id: str
    created_at: datetime
    rule: str
    rule_title: str
    severity: str
    tags: tuple[str, ...]
    item_title: str
    item_url: str
    published_at: datetime | None
    feed: str
    terms: tuple[str, ...]
    entities: tuple[str, ...]
    snippet: str
    highlights: tuple[tuple[int, int], ...] = ()
    clauses: tuple[str, ...] = ()
    snippet_entities: tuple[str, ...] = ()
    channel: str = ""
    delivery_id: int = 0
    attempts: int = 0
    kind: str = "alert"
    story: StoryRef | None = None
    thread: str | None = None
    reason: str = ""
    surge: SurgeRef | None = None
