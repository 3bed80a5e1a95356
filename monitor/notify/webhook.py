"""The webhook channel: one signed JSON POST per alert (see DESIGN.md, "Alerts")."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from monitor.config import ChannelSpec, reveal
from monitor.notify.base import SendFailure
from monitor.notify.http import failure, outcome
from monitor.notify.payload import webhook_body, webhook_headers
from monitor.types import Alert


class WebhookNotifier:
    def __init__(self, channel: ChannelSpec, user_agent: str, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = reveal(channel.options["url"])
        secret = channel.options.get("secret")
        self.secret = reveal(secret) if secret else None
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=channel.options.get("timeout", 10.0), transport=transport,
                                        headers={"User-Agent": user_agent}, follow_redirects=False, trust_env=False)

    async def send(self, alert: Alert) -> SendFailure | None:
        body = webhook_body(alert)
        headers = webhook_headers(alert, body, int(self.clock()), self.secret)
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return failure(error)
        return outcome(response)

    async def close(self) -> None:
        await self.client.aclose()
