"""Fetching the article pages of new items, for feeds with ``full_text = true``.

The same fetcher as the feeds (its deadline, byte cap, redirects, global and per-host limits
and User-Agent), and polite on top of it:

- robots.txt is asked first, once per site and then from a cache for ``[http] robots_ttl``
  (five minutes at most when it could not be read, so one failure does not stop a day's
  pages); one fetch of it per site at a time, however many items wait;
- a link to a loopback, private, link-local or otherwise non-public address, directly or by a
  redirect, is not followed unless the feed itself is on that host: a feed cannot make the
  daemon read an internal service and store what it says.

Every failure is the item's ``FullText`` error (robots, HTTP status, timeout, size, address);
it never stops the poll, and the item is matched and stored on what its feed gave.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from monitor.dedupe import Known, plan, too_old
from monitor.feeds.extract import Robots, main_texts, robots_rules
from monitor.feeds.fetch import Fetcher, FetchResult
from monitor.types import Document, FullText
from monitor.workers import WorkerLost

UNREADABLE_ROBOTS_TTL = 300.0
ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


@dataclass(frozen=True)
class Page:
    """An article page fetched for the item ``key``, to extract its text from."""

    key: str
    result: FetchResult


def _public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_global
    except ValueError:
        return False


class Articles:
    """Article pages and the robots.txt of their sites. One per daemon (the robots cache is here)."""

    def __init__(self, fetcher: Fetcher, clock: Callable[[], float] = time.monotonic) -> None:
        self.fetcher, self.clock = fetcher, clock
        self.ttl = fetcher.settings.robots_ttl
        self._robots: dict[str, tuple[float, Robots]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def robots(self, url: str) -> Robots:
        """The robots.txt of ``url``'s site, from the cache while it is fresh."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            cached = self._robots.get(origin)
            if cached is not None and cached[0] > self.clock():
                return cached[1]
            fetched = await self.fetcher.fetch(f"{origin}/robots.txt")
            code = 200 if fetched.status == "ok" else fetched.http_status or None
            robots = robots_rules(code, fetched.body, fetched.error)
            ttl = min(self.ttl, UNREADABLE_ROBOTS_TTL) if robots.refuse else self.ttl
            self._robots[origin] = (self.clock() + ttl, robots)
            return robots

    async def refused_address(self, url: str, trusted_host: str) -> str:
        """Why ``url`` may not be fetched for its address ("" when it may)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host == trusted_host:
            return ""
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 80, type=socket.SOCK_STREAM)
            except OSError:
                return ""  # the fetch says it cannot connect, in its own words
            addresses = [str(info[4][0]) for info in found]
        private = [address for address in addresses if not _public(address)]
        return f"{host} is a non-public address ({private[0]}): not fetched" if private else ""

    async def page(self, doc: Document, trusted_host: str) -> Page | FullText:
        """The page of ``doc``'s link, or why it was not fetched."""
        if not doc.url:
            return FullText("error", error="the item has no link to fetch")
        refused = await self.refused_address(doc.url, trusted_host)
        if refused:
            return FullText("error", error=refused)
        allowed, why = (await self.robots(doc.url)).allows(doc.url, self.fetcher.settings.user_agent)
        if not allowed:
            return FullText("error", error=why)
        result = await self.fetcher.fetch(doc.url, guard=lambda hop: self.refused_address(hop, trusted_host),
                                          accept=ACCEPT_HTML)
        if result.status != "ok":
            return FullText("error", error=result.error or result.status)
        return Page(doc.id, result)

    async def pages(self, docs: list[Document], feed_url: str) -> tuple[list[Page], dict[str, FullText]]:
        """The pages of ``docs`` fetched together (within the fetcher's limits), and the failures."""
        trusted = urlsplit(feed_url).hostname or ""
        results = await asyncio.gather(*(self.page(doc, trusted) for doc in docs))
        pages = [result for result in results if isinstance(result, Page)]
        failed = {doc.id: result for doc, result in zip(docs, results, strict=True) if isinstance(result, FullText)}
        return pages, failed


InWorker = Callable[..., Awaitable[Any]]


async def full_texts(articles: Articles, docs: list[Document], known: Mapping[str, Known], feed_url: str,
                     selector: str, now: datetime, max_item_age: float, in_worker: InWorker) -> dict[str, FullText]:
    """The article text, or why there is none, of each new item of a poll, by item id.

    Items too old to alert are not fetched (a new feed's backlog costs its site nothing); pages
    are fetched together, then their text is extracted in a worker (it is CPU work)."""
    new = plan(docs, known).new
    texts = {doc.id: FullText("error", error="older than max_item_age: not fetched")
             for doc in new if too_old(doc.published_at, now, max_item_age)}
    pages, failed = await articles.pages([doc for doc in new if doc.id not in texts], feed_url)
    texts.update(failed)
    if pages:
        work = [(page.key, page.result.body, dict(page.result.headers), page.result.url) for page in pages]
        try:
            texts.update(await in_worker(main_texts, work, selector))
        except WorkerLost as lost:
            texts.update({page.key: FullText("error", error=f"extracting the text {lost}") for page in pages})
    return texts
