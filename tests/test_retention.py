"""Retention (issue 20): old items, matches, stories and finished alerts pruned in batches on SQLite and
PostgreSQL; pending and dead alerts kept with what they refer to; a pruned item that reappears in its feed
is not new again; a dry run changes nothing; vacuum; migration 7 on an old database equals a new one."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine, func, select, text

from monitor import metrics
from monitor.config import Config, load
from monitor.daemon import PRUNE_JOB, Daemon, Runtime
from monitor.errors import ConfigError
from monitor.store.outage import DatabaseWatch
from monitor.store.repo import Store
from monitor.store.retention import prune
from monitor.store.schema import MIGRATIONS, migrate
from monitor.store.tables import metadata
from tests.conftest import run_cli
from tests.feedserver import FeedServer, Route, Seen
from tests.helpers import PG_URL, AlertRow, DeliveryRow, ItemRow, fresh_database, make_config, rows
from tests.test_store import rss
from tests.test_story_schema import VERSION_7_INDEXES, VERSION_7_TABLES, shape

KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]
# Four airspace violations far apart (never one story) and one item no rule matches.
GONE = ("a1", "gone: jets over Estonia", "https://n.example/estonia",
        "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes.")
PLAIN = ("a2", "Parks budget", "https://n.example/parks", "The city council approved a new budget for parks.")
DEAD = ("b1", "kept-dead: fighters over Finland", "https://n.example/finland",
        "Two Russian Su-27 fighters violated Finnish airspace near Porvoo on Monday, the defence ministry said.")
PENDING = ("c1", "kept-pending: drone over Poland", "https://n.example/poland",
           "A Russian military drone violated Polish airspace over Lublin province overnight.")
YOUNG = ("d1", "young: helicopters over Latvia", "https://n.example/latvia",
         "Latvian officials reported that Russian helicopters violated Latvian airspace near the border.")
TABLES = ("items", "matches", "story_signatures", "stories", "alerts", "deliveries", "delivery_attempts",
          "pruned_items")


@pytest.fixture(params=KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request.param, tmp_path)


def answer(seen: Seen) -> tuple[int, float]:
    """The webhook receiver: refuses one alert for good (dead), fails another for now (pending)."""
    if b"kept-dead" in seen.body:
        return 400, 0.0
    if b"kept-pending" in seen.body:
        return 503, 0.0
    return 200, 0.0


def hooked(tmp_path: Path, server: FeedServer, database: str) -> Config:
    server.answer = answer
    channel = (f'[delivery]\nbackoff = "1s"\nattempts = 30\n[[channels]]\nname = "hook"\ntype = "webhook"\n'
               f'url = "{server.url("/hook")}"\n')
    return make_config(tmp_path, {name: server.url(f"/{name}") for name in "abcd"}, database, channel)


def poll_at(config: Config, moment: datetime, feed: str) -> None:
    async def cycle() -> None:
        async with Runtime(config, clock=lambda: moment) as runtime:
            await runtime.poll_all([f for f in config.feeds if f.name == feed])

    asyncio.run(cycle())


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {name: int(connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
                    for name in TABLES}
    finally:
        engine.dispose()


def history(server: FeedServer, now: datetime, config: Config) -> None:
    """An item alerted and delivered 210 days ago (and one no rule matched), one refused for good 200 days
    ago, one still failing since 190 days ago, one delivered yesterday."""
    for name, item, days in (("a", GONE, 210), ("b", DEAD, 200), ("c", PENDING, 190), ("d", YOUNG, 1)):
        moment = now - timedelta(days=days)
        items = (item, PLAIN) if name == "a" else (item,)
        server.routes[f"/{name}"] = Route(rss(*items, published=moment))
        poll_at(config, moment, name)


def test_prune_removes_what_is_old_and_done_keeps_pending_and_dead_and_a_pruned_item_stays_known(
        feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    now = datetime.now(UTC)
    config = hooked(tmp_path, feed_server, database)
    history(feed_server, now, config)
    by_guid = {i.id: i.guid for i in rows(config, ItemRow)}
    alerts = {a.id: by_guid[a.item_id] for a in rows(config, AlertRow)}
    assert {alerts[d.alert_id]: d.status for d in rows(config, DeliveryRow)} == {
        "a1": "delivered", "b1": "dead", "c1": "pending", "d1": "delivered"}
    before = counts(database)
    store = Store(database)
    try:
        # a dry run (a batch of one item at a time, the hardest case) counts, and changes nothing
        dry = prune(store, now - timedelta(days=180), dry_run=True, batch=1)
        assert counts(database) == before
        done = prune(store, now - timedelta(days=180), batch=1)
        assert prune(store, now - timedelta(days=180)).items == 0  # a second run finds nothing more
    finally:
        store.close()
    assert dataclasses.asdict(dry) == dataclasses.asdict(done)
    gone = (done.items, done.matches, done.alerts, done.deliveries, done.delivery_attempts, done.stories,
            done.kept_alerts)
    assert gone == (2, 1, 1, 1, 1, 2, 2)
    assert counts(database) == {**before, "items": before["items"] - 2, "matches": before["matches"] - 1,
                                "alerts": before["alerts"] - 1, "deliveries": before["deliveries"] - 1,
                                "delivery_attempts": before["delivery_attempts"] - 1,
                                "stories": before["stories"] - 2, "pruned_items": 2}
    # the dead and the pending alert stay with their item, match and story; so does yesterday's
    left = {i.id: i for i in rows(config, ItemRow)}
    assert sorted(i.guid for i in left.values()) == ["b1", "c1", "d1"]
    assert sorted(left[a.item_id].guid for a in rows(config, AlertRow)) == ["b1", "c1", "d1"]
    assert {d.status for d in rows(config, DeliveryRow)} == {"dead", "pending", "delivered"}

    # The feed still carries the pruned items, now with today's date: they are not new again (one changed
    # its words a little: still not new); an item it had never carried is new and alerts.
    posted = len(feed_server.acknowledged)
    fresh = ("a3", "new: jets over Lithuania", "https://n.example/lithuania",
             "Russian Su-30 jets violated Lithuanian airspace for five minutes, Vilnius said.")
    reworded = (GONE[0], GONE[1], GONE[2], GONE[3] + " NATO jets were scrambled.")
    feed_server.routes["/a"] = Route(rss(reworded, PLAIN, fresh, published=now))
    poll_at(config, now, "a")
    assert sorted(i.guid for i in rows(config, ItemRow)) == ["a3", "b1", "c1", "d1"]
    assert [json.loads(seen.body)["item"]["title"] for seen in feed_server.acknowledged[posted:]] == [fresh[1]]


def test_two_daemons_pruning_at_once_leave_what_one_would(feed_server: FeedServer, tmp_path: Path,
                                                           database: str) -> None:
    """Both take batches of one item at once (SQLite: in turn; PostgreSQL: skipping each other's rows), over
    stories of several items: the end is what one prune leaves, with no story left empty."""
    now = datetime.now(UTC)
    config = hooked(tmp_path, feed_server, database)
    history(feed_server, now, config)
    old = now - timedelta(days=250)
    copies = [(f"copy{n}", "Parks budget", f"https://n.example/parks-{n % 3}", PLAIN[3]) for n in range(12)]
    feed_server.routes["/c"] = Route(rss(*copies, published=old))
    poll_at(config, old, "c")
    assert len({i.story_id for i in rows(config, ItemRow) if i.guid.startswith("copy")}) <= 3  # one per URL
    before = counts(database)
    stores = [Store(database), Store(database)]
    try:
        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(lambda store: prune(store, now - timedelta(days=180), batch=1), stores))
    finally:
        for store in stores:
            store.close()
    assert sum(d.items for d in done) == 14 and sum(d.alerts for d in done) == 1
    after = counts(database)
    assert after["items"] == before["items"] - 14 and after["pruned_items"] == 14
    assert sorted(i.guid for i in rows(config, ItemRow)) == ["b1", "c1", "d1"]
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM stories WHERE id NOT IN "
                                           "(SELECT story_id FROM items)")).scalar_one() == 0
    finally:
        engine.dispose()
    assert after["stories"] == 3 == before["stories"] - sum(d.stories for d in done)


def test_an_old_story_left_empty_goes_a_recent_one_stays(database: str) -> None:
    now = datetime.now(UTC)
    store = Store(database)
    try:
        with store.writing() as session:
            for key, days in (("left-empty", 200), ("being-written", 0)):
                session.execute(text("INSERT INTO stories (key, first_seen_at, last_seen_at) VALUES (:k, :t, :t)"),
                                {"k": key, "t": (now - timedelta(days=days)).replace(tzinfo=None)})
        dry = prune(store, now - timedelta(days=180), dry_run=True)
        done = prune(store, now - timedelta(days=180))
        with store.engine.connect() as connection:
            left = list(connection.execute(text("SELECT key FROM stories")).scalars())
    finally:
        store.close()
    assert (dry.stories, done.stories, left) == (1, 1, ["being-written"])


def test_a_dry_run_and_a_prune_from_the_command_line_then_vacuum(feed_server: FeedServer, tmp_path: Path,
                                                                 database: str) -> None:
    now = datetime.now(UTC)
    config = hooked(tmp_path, feed_server, database)
    history(feed_server, now, config)
    old = now - timedelta(days=300)
    filler = [(f"x{n}", f"Council minutes {n}", f"https://n.example/minutes/{n}", "The committee met. " * 200)
              for n in range(150)]
    feed_server.routes["/b"] = Route(rss(*filler, published=old))
    poll_at(config, old, "b")
    before = counts(database)
    where = ("--config", str(tmp_path / "config.toml"))
    dry = run_cli("db", "prune", "--dry-run", "--older-than", "180d", *where)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert "what would go" in lines[0] and "dry run: nothing was deleted" in lines
    assert lines[2].split() == ["items", "152"] and lines[4].split() == ["matches", "1"]
    assert "kept: 2 alerts with pending or dead deliveries" in dry.stdout
    assert counts(database) == before
    done = run_cli("db", "prune", "--older-than", "180d", "--format", "json", *where)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["dry_run"], report["rows"]["items"], report["rows"]["stories"], report["kept_alerts"]) == (
        False, 152, 152, 2)
    assert counts(database)["items"] == before["items"] - 152
    vacuumed = run_cli("db", "vacuum", *where)
    assert vacuumed.returncode == 0, vacuumed.stderr
    if database.startswith("sqlite"):
        sizes = vacuumed.stdout.split(": ")[-1].split(" -> ")
        assert float(sizes[1].split()[0]) < float(sizes[0].split()[0]), vacuumed.stdout
    else:
        assert vacuumed.stdout.startswith("VACUUM (ANALYZE) of crisis-monitor's tables done")


def test_prune_without_a_retention_says_what_to_do(tmp_path: Path) -> None:
    config = make_config(tmp_path, {})
    refused = run_cli("db", "prune", "--config", str(config.path))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"crisis-monitor: {config.path}: [monitor] retention is off, so db prune does "
                                      'not know what is old (hint: pass --older-than 180d, or set retention = "180d" '
                                      "in [monitor])")
    short = run_cli("db", "prune", "--older-than", "12h", "--config", str(config.path))
    assert short.returncode == 1 and short.stderr.strip() == (
        "crisis-monitor: --older-than: '12h' is shorter than a day (hint: write it in days, like \"180d\")")
    inside = run_cli("db", "prune", "--older-than", "2d", "--config", str(config.path))
    assert inside.returncode == 1 and inside.stderr.strip().startswith(
        "crisis-monitor: --older-than: 2d is shorter than [stories] window (4d)")


PATH = Path("/etc/cm/config.toml")


@pytest.mark.parametrize(("value", "seconds"), [('"180d"', 180 * 86400.0), ('"26w"', 26 * 604800.0), ('"off"', None)])
def test_retention_in_config(value: str, seconds: float | None) -> None:
    assert load(f'[monitor]\nretention = {value}\n', PATH, {}).retention == seconds
    assert load("[monitor]\n", PATH, {}).retention is None  # off unless chosen


@pytest.mark.parametrize(("value", "message"), [
    ('"6h"', "/etc/cm/config.toml:2: monitor.retention: '6h' is shorter than a day (hint: write it in days"),
    ('"forever"', "/etc/cm/config.toml:2: monitor.retention: 'forever' is not a duration"),
    ("180", "/etc/cm/config.toml:2: monitor.retention: expected str, got int 180"),
    ('"3d"', "/etc/cm/config.toml:2: monitor.retention: 3d is shorter than [stories] window (4d): items would go "
     "while new reports may still join their stories, and those would alert again (hint: make it at least 4d"),
])
def test_a_bad_retention_is_one_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(f"[monitor]\nretention = {value}\n", PATH, {})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_daemon_schedules_a_daily_prune_only_with_a_retention(feed_server: FeedServer, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    config = hooked(tmp_path, feed_server, fresh_database("sqlite", tmp_path))
    history(feed_server, now, config)
    path = tmp_path / "config.toml"
    path.write_text(path.read_text().replace("[monitor]\n", '[monitor]\nretention = "180d"\n', 1))

    async def job() -> tuple[bool, int | None, bool]:
        daemon = Daemon(str(path))
        async with Runtime(load(path.read_text(), path, {})) as runtime:
            daemon.runtime = runtime
            daemon.database = DatabaseWatch(runtime.store.probe_write)
            daemon._schedule_prune()
            scheduled = daemon.scheduler.get_job(PRUNE_JOB) is not None
            done = await daemon._prune_job()
            daemon.runtime.config = dataclasses.replace(runtime.config, retention=None)
            daemon._schedule_prune()
            await daemon.database.close()
            return scheduled, done.items if done else None, daemon.scheduler.get_job(PRUNE_JOB) is not None

    def pruned() -> float:
        return metrics.REGISTRY.get_sample_value("crisis_monitor_pruned_rows_total", {"table": "items"}) or 0.0

    before = pruned()
    assert asyncio.run(job()) == (True, 2, False)
    assert pruned() == before + 2
    assert sorted(i.guid for i in rows(config, ItemRow)) == ["b1", "c1", "d1"]


# --- migration 7 --------------------------------------------------------------------------------

NEW_TABLES = set(VERSION_7_TABLES)
NEW_INDEXES = VERSION_7_INDEXES


def version_6() -> MetaData:
    """The tables as version 6 declared them: today's, less version 7's tables and indexes."""
    old = MetaData()
    for table in metadata.sorted_tables:
        if table.name in NEW_TABLES:
            continue
        copy = table.to_metadata(old)
        for index in list(copy.indexes):
            if index.name in NEW_INDEXES:
                copy.indexes.discard(index)
    return old


def make_version_6(connection: object) -> None:
    version_6().create_all(connection)  # type: ignore[arg-type]
    for statement in ("CREATE INDEX ix_matches_rule_created ON matches (rule, created_at)",
                      "CREATE INDEX ix_deliveries_status_created ON deliveries (status, created_at)"):
        connection.execute(text(statement))  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KINDS)
def test_a_version_6_database_migrates_to_the_shape_of_a_new_one_and_keeps_its_rows(kind: str,
                                                                                    tmp_path: Path) -> None:
    from tests.test_story_schema import SEED

    (tmp_path / "fresh").mkdir()
    (tmp_path / "old").mkdir()
    fresh_url = fresh_database(kind, tmp_path / "fresh")
    fresh = create_engine(fresh_url)
    migrate(fresh)
    expected = shape(fresh)
    fresh.dispose()
    old_url = fresh_database(kind, tmp_path / "old")
    old = create_engine(old_url)
    try:
        assert migrate(old, {**{n: MIGRATIONS[n] for n in range(2, 7)}, 1: make_version_6}) == 6
        assert not NEW_TABLES & set(shape(old))
        with old.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement))
        assert migrate(old) == 7
        assert shape(old) == expected
        with old.connect() as connection:
            assert connection.execute(text("SELECT id, key FROM alerts")).all() == [("a1", "")]
            assert connection.execute(text("SELECT status FROM deliveries")).all() == [("delivered",)]
            tables = MetaData()
            pruned = Table("pruned_items", tables, autoload_with=connection)
            assert connection.execute(select(func.count()).select_from(pruned)).scalar() == 0
    finally:
        old.dispose()
