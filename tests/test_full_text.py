"""Full article text for feeds with ``full_text = true``, against real servers on 127.0.0.1:
the article read and matched, robots.txt honoured and cached, and every failure (robots
disallow, 404, huge page, slow page, a link to an internal address) recorded on an item that
is still stored and matched on what its feed gave."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from monitor import commands
from monitor.config import HttpSettings, load
from monitor.errors import ConfigError
from monitor.feeds.articles import Articles
from monitor.feeds.extract import main_text, robots_rules
from monitor.feeds.fetch import Fetcher
from monitor.store.repo import Store
from monitor.store.schema import LATEST
from tests.feedserver import FeedServer, Route
from tests.helpers import PG_URL, ItemRow, MatchRow, fresh_database, items_by_feed, make_config, poll_once, rows

UA = "crisis-monitor/0.1.0 (+https://github.com/crisis-monitor/crisis-monitor)"
STORY = ("Three Russian MiG-31 jets violated Estonian airspace for 12 minutes on Friday, the defence ministry in "
         "Tallinn said. The aircraft flew without flight plans and with transponders off.")


def article(body: str, title: str = "Baltic update") -> bytes:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav></header>
<main><article><h1>{title}</h1><p>{body}</p>
<p>Estonia summoned the Russian chargé d'affaires and asked NATO allies for consultations.</p></article></main>
<aside><h3>Most read</h3><ul><li><a href="/1">Celebrity wedding photos</a></li></ul></aside>
<footer>Copyright 2025 Example News. <a href="/privacy">Privacy</a></footer>
<script>var tracking = "violated airspace";</script></body></html>""".encode()


def rss(items: list[tuple[str, str, str]]) -> bytes:
    entries = "".join(f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
                      f"<description>Read more on our site.</description></item>" for guid, title, link in items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'.encode()


def html(body: bytes) -> Route:
    return Route(body, headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.fixture
def site(feed_server: FeedServer) -> FeedServer:
    s = feed_server
    s.routes.update({
        "/robots.txt": Route(b"User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"}),
        "/a/ok.html": html(article(STORY)),
        "/private/secret.html": html(article("A page robots.txt keeps us out of.")),
        "/a/huge.html": html(b"<html><body><p>" + b"big " * 100_000 + b"</p></body></html>"),
        "/a/slow.html": Route(article(STORY), behaviour="drip", headers={"Content-Type": "text/html"}),
        "/a/report.pdf": Route(b"%PDF-1.4", headers={"Content-Type": "application/pdf"}),
    })
    s.routes["/feed"] = Route(rss([
        ("ok", "Baltic update", s.url("/a/ok.html")),
        ("disallowed", "Private", s.url("/private/secret.html")),
        ("missing", "Gone", s.url("/a/missing.html")),
        ("huge", "Huge", s.url("/a/huge.html")),
        ("slow", "Slow", s.url("/a/slow.html")),
        ("pdf", "A PDF", s.url("/a/report.pdf")),
        ("internal", "Internal", f"http://localhost:{s.port}/a/ok.html"),
    ]))
    return s


def _config(tmp_path: Path, server: FeedServer, feed_extra: str = "", extra: str = ""):  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, {"teasers": server.url("/feed")},
                         extra=extra + '[http]\ntimeout = "2s"\nmax_bytes = "200KB"\n')
    body = config.path.read_text().replace('url = "' + server.url("/feed") + '"',
                                           'url = "' + server.url("/feed") + '"\nfull_text = true\n' + feed_extra)
    config.path.write_text(body)
    return load(body, config.path, {})


EXPECTED_ERRORS = {
    "disallowed": "robots.txt disallows it",
    "missing": "HTTP 404 Not Found",
    "huge": "body larger than max_bytes (200,000 bytes)",
    "slow": "timed out after 2s",
    "pdf": "not an HTML page (application/pdf)",
    "internal": "localhost is a non-public address (",
}


def test_article_text_is_read_matched_and_stored_and_failures_say_why(site: FeedServer, tmp_path: Path) -> None:
    config = _config(tmp_path, site)
    summary = poll_once(config)["teasers"]
    assert summary.status == "ok" and summary.new_items == 7  # every item stored, whatever its page did
    items = {item.guid: item for item in items_by_feed(config)["teasers"]}
    ok = items["ok"]
    assert ok.full_text_status == "ok" and ok.full_text_error is None
    assert STORY in ok.full_text and "summoned the Russian chargé" in ok.full_text
    for junk in ("Celebrity", "Copyright", "tracking", "Sport"):
        assert junk not in ok.full_text
    assert ok.content == "" and ok.summary == "Read more on our site."  # the feed's own text, as it gave it
    matched = {(m.item_id, m.rule) for m in rows(config, MatchRow)}
    assert (ok.id, "airspace-violation") in matched  # the teaser alone would not match
    for guid, reason in EXPECTED_ERRORS.items():
        assert items[guid].full_text_status == "error", guid
        assert reason in (items[guid].full_text_error or ""), (guid, items[guid].full_text_error)
        assert items[guid].full_text == ""
    paths = site.paths()
    assert paths.count("/robots.txt") == 1  # once per site, however many items wait
    assert "/private/secret.html" not in paths
    article_requests = [seen for seen in site.requests if seen.path.startswith("/a/")]
    assert article_requests and all(seen.headers["user-agent"].startswith("crisis-monitor/")
                                    and seen.headers["accept"].startswith("text/html") for seen in article_requests)


def test_items_list_json_shows_the_full_text_status(site: FeedServer, tmp_path: Path) -> None:
    config = _config(tmp_path, site)
    poll_once(config)
    out = io.StringIO()
    assert commands.items_list(str(config.path), None, None, "json", out) == 0
    listed = {row["title"]: row for row in json.loads(out.getvalue())}
    assert listed["Baltic update"]["full_text_status"] == "ok" and listed["Baltic update"]["full_text_chars"] > 200
    assert listed["Private"]["full_text_status"] == "error"
    assert listed["Private"]["full_text_error"] == "robots.txt disallows it"


def test_the_selector_overrides_extraction(feed_server: FeedServer, tmp_path: Path) -> None:
    page = (b'<html><body><div class="teaser">Subscribe now</div><div class="story"><p>Drones over '
            b'<b>Rzesz&oacute;w</b> airport.</p><p>Flights were halted.</p></div><div class="story">Second part.'
            b"</div></body></html>")
    feed_server.routes["/s.html"] = html(page)
    feed_server.routes["/feed"] = Route(rss([("s", "Selector", feed_server.url("/s.html"))]))
    config = _config(tmp_path, feed_server, feed_extra='full_text_selector = "div.story"\n')
    poll_once(config)
    item = items_by_feed(config)["teasers"][0]
    assert item.full_text == "Drones over Rzeszów airport. Flights were halted.\nSecond part."
    assert item.full_text_status == "ok"


def test_a_selector_that_matches_nothing_is_the_reason(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/s.html"] = html(b"<html><body><p>Text</p></body></html>")
    feed_server.routes["/feed"] = Route(rss([("s", "Selector", feed_server.url("/s.html"))]))
    poll_once(config := _config(tmp_path, feed_server, feed_extra='full_text_selector = "#story"\n'))
    item = items_by_feed(config)["teasers"][0]
    assert item.full_text_error == "nothing matches full_text_selector '#story'"


def test_robots_txt_is_cached_across_polls_then_read_again(site: FeedServer, tmp_path: Path) -> None:
    clock = [1000.0]

    async def polls() -> None:
        async with Fetcher(HttpSettings(timeout=2.0, robots_ttl=60.0)) as fetcher:
            articles = Articles(fetcher, clock=lambda: clock[0])
            for _ in range(3):
                assert not (await articles.robots(site.url("/a/ok.html"))).refuse
            clock[0] += 61  # past robots_ttl
            await articles.robots(site.url("/a/ok.html"))

    asyncio.run(polls())
    assert site.paths().count("/robots.txt") == 2


def test_an_unreadable_robots_txt_stops_the_pages_of_that_site(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/robots.txt"] = Route(b"down", status=503)
    feed_server.routes["/a.html"] = html(article(STORY))
    feed_server.routes["/feed"] = Route(rss([("a", "A", feed_server.url("/a.html"))]))
    config = _config(tmp_path, feed_server)
    poll_once(config)
    item = items_by_feed(config)["teasers"][0]
    assert item.full_text_error == ("robots.txt could not be read (HTTP 503 Service Unavailable): "
                                    "not fetched until it can be")
    assert "/a.html" not in feed_server.paths()


def test_no_robots_txt_allows_everything_and_a_feed_without_full_text_fetches_no_page(
        feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/a.html"] = html(article(STORY))
    feed_server.routes["/feed"] = Route(rss([("a", "A", feed_server.url("/a.html"))]))
    plain = make_config(tmp_path, {"plain": feed_server.url("/feed")})
    poll_once(plain)
    assert feed_server.paths() == ["/feed"]
    assert items_by_feed(plain)["plain"][0].full_text_status is None
    second = tmp_path / "second"
    second.mkdir()
    config = _config(second, feed_server)
    poll_once(config)
    assert items_by_feed(config)["teasers"][0].full_text_status == "ok"  # /robots.txt is a 404 here


def test_a_redirect_to_an_internal_address_is_not_followed(feed_server: FeedServer, tmp_path: Path) -> None:
    async def fetch() -> str:
        async with Fetcher(HttpSettings(timeout=2.0)) as fetcher:
            articles = Articles(fetcher)
            feed_server.routes["/r"] = Route(status=302, headers={"Location": f"http://localhost:{feed_server.port}/x"})
            result = await fetcher.fetch(feed_server.url("/r"), guard=lambda url: articles.refused_address(url, ""))
            return result.error

    error = asyncio.run(fetch())
    assert error.startswith("redirect refused: localhost is a non-public address (") and error.endswith("not fetched")
    assert "/x" not in feed_server.paths()


def test_trafilatura_is_given_the_page_and_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("extraction tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    result = main_text(article(STORY), {"content-type": "text/html"}, "https://news.example.org/a")
    assert result.status == "ok" and STORY in result.text


def test_a_page_without_text_and_a_legacy_charset() -> None:
    empty = main_text(b"<html><body><script>var a = 1;</script></body></html>", {}, "")
    assert empty.error == "no main text found in the page"
    latin = "<html><body><div id='t'><p>Général Łódź</p></div></body></html>".encode("iso-8859-2")
    found = main_text(latin, {"content-type": "text/html; charset=ISO-8859-2"}, "", "#t")
    assert found.text == "Général Łódź"


@pytest.mark.parametrize(("status", "body", "url", "allowed"), [
    (200, b"User-agent: *\nDisallow: /private/\n", "http://x/private/a", False),
    (200, b"User-agent: *\nDisallow: /private/\n", "http://x/public/a", True),
    (200, b"User-agent: crisis-monitor\nDisallow: /\n\nUser-agent: *\nAllow: /\n", "http://x/a", False),
    (404, b"", "http://x/a", True),
    (401, b"", "http://x/a", True),
    (500, b"", "http://x/a", False),
    (None, b"", "http://x/a", False),
])
def test_robots_rules_follow_rfc_9309(status: int | None, body: bytes, url: str, allowed: bool) -> None:
    assert robots_rules(status, body, "cannot connect").allows(url, UA)[0] is allowed


def test_full_text_survives_a_second_poll_and_the_item_is_not_fetched_again(site: FeedServer, tmp_path: Path) -> None:
    config = _config(tmp_path, site)
    poll_once(config)
    before = len([p for p in site.paths() if p.startswith("/a/")])
    site.routes["/feed"] = Route(site.routes["/feed"].body + b"<!-- changed -->")
    poll_once(config)
    assert len([p for p in site.paths() if p.startswith("/a/")]) == before
    assert len(rows(config, ItemRow)) == 7


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="set CRISIS_MONITOR_TEST_DATABASE_URL to run on PostgreSQL"))])
def test_the_migration_adds_the_columns_in_place_and_keeps_items(tmp_path: Path, kind: str) -> None:
    database = fresh_database(kind, tmp_path)
    Store(database).close()
    engine = create_engine(database)
    try:
        with engine.begin() as connection:  # the database as version 1 left it, with an item in it
            for column in ("full_text", "full_text_status", "full_text_error"):
                connection.execute(text(f"ALTER TABLE items DROP COLUMN {column}"))
            connection.execute(text("UPDATE schema_version SET version = 1"))
            connection.execute(text("INSERT INTO feeds (name, config_url, url, status, interval, quiet_polls, "
                                    "consecutive_failures) VALUES ('f', 'u', 'u', 'ok', 300, 0, 0)"))
            connection.execute(text("INSERT INTO stories (key, first_seen_at) VALUES ('k', '2025-01-01 00:00:00')"))
            connection.execute(text(
                "INSERT INTO items (feed_id, story_id, guid, url, title, summary, content, tags, published_at, "
                "first_seen_at, updated_at, content_hash) SELECT f.id, s.id, 'g', '', 'Kept', '', '', '[]', "
                "'2025-01-01 00:00:00', '2025-01-01 00:00:00', '2025-01-01 00:00:00', 'h' FROM feeds f, stories s"))
        Store(database).close()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version FROM schema_version")).scalar() == LATEST
            assert connection.execute(text("SELECT title, full_text, full_text_status FROM items")).all() == [
                ("Kept", "", None)]
    finally:
        engine.dispose()


@pytest.mark.parametrize(("text_", "expected"), [
    ('[[feeds]]\nname = "a"\nurl = "https://a"\nfull_text = "yes"\n',
     "/etc/cm/config.toml:4: feeds[0].full_text: expected bool"),
    ('[[feeds]]\nname = "a"\nurl = "https://a"\nfull_text_selector = "div..story"\n',
     "/etc/cm/config.toml:4: feeds[0].full_text_selector: not a CSS selector"),
    ('[monitor]\nfull_text = 1\n', "/etc/cm/config.toml:2: monitor.full_text: expected bool"),
    ('[http]\nrobots_ttl = "soon"\n', "/etc/cm/config.toml:2: http.robots_ttl: 'soon' is not a duration"),
])
def test_full_text_settings_are_checked(text_: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text_, Path("/etc/cm/config.toml"), {})
    assert str(caught.value).startswith(expected) and "(hint: " in str(caught.value)


def test_the_global_default_applies_unless_a_feed_says_otherwise() -> None:
    config = load('[monitor]\nfull_text = true\n[[feeds]]\nname = "a"\nurl = "https://a"\n'
                  '[[feeds]]\nname = "b"\nurl = "https://b"\nfull_text = false\n', Path("/etc/cm/c.toml"), {})
    assert [(f.name, f.full_text) for f in config.feeds] == [("a", True), ("b", False)]
    assert load("", Path("/etc/cm/c.toml"), {}).http.robots_ttl == 3600
