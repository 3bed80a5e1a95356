"""The Slack channel: Block Kit through an incoming-webhook URL, at most one message a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

from monitor.config import ChannelSpec, reveal
from monitor.notify.base import SendFailure
from monitor.notify.http import failure, outcome
from monitor.notify.payload import slack_group_message, slack_message
from monitor.types import Alert

MIN_GAP = 1.0  # Slack's documented rate for incoming webhooks: one message per second


class SlackNotifier:
    def __init__(self, channel: ChannelSpec, user_agent: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = reveal(channel.options["url"])
        self.client = httpx.AsyncClient(timeout=channel.options.get("timeout", 10.0), transport=transport,
                                        headers={"User-Agent": user_agent}, follow_redirects=False, trust_env=False)
        self._lock = asyncio.Lock()
        self._last = 0.0

    async def _post(self, payload: dict[str, Any]) -> SendFailure | None:
        async with self._lock:
            wait = self._last + MIN_GAP - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                response = await self.client.post(self.url, json=payload)
            except httpx.HTTPError as error:
                return failure(error)
            finally:
                self._last = time.monotonic()
        return outcome(response)

    async def send(self, alert: Alert) -> SendFailure | None:
        return await self._post(slack_message(alert))

    async def send_group(self, alerts: Sequence[Alert]) -> SendFailure | None:
        return await self._post(slack_group_message(alerts))

    async def close(self) -> None:
        await self.client.aclose()
