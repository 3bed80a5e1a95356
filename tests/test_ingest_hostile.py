"""Hostile and failing feeds over real HTTP: each fails alone, with a status that says why,
while the good feed beside them is ingested. No entity is expanded, no external one fetched."""

from __future__ import annotations

import asyncio
import gzip
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import metrics
from monitor.daemon import Runtime
from monitor.pipeline import PollSummary
from tests.feedserver import FeedServer, Route
from tests.helpers import FeedRow, items_by_feed, make_config, poll_once, rows

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
GOOD = (FEEDS / "rss20.xml").read_bytes()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title><guid>x</guid></item></channel></rss>
"""


def xxe(url: str) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{url}">]>
<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title><guid>x</guid></item></channel></rss>
""".encode()


@pytest.fixture
def hostile(feed_server: FeedServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = feed_server
    s.routes.update({
        "/good": Route(GOOD, headers={"Content-Type": "application/rss+xml"}),
        "/e500": Route(b"oops", status=500),
        "/e503": Route(b"busy", status=503, headers={"Retry-After": "120"}),
        "/e429": Route(b"slow down", status=429, headers={"Retry-After": "90"}),
        "/hang": Route(behaviour="hang"),
        "/drip": Route(GOOD, behaviour="drip"),
        "/big": Route(b"<rss>" + b"x" * 3_000_000 + b"</rss>"),
        "/bomb": Route(gzip.compress(b"\0" * 50_000_000), headers={"Content-Encoding": "gzip"}),
        "/laughs": Route(BILLION_LAUGHS),
        "/xxe": Route(xxe(s.url("/secret"))),
        "/garbage": Route(b"<html><body>Not a feed at all</body></html>", headers={"Content-Type": "text/html"}),
        "/gone": Route(b"", status=410),
        "/json-bad": Route(b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "a",}]}',
                           headers={"Content-Type": "application/feed+json"}),
        "/json-deep": Route(b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 200_000),
        "/json-other": Route(b'{"hello": "world", "items": []}', headers={"Content-Type": "application/json"}),
        "/json-list": Route(b'[{"id": "x"}]', headers={"Content-Type": "application/json"}),
        "/json-latin1": Route(b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": "caf\xe9"}]}'),
        "/json-big": Route(b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "'
                           + b"x" * 3_000_000 + b'"}]}'),
        "/secret": Route(b"top secret"),
    })
    names = [p.strip("/") for p in s.routes if p != "/secret"]
    config = make_config(tmp_path, {n: s.url(f"/{n}") for n in names},
                         extra='[http]\ntimeout = "2s"\nmax_bytes = "1MB"\n')
    started = datetime.now(UTC)
    summaries = poll_once(config)
    return config, summaries, started


EXPECTED_ERRORS = {
    "e500": "HTTP 500",
    "e503": "HTTP 503",
    "e429": "HTTP 429",
    "hang": "timed out after 2s",
    "drip": "timed out after 2s",
    "big": "larger than max_bytes",
    "bomb": "larger than max_bytes (1,000,000 bytes) after decompression",
    "laughs": "declares XML entities",
    "xxe": "declares XML entities",
    "garbage": "not an RSS, Atom or JSON feed",
    "json-bad": "not a JSON Feed: bad JSON at line 1 column 70: Expecting property name",
    "json-deep": "not a JSON Feed: the JSON nests too deeply",
    "json-other": "not a JSON Feed: no version (expected https://jsonfeed.org/version/1.1)",
    "json-list": "not a JSON Feed: the top level is a list, not an object",
    "json-latin1": "not a JSON Feed: the body is not UTF-8",
    "json-big": "larger than max_bytes",
}


def test_each_hostile_feed_fails_alone_with_a_reason(hostile, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    config, summaries, _ = hostile
    assert summaries["good"].status == "ok" and summaries["good"].new_items == 2
    assert len(items_by_feed(config)["good"]) == 2
    for name, reason in EXPECTED_ERRORS.items():
        assert summaries[name].status == "error", name
        assert reason in summaries[name].error, (name, summaries[name].error)
    assert summaries["gone"].status == "gone"
    stored = {row.name: row for row in rows(config, FeedRow)}
    for name in EXPECTED_ERRORS:
        assert stored[name].status == "error" and stored[name].consecutive_failures == 1
        assert stored[name].last_error == summaries[name].error
    assert "/secret" not in feed_server.paths(), "an external entity was fetched"
    assert set(items_by_feed(config)) == {"good"}


def test_retry_after_is_honoured(hostile) -> None:  # type: ignore[no-untyped-def]
    _, summaries, started = hostile
    assert summaries["e503"].next_poll_at >= started + timedelta(seconds=120)
    assert summaries["e429"].next_poll_at >= started + timedelta(seconds=90)
    # an error without Retry-After backs off from the interval (5 minutes), jittered by at most 10%
    assert summaries["e500"].next_poll_at >= started + timedelta(seconds=270)


def test_failures_back_off_but_never_stop(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/e500"] = Route(b"oops", status=500)
    config = make_config(tmp_path, {"e500": feed_server.url("/e500")}, extra='max_interval = "20m"\n')
    delays = []
    for _ in range(6):
        before = datetime.now(UTC)
        summary = poll_once(config)["e500"]
        delays.append((summary.next_poll_at - before).total_seconds())
    assert [round(d / 300) for d in delays[:3]] == [1, 2, 4]  # 5m, 10m, 20m, each ±10%
    assert all(d <= 20 * 60 * 1.1 for d in delays)  # capped at max_interval, polling continues
    assert rows(config, FeedRow)[0].consecutive_failures == 6
    feed_server.routes["/e500"] = Route(GOOD)
    summary = poll_once(config)["e500"]
    assert summary.status == "ok" and rows(config, FeedRow)[0].consecutive_failures == 0


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_feed_that_holds_its_worker_past_the_deadline_fails_alone_and_the_worker_is_replaced(
        feed_server: FeedServer, tmp_path: Path) -> None:
    # 20,000 items keep feedparser busy for seconds: past a deadline of half a second, as a feed
    # that sends it into an endless loop would be past any deadline.
    items = "".join(f"<item><guid>g{n}</guid><title>Item {n}</title><description>{'word ' * 40}</description>"
                    f"</item>" for n in range(20_000))
    feed_server.routes["/heavy"] = Route(f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                                         f"{items}</channel></rss>".encode())
    feed_server.routes["/good"] = Route(GOOD)
    feed_server.routes["/later"] = Route(GOOD.replace(b"<guid>", b"<guid>later-"))
    config = replace(make_config(tmp_path, {n: feed_server.url(f"/{n}") for n in ("good", "heavy", "later")}),
                     parse_workers=1)
    specs = {spec.name: spec for spec in config.feeds}
    restarts_before = metrics.REGISTRY.get_sample_value("crisis_monitor_worker_restarts_total") or 0.0

    async def polls() -> tuple[list[PollSummary], list[int], list[int], int]:
        async with Runtime(config) as runtime:
            assert runtime.workers is not None
            await runtime.poll_all([specs["good"]])  # the worker is up
            before = runtime.workers.pids()
            runtime.pipeline.worker_deadline = 0.5
            heavy = await runtime.poll_all([specs["heavy"]])
            runtime.pipeline.worker_deadline = 60.0
            later = await runtime.poll_all([specs["later"]])
            return heavy + later, before, runtime.workers.pids(), runtime.workers.restarts

    (heavy, later), before, after, restarts = asyncio.run(polls())
    assert heavy.status == "error" and "parsing took longer than 0.5 s; its worker was stopped" in heavy.error
    assert later.status == "ok" and later.new_items > 0  # parsed by the new worker
    assert restarts == 1 and before and set(before).isdisjoint(after)
    assert metrics.REGISTRY.get_sample_value("crisis_monitor_worker_restarts_total") == restarts_before + 1
    for _ in range(100):
        if all(map(_gone, before)):
            break
        time.sleep(0.1)
    assert all(map(_gone, before)), "the stuck worker was not stopped"
    assert items_by_feed(config).get("heavy", []) == []
