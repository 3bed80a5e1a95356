"""Three `crisis-monitor run` daemons on one PostgreSQL database: the scenario that
tests/test_fleet.py asserts on and bench/fleet_bench.py prints.

Every daemon runs the same config.toml; its ``[http] user_agent`` is
``crisis-monitor-fleet/${FLEET_DAEMON}``, so the one environment variable that differs names the
daemon in every feed request and webhook POST the local servers record. ~50 feeds on a
FeedServer: ``matching`` of them carry one distinct airspace violation each (distinct events,
so story clustering keeps them apart and each alerts once), the rest news that no rule
matches. The scenario:

1. start-up: every feed fetched, every alert acknowledged by the webhook receiver;
2. a window of a few intervals: requests per feed (each feed is due once per interval, ±10%
   jitter);
3. a new matching item; the first daemon to POST its alert is held mid-send, and SIGKILLed
   from the feed server as soon as it fetches a feed: it dies holding a delivery claim and a
   feed claim, which the other two must honour until the leases run out, then take over.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.feedserver import FeedServer, Route, Seen
from tests.helpers import distinct_events
from tests.test_daemon import Daemon

ROOT = Path(__file__).resolve().parent.parent
AGENT = re.compile(r"crisis-monitor-fleet/(d\d+)")
EVENTS = 11  # distinct events (tests/helpers.py): up to 10 feeds one each, and one more for the kill
HTTP_TIMEOUT = 2.0  # [http] timeout: the feed lease is 3 x this + 60 s (Pipeline.lease), 66 s
HOOK_TIMEOUT = 5.0  # the webhook channel's timeout: the delivery lease is 2 x this + 10 s (lease_for), 20 s
FEED_LEASE = HTTP_TIMEOUT * 3 + 60
DELIVERY_LEASE = HOOK_TIMEOUT * 2 + 10

QUIET = ("The city council approved a new budget for schools and roads on {day}, the mayor of {town} said; "
         "the vote followed a long debate on housing, tourism and the regional football stadium.")


def violation(number: int) -> tuple[str, str]:
    """The ``number``-th distinct event that the airspace-violation rule matches: (title, text)."""
    return distinct_events(EVENTS)[number]


def rss(items: list[tuple[str, str, str]]) -> bytes:
    """An RSS document of ``items`` (guid, title, text), published now."""
    when = format_datetime(datetime.now(UTC), usegmt=True)
    body = "".join(f"<item><guid>{guid}</guid><title>{title}</title><link>https://news.example/{guid}</link>"
                   f"<description>{text_}</description><pubDate>{when}</pubDate></item>"
                   for guid, title, text_ in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://news.example/</link>'
            f"<description>fleet</description>{body}</channel></rss>").encode()


def quiet_items(feed: int) -> list[tuple[str, str, str]]:
    return [(f"q{feed}-{n}", f"Council budget vote {feed}-{n}", QUIET.format(day=f"day {n}", town=f"Town {feed}"))
            for n in range(3)]


def agent(seen: Seen) -> str:
    match = AGENT.search(seen.headers.get("user-agent", ""))
    return match.group(1) if match else "?"


def config_text(feeds: FeedServer, receiver: FeedServer, database: str, count: int, interval: float) -> str:
    lines = ["[monitor]", f'rules = "{ROOT / "rules"}"', f'database = "{database}"', "parse_workers = 0",
             f'min_interval = "{interval:g}s"', f'max_interval = "{interval:g}s"', 'stop_timeout = "5s"',
             "[http]", f'timeout = "{HTTP_TIMEOUT:g}s"', 'user_agent = "crisis-monitor-fleet/${FLEET_DAEMON}"',
             "[[channels]]", 'name = "hook"', 'type = "webhook"', f'url = "{receiver.url("/hook")}"',
             f'timeout = "{HOOK_TIMEOUT:g}s"']
    for n in range(count):
        lines += ["[[feeds]]", f'name = "feed{n:02}"', f'url = "{feeds.url(f"/feed{n:02}")}"',
                  f'interval = "{interval:g}s"']
    return "\n".join(lines) + "\n"


def cpu_and_peak(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS in MB of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    return cpu, peak


@dataclass
class Outcome:
    """What the scenario saw; times are time.monotonic() (the servers' clock)."""
    interval: float
    feeds: list[str]
    expected_alerts: int
    window: tuple[float, float] = (0.0, 0.0)
    victim: str = ""
    killed_at: float = 0.0
    held_feed: str = ""  # the feed the victim was fetching when killed
    held_key: str = ""  # the alert the victim was sending when killed
    held_feeds: dict[str, float] = field(default_factory=dict)  # the victim's feed claims: feed -> lease end
    delivery_claimed_until: float = 0.0
    delivery_attempts: int = -1
    feeds_taken_over_at: dict[str, float] = field(default_factory=dict)
    delivery_taken_over_at: float = 0.0
    alert_ids: list[str] = field(default_factory=list)
    usage: dict[str, tuple[float, float]] = field(default_factory=dict)  # daemon -> (CPU s, peak RSS MB)
    exits: dict[str, int] = field(default_factory=dict)

    def requests(self, seen: list[Seen], start: float, end: float, exclude: Iterable[str] = ()) -> Counter[str]:
        """Requests per feed in [start, end), every feed but ``exclude`` counted (0 if none)."""
        counts: Counter[str] = Counter({name: 0 for name in self.feeds if name not in exclude})
        counts.update(s.path.lstrip("/") for s in seen if start <= s.at < end and s.path.lstrip("/") in counts)
        return counts


def wait_until(condition, timeout: float, what: str, step: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(step)


class Fleet:
    """The servers and the daemons of one run (a context manager: everything stops at the end)."""

    def __init__(self, folder: Path, database: str, feeds: int = 50, matching: int = 10, daemons: int = 3,
                 interval: float = 5.0) -> None:
        assert matching < EVENTS, "one event is kept for the kill"
        self.folder, self.database, self.count, self.matching, self.size = folder, database, feeds, matching, daemons
        self.interval = interval
        self.feeds = FeedServer()
        self.receiver = FeedServer()
        self.daemons: dict[str, Daemon] = {}
        self.outcome = Outcome(interval, [f"feed{n:02}" for n in range(feeds)], matching)
        self.clock_offset = time.time() - time.monotonic()

    def __enter__(self) -> Fleet:
        self.feeds.start()
        self.receiver.start()
        for n in range(self.count):
            items = quiet_items(n)
            if n < self.matching:
                items.append((f"v{n}", *violation(n)))
            self.feeds.routes[f"/feed{n:02}"] = Route(rss(items), etag=f'"{n}-1"')
        config = self.folder / "config.toml"
        config.write_text(config_text(self.feeds, self.receiver, self.database, self.count, self.interval))
        for n in range(self.size):
            self.daemons[f"d{n}"] = Daemon(config, env={"FLEET_DAEMON": f"d{n}"})
        return self

    def __exit__(self, *_: object) -> None:
        for name, daemon in self.daemons.items():
            self.outcome.exits.setdefault(name, daemon.stop())
        self.feeds.close()
        self.receiver.close()

    # --- what the servers saw ------------------------------------------------------------------

    def keys(self, posts: list[Seen]) -> Counter[str]:
        return Counter(s.headers.get("idempotency-key", "") for s in posts)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        engine = create_engine(self.database)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(sql))]
        finally:
            engine.dispose()

    def wall(self, moment: datetime | None) -> float:
        """A database timestamp on the servers' monotonic clock."""
        if moment is None:
            return 0.0
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() - self.clock_offset

    # --- the scenario ----------------------------------------------------------------------------

    def start_up(self, timeout: float = 120.0) -> None:
        """Every feed fetched, every alert acknowledged."""
        wanted = {f"/{name}" for name in self.outcome.feeds}
        wait_until(lambda: wanted <= set(self.feeds.paths()), timeout, "every feed fetched once")
        wait_until(lambda: len(self.keys(self.receiver.acknowledged)) >= self.matching, timeout,
                   f"{self.matching} alerts acknowledged")

    def window(self, intervals: int = 4) -> None:
        start = time.monotonic()
        time.sleep(intervals * self.interval)  # the window counted; nothing is asserted of how long it took
        self.outcome.window = (start, time.monotonic())

    def kill_mid_send(self, feed: int, timeout: float = 120.0) -> None:
        """A new event on ``feed``; whoever POSTs its alert first is held there and SIGKILLed from the
        feed server when it next fetches a feed (so it dies with both claims held)."""
        before = set(self.keys(self.receiver.posts))
        held: dict[str, str] = {}
        killed = threading.Event()

        def answer(seen: Seen) -> tuple[int, float]:
            key = seen.headers.get("idempotency-key", "")
            if not held and key not in before:
                held.update(victim=agent(seen), key=key)
                killed.wait(HOOK_TIMEOUT * 4)  # the sender waits for the answer until it dies
                return 503, 0.0  # nobody reads it: never an acknowledgement
            return 200, 0.0

        def on_get(seen: Seen) -> None:
            if held and not killed.is_set() and agent(seen) == held["victim"]:
                os.kill(self.daemons[held["victim"]].process.pid, signal.SIGKILL)
                self.outcome.killed_at, self.outcome.held_feed = time.monotonic(), seen.path.lstrip("/")
                killed.set()

        self.receiver.answer = answer
        self.feeds.on_get = on_get
        for name, daemon in self.daemons.items():
            self.outcome.usage[name] = cpu_and_peak(daemon.process.pid)
        title, body = violation(EVENTS - 1)
        self.feeds.routes[f"/feed{feed:02}"] = Route(rss([("new-event", title, body), *quiet_items(feed)]),
                                                     etag=f'"{feed}-2"')
        wait_until(killed.is_set, timeout, "the new alert's sender killed mid-send")
        victim = self.outcome.victim = held["victim"]
        self.outcome.held_key = held["key"]
        self.daemons[victim].process.wait(timeout=30)
        self.outcome.exits[victim] = self.daemons[victim].stop()
        # Every poll it had in flight keeps its claim: the claims still under the same token once
        # the survivors' polls of the moment are surely done are the dead daemon's.
        claims = "SELECT name, claimed_by, lease_until FROM feeds WHERE lease_until > now()"
        first = set(self.query(claims))
        time.sleep(HTTP_TIMEOUT * 2 + 6)
        self.outcome.held_feeds = {str(name): self.wall(until)  # type: ignore[arg-type]
                                   for name, _, until in first & set(self.query(claims))}
        ((claimed, attempts),) = self.query(f"SELECT claimed_until, attempts FROM deliveries "
                                            f"WHERE alert_id = '{held['key']}'")
        self.outcome.delivery_claimed_until = self.wall(claimed)  # type: ignore[arg-type]
        self.outcome.delivery_attempts = int(attempts)  # type: ignore[call-overload]

    def take_over(self, timeout: float = FEED_LEASE + 90) -> None:
        """Wait for the survivors to fetch the held feed and deliver the held alert."""
        outcome = self.outcome

        def after_kill(seen: list[Seen]) -> list[Seen]:
            return [s for s in seen if s.at > outcome.killed_at and agent(s) != outcome.victim]

        def feeds_back() -> bool:
            for seen in after_kill(self.feeds.requests):
                name = seen.path.lstrip("/")
                if name in outcome.held_feeds:
                    outcome.feeds_taken_over_at.setdefault(name, seen.at)
            return len(outcome.feeds_taken_over_at) == len(outcome.held_feeds)

        def delivery_back() -> bool:
            hits = [s for s in after_kill(self.receiver.acknowledged)
                    if s.headers.get("idempotency-key") == outcome.held_key]
            outcome.delivery_taken_over_at = hits[0].at if hits else 0.0
            return bool(hits)

        wait_until(lambda: feeds_back() and delivery_back(), timeout, "the held feeds and delivery taken over")
        for name, daemon in self.daemons.items():
            if name != outcome.victim:
                outcome.usage[name] = cpu_and_peak(daemon.process.pid)
        outcome.alert_ids = [str(row[0]) for row in self.query("SELECT alert_id FROM deliveries")]
