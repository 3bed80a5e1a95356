"""The pure deciders, tested with tables: sizes, schedule maths, canonical URLs, dedupe plans, OPML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import FeedSpec
from monitor.dedupe import Known, canonical_url, document_hash, newly_matched, plan, too_old
from monitor.errors import InputError
from monitor.feeds.opml import new_feeds, read_opml, toml_feeds, write_opml
from monitor.feeds.parse import declares_entities
from monitor.schedule import Bounds, backoff, healthy_interval, is_stale, jitter
from monitor.types import Document
from monitor.units import parse_size

NOW = datetime(2025, 9, 19, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "size"), [("10MB", 10_000_000), ("512KB", 512_000), ("1MiB", 1_048_576),
                                            ("2 gb", 2_000_000_000), ("100B", 100)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "10", "ten MB", "0MB", 10, None, "-1MB"])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


BOUNDS = Bounds(base=300, min_interval=60, max_interval=3600)


@pytest.mark.parametrize(("current", "new", "quiet", "hint", "expected"), [
    (300, 5, 0, None, 150),        # posting: halve
    (150, 5, 0, None, 75),
    (75, 5, 0, None, 60),          # ... down to min_interval
    (300, 0, 1, None, 300),        # one quiet poll: keep
    (300, 0, 3, None, 600),        # every third quiet poll: double
    (2400, 0, 6, None, 3600),      # ... up to max_interval
    (300, 5, 0, 900, 900),         # <ttl> / max-age is a floor
    (300, 0, 1, 86400, 3600),      # ... but never beyond max_interval
])
def test_healthy_interval(current: float, new: int, quiet: int, hint: float | None, expected: float) -> None:
    assert healthy_interval(BOUNDS, current, new, quiet, hint) == expected


def test_a_configured_interval_outside_the_bounds_is_kept() -> None:
    assert healthy_interval(Bounds(30, 60, 3600), 30, 0, 1) == 30
    assert healthy_interval(Bounds(7200, 60, 3600), 7200, 0, 1) == 7200


@pytest.mark.parametrize(("failures", "retry_after", "expected"), [
    (1, None, 300), (2, None, 600), (3, None, 1200), (4, None, 2400), (5, None, 3600), (50, None, 3600),
    (1, 1800, 1800), (1, 10, 300), (1, 10**9, 86400),
])
def test_backoff(failures: int, retry_after: float | None, expected: float) -> None:
    assert backoff(BOUNDS, failures, retry_after) == expected


def test_jitter_stays_within_ten_percent() -> None:
    assert jitter(100, -1) == pytest.approx(90) and jitter(100, 1) == pytest.approx(110)
    assert jitter(100, 5) == pytest.approx(110) and jitter(100, 0) == 100


def test_stale() -> None:
    assert is_stale(NOW, NOW - timedelta(days=3), None, 2 * 86400)
    assert not is_stale(NOW, NOW - timedelta(days=1), None, 2 * 86400)
    assert is_stale(NOW, None, NOW - timedelta(days=3), 2 * 86400)
    assert not is_stale(NOW, None, None, 2 * 86400)


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://www.example.org/a/?utm_source=x&utm_medium=y#top", "https://example.org/a?"),
    ("http://Example.org:80/a?b=2&a=1&fbclid=z", "https://example.org/a?a=1&b=2"),
    ("https://example.org:8443/a", "https://example.org:8443/a?"),
    ("https://example.org", "https://example.org/?"),
    ("mailto:a@example.org", "mailto:a@example.org"),
])
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical.rstrip("?")


def test_plan_splits_new_changed_and_unchanged() -> None:
    same = Document("a", "t", "s")
    changed = Document("b", "t", "new text")
    new = Document("c", "t")
    known = {"a": Known(1, document_hash(same), frozenset()),
             "b": Known(2, document_hash(Document("b", "t", "old text")), frozenset({"r1"}))}
    split = plan([same, changed, new], known)
    assert split.new == [new] and split.changed == [(changed, known["b"])] and split.unchanged == 1
    assert newly_matched(["r1", "r2"], frozenset({"r1"})) == ["r2"]


def test_too_old() -> None:
    assert too_old(NOW - timedelta(days=3), NOW, 2 * 86400)
    assert not too_old(NOW - timedelta(days=1), NOW, 2 * 86400)
    assert not too_old(None, NOW, 2 * 86400)


def test_entity_declarations_are_spotted_only_in_the_prolog() -> None:
    assert declares_entities(b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><r/>')
    assert not declares_entities(b'<?xml version="1.0"?><rss><item><description>&lt;!ENTITY x&gt; '
                                 b"<![CDATA[<!ENTITY y>]]></description></item></rss>")


OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>mine</title></head><body>
<outline text="Baltic"><outline text="ERR News" type="rss" xmlUrl="https://news.err.ee/rss"/>
<outline text="ERR News" type="rss" xmlUrl="https://news.err.ee/other"/></outline>
<outline title="NATO" type="rss" xmlUrl="https://www.nato.int/rss.xml"/>
</body></opml>"""


def test_opml_import_reads_nested_outlines_with_tags() -> None:
    feeds = read_opml(OPML, "mine.opml")
    assert [(f.name, f.url, f.tags) for f in feeds] == [
        ("err-news", "https://news.err.ee/rss", ("baltic",)),
        ("err-news-2", "https://news.err.ee/other", ("baltic",)),
        ("nato", "https://www.nato.int/rss.xml", ())]


def test_opml_import_skips_configured_urls_and_renames_taken_names() -> None:
    existing = [FeedSpec("nato", "https://www.nato.int/rss.xml"), FeedSpec("err-news", "https://x.example/")]
    added = new_feeds(read_opml(OPML, "mine.opml"), existing)
    assert [(f.name, f.url) for f in added] == [("err-news-2", "https://news.err.ee/rss"),
                                                ("err-news-2-2", "https://news.err.ee/other")]
    block = 'name = "err-news-2"\nurl = "https://news.err.ee/rss"\ntitle = "ERR News"\ntags = ["baltic"]'
    assert block in toml_feeds(added)


def test_opml_round_trip() -> None:
    feeds = [FeedSpec("a", "https://a.example/rss?x=1&y=2", tags=("t",)), FeedSpec("b", "https://b.example/")]
    again = read_opml(write_opml(feeds, NOW).encode(), "export")
    assert [(f.name, f.url) for f in again] == [("a", "https://a.example/rss?x=1&y=2"), ("b", "https://b.example/")]


@pytest.mark.parametrize("data", [b"not xml", b"<html/>", b'<!DOCTYPE o [<!ENTITY a "b">]><opml/>'])
def test_bad_opml_is_an_input_error(data: bytes) -> None:
    with pytest.raises(InputError, match=r"^x\.opml: "):
        read_opml(data, "x.opml")
