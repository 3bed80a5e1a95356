"""The outbox dispatcher: claim due deliveries, decide (policy), send through each channel,
record the outcome.

Retries back off exponentially with jitter up to a cap and honour Retry-After; after the
last attempt a delivery is ``dead``: kept, visible in ``alerts list``, and ``alerts retry``
makes it pending again. Nothing is ever deleted unsent.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from monitor import metrics
from monitor.config import ChannelSpec, Config, DeliverySettings
from monitor.notify.base import Notifier, SendFailure
from monitor.notify.policy import Postpone, Send, decide
from monitor.store.outbox import Outbox
from monitor.types import Alert

log = logging.getLogger("monitor.deliver")

PARALLEL = 8  # webhook requests in flight per channel


def retry_delay(settings: DeliverySettings, attempts: int, retry_after: float | None, draw: float) -> float:
    """Seconds before the next attempt after ``attempts`` failures; ``draw`` in [0, 1) is the jitter
    (the delay is spread over its upper half, so retries of a burst do not arrive together)."""
    delay = min(settings.backoff * 2.0 ** min(attempts - 1, 30), settings.max_backoff) * (0.5 + draw / 2)
    return max(delay, min(retry_after or 0.0, 86400.0))


def build_notifier(channel: ChannelSpec, user_agent: str) -> Notifier:
    if channel.type == "webhook":
        from monitor.notify.webhook import WebhookNotifier

        return WebhookNotifier(channel, user_agent)
    if channel.type == "slack":
        from monitor.notify.slack import SlackNotifier

        return SlackNotifier(channel, user_agent)
    if channel.type == "email":
        from monitor.notify.email import EmailNotifier

        return EmailNotifier(channel)
    from monitor.notify.console import ConsoleNotifier

    return ConsoleNotifier()


def lease_for(channels: Sequence[ChannelSpec]) -> float:
    """How long a claim holds: longer than any send can take, so only a dead daemon's claims expire."""
    return max((float(c.options.get("timeout", 10.0)) for c in channels), default=10.0) * 2 + 10


class Dispatcher:
    def __init__(self, config: Config, outbox: Outbox, clock: Callable[[], datetime],
                 notifiers: Mapping[str, Notifier] | None = None) -> None:
        self.channels = {c.name: c for c in config.channels}
        self.settings = config.delivery
        self.outbox, self.clock = outbox, clock
        self.notifiers = dict(notifiers) if notifiers is not None else {
            c.name: build_notifier(c, config.http.user_agent) for c in config.channels}
        self.lease = lease_for(config.channels)
        self.failures: Counter[str] = Counter()  # failed sends since start: "retry" (pending again) or "dead"

    async def run_once(self) -> int:
        """Send every due delivery; how many were delivered."""
        delivered = 0
        while True:
            batch = await asyncio.to_thread(self.outbox.claim, list(self.notifiers), self.clock(), self.lease)
            if not batch:
                return delivered
            by_channel: dict[str, list[Alert]] = {}
            for alert in batch:
                by_channel.setdefault(alert.channel, []).append(alert)
            results = await asyncio.gather(*(self._channel(name, alerts) for name, alerts in by_channel.items()))
            delivered += sum(results)

    async def _channel(self, name: str, alerts: list[Alert]) -> int:
        channel = self.channels[name]
        now = self.clock()
        recent: dict[str, int] = {}
        if channel.group_window:
            since = now - timedelta(seconds=channel.group_window)
            recent = await asyncio.to_thread(self.outbox.recent, name, since)
        sends: list[Send] = []
        for action in decide(channel, alerts, now, recent, groupable=channel.type != "webhook"):
            if isinstance(action, Postpone):
                await asyncio.to_thread(self.outbox.postpone, [a.delivery_id for a in action.alerts], action.until)
            else:
                sends.append(action)
        if channel.type == "webhook":
            return await self._send_parallel(channel, [a for s in sends for a in s.alerts])
        delivered = 0
        for send in sends:  # Slack's rate limit and SMTP sessions want one at a time
            delivered += await self._send(channel, send)
        return delivered

    async def _send_parallel(self, channel: ChannelSpec, alerts: list[Alert]) -> int:
        """One request per alert, PARALLEL at a time; each wave's successes recorded in one write
        before the next wave starts, so a crash can repeat only the requests in flight."""
        notifier = self.notifiers[channel.name]
        delivered = 0
        for start in range(0, len(alerts), PARALLEL):
            wave = alerts[start:start + PARALLEL]
            failures = await asyncio.gather(*(notifier.send(alert) for alert in wave))
            sent = [alert for alert, failure in zip(wave, failures, strict=True) if failure is None]
            if sent:
                await self._record(channel, sent, None)
            for alert, failure in zip(wave, failures, strict=True):
                if failure is not None:
                    await self._record(channel, [alert], failure)
            delivered += len(sent)
        return delivered

    async def _send(self, channel: ChannelSpec, action: Send) -> int:
        notifier = self.notifiers[channel.name]
        group = getattr(notifier, "send_group", None)
        if action.grouped and group is not None:
            failure: SendFailure | None = await group(action.alerts)
        else:
            failures = [await notifier.send(alert) for alert in action.alerts]
            failure = next((f for f in failures if f is not None), None)
            if failure is not None and len(action.alerts) > 1:  # record each one's own outcome
                return await self._record_each(channel, action.alerts, failures)
        await self._record(channel, action.alerts, failure)
        return 0 if failure else len(action.alerts)

    async def _record_each(self, channel: ChannelSpec, alerts: Sequence[Alert],
                           failures: Sequence[SendFailure | None]) -> int:
        for alert, failure in zip(alerts, failures, strict=True):
            await self._record(channel, [alert], failure)
        return sum(1 for f in failures if f is None)

    async def _record(self, channel: ChannelSpec, alerts: Sequence[Alert], failure: SendFailure | None) -> None:
        now = self.clock()
        ids = [a.delivery_id for a in alerts]
        if failure is None:
            metrics.DELIVERIES.labels(channel.name, "delivered").inc(len(ids))
            await asyncio.to_thread(self.outbox.delivered, ids, now)
            for alert in alerts:
                log.info("delivered", extra={"event": "delivery", "channel": channel.name, "alert": alert.id,
                                             "status": "delivered", "attempt": alert.attempts + 1})
            return
        attempts = max(a.attempts for a in alerts) + 1
        retry_at = None
        if failure.retryable and attempts < self.settings.attempts:
            retry_at = now + timedelta(seconds=retry_delay(self.settings, attempts, failure.retry_after,
                                                           random.random()))
        metrics.DELIVERIES.labels(channel.name, "retry" if retry_at else "dead").inc(len(ids))
        self.failures["retry" if retry_at else "dead"] += len(ids)
        await asyncio.to_thread(self.outbox.failed, ids, failure.error, retry_at, now, failure.status_code)
        for alert in alerts:
            log.warning("delivery failed", extra={
                "event": "delivery", "channel": channel.name, "alert": alert.id, "attempt": attempts,
                "status": "pending" if retry_at else "dead", "error": failure.error,
                "retry_at": retry_at.isoformat() if retry_at else None})

    async def close(self) -> None:
        for notifier in self.notifiers.values():
            await notifier.close()
