"""The service commands behind the CLI: run, poll, feeds, items, matches, alerts.

Each takes plain arguments and an output stream and returns an exit status; cli.py
only parses arguments. Listings print a text table, or with ``json`` one JSON array.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from monitor.config import Config, load_file
from monitor.errors import InputError
from monitor.listing import DEFAULT_LIMIT, emit, emit_limited, table
from monitor.units import parse_duration


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError as error:
        raise InputError(f"--since: {error}") from None


@contextmanager
def _opened(config: Config) -> Iterator[Any]:
    """The store of ``config``'s database, closed afterwards."""
    from monitor.store.repo import Store

    store = Store(config.database)
    try:
        yield store
    finally:
        store.close()


def run(config_path: str | None) -> int:
    from monitor import logs
    from monitor.daemon import Daemon

    config = load_file(config_path)
    logs.setup(config.log_format)
    return asyncio.run(Daemon(config_path).run())


def poll(config_path: str | None, feed: str | None, out: TextIO) -> int:
    from monitor import logs
    from monitor.daemon import Runtime

    config = load_file(config_path)
    logs.setup(config.log_format)
    feeds = [config.feed(feed)] if feed else list(config.feeds)

    async def cycle() -> list[Any]:
        async with Runtime(config) as runtime:
            return await runtime.poll_all(feeds)

    summaries = asyncio.run(cycle())
    rows = [{"feed": s.feed, "status": s.status, "new": s.new_items, "updated": s.updated_items,
             "matches": s.matches, "alerts": s.alerts, "error": s.error} for s in summaries]
    table(rows, ["feed", "status", "new", "updated", "matches", "alerts", "error"], out)
    totals = {k: sum(r[k] for r in rows) for k in ("new", "matches", "alerts")}
    failed = sum(1 for r in rows if r["status"] in ("error", "gone"))
    print(f"{len(rows)} feeds polled ({failed} failing): {totals['new']} new items, {totals['matches']} matches, "
          f"{totals['alerts']} alerts", file=out)
    return 0


def feeds_list(config_path: str | None, fmt: str, out: TextIO) -> int:
    config = load_file(config_path)
    rows = [{"name": f.name, "url": f.display_url, "interval": f.interval or config.poll_interval,
             "tags": list(f.tags)} for f in config.feeds]
    return emit(rows, ["name", "url", "interval", "tags"], fmt, out)


def feed_status_rows(config: Config, stored: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``feeds status`` rows: each configured feed with its stored state (the web API's too)."""
    by_name = {row["name"]: row for row in stored}
    rows = []
    for spec in config.feeds:
        row = by_name.get(spec.name, {})
        rows.append({"name": spec.name, "url": spec.display_url, "status": row.get("status", "never"),
                     "items": row.get("items", 0), "last_polled_at": row.get("last_polled_at"),
                     "next_poll_at": row.get("next_poll_at"), "last_error": row.get("last_error"),
                     "consecutive_failures": row.get("consecutive_failures", 0)})
    return rows


def feeds_status(config_path: str | None, fmt: str, out: TextIO) -> int:
    config = load_file(config_path)
    with _opened(config) as store:
        rows = feed_status_rows(config, store.feeds())
    return emit(rows, ["name", "status", "items", "last_polled_at", "next_poll_at", "consecutive_failures",
                       "last_error"], fmt, out)


def feeds_import(config_path: str | None, opml: str, out: TextIO) -> int:
    from monitor.feeds.opml import new_feeds, read_opml, toml_feeds

    config = load_file(config_path)
    try:
        data = Path(opml).read_bytes()
    except OSError as error:
        raise InputError(f"{opml}: cannot read: {error.strerror}", "check the path") from None
    added = new_feeds(read_opml(data, opml), config.feeds)
    if added:
        text = config.path.read_text(encoding="utf-8")
        separator = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        config.path.write_text(text + separator + toml_feeds(added) + "\n", encoding="utf-8")
        load_file(str(config.path))  # what we wrote must load; a bug here should not go unnoticed
    for feed in added:
        print(f"added {feed.name}: {feed.url}", file=out)
    print(f"{len(added)} feeds added to {config.path}; reload the daemon (systemctl reload crisis-monitor)",
          file=out)
    return 0


def feeds_export(config_path: str | None, out: TextIO) -> int:
    from monitor.feeds.opml import write_opml

    config = load_file(config_path)
    out.write(write_opml(config.feeds, datetime.now(UTC)))
    return 0


def items_list(config_path: str | None, feed: str | None, since: str | None, fmt: str, out: TextIO,
               limit: int = DEFAULT_LIMIT) -> int:
    moment = _since(since)
    with _opened(load_file(config_path)) as store:
        return emit_limited(lambda n: store.iter_items(moment, feed, n), lambda: store.count_items(moment, feed),
                            ["id", "feed", "first_seen_at", "title", "url"], fmt, out, limit, "items")


def matches_list(config_path: str | None, rule: str | None, since: str | None, fmt: str, out: TextIO,
                 limit: int = DEFAULT_LIMIT) -> int:
    moment = _since(since)
    with _opened(load_file(config_path)) as store:
        return emit_limited(lambda n: store.iter_matches(moment, rule, n), lambda: store.count_matches(moment, rule),
                            ["created_at", "rule", "severity", "story", "clauses", "terms", "item"], fmt, out, limit,
                            "matches")


def alerts_list(config_path: str | None, status: str | None, fmt: str, out: TextIO, limit: int = DEFAULT_LIMIT,
                rule: str | None = None, since: str | None = None) -> int:
    moment = _since(since)
    with _opened(load_file(config_path)) as store:
        return emit_limited(lambda n: store.iter_alerts(status, rule, moment, n),
                            lambda: store.count_alerts(status, rule, moment),
                            ["created_at", "id", "rule", "story", "channel", "status", "attempts", "last_error",
                             "item_url"], fmt, out, limit, "deliveries")


def alerts_retry(config_path: str | None, alert_id: str | None, dead: bool, out: TextIO) -> int:
    from monitor.store.outbox import Outbox

    if not alert_id and not dead:
        raise InputError("alerts retry: say which: an alert ID, or --dead for every dead delivery",
                         "see the ids with: crisis-monitor alerts list --status dead")
    with _opened(load_file(config_path)) as store:
        count = Outbox(store).retry(datetime.now(UTC), alert_id, dead)
    if alert_id and not count:
        raise InputError(f"alerts retry: no undelivered delivery of alert {alert_id}",
                         "see the ids with: crisis-monitor alerts list")
    print(f"{count} deliveries pending again; the running daemon sends them within seconds "
          f"(or run crisis-monitor poll)", file=out)
    return 0


def sample_alert(channel: str) -> Any:
    from monitor.types import Alert

    now = datetime.now(UTC)
    snippet = "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes (a test alert)."
    return Alert(id=f"test-{uuid.uuid4()}", created_at=now, rule="airspace-violation",
                 rule_title="Military aircraft or drone violates a state's airspace", severity="high",
                 tags=("airspace", "test"), item_title="crisis-monitor test alert",
                 item_url="https://example.org/crisis-monitor-test", published_at=now, feed="crisis-monitor",
                 terms=("violated … airspace", "mig 31"), entities=("russia", "mig-31", "estonia"), snippet=snippet,
                 highlights=tuple((snippet.index(w), snippet.index(w) + len(w)) for w in ("MiG-31", "violated")),
                 channel=channel)


def alerts_test(config_path: str | None, name: str, out: TextIO) -> int:
    """Send a sample alert through the real channel, not the outbox, and say what happened."""
    from monitor.notify.dispatch import build_notifier

    config = load_file(config_path)
    channel = next((c for c in config.channels if c.name == name), None)
    if channel is None:
        known = ", ".join(c.name for c in config.channels)
        raise InputError(f"{config.path}: no channel named {name!r}", f"channels: {known}")

    async def send() -> Any:
        notifier = build_notifier(channel, config.http.user_agent)
        from monitor.daemon import settle

        try:
            return await notifier.send(sample_alert(name))
        finally:
            await notifier.close()
            await settle()

    failure = asyncio.run(send())
    if failure is None:
        print(f"sent a test alert to {name} ({channel.type}): accepted", file=out)
        return 0
    again = "a retry could succeed" if failure.retryable else "retrying will not help; check the channel's settings"
    print(f"test alert to {name} ({channel.type}) failed: {failure.error} ({again})", file=out)
    return 1
