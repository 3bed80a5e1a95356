"""OPML 2.0 in and out, and appending imported feeds to config.toml. Pure but for the caller's I/O.

Import reads ``<outline xmlUrl=…>`` at any depth; an outline's enclosing outlines
become its tags. XML with entity declarations is refused, as for feeds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime

from monitor.config import FeedSpec
from monitor.errors import InputError
from monitor.feeds.parse import declares_entities

_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG_RE.sub("-", text.lower()).strip("-")[:60] or "feed"


def _walk(node: ET.Element, tags: tuple[str, ...]) -> Iterable[tuple[str, str, tuple[str, ...]]]:
    for outline in node.findall("outline"):
        url = outline.get("xmlUrl") or outline.get("xmlurl") or ""
        title = outline.get("title") or outline.get("text") or ""
        if url:
            yield title, url.strip(), tags
        else:
            yield from _walk(outline, (*tags, slug(title)) if title else tags)


def read_opml(data: bytes, source: str) -> list[FeedSpec]:
    """The feeds of an OPML document; InputError naming ``source`` if it cannot be read."""
    if declares_entities(data):
        raise InputError(f"{source}: refused: the OPML declares XML entities", "remove the DOCTYPE")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise InputError(f"{source}: not valid OPML: {error}", "export it again from your feed reader") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise InputError(f"{source}: not an OPML document (no <opml><body>)", "export it again from your feed reader")
    feeds, names = [], set[str]()
    for title, url, tags in _walk(body, ()):
        name = base = slug(title or url.split("//")[-1])
        number = 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.add(name)
        feeds.append(FeedSpec(name, url, tags=tags))
    return feeds


def write_opml(feeds: Iterable[FeedSpec], now: datetime) -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "crisis-monitor feeds"
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        attributes = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.display_url}
        if feed.tags:
            attributes["category"] = ",".join(feed.tags)
        ET.SubElement(body, "outline", attributes)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def toml_feeds(feeds: Iterable[FeedSpec]) -> str:
    """``[[feeds]]`` tables to append to config.toml."""
    blocks = []
    for feed in feeds:
        lines = ["[[feeds]]", f"name = {_toml_string(feed.name)}", f"url = {_toml_string(feed.url)}"]
        if feed.tags:
            lines.append("tags = [" + ", ".join(_toml_string(t) for t in feed.tags) + "]")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def new_feeds(imported: Iterable[FeedSpec], existing: Iterable[FeedSpec]) -> list[FeedSpec]:
    """Imported feeds whose URL is not configured yet, renamed where a name is taken."""
    urls = {f.display_url for f in existing}
    names = {f.name for f in existing}
    out = []
    for feed in imported:
        if feed.url in urls:
            continue
        name, number = feed.name, 2
        while name in names:
            name, number = f"{feed.name}-{number}", number + 1
        names.add(name)
        urls.add(feed.url)
        out.append(FeedSpec(name, feed.url, feed.interval, feed.tags))
    return out
