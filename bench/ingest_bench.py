"""Ingestion throughput: 300 feeds x 30 items (~2 KB each) served on 127.0.0.1, two poll cycles.

The feeds are served from memory by a small keep-alive HTTP/1.1 server in a separate process
(this script with --serve), which sends an ETag and answers If-None-Match with 304 as real
servers do. (`python -m http.server` manages only about 50 requests/s: it would measure
itself.) The shipped
rules run over every item; about one item in twenty is written to match one. Reports:
- cycle 1 (every item new): items/s, and where the time goes (fetch, parse, match, store);
- cycle 2 (nothing changed): feeds/s;
- peak RSS of this process.
Targets (2 cores): cycle 1 >= 1,500 items/s; cycle 2 >= 400 feeds/s; peak RSS <= 200 MB.
Run: python bench/ingest_bench.py [--feeds 300] [--items 30] [--database URL] [--per-host 4]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from monitor.config import load
from monitor.daemon import Runtime
from monitor.pipeline import PollSummary

ROOT = Path(__file__).resolve().parent.parent
TEXT = ("the minister said talks on trade and energy would continue next week while officials in the "
        "capital reviewed budget plans for schools hospitals roads and the regional council met to discuss "
        "housing prices inflation farming exports weather tourism football elections culture museums")
WORDS = TEXT.split()
MATCHING = "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes before NATO jets intercepted them."


def item_xml(rng: random.Random, feed: int, number: int, now: datetime) -> str:
    words = rng.choices(WORDS, k=300)
    text = " ".join(words)[:1900]
    if rng.random() < 0.05:
        text = MATCHING + " " + text[: 1900 - len(MATCHING)]
    title = " ".join(rng.choices(WORDS, k=8)).capitalize()
    when = format_datetime(now - timedelta(minutes=number), usegmt=True)
    return (f"<item><title>{escape(title)}</title><link>https://news{feed}.example.org/{number}</link>"
            f"<guid>f{feed}-i{number}</guid><pubDate>{when}</pubDate>"
            f"<description>{escape(text)}</description></item>")


def write_feeds(folder: Path, feeds: int, items: int) -> None:
    rng = random.Random(20250919)
    now = datetime.now(UTC)
    for feed in range(feeds):
        body = "".join(item_xml(rng, feed, n, now) for n in range(items))
        (folder / f"feed{feed}.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {feed}</title>'
            f"<link>https://news{feed}.example.org/</link><description>bench</description>{body}</channel></rss>")


async def serve(folder: Path, port: int) -> None:
    """Serve the files of ``folder`` until killed: GET only, keep-alive, ETag and 304."""
    files = {f"/{p.name}": p.read_bytes() for p in folder.iterdir()}
    tags = {path: f'"{hash(body) & 0xFFFFFFFF:x}"' for path, body in files.items()}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                body = files.get(path)
                if body is None:
                    status, body, extra = "404 Not Found", b"", ""
                elif headers.get("if-none-match") == tags[path]:
                    status, body, extra = "304 Not Modified", b"", f"ETag: {tags[path]}\r\n"
                else:
                    kind = "text/html" if path.endswith(".html") else "application/rss+xml"
                    status, extra = "200 OK", f"ETag: {tags[path]}\r\nContent-Type: {kind}\r\n"
                writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(folder: Path, port: int, feeds: int, database: str, per_host: int = 4) -> str:
    lines = ["[monitor]", f'rules = "{ROOT / "rules"}"', f'database = "{database}"', 'max_item_age = "30d"',
             "[http]", "concurrency = 32", f"per_host = {per_host}",
             "[[channels]]", 'name = "quiet"', 'type = "console"', 'min_severity = "critical"']
    for feed in range(feeds):
        lines += ["[[feeds]]", f'name = "feed{feed}"', f'url = "http://127.0.0.1:{port}/feed{feed}.xml"']
    return "\n".join(lines) + "\n"


async def cycles(text: str, path: Path) -> list[tuple[float, list[PollSummary]]]:
    config = load(text, path, {})
    out = []
    async with Runtime(config) as runtime:
        for _ in range(2):
            started = time.perf_counter()
            summaries = await runtime.poll_all(list(config.feeds))
            out.append((time.perf_counter() - started, summaries))
    return out


def report(label: str, seconds: float, summaries: list[PollSummary]) -> None:
    stages = {"fetch": 0.0, "parse": 0.0, "match": 0.0, "store": 0.0}
    for summary in summaries:
        for stage, value in summary.timings.items():
            stages[stage] += value
    statuses: dict[str, int] = {}
    for summary in summaries:
        statuses[summary.status] = statuses.get(summary.status, 0) + 1
    new = sum(s.new_items for s in summaries)
    print(f"{label}: {seconds:.2f} s, {len(summaries) / seconds:,.0f} feeds/s, {new / seconds:,.0f} new items/s "
          f"({new} items, {sum(s.matches for s in summaries)} matches; statuses {statuses})")
    total = sum(stages.values()) or 1.0
    print("  mean wall time per feed in each stage (waits for a connection or a worker included): " +
          ", ".join(f"{k} {1000 * v / len(summaries):.1f} ms ({100 * v / total:.0f}%)" for k, v in stages.items()))


def wait_for_port(port: int, seconds: float = 60.0) -> None:
    """Until the feed server accepts connections (it imports the package first: slow on a busy machine)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--per-host", type=int, default=4,
                        help="[http] per_host (default 4, the shipped default; every feed here is on one host)")
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve), args.port))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "feeds"
        folder.mkdir()
        write_feeds(folder, args.feeds, args.items)
        size = sum(p.stat().st_size for p in folder.iterdir()) / args.feeds / args.items
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), "--port", str(port)])
        try:
            wait_for_port(port)
            database = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
            print(f"{args.feeds} feeds x {args.items} items, {size:,.0f} bytes per item; database "
                  f"{database.split(':')[0]}; concurrency 32, per_host {args.per_host}")
            text = config_text(folder, port, args.feeds, database, args.per_host)
            (first, s1), (second, s2) = asyncio.run(cycles(text, Path(tmp) / "config.toml"))
        finally:
            server.terminate()
            server.wait()
    report("cycle 1 (all new)", first, s1)
    report("cycle 2 (unchanged)", second, s2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
