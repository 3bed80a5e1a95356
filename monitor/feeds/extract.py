"""The main text of an article page, and what robots.txt allows. Pure: given bytes, never a URL
to fetch.

- ``main_text`` hands trafilatura the HTML we fetched (trafilatura is never given a URL to
  download, and metadata extraction, the one part that might look further, is off), or, for a
  feed with ``full_text_selector``, reads the elements that CSS selector picks (lxml with
  cssselect) as ``html_to_text`` reads any HTML;
- ``robots_rules`` reads a robots.txt response with protego, the way RFC 9309 says: a 4xx
  means no rules (everything allowed), a 5xx or no answer means nothing is allowed until the
  file can be read.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree
from lxml.cssselect import CSSSelector
from protego import Protego

from monitor.text import html_to_text
from monitor.types import FullText

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_TEXT = 100_000  # characters of article text kept and matched: a whole long article, not a book
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET_RE = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_.:-]+)", re.I)
# Parsing an article page for its selector: as text.py reads HTML (nothing fetched, UTF-8 given).
_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, default_doctype=False,
                           encoding="utf-8")


def content_type(headers: Mapping[str, str]) -> str:
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


def decode(body: bytes, headers: Mapping[str, str]) -> str:
    """The page as text: the HTTP charset, else a ``<meta charset>`` in the first 4 KB, else UTF-8;
    bytes that do not decode become U+FFFD."""
    found = _HEADER_CHARSET_RE.search(str(headers.get("content-type", "")))
    meta = _CHARSET_RE.search(body[:4096])
    for candidate in (found.group(1) if found else None, meta.group(1).decode("ascii") if meta else None):
        if candidate:
            try:
                return body.decode(codecs.lookup(candidate).name, "replace")
            except LookupError:
                continue
    return body.decode("utf-8", "replace")


def _selected(page: str, selector: str) -> str:
    root = etree.fromstring(page.encode("utf-8", "replace"), _PARSER)
    if root is None:
        return ""
    chosen = CSSSelector(selector)(root)
    return "\n".join(html_to_text(etree.tostring(element, encoding="unicode", method="html")) for element in chosen)


def main_text(body: bytes, headers: Mapping[str, str], url: str, selector: str = "") -> FullText:
    """The article's text, with white space collapsed per paragraph; an error when there is none."""
    kind = content_type(headers)
    if kind and kind not in HTML_TYPES:
        return FullText("error", error=f"not an HTML page ({kind})")
    page = decode(body, headers)
    if selector:
        text = _selected(page, selector)
        missing = f"nothing matches full_text_selector {selector!r}"
    else:
        import trafilatura  # here, not at the top: it costs most of a second to import, and only
        # daemons with full-text feeds (in the worker that extracts) need it

        text = trafilatura.extract(page, url=url or None, output_format="txt", with_metadata=False,
                                   include_comments=False, include_images=False) or ""
        missing = "no main text found in the page"
    lines = (" ".join(line.split()) for line in text.splitlines())
    text = "\n".join(line for line in lines if line)
    if not text:
        return FullText("error", error=missing)
    if len(text) > MAX_TEXT:
        return FullText("ok", text[:MAX_TEXT], error=f"cut at {MAX_TEXT:,} characters")
    return FullText("ok", text)


def main_texts(pages: list[tuple[str, bytes, Mapping[str, str], str]], selector: str) -> dict[str, FullText]:
    """``main_text`` of several pages, by item id (one worker call for a poll's pages)."""
    return {key: main_text(body, headers, url, selector) for key, body, headers, url in pages}


@dataclass(frozen=True)
class Robots:
    """A host's robots.txt as read: ``rules`` to ask, or everything allowed (None) or refused."""

    rules: Protego | None
    refuse: str = ""  # why nothing may be fetched ("" when rules decide)

    def allows(self, url: str, user_agent: str) -> tuple[bool, str]:
        if self.refuse:
            return False, self.refuse
        if self.rules is None or self.rules.can_fetch(url, user_agent):
            return True, ""
        return False, "robots.txt disallows it"


def robots_rules(status: int | None, body: bytes, error: str = "") -> Robots:
    """What a robots.txt fetch says: ``status`` is the HTTP status (None: no answer, ``error``)."""
    if status is None or status >= 500:
        why = error or f"HTTP {status}"
        return Robots(None, refuse=f"robots.txt could not be read ({why}): not fetched until it can be")
    if status >= 400:
        return Robots(None)
    return Robots(Protego.parse(body.decode("utf-8", "replace")))
