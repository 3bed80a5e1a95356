"""Feed bytes to documents with feedparser. Pure: never given a URL, never fetches.

feedparser gets the raw bytes (and, from the fetcher, the response headers) so
it can honour the declared encoding; it is never handed a URL, so it cannot
follow one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from monitor.types import Document


def _time(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            year, month, day, hour, minute, second = value[:6]
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return None


def _content(entry: Mapping[str, Any]) -> str:
    parts = entry.get("content") or []
    return "\n".join(str(part.get("value", "")) for part in parts)


def entry_document(entry: Mapping[str, Any], base_url: str = "", feed: str = "") -> Document:
    """One feed entry as a Document; id is its guid, else its link, else a content hash."""
    link = str(entry.get("link") or "")
    url = urljoin(base_url, link) if link else ""
    title = str(entry.get("title") or "")
    summary = str(entry.get("summary") or "")
    content = _content(entry)
    guid = str(entry.get("id") or url)
    if not guid:
        digest = hashlib.sha256("\x00".join((title, summary, content)).encode()).hexdigest()
        guid = f"sha256:{digest[:32]}"
    if content and content.strip() == summary.strip():
        summary = ""
    tags = tuple(str(t.get("term")) for t in entry.get("tags") or () if t.get("term"))
    return Document(id=guid, title=title, summary=summary, content=content, feed=feed,
                    tags=tags, url=url, published_at=_time(entry))


def parse_documents(data: bytes, headers: Mapping[str, str] | None = None,
                    base_url: str = "", feed: str = "") -> tuple[list[Document], str]:
    """Documents of a feed, and the reason it is unreadable ("" when it is fine)."""
    parsed = feedparser.parse(data, response_headers=dict(headers or {}))
    problem = ""
    if parsed.bozo and not parsed.entries:
        problem = f"not a readable feed: {parsed.get('bozo_exception')}"
    base = base_url or str(parsed.feed.get("link") or "")
    return [entry_document(e, base, feed) for e in parsed.entries], problem
