"""The daemon's surge job (issue 15): which rules it checks and how often, the routing of a surge alert
(channel min_severity and tags apply), one alert per window, the job following a reload, and a surge through a
real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import Config
from monitor.daemon import SURGE_JOB, Daemon, Runtime, load_active, surge_every, surge_rules
from monitor.store.surges import SurgeRule
from monitor.stories.surge import SurgeSpec, window_of
from tests.feedserver import FeedServer
from tests.helpers import PG_URL, AlertRow, DeliveryRow, fresh_database, make_config, rows
from tests.test_loader import ENTITIES
from tests.test_surge_store import HOUR, NOW, Seed

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]
DRONES = """\
id: drones
title: Drones over a border
severity: high
tags: [airspace]
query: drones
surge: {window: WINDOW, factor: 3, min_count: 5}
"""
QUIET = "id: quiet\ntitle: Never surges\nseverity: high\ntags: [airspace]\nquery: drones\n"
CHANNELS = "".join(f'[[channels]]\nname = "{name}"\ntype = "webhook"\nurl = "http://127.0.0.1:9/{name}"\n{extra}'
                   for name, extra in (("ops", 'min_severity = "high"\n'), ("pager", 'min_severity = "critical"\n'),
                                       ("air", 'tags = ["airspace"]\n'), ("votes", 'tags = ["elections"]\n')))


def rules_folder(tmp_path: Path, window: str = "1h") -> Path:
    folder = tmp_path / "rules"
    (folder / "entities").mkdir(parents=True, exist_ok=True)
    (folder / "entities" / "base.yaml").write_text(ENTITIES)
    (folder / "drones.yaml").write_text(DRONES.replace("WINDOW", window))
    (folder / "quiet.yaml").write_text(QUIET)
    return folder


def config_for(tmp_path: Path, database: str, window: str = "1h") -> Config:
    return make_config(tmp_path, {}, database, extra=CHANNELS, rules=rules_folder(tmp_path, window))


def test_the_job_checks_the_rules_with_surge_routed_like_their_alerts(tmp_path: Path) -> None:
    active = load_active(config_for(tmp_path, ""))
    assert surge_rules(active) == [SurgeRule("drones", "Drones over a border", "high", ("airspace",),
                                             SurgeSpec(window=HOUR, factor=3, min_count=5), ("ops", "air"))]


@pytest.mark.parametrize(("windows", "every"), [
    ((), 300.0), ((3600.0,), 300.0), ((3600.0, 600.0), 100.0), ((30.0,), 10.0)])
def test_the_job_runs_every_sixth_of_the_shortest_window_within_10s_and_5min(windows: tuple[float, ...],
                                                                               every: float) -> None:
    assert surge_every([SurgeRule(f"r{n}", "t", "high", (), SurgeSpec(window=w), ()) for n, w in
                        enumerate(windows)]) == every


@pytest.mark.parametrize("kind", DATABASES)
def test_a_surge_pass_writes_one_alert_per_window_to_the_routed_channels(tmp_path: Path, kind: str) -> None:
    config = config_for(tmp_path, fresh_database(kind, tmp_path))
    clock = {"now": NOW}

    async def scenario() -> list[list[str | None]]:
        async with Runtime(config, clock=lambda: clock["now"]) as runtime:
            seed = Seed(runtime.store)
            seed.quiet_history(hours=30)
            seed.burst(12)
            for number in range(12):  # the rule without surge: its burst is no surge
                seed.story(NOW - timedelta(minutes=20), ["a.example", "b.example"], rule="quiet", title=f"q{number}")
            passes = [[outcome.alert_id for _, outcome in await runtime.surge_pass()]]
            clock["now"] = NOW + timedelta(minutes=25)  # the next pass, in the same window
            passes.append([outcome.alert_id for _, outcome in await runtime.surge_pass()])
            return passes

    first, second = asyncio.run(scenario())
    assert len(first) == 1 and first[0] is not None and second == [None]
    [alert] = rows(config, AlertRow)
    assert (alert.id, alert.kind, alert.rule, alert.key) == (first[0], "surge", "drones",
                                                             f"surge:drones:{window_of(NOW, HOUR)}")
    assert alert.detail["surge"]["count"] == 12 and alert.detail["surge"]["baseline"] == 1.0
    assert sorted(d.channel for d in rows(config, DeliveryRow)) == ["air", "ops"]  # not pager, not votes


def test_the_job_is_scheduled_fires_and_follows_a_reload(tmp_path: Path) -> None:
    config = config_for(tmp_path, "")

    async def scenario() -> tuple[timedelta, timedelta, bool, int]:
        daemon = Daemon(str(config.path))
        async with Runtime(config, clock=lambda: NOW) as runtime:
            daemon.runtime = runtime
            from monitor.store.outage import DatabaseWatch

            daemon.database = DatabaseWatch(runtime.store.probe_write)
            daemon._schedule_surges()
            daemon.scheduler.start(paused=True)
            try:
                before = daemon.scheduler.get_job(SURGE_JOB).trigger.interval
                seed = Seed(runtime.store)
                seed.quiet_history(hours=30)
                seed.burst(12)
                await daemon._surge_job()
                woke = daemon.wake_dispatcher.is_set()
                rules_folder(tmp_path, "10m")
                daemon.reload()  # what SIGHUP does: the feed jobs are redone, the surge job kept at its new pace
                after = daemon.scheduler.get_job(SURGE_JOB).trigger.interval
            finally:
                daemon.scheduler.shutdown(wait=False)
                await daemon.database.close()
            return before, after, woke, len(rows(config, AlertRow))

    before, after, woke, alerts = asyncio.run(scenario())
    assert before == timedelta(minutes=5) and after == timedelta(seconds=100)
    assert woke and alerts == 1


def test_a_poll_cycle_checks_surges_and_delivers_them(tmp_path: Path) -> None:
    config = make_config(tmp_path, {}, rules=rules_folder(tmp_path))  # no channels: the console

    async def scenario() -> None:
        async with Runtime(config, clock=lambda: NOW) as runtime:
            seed = Seed(runtime.store)
            seed.quiet_history(hours=30)
            seed.burst(12)
            assert await runtime.poll_all([]) == []

    asyncio.run(scenario())
    [alert] = rows(config, AlertRow)
    assert alert.kind == "surge"
    assert [(d.channel, d.status, d.alert_id) for d in rows(config, DeliveryRow)] == [
        ("console", "delivered", alert.id)]


@pytest.mark.parametrize("kind", DATABASES)
def test_a_surge_reaches_a_real_webhook_receiver_as_one_surge_message(feed_server: FeedServer, tmp_path: Path,
                                                                      kind: str) -> None:
    hook = f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{feed_server.url("/hook")}"\nmin_severity = "high"\n'
    config = make_config(tmp_path, {}, fresh_database(kind, tmp_path), extra=hook, rules=rules_folder(tmp_path))

    async def scenario() -> str | None:
        async with Runtime(config, clock=lambda: NOW) as runtime:
            seed = Seed(runtime.store)
            seed.quiet_history(hours=30)
            seed.burst(12)
            [(_, outcome)] = await runtime.surge_pass()
            await runtime.dispatcher.run_once()
            await runtime.surge_pass()  # again in the same window: nothing more to send
            await runtime.dispatcher.run_once()
            return outcome.alert_id

    alert_id = asyncio.run(scenario())
    [post] = feed_server.posts
    body = json.loads(post.body)
    assert post.headers["idempotency-key"] == body["id"] == alert_id
    assert body["type"] == "surge" and body["rule"]["id"] == "drones"
    assert body["surge"]["count"] == 12 and body["surge"]["baseline"] == 1.0 and body["surge"]["window"] == 3600.0
    assert body["surge"]["publishers"] == 3 and len(body["surge"]["top"]) == 5
    top = body["surge"]["top"][0]
    assert body["story"]["id"] == top["id"] and top["publishers"] == 3 and top["title"] == "burst 2"
    assert body["story"]["publishers"] == ["p0.example", "p1.example", "p2.example"] and body["story"]["items"] == 3
    assert body["item"]["url"] == top["url"]
    assert [d.status for d in rows(config, DeliveryRow)] == ["delivered"]
