"""Fetching feeds politely and defensively (the only httpx user for feeds).

- conditional GET (ETag, Last-Modified), so an unchanged feed costs a 304;
- one deadline for the whole fetch (connect, headers and body: a slow-drip body ends
  at ``timeout``), and a byte cap on the body counted both before and after
  decompression, which we do ourselves with a bounded zlib output, so a gzip bomb
  stops at ``max_bytes`` instead of filling memory;
- redirects followed by hand up to a limit, noting whether every hop was permanent
  (the stored URL then moves);
- 410 is ``gone``; 429 and 503 carry ``Retry-After``; everything else that goes wrong
  is an ``error`` result with a readable reason, never an exception;
- a global concurrency limit and one per host, and a descriptive User-Agent.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from monitor.config import HttpSettings

ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
          "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.9, */*;q=0.5")
_MAX_AGE_RE = re.compile(r"max-age\s*=\s*(\d+)", re.I)
_PERMANENT = (301, 308)
_CHUNK = 65536
Guard = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class FetchResult:
    """``status`` is ok, not_modified, gone or error; ``url`` the URL finally fetched."""

    status: str
    url: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    permanent_url: str | None = None
    retry_after: float | None = None
    max_age: float | None = None
    elapsed: float = 0.0
    http_status: int = 0  # the final response's status code (0: no response)

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


class _BadBody(Exception):
    pass


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def max_age(headers: Mapping[str, str]) -> float | None:
    found = _MAX_AGE_RE.search(headers.get("cache-control", ""))
    return float(found.group(1)) if found else None


class Fetcher:
    """One shared AsyncClient and the limits around it. Use as an async context manager."""

    def __init__(self, settings: HttpSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout))
        # A few idle connections kept for reuse: httpcore checks every idle connection each time it
        # places a request, so a large idle pool costs more CPU than it saves (bench/ingest_bench.py:
        # 32 idle halved the no-change cycle; 8 beat reconnecting).
        limits = httpx.Limits(max_connections=settings.concurrency,
                              max_keepalive_connections=min(settings.concurrency, 8))
        headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers, transport=transport,
                                        follow_redirects=False, trust_env=False)
        self._all = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None,
                    guard: Guard | None = None, accept: str = ACCEPT) -> FetchResult:
        """``url`` fetched; ``guard`` may refuse a redirect's target (it says why, or "")."""
        host = urlsplit(url).hostname or ""
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.per_host))
        async with self._all, per_host:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.settings.timeout):
                    result = await self._follow(url, etag, last_modified, guard, accept)
            except TimeoutError:
                result = FetchResult("error", url, error=f"timed out after {self.settings.timeout:g}s")
            except _BadBody as error:
                result = FetchResult("error", url, error=str(error))
            except httpx.HTTPError as error:
                result = FetchResult("error", url, error=_describe(error))
            return replace(result, elapsed=time.monotonic() - started)

    async def _follow(self, url: str, etag: str | None, last_modified: str | None,
                      guard: Guard | None, accept: str) -> FetchResult:
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        permanent: bool = True
        current = url
        for _ in range(self.settings.max_redirects + 1):
            request = self.client.build_request("GET", current, headers=headers)
            response = await self.client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.is_redirect and location:
                    await _drain(response)
                    permanent = permanent and response.status_code in _PERMANENT
                    current = urljoin(current, location)
                    if urlsplit(current).scheme not in ("http", "https"):
                        return FetchResult("error", url, error=f"redirect to a non-http URL: {current}")
                    refused = await guard(current) if guard is not None else ""
                    if refused:
                        return FetchResult("error", url, error=f"redirect refused: {refused}")
                    continue
                moved = current if current != url and permanent else None
                return await self._result(response, current, moved)
            finally:
                await response.aclose()
        return FetchResult("error", url, error=f"more than {self.settings.max_redirects} redirects")

    async def _result(self, response: httpx.Response, url: str, moved: str | None) -> FetchResult:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        result = FetchResult("ok", url, headers=headers, permanent_url=moved, max_age=max_age(headers),
                             http_status=status)
        if status < 200 or status >= 300:
            await _drain(response)
        if status == 304:
            return replace(result, status="not_modified")
        if status == 410:
            return replace(result, status="gone", error="HTTP 410 Gone: the publisher removed this feed")
        if status >= 400 or status < 200:
            wait = retry_after(headers.get("retry-after"), datetime.now(UTC)) if status in (429, 503) else None
            return replace(result, status="error", error=f"HTTP {status} {response.reason_phrase}".strip(),
                           retry_after=wait)
        body = await self._body(response, headers.get("content-encoding", "identity").strip().lower())
        return replace(result, body=body)

    async def _body(self, response: httpx.Response, encoding: str) -> bytes:
        cap = self.settings.max_bytes
        if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
            raise _BadBody(f"unsupported Content-Encoding {encoding!r}")
        decoder = zlib.decompressobj(47) if encoding not in ("identity", "") else None
        parts: list[bytes] = []
        raw_size = size = 0
        too_large = f"body larger than max_bytes ({cap:,} bytes)"
        async for raw in response.aiter_raw(_CHUNK):
            raw_size += len(raw)
            if raw_size > cap:
                raise _BadBody(too_large)
            data = raw
            if decoder is not None:
                try:
                    data = decoder.decompress(raw, cap - size + 1)
                except zlib.error as error:
                    raise _BadBody(f"corrupt {encoding} body: {error}") from None
                if decoder.unconsumed_tail:
                    raise _BadBody(too_large + " after decompression")
            size += len(data)
            if size > cap:
                raise _BadBody(too_large + (" after decompression" if decoder else ""))
            parts.append(data)
        return b"".join(parts)


async def _drain(response: httpx.Response, limit: int = _CHUNK) -> None:
    """Read a small unwanted body (a 304's, a redirect's, an error page) so the connection goes
    back to the pool: closing a response mid-body closes its connection. A larger one is left."""
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return
    read = 0
    async for chunk in response.aiter_raw(_CHUNK):
        read += len(chunk)
        if read > limit:
            return


def _describe(error: httpx.HTTPError) -> str:
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectError: "cannot connect", httpx.ConnectTimeout: "connect timed out",
        httpx.ReadTimeout: "read timed out", httpx.RemoteProtocolError: "protocol error",
            httpx.UnsupportedProtocol: "unsupported URL"}
    kind = kinds.get(type(error), type(error).__name__)
    detail = str(error).strip()
    return f"{kind}: {detail}" if detail else kind
