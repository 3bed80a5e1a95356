"""``crisis-monitor demo``: the whole path offline, in seconds.

Serves the seed corpus as the RSS feeds of several outlets on 127.0.0.1 (each article at one
outlet first; then copies at others, under their own headline, link, byline and boilerplate),
polls them twice with the shipped rules into a temporary SQLite database, delivers to the
console and to a local webhook receiver it starts (which checks every signature), and prints
the alerts and updates, then what clustering saved: each story alerts once per rule and sends
updates as it spreads, where every report would have alerted for every rule it matched.
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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Outlet:
    """A news outlet of the demo: its feed, the publisher it is, how it retitles and wraps copy."""

    feed: str
    name: str
    domain: str
    tier: str
    headline: str  # a str.format pattern over the original {title}
    byline: str
    footer: str


OUTLETS = (
    Outlet("baltic-wire", "Baltic Wire", "balticwire.example", "wire", "{title}", "By Baltic Wire staff.",
           "Copyright Baltic Wire. All rights reserved."),
    Outlet("nordic-daily", "Nordic Daily", "nordicdaily.example", "media", "Analysis: {title}",
           "By a Nordic Daily correspondent.", "Subscribe to the Nordic Daily newsletter for more."),
    Outlet("eastern-herald", "Eastern Herald", "easternherald.example", "media", "{title} (what we know)",
           "By Eastern Herald.", "Read more on the Eastern Herald's security page. Follow us for updates."),
    Outlet("policy-review", "Policy Review", "policyreview.example", "other", "{title} | Policy Review",
           "By the Policy Review desk.", "Sign up for the Policy Review briefing."),
)
# How many other outlets republish each seed (in seed order): a wire text travels, an old
# feature does not; the last ones stay single.
REPUBLISHED = (3, 1, 1, 3, 1)


@dataclass(frozen=True)
class Report:
    """One seed article as one outlet carries it; ``copy`` says whether it came in the second round."""

    outlet: Outlet
    guid: str
    title: str
    link: str
    text: str
    published: datetime
    copy: bool


def reports(folder: Path, now: datetime) -> list[Report]:
    """The seed articles as the outlets carry them: each at its home outlet first, then copied by
    the next ``REPUBLISHED[n]`` outlets under their own headline, link and boilerplate."""
    out = []
    for number, path in enumerate(sorted(folder.glob("*.txt"))):
        text = path.read_text(encoding="utf-8")
        title = seed_title(text, path.stem)
        published = now - timedelta(hours=number + 1)
        home = OUTLETS[number % len(OUTLETS)]
        out.append(Report(home, f"{home.feed}-{path.stem}", title, f"https://www.{home.domain}/{path.stem}", text,
                          published, False))
        copies = REPUBLISHED[number] if number < len(REPUBLISHED) else 0
        for step in range(1, min(copies, len(OUTLETS) - 1) + 1):
            outlet = OUTLETS[(number + step) % len(OUTLETS)]
            out.append(Report(outlet, f"{outlet.feed}-{path.stem}", outlet.headline.format(title=title),
                              f"https://www.{outlet.domain}/news/{number}-{step}",
                              f"{outlet.byline} {text}\n\n{outlet.footer}", published + timedelta(minutes=20 * step),
                              True))
    return out


def outlet_feed(outlet: Outlet, carried: list[Report]) -> bytes:
    items = [f"<item><title>{escape(r.title)}</title><link>{escape(r.link)}</link><guid>{escape(r.guid)}</guid>"
             f"<pubDate>{format_datetime(r.published, usegmt=True)}</pubDate>"
             f"<description>{escape(r.text)}</description></item>" for r in carried if r.outlet == outlet]
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(outlet.name)}</title>'
            f"<link>https://www.{outlet.domain}/</link><description>demo</description>{''.join(items)}"
            f"</channel></rss>").encode()


def outlet_feeds(all_reports: list[Report], second_round: bool) -> dict[str, bytes]:
    """Each outlet's feed at ``/<feed>.xml``: the first round carries the originals, the second
    adds the copies (a feed keeps what it had)."""
    carried = [r for r in all_reports if second_round or not r.copy]
    return {f"/{o.feed}.xml": outlet_feed(o, carried) for o in OUTLETS}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:  # the stdlib's name
        feed = self.server.feeds.get(self.path)
        self._answer(200, feed) if feed is not None else self._answer(404, b"")

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
    feeds: dict[str, bytes]
    secret: bytes
    received: list[tuple[dict[str, Any], bool]]


@contextmanager
def _serving(feeds: dict[str, bytes], secret: bytes) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.feeds, server.secret, server.received = feeds, secret, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp: Path, rules: Path, port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    feeds = "".join(f'[[feeds]]\nname = "{o.feed}"\nurl = "{base}/{o.feed}.xml"\ntags = ["demo"]\n' for o in OUTLETS)
    return (f'[monitor]\nrules = "{rules}"\ndatabase = "sqlite:///{tmp / "demo.db"}"\nparse_workers = 0\n'
            f'log_format = "text"\n{feeds}'
            f'[[channels]]\nname = "console"\ntype = "console"\n'
            f'[[channels]]\nname = "local-webhook"\ntype = "webhook"\nurl = "{base}/hook"\n'
            'secret = "${DEMO_WEBHOOK_SECRET}"\n')


def _some(values: list[str], most: int = 6) -> str:
    shown = ", ".join(values[:most])
    return shown + (f" (+{len(values) - most} more)" if len(values) > most else "")


def _received_line(body: dict[str, Any], ok: bool) -> str:
    mark, severity, rule = "✓" if ok else "✗", body["rule"]["severity"].upper(), body["rule"]["id"]
    kind = body.get("type", "alert")
    story = body.get("story") or {}
    if kind == "update":
        return (f"  {mark} [{severity}] {rule} update of story {story.get('id')}: {body.get('reason', '')} "
                f"({_some(story.get('publishers', []), 4)})")
    if kind == "surge":
        surge = body.get("surge") or {}
        return f"  {mark} [{severity}] {rule} surge: {surge.get('count')} stories (baseline {surge.get('baseline')})"
    matched = body["matched"]
    where = f"story {story['id']}; " if story else ""
    return (f"  {mark} [{severity}] {rule}: {body['item']['title']}\n      {where}terms: {_some(matched['terms'])}\n"
            f"      entities: {_some(matched['entities'])}")


@dataclass(frozen=True)
class Outcome:
    """What the demo's two rounds did."""

    reports: int
    matches: int
    stories: int
    deliveries: int
    delivered: int


def _run(config: Any, web: _Server, all_reports: list[Report], out: TextIO) -> Outcome:
    """Poll every outlet twice (the originals, then the copies too) and deliver; count what it made."""
    from monitor.store import views

    later = timedelta(0)  # the second round happens an hour on, past the rules' update cooldown (30 min)

    def clock() -> datetime:
        return datetime.now(UTC) + later

    async def rounds() -> list[Any]:
        nonlocal later
        async with Runtime(config, clock=clock) as runtime:
            summaries = list(await runtime.poll_all(list(config.feeds)))
            await settle()
            print("  (an hour later: the outlets republish the stories)", file=out, flush=True)
            later = timedelta(hours=1)
            web.feeds = outlet_feeds(all_reports, second_round=True)
            summaries += await runtime.poll_all(list(config.feeds))
            await settle()
            deliveries = await asyncio.to_thread(runtime.store.count_alerts)
            delivered = await asyncio.to_thread(runtime.store.count_alerts, "delivered")
            stories = await asyncio.to_thread(views.story_count, runtime.store)
            return [summaries, stories, deliveries, delivered]

    summaries, stories, deliveries, delivered = asyncio.run(rounds())
    return Outcome(sum(s.new_items for s in summaries), sum(s.matches for s in summaries), stories, deliveries,
                   delivered)


def saved_line(outcome: Outcome, kinds: dict[str, int]) -> str:
    """"16 reports → 5 stories: 9 alerts + 4 updates instead of 35 alerts": what clustering saved
    (without stories, every report alerts once for every rule it matches)."""
    made = f"{kinds.get('alert', 0)} alerts + {kinds.get('update', 0)} updates"
    if kinds.get("surge"):
        made += f" + {kinds['surge']} surges"
    return f"{outcome.reports} reports → {outcome.stories} stories: {made} instead of {outcome.matches} alerts"


def run_demo(rules: Path, seeds: Path, out: TextIO) -> int:
    """The demo; 0 when every alert reached its channels, each webhook with a valid signature."""
    started = time.monotonic()
    rules, seeds = rules.resolve(), seeds.resolve()
    secret = secrets.token_hex(16)
    all_reports = reports(seeds, datetime.now(UTC))
    print(f"crisis-monitor demo: the {len(list(seeds.glob('*.txt')))} seed articles as {len(all_reports)} reports "
          f"in the feeds of {len(OUTLETS)} outlets on 127.0.0.1, with a webhook receiver beside it\n", file=out)
    with tempfile.TemporaryDirectory() as name, \
            _serving(outlet_feeds(all_reports, second_round=False), secret.encode()) as web:
        tmp = Path(name)
        config = load(_config(tmp, rules, web.server_address[1]), tmp / "config.toml",
                      {"DEMO_WEBHOOK_SECRET": secret})
        print("console channel:", file=out)
        out.flush()
        outcome = _run(config, web, all_reports, out)
        received = list(web.received)
    signed = bool(received) and all(ok for _, ok in received)
    print(f"\nwebhook receiver: {len(received)} messages, signatures {'all valid' if signed else 'INVALID'}:",
          file=out)
    kinds: dict[str, int] = {}
    for body, ok in received:
        kinds[body.get("type", "alert")] = kinds.get(body.get("type", "alert"), 0) + 1
        print(_received_line(body, ok), file=out)
    print(f"\n{saved_line(outcome, kinds)} ({time.monotonic() - started:.1f} s). Next: edit rules/*.yaml and run "
          "`crisis-monitor rules test`, or follow real feeds with `crisis-monitor poll` (config.toml).", file=out)
    return 0 if signed and outcome.deliveries and outcome.delivered == outcome.deliveries else 1
