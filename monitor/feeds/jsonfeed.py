"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org) to documents, as ``parse`` does RSS and Atom. Pure.

feedparser does not read JSON Feed, so this module maps its fields to the same Document an
RSS or Atom entry gives:

- ``id`` (a string; 1.0 feeds sometimes give a number) -> the document id, else ``url``,
  else a content hash;
- ``url``, else ``external_url`` -> the link, made absolute against ``home_page_url``;
- ``title``, ``summary`` and ``content_text`` are plain text (escaped, so ``<not a tag>``
  survives the HTML-to-text step); ``content_html`` is HTML and wins over ``content_text``;
- ``date_published``, else ``date_modified`` (RFC 3339) -> the publication time;
- ``tags`` -> tags; ``authors`` (1.1) and ``author`` (1.0) are checked and, like the authors
  of RSS and Atom entries, not kept;
- the feed's ``hubs`` of type WebSub and its ``feed_url`` are what WebSub subscribes to.

A body that is not JSON, or JSON that is not a JSON Feed, is the feed's ``problem`` (a
clear status line), never an exception; an item of the wrong shape is skipped with a
``warning``. Its size is the fetcher's ``max_bytes`` cap, and nesting is bounded by the
JSON decoder's recursion limit, which is caught.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JSON_TYPES = ("application/feed+json", "application/json")
_VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
_BOMS = (b"\xef\xbb\xbf",)


@dataclass(frozen=True)
class JsonFeed:
    """What a JSON Feed body gave: raw item mappings and the feed's own fields, or a problem."""

    items: list[dict[str, Any]]
    title: str = ""
    home_page_url: str = ""
    feed_url: str = ""
    hubs: tuple[str, ...] = ()
    problem: str = ""
    warning: str = ""


def is_json_feed(data: bytes, headers: Mapping[str, str]) -> bool:
    """True for a body to read as JSON: it starts with ``{`` (no XML feed can), or the server
    says JSON and it does not start with ``<``."""
    head = data[:64]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    head = head.lstrip()
    if head.startswith(b"{"):
        return True
    kind = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    return kind in JSON_TYPES and not head.startswith(b"<")


def _text(value: Any) -> str:
    """A JSON scalar as a string ("" for null, a list or an object)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return ""
    return str(value)


def _hubs(feed: Mapping[str, Any]) -> tuple[str, ...]:
    hubs = feed.get("hubs")
    if not isinstance(hubs, list):
        return ()
    return tuple(_text(hub.get("url")) for hub in hubs
                 if isinstance(hub, dict) and _text(hub.get("type")).lower() == "websub" and _text(hub.get("url")))


def read_json_feed(data: bytes) -> JsonFeed:
    """The items and feed fields of a JSON Feed body, or why it is not one."""
    try:
        feed = json.loads(data)  # bytes: UTF-8 (with or without a BOM), UTF-16 or UTF-32
    except UnicodeDecodeError as error:
        return JsonFeed([], problem=f"not a JSON Feed: the body is not UTF-8 ({error.reason})")
    except json.JSONDecodeError as error:
        return JsonFeed([], problem=f"not a JSON Feed: bad JSON at line {error.lineno} column {error.colno}: "
                                    f"{error.msg}")
    except RecursionError:
        return JsonFeed([], problem="not a JSON Feed: the JSON nests too deeply")
    if not isinstance(feed, dict):
        return JsonFeed([], problem=f"not a JSON Feed: the top level is a {type(feed).__name__}, not an object")
    version = _text(feed.get("version"))
    if not version.startswith(_VERSION_PREFIXES):
        shown = f"version {version!r}" if version else "no version"
        return JsonFeed([], problem=f"not a JSON Feed: {shown} (expected https://jsonfeed.org/version/1.1)")
    items = feed.get("items")
    if not isinstance(items, list):
        return JsonFeed([], problem="not a JSON Feed: \"items\" is missing or not an array")
    good = [item for item in items if isinstance(item, dict)]
    skipped = len(items) - len(good)
    warning = f"skipped {skipped} item(s) that are not JSON objects" if skipped else ""
    return JsonFeed(good, title=_text(feed.get("title")), home_page_url=_text(feed.get("home_page_url")),
                    feed_url=_text(feed.get("feed_url")), hubs=_hubs(feed), warning=warning)


def rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 time in UTC; None when absent or unreadable (the item then dates from when
    it was first seen, as an RSS item without a date does)."""
    text = _text(value).strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def item_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Feed item's fields in the shape of a Document's (HTML for the three text fields).
    The link is left relative: the caller knows the base."""
    plain = {key: html.escape(_text(item.get(key)), quote=False) for key in ("title", "summary", "content_text")}
    content = _text(item.get("content_html")) or plain["content_text"]
    tags = item.get("tags")
    return {
        "id": _text(item.get("id")).strip(),
        "link": _text(item.get("url")) or _text(item.get("external_url")),
        "title": plain["title"],
        "summary": plain["summary"],
        "content": content,
        "tags": tuple(tag for tag in tags if isinstance(tag, str) and tag) if isinstance(tags, list) else (),
        "published_at": rfc3339(item.get("date_published")) or rfc3339(item.get("date_modified")),
    }
