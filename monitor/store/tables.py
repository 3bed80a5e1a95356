"""The database tables (the only module that declares SQLModel models).

Times are aware UTC datetimes; SQLModel's column type stores them as UTC (SQLite keeps
no zone) and gives them back aware. JSON lists use SQLAlchemy's JSON type, which both
SQLite and PostgreSQL store natively.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int


class FeedRow(SQLModel, table=True):
    """A configured feed and its fetch state. ``url`` differs from ``config_url`` after a
    permanent redirect."""

    __tablename__ = "feeds"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    config_url: str
    url: str
    title: str | None = None
    status: str = "never"
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    interval: float = 300.0
    quiet_polls: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    warning: str | None = None
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_new_item_at: datetime | None = None
    next_poll_at: datetime | None = None
    lease_until: datetime | None = None
    claimed_by: str | None = None
    added_at: datetime | None = None


class StoryRow(SQLModel, table=True):
    """One story (one event, however many outlets report it; issue 15). ``key`` is unique and says
    nothing: before version 6 it was the canonical URL, since then a random token. ``publishers`` and
    ``rules`` are sorted lists; ``state`` is "open" while its items are within ``[stories] window``."""

    __tablename__ = "stories"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    first_seen_at: datetime
    last_seen_at: datetime | None = Field(default=None, index=True)
    publishers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    item_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    rules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    title: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    state: str = Field(default="open", sa_column_kwargs={"server_default": "open"})


class ItemRow(SQLModel, table=True):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("feed_id", "guid"),)
    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id", index=True)
    story_id: int = Field(foreign_key="stories.id", index=True)
    guid: str
    url: str = ""
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))
    content: str = Field(default="", sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime
    first_seen_at: datetime = Field(index=True)
    updated_at: datetime
    content_hash: str
    # The article page's text for feeds with full_text (issue 18): "ok", "error" (the reason in
    # full_text_error), or None when the feed does not ask for it.
    full_text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    full_text_status: str | None = None
    full_text_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Who corroborates (issue 15): the feed's publisher key, else the URL's registrable domain; the
    # feed's tier (official, wire, media, other).
    publisher: str = Field(default="", sa_column_kwargs={"server_default": ""})
    tier: str = Field(default="other", sa_column_kwargs={"server_default": "other"})


class SignatureRow(SQLModel, table=True):
    """An item's story signature (monitor/stories/signature.py), kept while it is a candidate for
    new items: rows older than ``[stories] window`` are deleted."""

    __tablename__ = "story_signatures"
    item_id: int = Field(foreign_key="items.id", primary_key=True, sa_column_kwargs={"autoincrement": False})
    story_id: int = Field(foreign_key="stories.id", index=True)
    seen_at: datetime = Field(index=True)
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MatchRow(SQLModel, table=True):
    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("item_id", "rule"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    rule: str = Field(index=True)
    severity: str
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    entities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    snippet: str = Field(default="", sa_column=Column(Text, nullable=False))
    highlights: list[list[int]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(index=True)
    clauses: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    snippet_entities: list[str] = Field(default_factory=list,
                                        sa_column=Column(JSON, nullable=False, server_default="[]"))


class AlertRow(SQLModel, table=True):
    """A message about a story for a rule; its deliveries are the outbox.

    ``key`` makes the lifecycle idempotent across daemons: ``alert:RULE:STORY`` (one first alert),
    ``update:RULE:STORY:STEP`` (one per ladder rung or severity step), ``surge:RULE:WINDOW``.
    ``thread`` is the id of the first alert an update follows; ``detail`` the figures behind it.
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("key", name="uq_alerts_key"),)
    id: str = Field(primary_key=True)
    rule: str = Field(index=True)
    rule_title: str = ""
    severity: str
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Indexed (version 7) for retention, which finds the alerts of the items and stories it prunes.
    story_id: int = Field(foreign_key="stories.id", index=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    match_id: int = Field(foreign_key="matches.id", index=True)
    created_at: datetime = Field(index=True)
    key: str = Field(default="", sa_column_kwargs={"server_default": ""})
    kind: str = Field(default="alert", sa_column_kwargs={"server_default": "alert"})
    thread: str | None = None
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))


class DeliveryRow(SQLModel, table=True):
    """An alert on its way to one channel: pending until delivered, dead after the last attempt."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "channel"),)
    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(foreign_key="alerts.id", index=True)
    channel: str = Field(index=True)
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True)
    claimed_until: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class AttemptRow(SQLModel, table=True):
    """One attempt to send a delivery (version 7): when, its outcome ("delivered", "retry": failed and
    tried again later, "dead": failed for good), the error and the receiver's status code (HTTP or SMTP)
    when it answered; "retried" marks an ``alerts retry`` by hand. Kept while the delivery is."""

    __tablename__ = "delivery_attempts"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", index=True)
    attempt: int
    at: datetime
    outcome: str
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status_code: int | None = None


class PrunedItemRow(SQLModel, table=True):
    """What retention keeps of a pruned item (version 7): its feed and a 16-byte hash of its guid, so
    the item is not new again if the feed still carries it (monitor/dedupe.py, Store.known_items)."""

    __tablename__ = "pruned_items"
    __table_args__ = {"sqlite_with_rowid": False}
    feed_id: int = Field(foreign_key="feeds.id", primary_key=True, sa_column_kwargs={"autoincrement": False})
    guid_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    pruned_at: datetime


class SubscriptionRow(SQLModel, table=True):
    """A feed's WebSub subscription (issue 18): one per feed, found by its callback ``token``.
    ``secret`` signs what the hub pushes; it is ours, made at random, and never shown."""

    __tablename__ = "websub_subscriptions"
    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id", unique=True)
    hub: str
    topic: str
    token: str = Field(unique=True, index=True)
    secret: str
    state: str = "requested"
    lease_seconds: int | None = None
    requested_at: datetime | None = None
    expires_at: datetime | None = None
    last_error: str | None = None
    last_push_at: datetime | None = None


metadata = SQLModel.metadata
