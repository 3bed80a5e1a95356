"""The per-story alert lifecycle end to end (issue 15): outlets' feeds on a real HTTP server, the
daemon's runtime polling them, a real webhook receiver counting what arrives, on SQLite and on
PostgreSQL. One event told by several outlets is one story with one alert per rule; distinct
events stay apart; the story's publishers crossing the ladder send updates (bounded by the
cooldown); a rule's gate holds its first alert until enough publishers carry the story; a rule
of higher severity continues the story's thread; two daemons racing on one database make one
story; a SIGKILL mid-story loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import Config, load
from monitor.daemon import Runtime
from monitor.pipeline import ActiveRules
from monitor.rules.engine import RuleSet
from monitor.stories.policy import StoryPolicy
from tests.feedserver import FeedServer, Route
from tests.helpers import PG_URL, AlertRow, ItemRow, StoryRow, distinct_events, fresh_database, rows
from tests.test_store import rss

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]

# One wire report as outlets carry it: their own headline, URL and teaser, the same body.
WIRE = ("Two Russian MiG-31 fighter jets violated Estonian airspace near Vaindloo island on Friday and stayed "
        "for twelve minutes before Italian F-35s of the NATO air policing mission escorted them out, the "
        "Estonian defence forces said. Tallinn summoned the Russian charge d'affaires and asked allies for "
        "consultations; Moscow denied that its aircraft had left international airspace over the Gulf of Finland.")
OUTLETS = {  # feed -> (publisher, tier, headline, boilerplate)
    "err": ("err.ee", "media", "Russian jets in Estonian airspace for 12 minutes", "Read more on ERR News."),
    "reuters": ("reuters.com", "wire", "Estonia says Russian fighters violated its airspace",
                "Reporting by Andrius Sytas; editing by Mark Heinrich."),
    "yle": ("yle.fi", "media", "MiG-31s over Vaindloo: Estonia protests", "Follow Yle News on social media."),
    "lrt": ("lrt.lt", "media", "Estonia: Russian MiGs entered airspace", "LRT English newsletter: sign up."),
    "mil": ("mil.ee", "official", "Airspace violation near Vaindloo", "Estonian Defence Forces press office."),
}
OTHER_EVENT = ("Drones crossed into Polish airspace over Lublin",
               "Several Russian Gerbera drones violated Polish airspace overnight near Lublin; Polish F-16s "
               "were scrambled and two drones were shot down, the operational command in Warsaw said.")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request.param, tmp_path)


def serve_outlets(server: FeedServer, only: tuple[str, ...] = tuple(OUTLETS)) -> None:
    for feed in only:
        publisher, _, headline, tail = OUTLETS[feed]
        server.routes[f"/{feed}"] = Route(rss((f"https://{publisher}/a/{feed}-vaindloo-2025", headline,
                                               f"https://{publisher}/news/vaindloo?utm_source=rss",
                                               f"{WIRE} {tail}")))


def outlets_config(tmp_path: Path, server: FeedServer, database: str, feeds: tuple[str, ...] = tuple(OUTLETS),
                   extra: str = "") -> Config:
    lines = ["[monitor]", f'rules = "{Path(__file__).resolve().parent.parent / "rules"}"', "parse_workers = 0",
             f'database = "{database}"', 'max_item_age = "3650d"', extra,
             "[[channels]]", 'name = "hook"', 'type = "webhook"', f'url = "{server.url("/hook")}"',
             "[delivery]", 'backoff = "0.2s"', 'max_backoff = "0.5s"']
    for feed in feeds:
        publisher, tier, _, _ = OUTLETS.get(feed, (f"{feed}.example", "media", "", ""))
        lines += ["[[feeds]]", f'name = "{feed}"', f'url = "{server.url("/" + feed)}"', f'publisher = "{publisher}"',
                  f'tier = "{tier}"']
    text = "\n".join(lines) + "\n"
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load(text, path, {})


def with_policy(runtime: Runtime, rule: str, policy: StoryPolicy) -> None:
    """The runtime's rules with ``rule``'s story policy replaced (as its file's keys would set it)."""
    active = runtime.active
    specs = [replace(r.spec, stories=policy) if r.spec.id == rule else r.spec for r in active.rule_set.rules]
    runtime.active = ActiveRules(RuleSet(specs, active.rule_set.gazetteer), active.router)


def poll_in_turn(config: Config, clock: Clock, steps: list[tuple[tuple[str, ...], float]],
                 setup: Callable[[Runtime], None] | None = None) -> None:
    """Poll the named feeds, then move the clock on by the minutes given, step by step."""
    async def run() -> None:
        async with Runtime(config, clock=clock) as runtime:
            if setup:
                setup(runtime)
            for feeds, minutes in steps:
                await runtime.poll_all([f for f in config.feeds if f.name in feeds])
                clock.advance(minutes=minutes)

    asyncio.run(run())


def bodies(server: FeedServer) -> list[dict[str, Any]]:
    with server.lock:
        return [json.loads(seen.body) for seen in server.acknowledged if seen.path == "/hook"]


def test_one_event_from_several_outlets_is_one_story_with_one_alert_per_rule(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    serve_outlets(feed_server, ("err", "reuters", "yle"))
    config = outlets_config(tmp_path, feed_server, database, ("err", "reuters", "yle"))
    poll_in_turn(config, Clock(datetime.now(UTC) - timedelta(hours=1)), [(("err", "reuters", "yle"), 1)])
    items = rows(config, ItemRow)
    assert len(items) == 3 and len({i.story_id for i in items}) == 1
    story = next(s for s in rows(config, StoryRow) if s.id == items[0].story_id)
    assert sorted(story.publishers) == ["err.ee", "reuters.com", "yle.fi"] and story.item_count == 3
    received = bodies(feed_server)
    assert received, "no alert arrived"
    assert Counter(b["rule"]["id"] for b in received).most_common(1)[0][1] == 1  # one per rule
    assert {b["type"] for b in received} == {"alert"}
    assert {b["story"]["id"] for b in received} == {story.id}
    assert all(len(b["story"]["publishers"]) >= 1 for b in received)


def test_the_seed_like_distinct_events_stay_apart(feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    events = distinct_events(6)
    polish = ("https://a.example/p", OTHER_EVENT[0], "https://a.example/p", OTHER_EVENT[1])
    feed_server.routes["/a"] = Route(rss(*[(f"https://a.example/{n}", title, f"https://a.example/{n}", text)
                                           for n, (title, text) in enumerate(events[:3])], polish))
    feed_server.routes["/b"] = Route(rss(*[(f"https://b.example/{n}", title, f"https://b.example/{n}", text)
                                           for n, (title, text) in enumerate(events[3:])]))
    serve_outlets(feed_server, ("reuters",))
    config = outlets_config(tmp_path, feed_server, database, ("a", "b", "reuters"))
    poll_in_turn(config, Clock(datetime.now(UTC) - timedelta(hours=1)), [(("a", "b", "reuters"), 1)])
    items = rows(config, ItemRow)
    assert len(items) == 8
    assert len({i.story_id for i in items}) == 8  # six violations, the Polish drones, the Vaindloo report
    alerts = [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
    assert len(alerts) == 8 and len({b["story"]["id"] for b in alerts}) == 8


def test_the_ladder_sends_an_update_when_publishers_reach_a_rung(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    serve_outlets(feed_server)
    feeds = ("err", "reuters", "yle", "lrt")
    config = outlets_config(tmp_path, feed_server, database, feeds)
    # default ladder [3, 10, 30] and cooldown 30 min: one outlet every 40 minutes
    poll_in_turn(config, Clock(datetime.now(UTC) - timedelta(hours=4)),
                 [((feed,), 40) for feed in feeds])
    messages = [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
    assert [b["type"] for b in messages] == ["alert", "update"]
    first, update = messages
    assert update["thread"] == first["id"] and update["story"]["id"] == first["story"]["id"]
    assert len(first["story"]["publishers"]) == 1 and len(update["story"]["publishers"]) == 3
    assert update["reason"].startswith("now 3 sources")
    keys = [seen.headers["idempotency-key"] for seen in feed_server.acknowledged if seen.path == "/hook"]
    assert len(keys) == len(set(keys))


def test_the_cooldown_holds_an_update_until_it_has_passed(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    serve_outlets(feed_server)
    config = outlets_config(tmp_path, feed_server, database, ("err", "reuters", "yle", "lrt"))
    clock = Clock(datetime.now(UTC) - timedelta(hours=4))
    # three publishers within 10 minutes of the first alert: rung 3 is reached inside the cooldown
    poll_in_turn(config, clock, [(("err",), 5), (("reuters",), 5), (("yle",), 30), (("lrt",), 1)])
    messages = [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
    assert [b["type"] for b in messages] == ["alert", "update"]
    assert len(messages[1]["story"]["publishers"]) == 4  # sent with the first item after the cooldown
    sent = [a for a in rows(config, AlertRow) if a.rule == "airspace-violation"]
    first = next(a for a in sent if a.kind == "alert")
    later = next(a for a in sent if a.kind == "update")
    assert later.created_at - first.created_at >= timedelta(minutes=30)


def test_an_update_the_cooldown_held_back_goes_out_when_it_ends_without_a_later_item(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    serve_outlets(feed_server)
    config = outlets_config(tmp_path, feed_server, database, ("err", "reuters", "yle"))
    clock = Clock(datetime.now(UTC) - timedelta(hours=4))

    async def run() -> None:
        async with Runtime(config, clock=clock) as runtime:
            for feed in ("err", "reuters", "yle"):  # rung 3 reached 10 minutes after the alert
                await runtime.poll_all([f for f in config.feeds if f.name == feed])
                clock.advance(minutes=5)
            assert await runtime.update_pass() == 0  # still within the 30-minute cooldown
            assert [s.state for s in rows(config, StoryRow)] == ["owed"]
            clock.advance(minutes=25)
            assert await runtime.update_pass() == 1
            assert await runtime.update_pass() == 0  # sent once
            await runtime.dispatcher.run_once()

    asyncio.run(run())
    messages = [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
    assert [(b["type"], len(b["story"]["publishers"])) for b in messages] == [("alert", 1), ("update", 3)]
    assert [s.state for s in rows(config, StoryRow)] == ["open"]


def test_the_gate_holds_the_first_alert_until_a_second_publisher_then_releases_it(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    serve_outlets(feed_server)
    config = outlets_config(tmp_path, feed_server, database, ("err", "reuters"))
    gate = StoryPolicy(min_sources=2, within=6 * 3600, updates=())
    clock = Clock(datetime.now(UTC) - timedelta(hours=3))

    async def run() -> None:
        async with Runtime(config, clock=clock) as runtime:
            with_policy(runtime, "airspace-violation", gate)
            await runtime.poll_all([f for f in config.feeds if f.name == "err"])
            assert not [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]  # held
            clock.advance(hours=2)
            await runtime.poll_all([f for f in config.feeds if f.name == "reuters"])

    asyncio.run(run())
    messages = [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
    assert len(messages) == 1 and messages[0]["type"] == "alert"
    assert [a.reason for a in rows(config, AlertRow) if a.rule == "airspace-violation"] == [
        "corroborated by 2 publishers"]  # the alert's reason, shown by `stories show`
    assert sorted(messages[0]["story"]["publishers"]) == ["err.ee", "reuters.com"]


def test_a_held_alert_never_goes_out_when_corroboration_comes_too_late(
        feed_server: FeedServer, tmp_path: Path, database: str, capsys: pytest.CaptureFixture[str]) -> None:
    serve_outlets(feed_server)
    config = outlets_config(tmp_path, feed_server, database, ("err", "reuters"))
    gate = StoryPolicy(min_sources=2, within=3600, updates=())
    poll_in_turn(config, Clock(datetime.now(UTC) - timedelta(hours=5)), [(("err",), 90), (("reuters",), 1)],
                 setup=lambda runtime: with_policy(runtime, "airspace-violation", gate))
    assert not [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
    assert not [a for a in rows(config, AlertRow) if a.rule == "airspace-violation"]
    story = rows(config, StoryRow)[0]
    assert main(["stories", "show", str(story.id), "--config", str(config.path)]) == 0
    assert "matched without an alert yet: airspace-violation (held until" in capsys.readouterr().out


def test_tiers_count_only_some_publishers_and_one_official_source_suffices(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    serve_outlets(feed_server)
    config = outlets_config(tmp_path, feed_server, database, ("err", "yle", "reuters", "mil"))
    wires = StoryPolicy(min_sources=2, tiers=("wire",), min_official=1, updates=())
    clock = Clock(datetime.now(UTC) - timedelta(hours=3))

    async def run() -> None:
        async with Runtime(config, clock=clock) as runtime:
            with_policy(runtime, "airspace-violation", wires)
            for feed in ("err", "yle", "reuters"):  # two media outlets and a wire: one counted publisher
                await runtime.poll_all([f for f in config.feeds if f.name == feed])
                clock.advance(minutes=10)
            assert not [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
            await runtime.poll_all([f for f in config.feeds if f.name == "mil"])  # the official source

    asyncio.run(run())
    messages = [b for b in bodies(feed_server) if b["rule"]["id"] == "airspace-violation"]
    assert len(messages) == 1 and messages[0]["item"]["url"].startswith("https://")
    assert [a.reason for a in rows(config, AlertRow) if a.rule == "airspace-violation"] == ["official source: mil.ee"]


def test_a_rule_of_higher_severity_continues_the_story_as_an_update(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    serve_outlets(feed_server)
    # the second outlet adds what makes it an Article 5 matter (a critical rule)
    _, _, headline, tail = OUTLETS["reuters"]
    feed_server.routes["/reuters"] = Route(rss((
        "https://reuters.com/a/vaindloo-art5", headline, "https://reuters.com/news/vaindloo-art5",
        f"{WIRE} Estonia is weighing whether to invoke Article 5 of the North Atlantic Treaty. {tail}")))
    config = outlets_config(tmp_path, feed_server, database, ("err", "reuters"))
    poll_in_turn(config, Clock(datetime.now(UTC) - timedelta(hours=3)), [(("err",), 20), (("reuters",), 1)])
    messages = bodies(feed_server)
    firsts = [b for b in messages if b["type"] == "alert"]
    critical = [b for b in messages if b["rule"]["severity"] == "critical"]
    if not critical:
        pytest.fail(f"the critical rule did not match the report: {[b['rule']['id'] for b in messages]}")
    assert critical[0]["type"] == "update" and critical[0]["thread"] == firsts[0]["id"]
    assert critical[0]["reason"] == "higher severity: critical (was high)"
    assert critical[0]["story"]["id"] == firsts[0]["story"]["id"]


def test_two_daemons_racing_on_copies_of_one_story_make_one_story(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    feeds = ("err", "reuters", "yle", "lrt")
    serve_outlets(feed_server, feeds)
    config = outlets_config(tmp_path, feed_server, database, feeds)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def daemon(mine: tuple[str, ...]) -> None:
        async def run() -> None:
            async with Runtime(config) as runtime:
                barrier.wait(timeout=30)
                await runtime.poll_all([f for f in config.feeds if f.name in mine])
        try:
            asyncio.run(run())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=daemon, args=(half,)) for half in (feeds[:2], feeds[2:])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    items = rows(config, ItemRow)
    assert len(items) == 4 and len({i.story_id for i in items}) == 1
    alerts = [a for a in rows(config, AlertRow) if a.kind == "alert"]
    assert Counter(a.rule for a in alerts).most_common(1)[0][1] == 1


@pytest.fixture
def receiver() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.close()


def test_a_sigkill_mid_story_loses_nothing_and_doubles_nothing(
        feed_server: FeedServer, receiver: FeedServer, tmp_path: Path) -> None:
    """The daemon is SIGKILLed while a story's update is on its way to the receiver; after a restart the
    story goes on: one alert, each rung's update once (only what was in flight may come twice, with its
    Idempotency-Key), nothing lost."""
    import shutil
    import time

    from tests.conftest import ROOT
    from tests.test_daemon import Daemon

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    rule = rules / "airspace-violation.yaml"
    rule.write_text(rule.read_text() + "updates: [2, 3, 4]\ncooldown: 1s\n")
    feeds = ("err", "reuters", "yle", "lrt")
    for feed in feeds:
        feed_server.routes[f"/{feed}"] = Route(rss())
    serve_outlets(feed_server, ("err",))
    # A feed the killed daemon was polling stays claimed until its lease runs out ([http] timeout x 3 + 60 s):
    # a short timeout keeps that to 66 s, within the waits below.
    lines = ["[monitor]", 'rules = "rules"', 'min_interval = "1s"', 'max_item_age = "3650d"',
             "[http]", 'timeout = "2s"',
             "[[channels]]", 'name = "hook"', 'type = "webhook"', f'url = "{receiver.url("/hook")}"',
             "[delivery]", 'backoff = "0.2s"', 'max_backoff = "0.5s"']
    for feed in feeds:
        publisher, tier, _, _ = OUTLETS[feed]
        lines += ["[[feeds]]", f'name = "{feed}"', f'url = "{feed_server.url("/" + feed)}"', 'interval = "1s"',
                  f'publisher = "{publisher}"', f'tier = "{tier}"']
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n")

    def posted(kind: str, everything: bool = True) -> list[dict[str, Any]]:
        with receiver.lock:
            seen = list(receiver.posts if everything else receiver.acknowledged)
        found = [json.loads(s.body) for s in seen]
        return [b for b in found if b["rule"]["id"] == "airspace-violation" and b["type"] == kind]

    def wait(condition: Callable[[], bool], what: str, seconds: float = 90, daemon: Daemon | None = None) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            log = list(daemon.lines.queue)[-40:] if daemon else []
            assert time.monotonic() < deadline, f"no {what} within {seconds}s: {log}"
            time.sleep(0.1)

    first = Daemon(config)
    try:
        wait(lambda: bool(posted("alert", everything=False)), "first alert")
        receiver.answer = lambda _: (200, 1.0)  # slow: the update is in flight when the kill lands
        serve_outlets(feed_server, ("err", "reuters"))
        wait(lambda: bool(posted("update")), "update on its way")
        first.process.kill()
        first.process.wait(timeout=30)
    finally:
        first.stop()
    with receiver.lock:
        in_flight = {s.headers["idempotency-key"] for s in receiver.posts} - {
            s.headers["idempotency-key"] for s in receiver.acknowledged}
    assert in_flight, "the kill did not land mid-delivery"
    receiver.answer = lambda _: (200, 0.0)
    serve_outlets(feed_server, feeds)
    second = Daemon(config)
    try:
        wait(lambda: any(len(b["story"]["publishers"]) == 4 for b in posted("update", everything=False)),
             "the update for four publishers", seconds=150, daemon=second)
    finally:
        assert second.stop() == 0
    stored = tmp_path / "stored.toml"
    stored.write_text(f'[monitor]\nrules = "rules"\ndatabase = "sqlite:///{tmp_path / "monitor.db"}"\n')
    items = rows(load(stored.read_text(), stored, {}), ItemRow)
    assert len(items) == 4 and len({i.story_id for i in items}) == 1
    with receiver.lock:
        counts = Counter(s.headers["idempotency-key"] for s in receiver.posts)
        acknowledged = [json.loads(s.body) for s in receiver.acknowledged]
    mine = [b for b in acknowledged if b["rule"]["id"] == "airspace-violation"]
    assert len({b["id"] for b in mine if b["type"] == "alert"}) == 1  # one alert for the story, ever
    rungs = {b["id"]: len(b["story"]["publishers"]) for b in mine if b["type"] == "update"}
    assert sorted(rungs.values()) == sorted(set(rungs.values())) and max(rungs.values()) == 4  # a rung at most once
    assert {key for key, n in counts.items() if n > 1} <= in_flight  # only what was in flight came twice
