"""Dedupe, stories, alerts and the store's guarantees, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import IntegrityError

from monitor.errors import MonitorError
from monitor.pipeline import GroupCommit
from monitor.store.repo import PollRecord, PollWrite, Store
from monitor.store.schema import LATEST, MIGRATIONS, StoreError, migrate
from monitor.types import Document, FeedState, FeedUpdate, ItemWrite, Match
from tests.feedserver import FeedServer, Route
from tests.helpers import (
    PG_URL,
    AlertRow,
    DeliveryRow,
    FeedRow,
    ItemRow,
    MatchRow,
    StoryRow,
    distinct_events,
    fresh_database,
    make_config,
    poll_once,
    rows,
)

VIOLATION = "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes."
ARTICLE_4 = "Estonia requested NATO Article 4 consultations after Russian jets violated its airspace."

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set"))]


def rss(*items: tuple[str, str, str, str], published: datetime | None = None, build: str = "") -> bytes:
    when = format_datetime(published or datetime.now(UTC), usegmt=True)
    body = "".join(f"<item><guid>{g}</guid><title>{t}</title><link>{link}</link><description>{d}</description>"
                   f"<pubDate>{when}</pubDate></item>" for g, t, link, d in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://x.example/</link>'
            f"<description>{build}</description>{body}</channel></rss>").encode()


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request.param, tmp_path)


def test_the_same_item_polled_again_is_not_new(feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", VIOLATION)))
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, database)
    assert poll_once(config)["f"].new_items == 1
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", VIOLATION), build="rebuilt"))
    again = poll_once(config)["f"]
    assert again.status == "ok" and again.new_items == 0 and again.alerts == 0
    assert len(rows(config, ItemRow)) == 1 and len(rows(config, AlertRow)) == 1


def test_one_story_in_two_feeds_alerts_once(feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    feed_server.routes["/a"] = Route(rss(("a1", "Jets", "https://n.example/story?utm_source=a", VIOLATION)))
    feed_server.routes["/b"] = Route(rss(("b1", "Jets", "http://www.n.example/story/?fbclid=x#top", VIOLATION)))
    config = make_config(tmp_path, {"a": feed_server.url("/a"), "b": feed_server.url("/b")}, database)
    summaries = poll_once(config)
    assert summaries["a"].new_items == summaries["b"].new_items == 1
    assert len(rows(config, ItemRow)) == 2 and len(rows(config, StoryRow)) == 1
    assert len(rows(config, MatchRow)) == 2
    alerts = rows(config, AlertRow)
    assert [a.rule for a in alerts] == ["airspace-violation"]
    assert [d.status for d in rows(config, DeliveryRow)] == ["delivered"]


def test_a_changed_item_alerts_only_for_rules_new_to_it(feed_server: FeedServer, tmp_path: Path,
                                                         database: str) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", VIOLATION)))
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, database)
    assert poll_once(config)["f"].alerts == 1
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", ARTICLE_4)))
    changed = poll_once(config)["f"]
    assert changed.new_items == 0 and changed.updated_items == 1
    assert changed.matches == 1 and changed.alerts == 1
    items = rows(config, ItemRow)
    assert len(items) == 1 and "Article 4" in items[0].summary
    assert sorted(a.rule for a in rows(config, AlertRow)) == ["airspace-violation", "article-4"]


def test_items_older_than_max_item_age_are_stored_but_never_alerted(feed_server: FeedServer, tmp_path: Path,
                                                                    database: str) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", VIOLATION), published=old))
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, database)
    summary = poll_once(config)["f"]
    assert summary.new_items == 1 and summary.matches == 1 and summary.alerts == 0
    assert rows(config, AlertRow) == [] and rows(config, DeliveryRow) == []


def test_a_claimed_feed_is_not_claimed_twice(tmp_path: Path, database: str) -> None:
    config = make_config(tmp_path, {"f": "http://127.0.0.1:9/f"}, database)
    first, second = Store(config.database), Store(config.database)
    try:
        now = datetime.now(UTC)
        first.sync_feeds(config.feeds, now, 300)
        assert first.claim("f", now, lease=60) is not None
        assert second.claim("f", now, lease=60, force=True) is None  # held, even when forced
        assert second.claim("f", now + timedelta(seconds=61), lease=60) is not None  # the lease ran out
        second.release("f")
        assert first.claim("f", now + timedelta(seconds=62), lease=60) is not None
    finally:
        first.close()
        second.close()


@pytest.mark.skipif(not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set")
def test_daemons_starting_together_add_each_feed_once(tmp_path: Path) -> None:
    """Two daemons on an empty PostgreSQL database both add the configured feed: the second, whose
    insert waits on the first's uncommitted row, finds it there when the first commits (no unique-key
    error, which stopped it at start-up)."""
    config = make_config(tmp_path, {"f": "http://127.0.0.1:9/f"}, fresh_database("postgresql", tmp_path))
    first, second = Store(config.database), Store(config.database)
    failed: list[BaseException] = []

    def sync() -> None:
        try:
            second.sync_feeds(config.feeds, datetime.now(UTC), 300)
        except BaseException as error:  # reported below, in the test's thread
            failed.append(error)

    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock'")
    try:
        with first.writing() as session:
            session.add(FeedRow(name="f", config_url="http://127.0.0.1:9/f", url="http://127.0.0.1:9/f",
                                next_poll_at=datetime.now(UTC), added_at=datetime.now(UTC), interval=300.0))
            session.flush()  # the row is there, uncommitted
            thread = threading.Thread(target=sync)
            thread.start()
            with first.engine.connect() as connection:
                for _ in range(200):  # until the second's insert waits on the row (10 s at most)
                    if connection.execute(waiting).scalar_one():
                        break
                    thread.join(0.05)
                else:
                    raise AssertionError("the second store never waited on the first's row")
        thread.join(30)
        assert not thread.is_alive() and failed == []
        assert [row.name for row in rows(config, FeedRow)] == ["f"]
    finally:
        first.close()
        second.close()


def test_reopening_keeps_the_data(feed_server: FeedServer, tmp_path: Path, database: str) -> None:
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", VIOLATION)))
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, database)
    poll_once(config)
    store = Store(config.database)
    try:
        assert [i["title"] for i in store.items()] == ["Jets"]
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT version FROM schema_version")).scalar() == LATEST
    finally:
        store.close()


def test_a_migration_upgrades_in_place_and_keeps_rows(tmp_path: Path, database: str) -> None:
    Store(database).close()
    engine = create_engine(database)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO stories (key, first_seen_at) VALUES ('k', '2025-01-01 00:00:00')"))

    def add_note(connection: Connection) -> None:
        connection.execute(text("ALTER TABLE stories ADD COLUMN note VARCHAR DEFAULT 'kept'"))

    try:
        assert migrate(engine, {**MIGRATIONS, LATEST + 1: add_note}) == LATEST + 1
        with engine.connect() as connection:
            assert connection.execute(text("SELECT key, note FROM stories")).all() == [("k", "kept")]
        with pytest.raises(StoreError, match=r"schema version \d+ is newer than this crisis-monitor knows"):
            migrate(engine)
    finally:
        engine.dispose()


def test_daemons_starting_together_on_a_fresh_database_migrate_it_once(tmp_path: Path, database: str) -> None:
    # Several daemons sharing one new database start at the same moment: each checks the schema
    # version and would run the same migrations. One does; the others wait for it and find it done.
    assert open_stores_together(database) == []
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version FROM schema_version")).all() == [(LATEST,)]
    finally:
        engine.dispose()


def test_processes_opening_a_new_sqlite_file_together_all_switch_it_to_wal(tmp_path: Path) -> None:
    # Turning a new file to WAL takes an exclusive lock, and SQLite refuses at once (no busy wait)
    # while another connection holds one: the race of the test above, on many fresh files, since it
    # is lost only now and then (about one round in eight before the store waited for it).
    failures = [error for round_number in range(25)
                for error in open_stores_together(f"sqlite:///{tmp_path}/round{round_number}.db")]
    assert failures == []


def open_stores_together(url: str, count: int = 4) -> list[BaseException]:
    """Open and close ``count`` stores on ``url`` from threads released at one moment; their errors."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            Store(url).close()
        except BaseException as error:  # returned to the test, which asserts there are none
            failures.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return failures


def test_an_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(MonitorError) as caught:
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    message = str(caught.value)
    assert "cannot open" in message and "hint:" in message and "\n" not in message


def test_a_missing_sqlite_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(f"sqlite:///{tmp_path}/nope/monitor.db")


def test_two_dispatchers_never_claim_the_same_delivery(feed_server: FeedServer, tmp_path: Path,
                                                       database: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from monitor.store.outbox import Outbox

    items = [(f"c{n}", title, f"https://n.example/c{n}", text) for n, (title, text) in enumerate(distinct_events(10))]
    feed_server.routes["/f"] = Route(rss(*items))
    hooks = [f"hook{n}" for n in range(4)]
    channels = "".join(f'[[channels]]\nname = "{hook}"\ntype = "webhook"\nurl = "http://127.0.0.1:9/h"\n'
                       for hook in hooks)
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, database,
                         extra=channels + '[delivery]\nbackoff = "1h"\n')
    poll_once(config)  # 10 alerts to 4 channels; the receiver is down, so all stay pending (retry in an hour)
    stores = [Store(config.database) for _ in range(4)]
    try:
        later = datetime.now(UTC) + timedelta(hours=3)
        with ThreadPoolExecutor(4) as pool:
            claims = list(pool.map(lambda s: Outbox(s).claim(hooks, later, lease=60, limit=15), stores))
        ids = [a.delivery_id for batch in claims for a in batch]
        assert len(ids) == len(set(ids)) == 40
    finally:
        for store in stores:
            store.close()


def _write(guid: str, story: str, matches: tuple[Match, ...] = (), item_id: int | None = None) -> ItemWrite:
    doc = Document(id=guid, title=f"Title {guid}", content=VIOLATION, url=f"https://{story}")
    return ItemWrite(doc, story, f"hash-{guid}", datetime.now(UTC), matches, tuple(m.rule for m in matches),
                     item_id)


def _poll(state: FeedState, *writes: ItemWrite) -> PollWrite:
    now = datetime.now(UTC)
    update = FeedUpdate(status="ok", polled_at=now, next_poll_at=now + timedelta(minutes=5), interval=300,
                        quiet_polls=0, etag=f'"{state.name}"', success=True, new_items=bool(writes))
    return PollWrite(state.id, update, writes, lambda match: ["console"], now)


def test_polls_written_together_keep_their_own_items_stories_and_alerts(tmp_path: Path, database: str) -> None:
    config = make_config(tmp_path, {name: f"http://127.0.0.1:9/{name}" for name in "abc"}, database)
    store = Store(config.database)
    try:
        now = datetime.now(UTC)
        store.sync_feeds(config.feeds, now, 300)
        claims = store.claim_many(["a", "b", "c"], now, 60, force=True)
        match = Match(rule="airspace-violation", severity="high", title="Airspace violation",
                      terms=("violated",), entities=(), snippet=VIOLATION)
        records = store.record_many([
            _poll(claims["a"], _write("same-guid", "n.example/shared", (match,)), _write("a2", "n.example/a2")),
            _poll(claims["b"], _write("same-guid", "n.example/shared", (match,))),
            _poll(claims["c"]),
        ])
        assert [(r.new_items, r.matches, r.alerts) for r in records] == [(2, 1, 1), (1, 1, 0), (0, 0, 0)]
        items = {(row.feed_id, row.guid): row for row in rows(config, ItemRow)}
        assert set(items) == {(claims["a"].id, "same-guid"), (claims["a"].id, "a2"), (claims["b"].id, "same-guid")}
        assert len(rows(config, StoryRow)) == 2  # one story for the item both feeds carry
        assert items[claims["a"].id, "same-guid"].story_id == items[claims["b"].id, "same-guid"].story_id
        matched = {row.item_id for row in rows(config, MatchRow)}
        assert matched == {items[claims["a"].id, "same-guid"].id, items[claims["b"].id, "same-guid"].id}
        assert [a.item_id for a in rows(config, AlertRow)] == [items[claims["a"].id, "same-guid"].id]
        feeds = {row.name: row for row in rows(config, FeedRow)}
        assert {name: (row.etag, row.claimed_by) for name, row in feeds.items()} == \
            {name: (f'"{name}"', None) for name in "abc"}
    finally:
        store.close()


def test_a_poll_that_fails_in_a_group_commit_fails_alone(tmp_path: Path, database: str) -> None:
    config = make_config(tmp_path, {name: f"http://127.0.0.1:9/{name}" for name in "abc"}, database)
    store = Store(config.database)

    async def write_concurrently(polls: list[PollWrite]) -> list[PollRecord | BaseException]:
        writes = GroupCommit(store)
        results = await asyncio.gather(*(writes.record(poll) for poll in polls), return_exceptions=True)
        await writes.close()
        return results

    try:
        now = datetime.now(UTC)
        store.sync_feeds(config.feeds, now, 300)
        claims = store.claim_many(["a", "b", "c"], now, 60, force=True)
        store.record_many([_poll(claims["b"], _write("b1", "n.example/b1"))])
        # b's item again as if new: the unique (feed, guid) refuses it, and takes down the batch
        results = asyncio.run(write_concurrently([
            _poll(claims["a"], _write("a1", "n.example/a1")),
            _poll(claims["b"], _write("b1", "n.example/b1")),
            _poll(claims["c"], _write("c1", "n.example/c1")),
        ]))
        assert isinstance(results[1], IntegrityError)
        assert [(r.new_items if isinstance(r, PollRecord) else None) for r in results] == [1, None, 1]
        assert sorted(row.guid for row in rows(config, ItemRow)) == ["a1", "b1", "c1"]
    finally:
        store.close()
