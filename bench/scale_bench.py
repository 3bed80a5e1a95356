"""Store scale: a daemon on 5,000 local feeds, and listings over stores of 10 k / 100 k (/ 1 M) items.

Part 1, the daemon: 5,000 feeds x --items items (~2 KB each, ingest_bench's feeds and its fast
keep-alive server in a subprocess), polled by `crisis-monitor run` (SQLite) until every feed has
been polled once, then for --settle more seconds (polls answered 304). Prints the peak RSS of the
daemon and of its parse workers (/proc VmHWM; goal <= 200 MB for the daemon), and the database size
per 1,000 items it stored.

Part 2, the listings: stores of each --sizes items are generated DIRECTLY with bulk INSERTs
(tests/webseed.py: items in stories of four over 30 days, a third of the stories matched, alerted)
over 5,000 feeds, because polling 100,000 items would take most of an hour here. For each size
and database: the size per 1,000 items, then the wall time (median of --runs) of `feeds status`,
`items list --since 24h`, `matches list`, `stories list` run as a user runs them (a subprocess:
Python start-up included, measured alone as `--version`), and the dashboard's `/`, `/stories`,
`/feeds` rendered in process (httpx ASGI transport, as bench/web_bench.py). Sizes the run did not
reach (1 M by default) are extrapolated linearly from the two largest measured, and marked so.
--index NAME:TABLE(COLUMNS) creates an index by hand at each size (no migration) and measures again.

Run: nice -n 5 python bench/scale_bench.py [--feeds 5000] [--items 5] [--sizes 10000,100000]
     [--database postgresql+psycopg://...] [--skip-daemon] [--index ix:items(first_seen_at)]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from ingest_bench import free_port, write_feeds  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from monitor.config import load  # noqa: E402
from monitor.daemon import load_active  # noqa: E402
from monitor.store.repo import Store  # noqa: E402
from monitor.web.app import build_app  # noqa: E402
from monitor.web.context import WebContext  # noqa: E402
from tests.fleet import cpu_and_peak  # noqa: E402
from tests.webseed import seed  # noqa: E402

COMMANDS = [("--version",), ("feeds", "status"), ("items", "list", "--since", "24h"), ("matches", "list"),
            ("stories", "list")]
PAGES = ["/", "/stories", "/feeds"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def database_size(url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    engine = create_engine(url)
    with engine.connect() as connection:
        size = int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    engine.dispose()
    return size


def count(url: str, table: str, where: str = "") -> int:
    """Rows of ``table`` (0 while the daemon has not made its tables yet)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one())
    except OperationalError:
        return 0
    finally:
        engine.dispose()


def daemon_part(feeds: int, items: int, settle: float, limit: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "feeds"
        folder.mkdir()
        write_feeds(folder, feeds, items)
        port = free_port()
        server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ingest_bench.py"), "--serve", str(folder),
                                   "--port", str(port)])
        url = f"sqlite:///{Path(tmp) / 'monitor.db'}"
        lines = ["[monitor]", f'rules = "{ROOT / "rules"}"', f'database = "{url}"', 'max_item_age = "30d"',
                 'poll_interval = "30m"', "[[channels]]", 'name = "quiet"', 'type = "console"',
                 'min_severity = "critical"']
        for n in range(feeds):
            lines += ["[[feeds]]", f'name = "feed{n}"', f'url = "http://127.0.0.1:{port}/feed{n}.xml"']
        config = Path(tmp) / "config.toml"
        config.write_text("\n".join(lines) + "\n")
        print(f"part 1: `crisis-monitor run` on {feeds:,} local feeds x {items} items (~2 KB), SQLite; "
              f"load {uptime()}")
        started = time.monotonic()
        daemon = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)], env=env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        peaks: dict[int, float] = {}
        polled = 0
        try:
            time.sleep(5)
            done_at = None
            while time.monotonic() - started < limit:
                for pid in [daemon.pid, *children(daemon.pid)]:
                    try:
                        peaks[pid] = max(peaks.get(pid, 0.0), cpu_and_peak(pid)[1])
                    except (OSError, AttributeError):
                        continue
                if daemon.poll() is not None:
                    print(f"  the daemon exited ({daemon.returncode})")
                    break
                polled = count(url, "feeds", "WHERE last_polled_at IS NOT NULL")
                if polled >= feeds and done_at is None:
                    done_at = time.monotonic()
                    print(f"  every feed polled once in {done_at - started:.0f} s (start-up included); load {uptime()}")
                if done_at is not None and time.monotonic() - done_at > settle:
                    break
                time.sleep(2)
            else:
                print(f"  {polled:,} of {feeds:,} feeds polled within {limit:.0f} s")
            cpu = cpu_and_peak(daemon.pid)[0] if daemon.poll() is None else float("nan")
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
            server.terminate()
            server.wait()
        stored = count(url, "items")
        workers = [peak for pid, peak in peaks.items() if pid != daemon.pid]
        print(f"  peak RSS: daemon {peaks.get(daemon.pid, 0):.0f} MB (goal <= 200 MB); parse workers "
              f"{', '.join(f'{w:.0f}' for w in workers) or 'none'} MB; daemon CPU {cpu:.0f} s")
        print(f"  stored {stored:,} items: SQLite {database_size(url) / max(stored, 1) * 1000 / 1e6:.2f} MB "
              f"per 1,000 items of ~2 KB (polled, not generated)")


# The CLI as a user runs it, with the time its SQL statements took (what grows with the store) told apart
# from the rest (start-up, imports, formatting the table), on stderr's last line.
TIMED = """
import sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
spent = [0.0]
@event.listens_for(Engine, "before_cursor_execute")
def _before(conn, cursor, statement, parameters, context, many):
    conn.info.setdefault("started", []).append(time.perf_counter())
@event.listens_for(Engine, "after_cursor_execute")
def _after(conn, cursor, statement, parameters, context, many):
    spent[0] += time.perf_counter() - conn.info["started"].pop()
from monitor.cli import main
try:
    code = main(sys.argv[1:])
finally:
    print(f"SQL {spent[0] * 1000:.3f}", file=sys.stderr)
sys.exit(code)
"""


def median_run(args: tuple[str, ...], config: Path, runs: int) -> tuple[float, float]:
    """Median wall time of the command, and of its SQL, in ms."""
    walls, sqls = [], []
    for _ in range(runs):
        command = [sys.executable, "-m", "monitor", *args] if args == ("--version",) else \
            [sys.executable, "-c", TIMED, *args, "--config", str(config)]
        started = time.perf_counter()
        done = subprocess.run(command, env=env(), capture_output=True, text=True, cwd=config.parent)
        walls.append(time.perf_counter() - started)
        assert done.returncode == 0, (args, done.stderr[-500:])
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        sqls.append(float(last.split()[1]) / 1000 if last.startswith("SQL ") else 0.0)
    return statistics.median(walls) * 1000, statistics.median(sqls) * 1000


def page_times(url: str, config_path: Path, runs: int) -> dict[str, float]:
    config = load(config_path.read_text(), config_path, {})
    store = Store(url)
    active = load_active(config)

    async def healthy() -> bool:
        return True

    app = build_app(WebContext(store=store, config=lambda: config, active=lambda: active, healthy=healthy))

    async def measure() -> dict[str, float]:
        out: dict[str, list[float]] = {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9464",
                                     follow_redirects=True) as client:
            for path in PAGES:
                await client.get(path)  # warm: templates compiled, caches filled
            for _ in range(runs):
                for path in PAGES:
                    started = time.perf_counter()
                    answer = await client.get(path)
                    out.setdefault(path, []).append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
        return {path: statistics.median(values) for path, values in out.items()}

    try:
        return asyncio.run(measure())
    finally:
        store.close()


def fresh(url: str) -> None:
    if url.startswith("sqlite"):
        return
    from monitor.store.tables import metadata

    engine = create_engine(url)
    with engine.begin() as connection:
        metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS schema_version"))
    engine.dispose()


def create_index(url: str, spec: str) -> None:
    name, _, target = spec.partition(":")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))
        connection.execute(text("ANALYZE"))
    engine.dispose()


def store_part(kind: str, base: str, sizes: list[int], feeds: int, runs: int, indexes: list[str],
               target: int) -> None:
    results: dict[str, dict[int, float]] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            url = base or f"sqlite:///{Path(tmp) / 'monitor.db'}"
            fresh(url)
            config = Path(tmp) / "config.toml"
            config.write_text(f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "{url}"\n'
                              '[[feeds]]\nname = "feed-00"\nurl = "https://f0.example/rss"\n')
            store = Store(url)
            started = time.perf_counter()
            seed(store, datetime.now(UTC), items=size, feeds=feeds)
            store.close()
            if kind == "postgresql":  # the planner's statistics, as autovacuum would have them by now
                engine = create_engine(url)
                with engine.begin() as connection:
                    connection.execute(text("ANALYZE"))
                engine.dispose()
            filled = time.perf_counter() - started
            per = database_size(url) / size * 1000 / 1e6
            print(f"{kind}, {size:,} items generated in {filled:.0f} s over {feeds:,} feeds: {per:.2f} MB per 1,000 "
                  f"items (generated: title-long text); load {uptime()}")
            for label, variant in [("", None), *((f" +{spec.partition(':')[0]}", spec) for spec in indexes)]:
                if variant is not None:
                    create_index(url, variant)
                row = {" ".join(args): median_run(args, config, runs) for args in COMMANDS}
                row.update({f"page {path}": (ms, float("nan")) for path, ms in page_times(url, config, runs).items()})
                print(f"  {label.strip() or 'as shipped'} (load {uptime()}), median wall ms (of it SQL ms):")
                for name, (ms, sql) in row.items():
                    results.setdefault(name + label, {})[size] = ms
                    if sql == sql:  # measured (a page's SQL runs in the app's threads: not told apart)
                        results.setdefault(f"{name}{label}, SQL", {})[size] = sql
                    shown = f" ({sql:,.0f})" if sql == sql and name != "--version" else ""
                    print(f"    {name:28} {ms:8,.0f}{shown}")
    if target not in sizes and len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        print(f"{kind} at {target:,} items, EXTRAPOLATED linearly from {small:,} and {large:,} (not measured; "
              f"wall times swing with the machine's load: --version is the yardstick; the SQL part is steadier):")
        for name, values in results.items():
            if name.startswith("--version"):
                continue  # start-up: it does not read the store
            slope = (values[large] - values[small]) / (large - small)
            print(f"  {name}: {values[large] + slope * (target - large):,.0f} ms "
                  f"({slope * 1e5:+.1f} ms per 100 k items)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--items", type=int, default=5, help="items per feed in part 1")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds polled after the first cycle")
    parser.add_argument("--limit", type=float, default=900.0, help="at most this long for part 1")
    parser.add_argument("--sizes", default="10000,100000", help="store sizes of part 2 (comma-separated)")
    parser.add_argument("--target", type=int, default=1_000_000, help="size extrapolated to when not measured")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="", help="part 2 also on this PostgreSQL URL (its tables are dropped!)")
    parser.add_argument("--index", action="append", default=[], metavar="NAME:TABLE(COLUMNS)",
                        help="an index created by hand, then measured again")
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument("--skip-store", action="store_true")
    args = parser.parse_args()
    if not args.skip_daemon:
        daemon_part(args.feeds, args.items, args.settle, args.limit)
    if not args.skip_store:
        sizes = [int(s) for s in args.sizes.split(",")]
        store_part("sqlite", "", sizes, args.feeds, args.runs, args.index, args.target)
        if args.database:
            store_part("postgresql", args.database, sizes, args.feeds, args.runs, args.index, args.target)


if __name__ == "__main__":
    main()
