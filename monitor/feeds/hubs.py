"""WebSub I/O: subscribing to the hubs feeds advertise, and answering the hubs on our callback.

On only when ``[web] public_url`` says where hubs reach us. The decisions are ``websub``'s;
this module asks the store, the network and the pipeline:

- at every poll of a feed (``after_poll``): a feed that advertises a hub gets a subscription
  (a random callback token and secret of its own, kept in the store), and a subscription is
  renewed when ``renewal_due`` says so; while a lease runs, the feed is polled only at
  ``max_interval``, as the safety net, and when it lapses polling goes back to its own pace;
- a hub's GET on ``/websub/<token>`` is answered with its challenge (``verification``);
- a hub's POST is accepted only with a valid ``X-Hub-Signature``, and its body goes through
  the same parse, match and store path as a polled feed (``Pipeline.ingest_push``). A bad
  signature is acknowledged (the spec allows it, and it tells a prober nothing) and ignored,
  with the reason on the subscription.

The hub URL comes from the feed, so it is checked like an article link: no request to a
non-public address unless the feed is on that host.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from monitor.config import FeedSpec
from monitor.errors import ConfigError
from monitor.feeds.parse import ParsedFeed
from monitor.feeds.websub import Subscription, pushing, renewal_due, signature_valid, subscribe_form, verification
from monitor.store.subscriptions import Subscriptions
from monitor.types import FeedState

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline

log = logging.getLogger("monitor.websub")
HUB_TIMEOUT = 10.0


class WebSub:
    def __init__(self, pipeline: Pipeline, public_url: str) -> None:
        self.pipeline, self.public_url = pipeline, public_url
        self.subscriptions = Subscriptions(pipeline.store)
        self._pushing: dict[str, bool] = {}

    def pushing(self, feed: str) -> bool:
        """Whether a hub pushes ``feed`` now, as of its last poll or verification here."""
        return self._pushing.get(feed, False)

    async def after_poll(self, spec: FeedSpec, state: FeedState, parsed: ParsedFeed | None, now: datetime) -> None:
        """Subscribe to the hub ``parsed`` advertises, or renew, when due (``parsed`` None: the
        body did not change, so the stored subscription stands)."""
        current = await asyncio.to_thread(self.subscriptions.of_feed, state.id)
        if parsed is not None and parsed.hubs:
            topic = parsed.self_url or state.url
            if current is None or (current.hub, current.topic) != (parsed.hubs[0], topic):
                current = Subscription(state.id, parsed.hubs[0], topic, token=secrets.token_urlsafe(24),
                                       secret=secrets.token_hex(32))
        if current is None:
            return
        self._pushing[spec.name] = pushing(current, now)
        if renewal_due(current, now, self.pipeline.config.max_interval):
            await self._subscribe(spec, current, state.url, now)

    async def _subscribe(self, spec: FeedSpec, subscription: Subscription, feed_url: str, now: datetime) -> None:
        # Stored before the hub is asked: it may verify before it answers. An active lease stays
        # active until it runs out or the hub verifies the renewal.
        state = subscription.state if subscription.state == "active" else "requested"
        await asyncio.to_thread(self.subscriptions.save, replace(subscription, state=state, requested_at=now,
                                                                 last_error=None))
        error = await self.pipeline.articles.refused_address(subscription.hub, urlsplit(feed_url).hostname or "")
        if not error:
            try:
                response = await self.pipeline.fetcher.client.post(
                    subscription.hub, data=subscribe_form(subscription, self.public_url), timeout=HUB_TIMEOUT)
            except httpx.HTTPError as failure:
                error = f"cannot reach the hub: {type(failure).__name__}: {failure}".rstrip(": ")
            else:
                if not response.is_success:
                    error = f"the hub answered HTTP {response.status_code}: {response.text[:200].strip()}"
        if error:
            await asyncio.to_thread(self.subscriptions.note_error, subscription.token, error)
        log.info("websub subscribe", extra={"event": "websub", "feed": spec.name, "hub": subscription.hub,
                                            "error": error})

    async def verify(self, token: str, params: Mapping[str, str]) -> tuple[int, str]:
        """A hub's GET on our callback: (status, body)."""
        found = await asyncio.to_thread(self.subscriptions.by_token, token)
        now = self.pipeline.clock()
        answer = verification(params, found[0] if found else None, now)
        if found is not None and answer.state is not None:
            subscription, feed = found
            if answer.state == "active":
                subscription = replace(subscription, lease_seconds=answer.lease_seconds, expires_at=answer.expires_at)
                self._pushing[feed] = True
            await asyncio.to_thread(self.subscriptions.save,
                                    replace(subscription, state=answer.state, last_error=answer.error))
            log.info("websub verified", extra={"event": "websub", "feed": feed, "state": answer.state,
                                               "lease_seconds": answer.lease_seconds, "error": answer.error})
        return answer.status, answer.body

    async def deliver(self, token: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        """A hub's POST of new content: (status, body)."""
        found = await asyncio.to_thread(self.subscriptions.by_token, token)
        if found is None:
            return 404, "no such subscription"
        subscription, feed = found
        now = self.pipeline.clock()
        if not signature_valid(headers.get("x-hub-signature"), body, subscription.secret):
            log.warning("websub push with a bad signature ignored", extra={"event": "websub", "feed": feed})
            await asyncio.to_thread(self.subscriptions.note_push, token, now, "a push with a missing or bad "
                                    "X-Hub-Signature was ignored")
            return 202, ""
        try:
            spec = self.pipeline.config.feed(feed)
        except ConfigError:
            return 410, "this feed is no longer followed"
        summary = await self.pipeline.ingest_push(spec, body, headers)
        await asyncio.to_thread(self.subscriptions.note_push, token, now,
                                f"a push was unreadable: {summary.error}" if summary.error else None)
        return 202, ""
