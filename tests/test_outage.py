"""A lost database is one line when it goes and one when it returns, with /healthz 503 between,
and polls held rather than failed: the real daemon on real PostgreSQL cut off by a TCP proxy,
on SQLite locked by another connection beyond the busy timeout; and the errors of a read-only
database and a full disk (real SQLite errors: a read-only connection, a page-count cap) known
for what they are."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from monitor.store.outage import DatabaseWatch, outage_reason
from tests.conftest import ROOT
from tests.feedserver import FeedServer, Route
from tests.helpers import PG_URL
from tests.tcpproxy import TcpProxy
from tests.test_daemon import Daemon
from tests.test_delivery import free_port
from tests.test_store import VIOLATION, rss

OUTAGE = 6.0  # seconds the database stays away: several 1 s poll intervals and dispatcher passes


def own_schema(name: str, fresh: bool = True) -> str:
    """The test database's URL with a schema of its own first on the search path (emptied when
    ``fresh``): daemon tests of other branches share the database, not these tables."""
    if fresh:
        engine = create_engine(PG_URL)
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {name}"))
        engine.dispose()
        return own_schema(name, fresh=False)
    return make_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
        hide_password=False)


def health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def write_config(tmp_path: Path, server: FeedServer, database: str, port: int) -> Path:
    server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "{database}"\nmin_interval = "1s"\n'
                      f'parse_workers = 0\n[web]\nlisten = "127.0.0.1:{port}"\n'
                      f'[[feeds]]\nname = "f"\nurl = "{server.url("/f")}"\ninterval = "1s"\n')
    return config


def lived_through(daemon: Daemon, port: int, cut: object, restore: object) -> list[str]:
    """Cut the database while the daemon polls, check it says so once and answers 503, restore
    it, see it say so and poll again; the whole log."""
    daemon.wait_for("info poll feed=f")
    cut()  # type: ignore[operator]
    daemon.wait_for("database unreachable: ", timeout=60)
    assert health(port) == 503
    deadline = time.monotonic() + OUTAGE
    while time.monotonic() < deadline:  # polls come due every second meanwhile
        daemon.lines.qsize() and daemon.seen.append(daemon.lines.get())
        time.sleep(0.05)
    assert health(port) == 503
    restore()  # type: ignore[operator]
    daemon.wait_for("database reachable again after ", timeout=60)
    daemon.wait_for("info poll feed=f")
    assert health(port) == 200
    assert daemon.stop() == 0
    return daemon.seen + list(daemon.lines.queue)


def assert_quiet(log: list[str]) -> None:
    text_log = "\n".join(log)
    assert sum("database unreachable: " in line for line in log) == 1, text_log
    assert sum("database reachable again after " in line for line in log) == 1, text_log
    assert "Traceback" not in text_log
    assert "failed unexpectedly" not in text_log and "dispatcher pass failed" not in text_log
    assert "skipped: maximum number of running instances" not in text_log


@pytest.mark.skipif(not PG_URL, reason="CRISIS_MONITOR_TEST_DATABASE_URL is not set")
def test_postgresql_outage_is_one_line_each_way_and_polls_wait(feed_server: FeedServer, tmp_path: Path) -> None:
    url = make_url(own_schema("outage_test"))
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    port = free_port()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    daemon = Daemon(write_config(tmp_path, feed_server, through, port))
    try:
        log = lived_through(daemon, port, proxy.stop, proxy.start)
    finally:
        daemon.stop()
        proxy.stop()
    assert_quiet(log)
    engine = create_engine(own_schema("outage_test", fresh=False))
    with engine.connect() as connection:
        status, failures, held = connection.execute(text(
            "SELECT status, consecutive_failures, claimed_by FROM feeds WHERE name = 'f'")).one()
    engine.dispose()
    assert status in ("ok", "not_modified") and (failures, held) == (0, None)  # no feed failed, no claim left


def test_sqlite_locked_beyond_the_busy_timeout_is_one_line_each_way(feed_server: FeedServer,
                                                                    tmp_path: Path) -> None:
    database = tmp_path / "m.db"
    port = free_port()
    daemon = Daemon(write_config(tmp_path, feed_server, f"sqlite:///{database}", port))
    holder = sqlite3.connect(database, isolation_level=None, timeout=60)

    def lock() -> None:
        holder.execute("BEGIN IMMEDIATE")  # another process's writer that never lets go

    try:
        log = lived_through(daemon, port, lock, lambda: holder.execute("ROLLBACK"))
    finally:
        daemon.stop()
        holder.close()
    assert_quiet(log)
    assert any("database unreachable: database is locked; retrying" in line for line in log)
    with sqlite3.connect(database) as check:
        (status, failures, held), = check.execute("SELECT status, consecutive_failures, claimed_by FROM feeds")
    assert status in ("ok", "not_modified") and (failures, held) == (0, None)


def sqlite_error(tmp_path: Path, setup: str, statement: str, uri: str = "") -> BaseException:
    """The SQLAlchemy error a real SQLite database gives for ``statement`` after ``setup``."""
    path = tmp_path / "e.db"
    with sqlite3.connect(path) as first:
        first.execute("CREATE TABLE IF NOT EXISTS t (x TEXT)")
    engine = create_engine(f"sqlite:///{uri or path}")
    try:
        with engine.begin() as connection:
            if setup:
                connection.exec_driver_sql(setup)
            connection.exec_driver_sql(statement)
    except Exception as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} did not fail")


def test_read_only_full_and_locked_sqlite_are_outages_other_errors_are_not(tmp_path: Path) -> None:
    read_only = sqlite_error(tmp_path, "", "INSERT INTO t VALUES ('a')",
                             uri=f"file:{tmp_path / 'e.db'}?mode=ro&uri=true")
    assert outage_reason(read_only) == "attempt to write a readonly database"
    full = sqlite_error(tmp_path, "PRAGMA max_page_count = 3",
                        "INSERT INTO t SELECT hex(randomblob(2000)) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)")
    assert outage_reason(full) == "database or disk is full"
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert outage_reason(locked) == "database is locked"
    assert outage_reason(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))) is None
    assert outage_reason(ValueError("a bug")) is None


def test_the_watch_says_one_line_each_way_however_often_it_is_told(caplog: pytest.LogCaptureFixture) -> None:
    tries: list[int] = []
    full = OperationalError("UPDATE", {}, sqlite3.OperationalError("database or disk is full"))

    def probe() -> None:
        tries.append(1)
        if len(tries) < 4:
            raise full

    async def scenario() -> tuple[bool, bool]:
        back: list[bool] = []

        async def on_back() -> None:
            back.append(True)

        watch = DatabaseWatch(probe, probe_every=0.01, on_back=on_back)
        for _ in range(50):  # fifty feeds and dispatcher passes find it gone
            watch.lost("database or disk is full")
        was_down = watch.down
        assert await watch.wait_up(asyncio.Event())
        await watch.close()
        return was_down, back == [True]

    with caplog.at_level(logging.INFO, logger="monitor.daemon"):
        assert asyncio.run(scenario()) == (True, True)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "database unreachable: database or disk is full; retrying"
    assert len(messages) == 2 and messages[1].startswith("database reachable again after ")
    assert len(tries) == 4 and not any(record.exc_info for record in caplog.records)


def test_a_stopping_daemon_does_not_wait_for_the_database() -> None:
    async def scenario() -> bool:
        def probe() -> None:
            raise OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))

        watch = DatabaseWatch(probe, probe_every=0.01)
        watch.lost("database is locked")
        stopping = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stopping.set)
        result = await watch.wait_up(stopping)
        await watch.close()
        return result

    assert asyncio.run(scenario()) is False
