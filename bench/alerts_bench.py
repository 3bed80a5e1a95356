"""Alert delivery: dispatch throughput to a local webhook receiver, and feed-to-webhook latency.

1. Throughput: N alerts are made by polling a local feed of N matching items once, then the
   dispatcher sends them all to a webhook receiver on 127.0.0.1 (another process, answering
   200 at once). Reports alerts/s of the dispatch alone. Target >= 200/s.
2. Latency: the daemon runs with a 5 s poll interval; items appear in the feed at random
   moments; the receiver notes when each one's alert arrives. Reports p50 and p95 of
   (arrival - appearance). Target p95 <= poll interval + 1 s = 6 s.
Run: python bench/alerts_bench.py [--alerts 1000] [--items 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from monitor.config import load
from monitor.daemon import Daemon, Runtime

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes, the Estonian army said."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def receive(port: int, log: Path) -> None:
    """A keep-alive webhook receiver: answers 200, appends "<unix time> <title>" per request."""
    out = log.open("a", buffering=1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = next(int(line.split(":")[1]) for line in head.split("\r\n")
                              if line.lower().startswith("content-length:"))
                body = json.loads(await reader.readexactly(length))
                out.write(f"{time.time()} {body['item']['title']}\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


class Feed:
    """A feed served from memory by a thread in this process; items are added while it runs."""

    def __init__(self) -> None:
        self.items: list[str] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                body = feed.xml()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.xml"

    def xml(self) -> bytes:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        items = "".join(f"<item><title>{t}</title><link>https://bench.example/{t}</link><guid>{t}</guid>"
                        f"<pubDate>{now}</pubDate><description>{TEXT}</description></item>" for t in self.items)
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>b</title>{items}</channel></rss>'.encode()


def config_text(tmp: Path, feed: str, hook: str, interval: str) -> str:
    return (f'[monitor]\nrules = "{ROOT / "rules"}"\ndatabase = "sqlite:///{tmp / "bench.db"}"\n'
            f'min_interval = "{interval}"\nmax_interval = "{interval}"\nparse_workers = 0\n'
            f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{hook}"\nsecret = "bench"\n'
            f'[[feeds]]\nname = "bench"\nurl = "{feed}"\ninterval = "{interval}"\n')


async def throughput(tmp: Path, feed: Feed, hook: str, count: int) -> float:
    feed.items = [f"t{n}" for n in range(count)]
    config = load(config_text(tmp, feed.url, hook, "5s"), tmp / "config.toml", {})
    async with Runtime(config) as runtime:
        claims = await asyncio.to_thread(runtime.store.claim_many, ["bench"], runtime.clock(), 60, True)
        summary = await runtime.pipeline.poll(config.feeds[0], state=claims["bench"])
        assert summary is not None and summary.alerts == count, summary
        started = time.perf_counter()
        sent = await runtime.dispatcher.run_once()
        elapsed = time.perf_counter() - started
    assert sent == count, sent
    return count / elapsed


async def latency(tmp: Path, feed: Feed, hook: str, log: Path, items: int) -> list[float]:
    feed.items = []
    path = tmp / "latency.toml"
    path.write_text(config_text(tmp / "lat", feed.url, hook, "5s"))
    (tmp / "lat").mkdir()
    daemon = Daemon(str(path))
    runner = asyncio.create_task(daemon.run())
    await asyncio.sleep(3)
    appeared: dict[str, float] = {}
    for number in range(items):
        await asyncio.sleep(random.uniform(1.0, 4.0))
        title = f"late{number}"
        feed.items.append(title)
        appeared[title] = time.time()
    await asyncio.sleep(8)
    daemon.stopping.set()
    await runner
    arrived = {}
    for line in log.read_text().splitlines():
        stamp, title = line.split(" ", 1)
        arrived.setdefault(title, float(stamp))
    missing = set(appeared) - set(arrived)
    assert not missing, f"never delivered: {missing}"
    return [arrived[t] - appeared[t] for t in appeared]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--receive", metavar="PORT", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        asyncio.run(receive(args.receive, Path(args.log)))
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        port, log = free_port(), tmp / "received.log"
        receiver = subprocess.Popen([sys.executable, __file__, "--receive", str(port), "--log", str(log)])
        try:
            time.sleep(1)
            feed, hook = Feed(), f"http://127.0.0.1:{port}/hook"
            rate = asyncio.run(throughput(tmp, feed, hook, args.alerts))
            print(f"dispatch: {args.alerts} alerts to a local webhook at {rate:,.0f} alerts/s (target >= 200/s)")
            log.write_text("")
            delays = sorted(asyncio.run(latency(tmp, feed, hook, log, args.items)))
        finally:
            receiver.terminate()
            receiver.wait()
    p50 = statistics.median(delays)
    p95 = delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))]
    print(f"latency, item in feed -> webhook received, 5 s poll interval, {len(delays)} items: "
          f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {delays[-1]:.2f} s (target p95 <= 6 s)")


if __name__ == "__main__":
    main()
