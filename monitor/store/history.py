"""One alert with its deliveries and every attempt to send them (issue 21 point 11), for ``alerts show``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from monitor.store.repo import Store
from monitor.store.tables import AlertRow, AttemptRow, DeliveryRow, FeedRow, ItemRow
from monitor.types import iso


def alert_history(store: Store, alert_id: str) -> dict[str, Any] | None:
    """The alert ``alert_id`` (None if there is none): what it is about, its deliveries, and the attempts
    to send each, oldest first; ``alerts retry`` adds a "retried" line and never removes one."""
    with Session(store.engine) as session:
        found = session.execute(select(AlertRow, col(ItemRow.title), col(ItemRow.url), col(FeedRow.name))
                                .join(ItemRow, col(ItemRow.id) == AlertRow.item_id)
                                .join(FeedRow, col(FeedRow.id) == ItemRow.feed_id)
                                .where(col(AlertRow.id) == alert_id)).first()
        if found is None:
            return None
        alert, title, url, feed = found
        deliveries = session.execute(select(DeliveryRow).where(col(DeliveryRow.alert_id) == alert_id)
                                     .order_by(col(DeliveryRow.channel))).scalars().all()
        attempts = session.execute(select(AttemptRow, col(DeliveryRow.channel))
                                   .join(DeliveryRow, col(DeliveryRow.id) == AttemptRow.delivery_id)
                                   .where(col(DeliveryRow.alert_id) == alert_id)
                                   .order_by(col(AttemptRow.at), col(AttemptRow.id))).all()
    return {"id": alert.id, "rule": alert.rule, "rule_title": alert.rule_title, "severity": alert.severity,
            "kind": alert.kind, "story": alert.story_id, "created_at": iso(alert.created_at),
            "item": {"title": title, "url": url, "feed": feed},
            "deliveries": [{"channel": d.channel, "status": d.status, "attempts": d.attempts,
                            "last_error": d.last_error, "next_attempt_at": iso(d.next_attempt_at),
                            "delivered_at": iso(d.delivered_at)} for d in deliveries],
            "attempts": [{"at": iso(a.at), "channel": channel, "attempt": a.attempt, "outcome": a.outcome,
                          "status_code": a.status_code, "error": a.error} for a, channel in attempts]}
