"""What is new: canonical URLs, story keys, and the new / changed / unchanged split of a poll.

Pure: it decides and touches nothing. The pipeline gives it what the store knows and
acts on its answer (the Decider / Pipeline split of lemon24/reader).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.types import Document

_TRACKING_PREFIXES = ("utm_", "at_", "mc_", "_hs", "pk_", "mtm_")
_TRACKING = frozenset({"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid",
                       "ref_src", "ref_url", "cmpid", "ocid", "smid", "smtyp", "xtor", "cmp", "icid",
                       "ito", "s_cid", "__twitter_impression", "spm", "share", "rss", "feed_id"})


def content_hash(title: str, summary: str, content: str) -> str:
    """A digest of what an item says: a changed hash is an updated item (and an item without a guid or
    link is known by it)."""
    return hashlib.sha256("\x00".join((title, summary, content)).encode()).hexdigest()[:32]


def canonical_url(url: str) -> str:
    """``url`` without what makes one story look like two: tracking parameters, fragment,
    ``www.``, default port, trailing slash, and the http/https difference."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return url.strip()
    host = parts.hostname.removeprefix("www.")
    if port and port not in (80, 443):
        host += f":{port}"
    path = parts.path.rstrip("/") or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in _TRACKING and not k.lower().startswith(_TRACKING_PREFIXES)]
    return urlunsplit(("https", host, path, urlencode(sorted(query)), ""))


def story_key(doc: Document, feed: str) -> str:
    """The key under which the same story in several feeds is one story."""
    if doc.url:
        return canonical_url(doc.url)
    return f"item:{feed}:{doc.id}"


def document_hash(doc: Document) -> str:
    return content_hash(doc.title, doc.summary, doc.content)


@dataclass(frozen=True)
class Known:
    """What the store holds of an item already seen in this feed. ``pruned``: retention deleted the
    item and kept only its guid's hash (``guid_key``); it is never new again, nor changed."""

    item_id: int
    content_hash: str
    rules: frozenset[str]
    pruned: bool = False


PRUNED = Known(0, "", frozenset(), pruned=True)


def guid_key(guid: str) -> bytes:
    """The compact record of a pruned item's guid: 16 bytes of its SHA-256 (one chance in 2**64 that
    two guids of one feed among billions collide)."""
    return hashlib.sha256(guid.encode("utf-8", "surrogatepass")).digest()[:16]


@dataclass(frozen=True)
class Plan:
    new: list[Document]
    changed: list[tuple[Document, Known]]
    unchanged: int


def plan(documents: Iterable[Document], known: Mapping[str, Known]) -> Plan:
    """Split a poll's documents into new, changed (content differs) and unchanged ones (a pruned item
    counts as unchanged: it was seen, and alerted on if it had to be, before retention deleted it)."""
    new: list[Document] = []
    changed: list[tuple[Document, Known]] = []
    unchanged = 0
    for doc in documents:
        seen = known.get(doc.id)
        if seen is None:
            new.append(doc)
        elif not seen.pruned and seen.content_hash != document_hash(doc):
            changed.append((doc, seen))
        else:
            unchanged += 1
    return Plan(new, changed, unchanged)


def newly_matched(rules_now: Iterable[str], rules_before: frozenset[str]) -> list[str]:
    """Rules that match an updated item now and did not before: the only ones that may alert."""
    return [rule for rule in rules_now if rule not in rules_before]


def too_old(published_at: datetime | None, now: datetime, max_age: float) -> bool:
    """Items older than ``max_item_age`` are stored but never alerted on."""
    return published_at is not None and now - published_at > timedelta(seconds=max_age)
