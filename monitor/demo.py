"""``crisis-monitor demo``: the whole path offline, in seconds.

Serves the seed corpus as an RSS feed on 127.0.0.1, polls it with the shipped rules into a
temporary SQLite database, delivers to the console and to a local webhook receiver it
starts (which checks every signature), and prints the alerts with their matched terms.
Nothing leaves the machine and nothing is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from xml.sax.saxutils import escape

from monitor.config import load
from monitor.daemon import Runtime, settle


def seed_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#*").strip().rstrip("*").strip()
        if line and not line.startswith("date ") and len(line.split()) >= 4:
            return line if len(line) <= 120 else line[:117].rsplit(" ", 1)[0] + "…"
    return fallback


def seed_feed(folder: Path, now: datetime) -> bytes:
    items = []
    for number, path in enumerate(sorted(folder.glob("*.txt"))):
        text = path.read_text(encoding="utf-8")
        when = format_datetime(now - timedelta(hours=number), usegmt=True)
        items.append(f"<item><title>{escape(seed_title(text, path.stem))}</title>"
                     f"<link>https://seeds.crisis-monitor.invalid/{path.stem}</link><guid>{path.stem}</guid>"
                     f"<pubDate>{when}</pubDate><description>{escape(text)}</description></item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Seed corpus</title>'
            f"<link>https://seeds.crisis-monitor.invalid/</link><description>demo</description>{''.join(items)}"
            f"</channel></rss>").encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:  # the stdlib's name
        self._answer(200, self.server.feed) if self.path == "/seeds.xml" else self._answer(404, b"")

    def do_POST(self) -> None:  # the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        stamp = self.headers.get("X-Crisis-Monitor-Timestamp", "")
        expected = "sha256=" + hmac.new(self.server.secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(expected, self.headers.get("X-Crisis-Monitor-Signature", ""))
        self.server.received.append((json.loads(body), signed))
        self._answer(200 if signed else 401, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    feed: bytes
    secret: bytes
    received: list[tuple[dict[str, Any], bool]]


@contextmanager
def _serving(feed: bytes, secret: bytes) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.feed, server.secret, server.received = feed, secret, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp: Path, rules: Path, port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return (f'[monitor]\nrules = "{rules}"\ndatabase = "sqlite:///{tmp / "demo.db"}"\nparse_workers = 0\n'
            f'log_format = "text"\n[[feeds]]\nname = "seeds"\nurl = "{base}/seeds.xml"\ntags = ["demo"]\n'
            f'[[channels]]\nname = "console"\ntype = "console"\n'
            f'[[channels]]\nname = "local-webhook"\ntype = "webhook"\nurl = "{base}/hook"\n'
            'secret = "${DEMO_WEBHOOK_SECRET}"\n')


def _some(values: list[str], most: int = 6) -> str:
    shown = ", ".join(values[:most])
    return shown + (f" (+{len(values) - most} more)" if len(values) > most else "")


def run_demo(rules: Path, seeds: Path, out: TextIO) -> int:
    """The demo; 0 when every alert reached the webhook with a valid signature."""
    started = time.monotonic()
    rules, seeds = rules.resolve(), seeds.resolve()
    secret = secrets.token_hex(16)
    print(f"crisis-monitor demo: serving the {len(list(seeds.glob('*.txt')))} seed articles as an RSS feed "
          "on 127.0.0.1, with a webhook receiver beside it\n", file=out)
    with tempfile.TemporaryDirectory() as name, _serving(seed_feed(seeds, datetime.now(UTC)), secret.encode()) as web:
        tmp = Path(name)
        config = load(_config(tmp, rules, web.server_address[1]), tmp / "config.toml",
                      {"DEMO_WEBHOOK_SECRET": secret})

        async def cycle() -> Any:
            async with Runtime(config) as runtime:
                summaries = await runtime.poll_all(list(config.feeds))
                await settle()
                return summaries

        print("console channel:", file=out)
        out.flush()
        summary = asyncio.run(cycle())[0]
        received = list(web.received)
    print(f"\nwebhook receiver: {len(received)} alerts, signatures "
          f"{'all valid' if all(ok for _, ok in received) else 'INVALID'}:", file=out)
    for body, ok in received:
        matched = body["matched"]
        print(f"  {'✓' if ok else '✗'} [{body['rule']['severity'].upper()}] {body['rule']['id']}: "
              f"{body['item']['title']}\n      terms: {_some(matched['terms'])}\n"
              f"      entities: {_some(matched['entities'])}", file=out)
    print(f"\n{summary.new_items} items, {summary.matches} matches, {summary.alerts} alerts in "
          f"{time.monotonic() - started:.1f} s. Next: edit rules/*.yaml and run `crisis-monitor rules test`, "
          "or follow real feeds with `crisis-monitor poll` (config.toml).", file=out)
    return 0 if received and len(received) == summary.alerts and all(ok for _, ok in received) else 1
