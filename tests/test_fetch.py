"""The fetcher against a real server: conditional GET, unchanged bodies, redirects, headers."""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.feedserver import FeedServer, Route
from tests.helpers import FeedRow, make_config, poll_once, rows

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
GOOD = (FEEDS / "rss20.xml").read_bytes()


def test_conditional_get_gives_not_modified(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/f"] = Route(GOOD, etag='"v1"')
    config = make_config(tmp_path, {"f": feed_server.url("/f")})
    assert poll_once(config)["f"].new_items == 2
    second = poll_once(config)["f"]
    assert second.status == "not_modified" and second.new_items == 0
    assert feed_server.requests[-1].headers.get("if-none-match") == '"v1"'


def test_unchanged_body_is_not_parsed_again(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/f"] = Route(GOOD)  # no validators: the body hash decides
    config = make_config(tmp_path, {"f": feed_server.url("/f")})
    poll_once(config)
    second = poll_once(config)["f"]
    assert second.status == "not_modified" and "parse" not in second.timings


def test_gzip_body_is_decoded(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/f"] = Route(gzip.compress(GOOD), headers={"Content-Encoding": "gzip"})
    config = make_config(tmp_path, {"f": feed_server.url("/f")})
    assert poll_once(config)["f"].new_items == 2
    assert "gzip" in feed_server.requests[0].headers["accept-encoding"]


def test_user_agent_names_the_product(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/f"] = Route(GOOD)
    poll_once(make_config(tmp_path, {"f": feed_server.url("/f")}))
    assert feed_server.requests[0].headers["user-agent"].startswith("crisis-monitor/")


def test_permanent_redirect_moves_the_stored_url(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    feed_server.routes["/new"] = Route(GOOD)
    config = make_config(tmp_path, {"f": feed_server.url("/old")})
    assert poll_once(config)["f"].new_items == 2
    assert rows(config, FeedRow)[0].url == feed_server.url("/new")
    poll_once(config)
    assert feed_server.paths() == ["/old", "/new", "/new"]


def test_temporary_redirect_keeps_the_url(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/old"] = Route(status=302, headers={"Location": "/new"})
    feed_server.routes["/new"] = Route(GOOD)
    config = make_config(tmp_path, {"f": feed_server.url("/old")})
    poll_once(config)
    assert rows(config, FeedRow)[0].url == feed_server.url("/old")


def test_redirect_loop_is_an_error(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/a"] = Route(status=302, headers={"Location": "/b"})
    feed_server.routes["/b"] = Route(status=302, headers={"Location": "/a"})
    summary = poll_once(make_config(tmp_path, {"f": feed_server.url("/a")}))["f"]
    assert summary.status == "error" and "more than 5 redirects" in summary.error
    assert len(feed_server.requests) == 6


def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/a"] = Route(status=301, headers={"Location": "file:///etc/passwd"})
    summary = poll_once(make_config(tmp_path, {"f": feed_server.url("/a")}))["f"]
    assert summary.status == "error" and "non-http" in summary.error
