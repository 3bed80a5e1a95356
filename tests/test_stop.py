"""The daemon's end, as a real subprocess: its parse workers never outlive it (kill -9 while they
parse, with the spawn start method it uses and with forkserver), and SIGTERM always ends within
``stop_timeout`` even with a worker stuck on a feed: the worker is killed, the feed released, exit 0.

The stuck worker is real: a feed of 40,000 items keeps feedparser busy for seconds, as a feed
that sends it into an endless loop would keep it for good."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.feedserver import FeedServer, Route
from tests.helpers import FeedRow, rows
from tests.test_daemon import Daemon

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

# Starts the daemon with its workers' start method set to argv[1]: ``-c``, so the fork server
# has no __main__ file to import again.
WITH_START_METHOD = ("-c", "import sys, monitor.workers as w; w.WorkerPool.START_METHOD = sys.argv.pop(1); "
                           "from monitor.cli import main; sys.exit(main(sys.argv[1:]))")
GONE_WITHIN = 10.0  # seconds: PR_SET_PDEATHSIG and the pidfd watch act at once; this is slack for a busy machine


def heavy_feed(items: int) -> bytes:
    entries = "".join(f"<item><guid>g{n}</guid><title>Item {n}</title><description>{'word ' * 40}</description>"
                      f"</item>" for n in range(items))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'.encode()


TICKS = os.sysconf("SC_CLK_TCK")
PARSING = 1.0  # CPU seconds a worker has used once it is surely parsing: starting one takes about 0.4


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(state, parent pid, CPU seconds) of a live process, None once it is gone (or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else (fields[0], int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)


def descendants(pid: int) -> dict[int, tuple[str, float]]:
    """Every live process below ``pid`` (workers, the fork server, the resource tracker) -> its
    state and CPU seconds."""
    parents: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat
    found: dict[int, tuple[str, float]] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, (state, ppid, cpu) in parents.items():
            if ppid == parent and child not in found:
                found[child] = (state, cpu)
                todo.append(child)
    return found


def wait_until_parsing(daemon: Daemon, workers: int, timeout: float = 60) -> dict[int, tuple[str, float]]:
    """The daemon's descendants once ``workers`` of them are well into a parse: running, with more
    CPU time behind them than starting takes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.process.poll() is None, "the daemon exited"
        below = descendants(daemon.process.pid)
        if sum(1 for state, cpu in below.values() if state == "R" and cpu >= PARSING) >= workers:
            return below
        time.sleep(0.05)
    raise AssertionError(f"no parse seen within {timeout}s: {descendants(daemon.process.pid)}")


def wait_idle(pid: int, within: float) -> dict[int, tuple[str, float]]:
    """The processes below ``pid`` once none of them runs (or as they are after ``within`` seconds)."""
    deadline = time.monotonic() + within
    below = descendants(pid)
    while any(state == "R" for state, _ in below.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
        below = descendants(pid)
    return below


def wait_gone(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    while (left := [pid for pid in pids if _stat(pid) is not None]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def config_for(tmp_path: Path, server: FeedServer, feeds: int, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "sqlite:///{tmp_path / "m.db"}"\n{extra}\n'
                      '[http]\nmax_bytes = "50MB"\n'
                      + "".join(f'[[feeds]]\nname = "heavy{n}"\nurl = "{server.url(f"/heavy{n}")}"\n'
                                for n in range(feeds)))
    return config


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_workers_exit_when_the_daemon_is_killed_mid_parse(feed_server: FeedServer, tmp_path: Path,
                                                         method: str) -> None:
    body = heavy_feed(20_000)
    for n in range(2):
        feed_server.routes[f"/heavy{n}"] = Route(body)
    daemon = Daemon(config_for(tmp_path, feed_server, 2, "parse_workers = 2"), command=(*WITH_START_METHOD, method))
    try:
        below = wait_until_parsing(daemon, workers=2)  # both workers parse
        assert len(below) >= 3, below  # two workers and the resource tracker (and forkserver's server)
        daemon.process.kill()
        daemon.process.wait(timeout=10)
        left = wait_gone(list(below), GONE_WITHIN)
        assert not left, f"orphaned after kill -9: {left}"
    finally:
        daemon.stop()


def test_workers_exit_when_the_daemon_is_killed_while_they_are_idle(feed_server: FeedServer,
                                                                   tmp_path: Path) -> None:
    feed_server.routes["/heavy0"] = Route(heavy_feed(10))
    daemon = Daemon(config_for(tmp_path, feed_server, 1, 'parse_workers = 2\n[[channels]]\nname = "console"\n'
                                                         'type = "console"'))
    try:
        daemon.wait_for("info poll feed=heavy0")
        below = wait_idle(daemon.process.pid, GONE_WITHIN)  # a worker started on demand may still be importing
        assert below and "R" not in {state for state, _ in below.values()}
        daemon.process.kill()
        daemon.process.wait(timeout=10)
        assert not wait_gone(list(below), GONE_WITHIN)
    finally:
        daemon.stop()


def test_sigterm_with_a_stuck_worker_ends_within_stop_timeout(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/heavy0"] = Route(heavy_feed(40_000))  # seconds of parsing: past a 1 s stop_timeout
    config = config_for(tmp_path, feed_server, 1, 'parse_workers = 1\nstop_timeout = "1s"')
    daemon = Daemon(config)
    try:
        below = wait_until_parsing(daemon, workers=1)
        daemon.process.terminate()
        signalled = time.monotonic()
        code = daemon.process.wait(timeout=30)
        took = time.monotonic() - signalled
        daemon.stop()
        log = "\n".join(line for line in daemon.seen + list(daemon.lines.queue))
        assert code == 0, log
        # stop_timeout, then the kill; the rest (closing the store, the HTTP client) is quick
        assert took < 1 + 3, f"stop took {took:.1f} s"
        assert "polls still running after stop_timeout (1 s) cancelled: 1" in log
        assert "parse workers still busy (stuck on a feed) killed: 1" in log
        assert "Traceback" not in log
        assert not wait_gone(list(below), GONE_WITHIN)
        from monitor.config import load_file

        (feed,) = rows(load_file(str(config), env={}), FeedRow)
        assert (feed.lease_until, feed.claimed_by, feed.status) == (None, None, "never")  # released, not failed
    finally:
        daemon.stop()
