"""What an HTTP answer means for a delivery: done, worth retrying, or not.

Timeouts, connection errors, 408, 429 and 5xx are worth retrying (429 and 503 with their
Retry-After); any other 4xx is not: the request itself is wrong and would fail again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from monitor.feeds.fetch import retry_after
from monitor.notify.base import SendFailure

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def outcome(response: httpx.Response) -> SendFailure | None:
    status = response.status_code
    if 200 <= status < 300:
        return None
    detail = f"HTTP {status} {response.reason_phrase}".strip()
    body = response.text.strip().replace("\n", " ")[:200] if response.content else ""
    if body:
        detail += f": {body}"
    retryable = status in RETRYABLE or status >= 500
    wait = retry_after(response.headers.get("retry-after"), datetime.now(UTC)) if retryable else None
    return SendFailure(detail, retryable, wait, status)


def failure(error: httpx.HTTPError) -> SendFailure:
    """A request that got no answer: always worth retrying, except a URL httpx cannot use."""
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return SendFailure(f"invalid URL: {error}", retryable=False)
    kind = "timed out" if isinstance(error, httpx.TimeoutException) else "cannot connect" \
        if isinstance(error, httpx.ConnectError) else type(error).__name__
    return SendFailure(f"{kind}: {error}".rstrip(": "), retryable=True)
