"""OPML 2.0 in and out, and appending imported feeds to config.toml. Pure but for the caller's I/O.

Import reads ``<outline xmlUrl=…>`` at any depth, with its title and ``htmlUrl``; an outline's
enclosing outlines (and its ``category``) become its tags. Export writes them back, so a round trip
keeps them. XML with entity declarations is refused, as for feeds.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit
from xml.parsers import expat

from monitor.config import FeedSpec
from monitor.errors import InputError
from monitor.feeds.parse import declares_entities

_SLUG_RE = re.compile(r"[\W_]+")
_SCHEMES = ("http", "https")


def slug(text: str) -> str:
    """A feed name from a title: lower case, runs of anything but letters and digits (of any script) as
    one "-": "Reuters World & Europe" is reuters-world-europe, "Новости России" новости-россии."""
    return _SLUG_RE.sub("-", unicodedata.normalize("NFC", text).lower()).strip("-")[:60].strip("-") or "feed"


@dataclass(frozen=True)
class Outline:
    """A feed outline of an OPML file, with the line it starts on."""

    line: int
    title: str
    url: str
    html_url: str = ""
    tags: tuple[str, ...] = ()


@dataclass
class Import:
    """What importing outlines into a config would do: the feeds to add, the outlines already configured
    (with the name they are configured under) and the outlines refused (with why)."""

    added: list[FeedSpec] = field(default_factory=list)
    duplicates: list[tuple[Outline, str]] = field(default_factory=list)
    invalid: list[tuple[Outline, str]] = field(default_factory=list)


def read_outlines(data: bytes, source: str) -> list[Outline]:
    """The feed outlines of an OPML document, at any depth; InputError naming ``source`` if unreadable.

    Enclosing outlines become tags, as does an outline's ``category`` ("a,b" or "/a/b")."""
    if declares_entities(data):
        raise InputError(f"{source}: refused: the OPML declares XML entities", "remove the DOCTYPE")
    parser = expat.ParserCreate()
    found: list[Outline] = []
    stack: list[str] = []  # the tag of each open element ("" for none), for the folders' tags
    root: list[str] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        if not root:
            root.append(name)
        if name != "outline":
            stack.append("")
            return
        url = (attributes.get("xmlUrl") or attributes.get("xmlurl") or "").strip()
        title = (attributes.get("title") or attributes.get("text") or "").strip()
        tags = tuple(t for t in stack if t)
        if url:
            tags += tuple(slug(c) for c in re.split(r"[,/]", attributes.get("category", "")) if c.strip())
            html = (attributes.get("htmlUrl") or attributes.get("htmlurl") or "").strip()
            found.append(Outline(parser.CurrentLineNumber, title, url, html, tuple(dict.fromkeys(tags))))
        stack.append(slug(title) if title and not url else "")

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: stack.pop()
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        raise InputError(f"{source}: not valid OPML: {error}", "export it again from your feed reader") from None
    if root != ["opml"] or b"<body" not in data:
        raise InputError(f"{source}: not an OPML document (no <opml><body>)", "export it again from your feed reader")
    return found


def read_opml(data: bytes, source: str) -> list[FeedSpec]:
    """The feeds of an OPML document, named after their titles; InputError naming ``source`` if unreadable."""
    feeds, names = [], set[str]()
    for outline in read_outlines(data, source):
        name = base = slug(outline.title or outline.url.split("//")[-1])
        number = 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.add(name)
        feeds.append(FeedSpec(name, outline.url, tags=outline.tags, title=outline.title, html_url=outline.html_url))
    return feeds


def refusal(outline: Outline) -> str:
    """Why an outline cannot be a feed, or "" when it can."""
    if "${" in outline.url:
        return "the URL holds ${…}, which config.toml would read from the environment"
    try:
        parts = urlsplit(outline.url)
    except ValueError:
        return "not a URL"
    if parts.scheme.lower() not in _SCHEMES:
        return f"not an http(s) URL ({parts.scheme or 'no'} scheme); feeds are fetched over http or https"
    if not parts.hostname:
        return "the URL names no host"
    if any(c.isspace() or not c.isprintable() for c in outline.url):
        return "the URL holds spaces or control characters"
    return ""


def plan_import(outlines: Iterable[Outline], existing: Iterable[FeedSpec]) -> Import:
    """Sort outlines into feeds to add (renamed where a name is taken), duplicates and refusals."""
    plan = Import()
    urls = {f.display_url: f.name for f in existing}
    names = {f.name for f in existing} | set(urls.values())
    for outline in outlines:
        why = refusal(outline)
        if why:
            plan.invalid.append((outline, why))
            continue
        if outline.url in urls:
            plan.duplicates.append((outline, urls[outline.url]))
            continue
        name = base = slug(outline.title or outline.url.split("//")[-1])
        number = 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.add(name)
        urls[outline.url] = name
        plan.added.append(FeedSpec(name, outline.url, tags=outline.tags, title=outline.title,
                                   html_url=outline.html_url))
    return plan


def write_opml(feeds: Iterable[FeedSpec], now: datetime) -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "crisis-monitor feeds"
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        title = feed.title or feed.name
        attributes = {"type": "rss", "text": title, "title": title, "xmlUrl": feed.display_url}
        if feed.html_url:
            attributes["htmlUrl"] = feed.html_url
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
        if feed.title and feed.title != feed.name:
            lines.append(f"title = {_toml_string(feed.title)}")
        if feed.html_url:
            lines.append(f"html_url = {_toml_string(feed.html_url)}")
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
        out.append(FeedSpec(name, feed.url, feed.interval, feed.tags, title=feed.title, html_url=feed.html_url))
    return out
