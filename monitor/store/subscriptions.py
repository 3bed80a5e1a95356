"""WebSub subscriptions in the store: one per feed, found by feed or by callback token."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlmodel import Session, select

from monitor.feeds.websub import Subscription
from monitor.store.repo import Store, _state, aware, utc
from monitor.store.tables import FeedRow, SubscriptionRow
from monitor.types import FeedState

_TIMES = ("requested_at", "expires_at")


def _subscription(row: SubscriptionRow) -> Subscription:
    return Subscription(feed_id=row.feed_id, hub=row.hub, topic=row.topic, token=row.token, secret=row.secret,
                        state=row.state, lease_seconds=row.lease_seconds, requested_at=aware(row.requested_at),
                        expires_at=aware(row.expires_at), last_error=row.last_error)


class Subscriptions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def of_feed(self, feed_id: int) -> Subscription | None:
        with Session(self.store.engine) as session:
            row = session.exec(select(SubscriptionRow).where(SubscriptionRow.feed_id == feed_id)).first()
            return _subscription(row) if row else None

    def by_token(self, token: str) -> tuple[Subscription, str] | None:
        """The subscription whose callback ends in ``token``, and its feed's name."""
        with Session(self.store.engine) as session:
            found = session.exec(select(SubscriptionRow, FeedRow.name)
                                 .join(FeedRow, FeedRow.id == SubscriptionRow.feed_id)  # type: ignore[arg-type]
                                 .where(SubscriptionRow.token == token)).first()
            return (_subscription(found[0]), found[1]) if found else None

    def save(self, subscription: Subscription) -> None:
        """Write ``subscription`` as the feed's one subscription (replacing another hub's or topic's)."""
        values = asdict(subscription)
        for key in _TIMES:
            values[key] = utc(values[key]) if values[key] is not None else None
        with self.store.writing() as session:
            row = session.exec(select(SubscriptionRow).where(SubscriptionRow.feed_id == subscription.feed_id)).first()
            if row is None:
                session.add(SubscriptionRow(**values))
                return
            for key, value in values.items():
                setattr(row, key, value)

    def note_push(self, token: str, now: datetime, error: str | None) -> None:
        """A push from the hub: when it came (when it was taken), or why it was not."""
        with self.store.writing() as session:
            row = session.exec(select(SubscriptionRow).where(SubscriptionRow.token == token)).first()
            if row is not None:
                row.last_error = error
                if error is None:
                    row.last_push_at = utc(now)

    def note_error(self, token: str, error: str) -> None:
        with self.store.writing() as session:
            row = session.exec(select(SubscriptionRow).where(SubscriptionRow.token == token)).first()
            if row is not None:
                row.last_error = error

    def feed_state(self, name: str) -> FeedState | None:
        with Session(self.store.engine) as session:
            row = session.exec(select(FeedRow).where(FeedRow.name == name)).first()
            return _state(row) if row else None
