"""The outbox dispatcher: claim due deliveries, send each through its channel, record the outcome.

Retries back off exponentially with jitter up to a cap and honour Retry-After; after
``MAX_ATTEMPTS`` a delivery is ``dead`` (kept, visible in ``alerts list``).
Channels whose type this version cannot send yet keep their deliveries pending.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from monitor.config import ChannelSpec
from monitor.notify.base import Notifier
from monitor.notify.console import ConsoleNotifier
from monitor.store.repo import Store
from monitor.types import Alert

log = logging.getLogger("monitor.deliver")

MAX_ATTEMPTS = 8
BASE_DELAY = 30.0
MAX_DELAY = 3600.0
LEASE = 120.0


def retry_delay(attempts: int, retry_after: float | None, draw: float) -> float:
    """Seconds before the next attempt after ``attempts`` failures; ``draw`` in [0, 1) is the jitter."""
    delay = min(BASE_DELAY * 2.0 ** min(attempts - 1, 30), MAX_DELAY) * (0.5 + draw / 2)
    return max(delay, retry_after or 0.0)


def build_notifiers(channels: list[ChannelSpec]) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for channel in channels:
        if channel.type == "console":
            notifiers[channel.name] = ConsoleNotifier()
        else:
            log.warning("channel %s: type %s is not delivered by this version; its alerts wait in the outbox",
                        channel.name, channel.type)
    return notifiers


class Dispatcher:
    def __init__(self, store: Store, notifiers: Mapping[str, Notifier], clock: Callable[[], datetime]) -> None:
        self.store, self.notifiers, self.clock = store, notifiers, clock

    async def run_once(self) -> int:
        """Send every due delivery; how many were delivered."""
        delivered = 0
        while self.notifiers:
            batch = await asyncio.to_thread(self.store.claim_deliveries, list(self.notifiers), self.clock(), LEASE)
            if not batch:
                break
            for alert in batch:
                delivered += await self._deliver(alert)
        return delivered

    async def _deliver(self, alert: Alert) -> int:
        failure = await self.notifiers[alert.channel].send(alert)
        now = self.clock()
        if failure is None:
            await asyncio.to_thread(self.store.delivered, alert.delivery_id, now)
            log.info("delivered", extra={"event": "delivery", "channel": alert.channel, "alert": alert.id,
                                         "status": "delivered"})
            return 1
        attempts = alert.attempts + 1
        retry_at = None
        if failure.retryable and attempts < MAX_ATTEMPTS:
            retry_at = now + timedelta(seconds=retry_delay(attempts, failure.retry_after, random.random()))
        await asyncio.to_thread(self.store.failed, alert.delivery_id, failure.error, retry_at)
        log.warning("delivery failed", extra={"event": "delivery", "channel": alert.channel, "alert": alert.id,
                                              "status": "pending" if retry_at else "dead", "error": failure.error})
        return 0

    async def close(self) -> None:
        for notifier in self.notifiers.values():
            await notifier.close()
