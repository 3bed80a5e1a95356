"""The daemon as a real subprocess: alerts, SIGHUP and file-change reloads, a bad rule on reload,
feeds added by SIGHUP, and a graceful SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.feedserver import FeedServer, Route
from tests.helpers import distinct_events
from tests.test_store import VIOLATION, rss

NEAR_ELECTION = "Election rally in Tallinn draws thousands of supporters."
# Other airspace violations than VIOLATION's (new stories, so new alerts)
OTHER = [text for _, text in distinct_events(5)[1:]]


class Daemon:
    def __init__(self, config: Path, command: tuple[str, ...] = ("-m", "monitor"),
                 env: dict[str, str] | None = None) -> None:
        env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1", **(env or {}))
        self.process = subprocess.Popen([sys.executable, *command, "run", "--config", str(config)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                        cwd=config.parent)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, tag), daemon=True)
                        for stream, tag in ((self.process.stdout, "out"), (self.process.stderr, "err"))]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, tag: str) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.put(f"{tag}: {line.rstrip()}")

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.process.poll() is None, f"daemon exited: {self.seen[-20:]}"
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout}s; saw {self.seen[-30:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for reader in self.readers:
                reader.join(timeout=5)
            for stream in (self.process.stdout, self.process.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def setup(feed_server: FeedServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    feed_server.routes["/f"] = Route(rss(("g1", "Jets over Estonia", "https://n.example/1", VIOLATION)))
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "rules"\nmin_interval = "1s"\n[[feeds]]\nname = "f"\n'
                      f'url = "{feed_server.url("/f")}"\ninterval = "1s"\n')
    daemon = Daemon(config)
    yield daemon, feed_server, config, rules
    daemon.stop()


def test_run_alerts_then_stops_cleanly_on_sigterm(setup) -> None:  # type: ignore[no-untyped-def]
    daemon, _, _, _ = setup
    line = daemon.wait_for("ALERT HIGH airspace-violation: Jets over Estonia")
    assert line.startswith("out: ")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait_for("stopped")
    assert daemon.process.wait(timeout=20) == 0


def test_a_bad_rule_on_reload_keeps_the_old_rules(setup) -> None:  # type: ignore[no-untyped-def]
    daemon, server, _, rules = setup
    daemon.wait_for("ALERT HIGH airspace-violation")
    (rules / "broken.yaml").write_text("id: broken\ntitle: Broken\nseverity: high\nquery: violat* NEAR/5\n")
    daemon.process.send_signal(signal.SIGHUP)
    error = daemon.wait_for("rule reload failed")
    assert "broken.yaml:4:" in error
    daemon.wait_for("previous rules stay in force")
    server.routes["/f"] = Route(rss(("g2", "More jets", "https://n.example/2", OTHER[0])))  # another event
    daemon.wait_for("ALERT HIGH airspace-violation: More jets")  # the old rules still match
    assert daemon.process.poll() is None


def test_a_rule_file_change_reloads_without_a_signal(setup) -> None:  # type: ignore[no-untyped-def]
    daemon, server, _, rules = setup
    daemon.wait_for("ALERT HIGH airspace-violation")
    (rules / "election.yaml").write_text("id: election\ntitle: Election rally\nseverity: low\n"
                                         "query: election AND rally\n")
    daemon.wait_for("rules reloaded")
    server.routes["/f"] = Route(rss(("g3", "Rally", "https://n.example/3", NEAR_ELECTION)))
    daemon.wait_for("ALERT LOW election: Rally")


def test_sighup_adds_a_feed(setup) -> None:  # type: ignore[no-untyped-def]
    daemon, server, config, _ = setup
    daemon.wait_for("ALERT HIGH airspace-violation")
    server.routes["/g"] = Route(rss(("h1", "Second feed jets", "https://n.example/h1", OTHER[1])))
    config.write_text(config.read_text() + f'[[feeds]]\nname = "g"\nurl = "{server.url("/g")}"\ninterval = "1s"\n')
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for("config reloaded")
    daemon.wait_for("ALERT HIGH airspace-violation: Second feed jets")


def test_kill_9_mid_delivery_loses_no_alert(feed_server: FeedServer, tmp_path: Path) -> None:
    """The daemon, SIGKILLed while webhook requests are in flight, delivers everything after a
    restart; only requests in flight at the kill may arrive twice, with the same Idempotency-Key."""
    from tests.helpers import DeliveryRow
    from tests.helpers import rows as table_rows

    receiver = FeedServer().start()
    try:
        receiver.answer = lambda _: (200, 0.5)  # slow enough to be killed mid-request
        feed_server.routes["/f"] = Route(rss(*[(f"k{n}", f"Jets {n}", f"https://n.example/k{n}", text)
                                               for n, (_, text) in enumerate(distinct_events(11))]))
        config = tmp_path / "config.toml"
        config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\nmin_interval = "1s"\n'
                          f'database = "sqlite:///{tmp_path / "m.db"}"\n'
                          f'[delivery]\nbackoff = "0.5s"\nmax_backoff = "1s"\n'
                          f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url("/hook")}"\n'
                          f'timeout = "2s"\n'
                          f'[[feeds]]\nname = "f"\nurl = "{feed_server.url("/f")}"\ninterval = "1s"\n')
        first = Daemon(config)
        deadline = time.monotonic() + 30
        while len(receiver.acknowledged) < 8 and time.monotonic() < deadline:  # the first wave of 8 is done
            time.sleep(0.02)
        time.sleep(0.25)  # the second wave is in flight now
        first.process.kill()
        first.stop()
        posted_before = {s.headers["idempotency-key"] for s in receiver.posts}
        from monitor.config import load_file

        stored = load_file(str(config), env={})
        recorded = {d.alert_id for d in table_rows(stored, DeliveryRow) if d.status == "delivered"}
        in_flight = posted_before - recorded
        assert recorded and in_flight, "the kill did not land mid-delivery"
        second = Daemon(config)
        try:
            deadline = time.monotonic() + 60
            while len({s.headers["idempotency-key"] for s in receiver.acknowledged}) < 11:
                assert time.monotonic() < deadline, f"only {len(receiver.acknowledged)} delivered"
                time.sleep(0.2)
        finally:
            assert second.stop() == 0
        counts = Counter(s.headers["idempotency-key"] for s in receiver.posts)
        assert len(counts) == 11 and {d.status for d in table_rows(stored, DeliveryRow)} == {"delivered"}
        repeated = {key for key, n in counts.items() if n > 1}
        assert repeated <= in_flight and not repeated & recorded
        for key in repeated:
            assert len({s.body for s in receiver.posts if s.headers["idempotency-key"] == key}) == 1
    finally:
        receiver.close()


def test_systemd_notify_ready_watchdog_and_stopping(feed_server: FeedServer, tmp_path: Path) -> None:
    """Against a real unix datagram socket standing in for systemd."""
    import socket as sockets

    listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    listener.bind(path)
    listener.settimeout(20)
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", VIOLATION)))
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\n'
                      f'[[feeds]]\nname = "f"\nurl = "{feed_server.url("/f")}"\n')
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        messages = [listener.recv(4096).decode()]
        assert messages[0].startswith("READY=1\nSTATUS=1 feeds (")
        watchdogs = []
        while len(watchdogs) < 3:
            message = listener.recv(4096).decode()
            if message.startswith("WATCHDOG=1"):
                watchdogs.append(message)
        assert "alerts pending" in watchdogs[-1]
        process.send_signal(signal.SIGTERM)
        while not (message := listener.recv(4096).decode()).startswith("STOPPING=1"):
            pass
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        listener.close()


def test_health_and_metrics_endpoint_and_json_logs(feed_server: FeedServer, tmp_path: Path) -> None:
    import json
    import urllib.request

    from tests.test_delivery import free_port

    port = free_port()
    feed_server.routes["/f"] = Route(rss(("g1", "Jets", "https://n.example/1", VIOLATION)))
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\nlog_format = "json"\n'
                      f'[web]\nlisten = "127.0.0.1:{port}"\n'
                      f'[[feeds]]\nname = "f"\nurl = "{feed_server.url("/f")}"\n')
    daemon = Daemon(config)
    try:
        line = daemon.wait_for('"event": "poll"')
        event = json.loads(line.removeprefix("err: "))
        wanted = ("feed", "status", "new_items", "matches")
        assert {k: event[k] for k in wanted} == {"feed": "f", "status": "ok", "new_items": 1, "matches": 1}
        assert isinstance(event["duration"], float) and event["level"] == "info" and event["ts"].endswith("Z")
        daemon.wait_for('"event": "delivery"')
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b"ok\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        for expected in ('crisis_monitor_polls_total{status="ok"} 1.0', "crisis_monitor_items_total 1.0",
                         'crisis_monitor_matches_total{rule="airspace-violation"} 1.0',
                         'crisis_monitor_deliveries_total{channel="console",status="delivered"} 1.0',
                         "crisis_monitor_outbox_pending 0.0", "crisis_monitor_fetch_seconds_count 1.0",
                         "crisis_monitor_rule_reload_errors_total 0.0", 'crisis_monitor_feeds{status="ok"} 1.0'):
            assert expected in text, expected
    finally:
        assert daemon.stop() == 0


def test_health_says_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    import asyncio
    import urllib.error
    import urllib.request

    from monitor.config import load
    from monitor.daemon import load_active
    from monitor.store.repo import Store
    from monitor.web.app import build_app
    from monitor.web.context import WebContext
    from monitor.web.server import WebServer

    text = f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "sqlite:///{tmp_path / "m.db"}"\n'
    config = load(text, tmp_path / "config.toml", {})
    active = load_active(config)

    async def scenario() -> list[int]:
        async def broken() -> bool:
            raise OSError("database is locked")

        async def slow() -> bool:
            await asyncio.sleep(10)
            return True

        codes = []
        store = Store(config.database)
        for check in (broken, slow):
            ctx = WebContext(store=store, config=lambda: config, active=lambda: active, healthy=check)
            web = WebServer("127.0.0.1:0", build_app(ctx))
            await web.start()
            try:
                await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{web.port}/healthz", None, 5)
            except urllib.error.HTTPError as error:
                codes.append(error.code)
                assert error.read() == b"database not answering\n"
                error.close()
            finally:
                await web.close()
        store.close()
        return codes

    assert asyncio.run(scenario()) == [503, 503]


def test_sighup_adds_a_channel(setup) -> None:  # type: ignore[no-untyped-def]
    daemon, server, config, _ = setup
    daemon.wait_for("ALERT HIGH airspace-violation")
    receiver = FeedServer().start()
    try:
        config.write_text(config.read_text() + f'[[channels]]\nname = "console"\ntype = "console"\n'
                          f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url("/hook")}"\n')
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("channels reloaded")
        server.routes["/f"] = Route(rss(("g9", "Jets again", "https://n.example/9", OTHER[2])))
        daemon.wait_for("ALERT HIGH airspace-violation: Jets again")
        deadline = time.monotonic() + 20
        while not receiver.acknowledged:
            assert time.monotonic() < deadline, "the new channel got nothing"
            time.sleep(0.1)
        assert json.loads(receiver.acknowledged[0].body)["item"]["title"] == "Jets again"
    finally:
        receiver.close()


def test_sighup_with_a_channel_it_cannot_build_keeps_the_old_config(setup) -> None:  # type: ignore[no-untyped-def]
    daemon, server, config, _ = setup
    daemon.wait_for("ALERT HIGH airspace-violation")
    config.write_text(config.read_text() + '[[channels]]\nname = "console"\ntype = "console"\n'
                      '[[channels]]\nname = "mail"\ntype = "email"\nhost = "127.0.0.1"\nstarttls = true\n'
                      'ca_file = "missing-ca.pem"\nfrom = "a@example.org"\nto = ["b@example.org"]\n')
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for("config reload failed: channel 'mail': ca_file")
    server.routes["/f"] = Route(rss(("g8", "Jets still", "https://n.example/8", OTHER[3])))
    daemon.wait_for("ALERT HIGH airspace-violation: Jets still")  # the old console channel still delivers
