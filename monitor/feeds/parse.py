"""Feed bytes to documents: RSS and Atom with feedparser, JSON Feed with ``jsonfeed``. Pure:
never given a URL, never fetches.

feedparser gets the raw bytes and the response headers, so it honours the declared
encoding (HTTP charset, XML declaration, BOM); it is never handed a URL, so it cannot
follow one. A feed that declares XML entities is refused before feedparser sees it:
no entity is ever expanded, and external ones are never fetched.

The result says what a poll needs to decide: the documents, a fatal ``problem`` (the
feed is unreadable) or a ``warning`` (feedparser recovered), and the feed's ``<ttl>``.
"""

from __future__ import annotations

import email.utils
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.dedupe import content_hash
from monitor.feeds.jsonfeed import is_json_feed, item_fields, read_json_feed
from monitor.types import Document

# The prolog is everything before the root element; entity declarations can only live there.
_ROOT_RE = re.compile(rb"<[A-Za-z_]")
_ENTITY_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)
_PROLOG_LIMIT = 65536


@dataclass(frozen=True)
class ParsedFeed:
    documents: list[Document]
    problem: str = ""
    warning: str = ""
    ttl: float | None = None
    title: str = ""
    hubs: tuple[str, ...] = ()  # WebSub hubs the feed advertises (<link rel="hub">, JSON Feed "hubs")
    self_url: str = ""  # the feed's own URL as it names it (rel="self", "feed_url"): the WebSub topic


def _raw(entry: Mapping[str, Any], key: str) -> Any:
    return dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)


def _time(entry: Mapping[str, Any]) -> datetime | None:
    """The entry's publication time in UTC: feedparser's reading, else RFC 850 and other
    forms ``email.utils`` knows (``Friday, 19-Sep-25 10:12:00 EST``), else None."""
    # dict.get, not entry.get: FeedParserDict maps updated to published with a DeprecationWarning.
    for key in ("published", "updated", "created"):
        value = _raw(entry, f"{key}_parsed")
        if value:
            year, month, day, hour, minute, second = value[:6]
            try:
                return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            except ValueError:
                continue
        raw = _raw(entry, key)
        if isinstance(raw, str) and raw.strip():
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                continue
            return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def _html(value: Any, detail: Mapping[str, Any] | None) -> str:
    """A field as HTML: text/plain values are escaped, so ``<not a tag>`` in a plain title
    survives the HTML-to-text step that every field goes through."""
    text = str(value or "")
    if detail and detail.get("type") == "text/plain":
        return html.escape(text, quote=False)
    return text


def _content(entry: Mapping[str, Any]) -> str:
    parts = entry.get("content") or []
    return "\n".join(_html(part.get("value", ""), part) for part in parts)


def _http_url(base: str, link: str) -> str:
    """``link`` made absolute against ``base``; "" for anything that is not http(s)."""
    url = urljoin(base, link.strip()) if link.strip() else ""
    return url if urlsplit(url).scheme in ("http", "https") else ""


def entry_document(entry: Mapping[str, Any], base_url: str = "", feed: str = "") -> Document:
    """One feed entry as a Document; id is its guid, else its link, else a content hash."""
    tags = tuple(str(t.get("term")) for t in entry.get("tags") or () if t.get("term"))
    return _document(str(entry.get("id") or ""), _http_url(base_url, str(entry.get("link") or "")),
                     _html(entry.get("title"), entry.get("title_detail")),
                     _html(entry.get("summary"), entry.get("summary_detail")), _content(entry), feed, tags,
                     _time(entry))


def _document(guid: str, url: str, title: str, summary: str, content: str, feed: str, tags: tuple[str, ...],
              published_at: datetime | None) -> Document:
    """An item of any format as a Document: id its guid, else its link, else a content hash; a
    summary that repeats the content is dropped."""
    guid = guid.strip() or url or "sha256:" + content_hash(title, summary, content)
    if content and content.strip() == summary.strip():
        summary = ""
    return Document(id=guid, title=title, summary=summary, content=content, feed=feed, tags=tags, url=url,
                    published_at=published_at)


def declares_entities(data: bytes) -> bool:
    """True when the XML prolog declares entities (a billion-laughs or external-entity attempt)."""
    head = data[:_PROLOG_LIMIT]
    root = _ROOT_RE.search(head.replace(b"<!", b"  ").replace(b"<?", b"  "))
    prolog = head[: root.start()] if root else head
    return bool(_ENTITY_RE.search(prolog))


def _ttl(parsed: Any) -> float | None:
    try:
        minutes = float(parsed.feed.get("ttl") or 0)
    except (TypeError, ValueError):
        return None
    return minutes * 60 if minutes > 0 else None


def _unique_ids(documents: list[Document]) -> list[Document]:
    """Entries that repeat a guid keep it apart by content: the first keeps the bare guid."""
    seen: set[str] = set()
    out = []
    for doc in documents:
        if doc.id in seen:
            doc = Document(**{**doc.__dict__, "id": f"{doc.id}#{content_hash(doc.title, doc.summary, doc.content)}"})
        if doc.id in seen:
            continue
        seen.add(doc.id)
        out.append(doc)
    return out


def parse_feed(data: bytes, headers: Mapping[str, str] | None = None,
               base_url: str = "", feed: str = "") -> ParsedFeed:
    """The documents of a feed body (RSS, Atom or JSON Feed), with what went wrong if anything did."""
    if is_json_feed(data, headers or {}):
        return _json_feed(data, base_url, feed)
    if declares_entities(data):
        return ParsedFeed([], problem="refused: the feed declares XML entities (entity expansion is never done)")
    parsed = feedparser.parse(data, response_headers=dict(headers or {}), sanitize_html=False,
                              resolve_relative_uris=False)
    reason = str(parsed.get("bozo_exception") or "").strip()
    if not parsed.version and not parsed.entries:
        detail = f": {reason}" if reason else ""
        return ParsedFeed([], problem=f"not an RSS, Atom or JSON feed{detail}")
    # Relative item links are relative to the site (the channel's <link>) far more often
    # than to wherever the feed file is served from; the fetch URL is the fallback.
    base = _http_url(base_url, str(parsed.feed.get("link") or "")) or base_url
    documents = _unique_ids([entry_document(e, base, feed) for e in parsed.entries])
    warning = f"recovered from: {reason}" if parsed.bozo else ""
    links = [link for link in parsed.feed.get("links") or () if isinstance(link, dict)]
    hubs = tuple(dict.fromkeys(_http_url(base_url, str(link.get("href") or "")) for link in links
                               if link.get("rel") == "hub"))
    selves = [_http_url(base_url, str(link.get("href") or "")) for link in links if link.get("rel") == "self"]
    return ParsedFeed(documents, warning=warning, ttl=_ttl(parsed), title=str(parsed.feed.get("title") or ""),
                      hubs=tuple(hub for hub in hubs if hub), self_url=next((url for url in selves if url), ""))


def _json_feed(data: bytes, base_url: str, feed: str) -> ParsedFeed:
    read = read_json_feed(data)
    if read.problem:
        return ParsedFeed([], problem=read.problem)
    base = _http_url(base_url, read.home_page_url) or base_url  # as for RSS: relative to the site
    documents = []
    for item in read.items:
        fields = item_fields(item)
        documents.append(_document(fields["id"], _http_url(base, fields["link"]), fields["title"], fields["summary"],
                                   fields["content"], feed, fields["tags"], fields["published_at"]))
    hubs = tuple(dict.fromkeys(url for url in (_http_url(base_url, hub) for hub in read.hubs) if url))
    return ParsedFeed(_unique_ids(documents), warning=read.warning, title=read.title, hubs=hubs,
                      self_url=_http_url(base_url, read.feed_url))


def parse_documents(data: bytes, headers: Mapping[str, str] | None = None,
                    base_url: str = "", feed: str = "") -> tuple[list[Document], str]:
    """Documents of a feed, and the reason it is unreadable ("" when it is fine)."""
    result = parse_feed(data, headers, base_url, feed)
    return result.documents, result.problem
