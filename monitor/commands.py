"""The service commands behind the CLI: run, poll, feeds, items, matches, alerts, stories, db.

Each takes plain arguments and an output stream and returns an exit status; cli.py
only parses arguments. Listings print a text table, or with ``json`` one JSON array.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from monitor.config import Config, FeedSpec, load_file
from monitor.errors import InputError, did_you_mean
from monitor.listing import DEFAULT_LIMIT, count, emit, emit_limited, table
from monitor.units import format_duration, parse_duration


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError as error:
        raise InputError(f"--since: {error}") from None


@contextmanager
def _opened(config: Config, items_only: bool = False) -> Iterator[Any]:
    """The store of ``config``'s database, closed afterwards. ``items_only``: what reads items may be
    a SQLite reader without SQLAlchemy (monitor/store/quickread.py), which starts faster."""
    from monitor.store.quickread import open_items_reader

    store: Any = open_items_reader(config.database) if items_only else None
    if store is None:
        from monitor.store.repo import Store

        store = Store(config.database, config.story_window, config.max_item_age)
    try:
        yield store
    finally:
        store.close()


def run(config_path: str | None) -> int:
    import asyncio

    from monitor import logs
    from monitor.daemon import Daemon

    config = load_file(config_path)
    logs.setup(config.log_format)
    return asyncio.run(Daemon(config_path).run())


def poll(config_path: str | None, feed: str | None, out: TextIO, strict: bool = False,
         rules: str | None = None) -> int:
    """One cycle of every feed (or ``feed``); exit 1 when every feed failed or a delivery failed
    (with ``strict``, also when any one feed failed)."""
    import asyncio
    from dataclasses import replace

    from monitor import logs
    from monitor.daemon import Runtime

    config = load_file(config_path)
    if rules:
        config = replace(config, rules=Path(rules))
    logs.setup(config.log_format)
    feeds = [config.feed(feed)] if feed else list(config.feeds)

    async def cycle() -> tuple[list[Any], dict[str, int]]:
        async with Runtime(config) as runtime:
            return await runtime.poll_all(feeds), dict(runtime.dispatcher.failures)

    summaries, failures = asyncio.run(cycle())
    rows = [{"feed": s.feed, "status": s.status, "new": s.new_items, "updated": s.updated_items,
             "matches": s.matches, "alerts": s.alerts, "error": s.error} for s in summaries]
    table(rows, ["feed", "status", "new", "updated", "matches", "alerts", "error"], out)
    totals = {k: sum(r[k] for r in rows) for k in ("new", "matches", "alerts")}
    failed = sum(1 for r in rows if r["status"] in ("error", "gone"))
    undelivered = failures.get("retry", 0) + failures.get("dead", 0)
    line = (f"{count(len(rows), 'feed')} polled ({failed} failing): {count(totals['new'], 'new item')}, "
            f"{count(totals['matches'], 'match', 'matches')}, {count(totals['alerts'], 'alert')}")
    if undelivered:
        line += (f"; {count(undelivered, 'delivery', 'deliveries')} failed ({failures.get('dead', 0)} dead, "
                 "the others retried by the next poll or the daemon; see crisis-monitor alerts list)")
    print(line, file=out)
    all_failed = bool(rows) and failed == len(rows)
    return 1 if all_failed or undelivered or (strict and failed) else 0


def feeds_list(config_path: str | None, fmt: str, out: TextIO) -> int:
    config = load_file(config_path, secrets=False)
    def interval(spec: FeedSpec) -> float | str:
        seconds = spec.interval or config.poll_interval
        return format_duration(seconds) if fmt == "text" else seconds

    rows = [{"name": f.name, "url": f.display_url, "interval": interval(f), "tags": list(f.tags),
             "title": f.title or None} for f in config.feeds]
    return emit(rows, ["name", "interval", "tags", "title", "url"], fmt, out)


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
    config = load_file(config_path, secrets=False)
    with _opened(config) as store:
        rows = feed_status_rows(config, store.feeds())
    return emit(rows, ["name", "status", "items", "last_polled_at", "next_poll_at", "consecutive_failures",
                       "last_error"], fmt, out)


def feeds_import(config_path: str | None, opml: str, out: TextIO, err: TextIO | None = None) -> int:
    """Append the OPML's new feeds to config.toml, in one atomic write of a text that was checked to load.

    Invalid outlines are skipped, each with one line on ``err`` (file:line, the outline, why);
    outlines already configured are skipped and counted. config.toml is never left broken: the new
    text is loaded before it is written, and written by rename.
    """
    import os
    import sys

    from monitor.config import load
    from monitor.errors import ConfigError
    from monitor.feeds.opml import plan_import, read_outlines, toml_feeds
    from monitor.files import write_atomic

    err = err or sys.stderr
    config = load_file(config_path, secrets=False)
    try:
        data = Path(opml).read_bytes()
    except OSError as error:
        raise InputError(f"{opml}: cannot read: {error.strerror}", "check the path") from None
    plan = plan_import(read_outlines(data, opml), config.feeds)
    for outline, why in plan.invalid:
        print(f"{opml}:{outline.line}: skipped {outline.title or '(untitled)'!r} <{outline.url}>: {why}", file=err)
    for outline, name in plan.duplicates:
        print(f"skipped {outline.title or outline.url!r}: {outline.url} is already configured as {name}", file=out)
    if plan.added:
        text = config.path.read_text(encoding="utf-8")
        separator = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        new_text = text + separator + toml_feeds(plan.added) + "\n"
        try:
            load(new_text, config.path, os.environ, secrets=False)
        except ConfigError as error:  # a bug of ours, but the user's file must not pay for it
            raise InputError(f"{config.path}: not changed: the imported feeds would make it invalid: {error}",
                             "report this; import the feeds by hand meanwhile") from None
        try:
            write_atomic(config.path, new_text)
        except OSError as error:
            raise InputError(f"{config.path}: not changed: cannot write: {error.strerror}",
                             "check that you may write the file and its folder") from None
    for feed in plan.added:
        print(f"added {feed.name}: {feed.url}", file=out)
    skipped = [f"{count(len(plan.duplicates), 'duplicate')} skipped"] if plan.duplicates else []
    skipped += [f"{len(plan.invalid)} invalid skipped"] if plan.invalid else []
    print(f"{count(len(plan.added), 'feed')} added to {config.path}" + "".join(f", {s}" for s in skipped)
          + ("; reload the daemon (systemctl reload crisis-monitor)" if plan.added else ""), file=out)
    return 0


def feeds_export(config_path: str | None, out: TextIO) -> int:
    from monitor.feeds.opml import write_opml

    config = load_file(config_path, secrets=False)
    out.write(write_opml(config.feeds, datetime.now(UTC)))
    return 0


def _check_feed(config: Config, store: Any, name: str) -> None:
    """``--feed NAME`` must name a configured feed, or one the store still holds items of."""
    if any(f.name == name for f in config.feeds):
        return
    stored = store.feed_names()
    if name not in stored:
        raise InputError(f"--feed: no feed named {name!r} in {config.path} or its database",
                         did_you_mean(name, sorted({*stored, *(f.name for f in config.feeds)}), "feeds"))


def _check_rule(config: Config, store: Any, rule: str) -> None:
    """``--rule ID`` must name a rule of the config's rules folder, or one with stored matches."""
    if store.has_matches(rule):
        return
    from monitor.rules.loader import check_folder

    specs, _, _ = check_folder(config.rules)
    known = [spec.id for spec in specs]
    if rule not in known:
        raise InputError(f"--rule: no rule {rule!r} in {config.rules} or the database",
                         did_you_mean(rule, known, "rules"))


def items_list(config_path: str | None, feed: str | None, since: str | None, fmt: str, out: TextIO,
               limit: int = DEFAULT_LIMIT) -> int:
    moment = _since(since)
    config = load_file(config_path, secrets=False)
    with _opened(config, items_only=True) as store:
        if feed:
            _check_feed(config, store, feed)
        return emit_limited(lambda n: store.iter_items(moment, feed, n), lambda: store.count_items(moment, feed),
                            ["id", "feed", "first_seen_at", "title", "url"], fmt, out, limit, "items")


def matches_list(config_path: str | None, rule: str | None, since: str | None, fmt: str, out: TextIO,
                 limit: int = DEFAULT_LIMIT) -> int:
    moment = _since(since)
    config = load_file(config_path, secrets=False)
    with _opened(config) as store:
        if rule:
            _check_rule(config, store, rule)
        return emit_limited(lambda n: store.iter_matches(moment, rule, n), lambda: store.count_matches(moment, rule),
                            ["created_at", "rule", "severity", "story", "clauses", "terms", "item"], fmt, out, limit,
                            "matches")


def alerts_list(config_path: str | None, status: str | None, fmt: str, out: TextIO, limit: int = DEFAULT_LIMIT,
                rule: str | None = None, since: str | None = None) -> int:
    moment = _since(since)
    config = load_file(config_path, secrets=False)
    with _opened(config) as store:
        if rule:
            _check_rule(config, store, rule)
        return emit_limited(lambda n: store.iter_alerts(status, rule, moment, n),
                            lambda: store.count_alerts(status, rule, moment),
                            ["created_at", "id", "rule", "story", "channel", "status", "attempts", "last_error",
                             "item_url"], fmt, out, limit, "deliveries")


def alerts_retry(config_path: str | None, alert_id: str | None, dead: bool, out: TextIO) -> int:
    from monitor.store.outbox import Outbox

    if not alert_id and not dead:
        raise InputError("alerts retry: say which: an alert ID, or --dead for every dead delivery",
                         "see the ids with: crisis-monitor alerts list --status dead")
    with _opened(load_file(config_path, secrets=False)) as store:
        pending = Outbox(store).retry(datetime.now(UTC), alert_id, dead)
    if alert_id and not pending:
        raise InputError(f"alerts retry: no undelivered delivery of alert {alert_id}",
                         "see the ids with: crisis-monitor alerts list")
    print(f"{count(pending, 'delivery', 'deliveries')} pending again; the running daemon sends them within seconds "
          f"(or run crisis-monitor poll)", file=out)
    return 0


def alerts_show(config_path: str | None, alert_id: str, fmt: str, out: TextIO) -> int:
    """One alert: what it is about, its deliveries, and every attempt to send them (kept by retries)."""
    import json

    from monitor.listing import cell
    from monitor.store.history import alert_history

    with _opened(load_file(config_path, secrets=False)) as store:
        found = alert_history(store, alert_id)
    if found is None:
        raise InputError(f"alerts show: no alert {alert_id} in the database",
                         "see the ids with: crisis-monitor alerts list")
    if fmt == "json":
        print(json.dumps(found, ensure_ascii=False, indent=1), file=out)
        return 0
    print(f"alert {found['id']}: {found['kind']} of rule {found['rule']} ({found['severity']}) on story "
          f"{found['story']}, made {cell(found['created_at'])}", file=out)
    print(f"item: {cell(found['item']['title'])} ({found['item']['feed']}) {cell(found['item']['url'])}", file=out)
    print("\ndeliveries:", file=out)
    emit(found["deliveries"], ["channel", "status", "attempts", "next_attempt_at", "delivered_at", "last_error"],
         "text", out)
    print("\nattempts:", file=out)
    emit(found["attempts"], ["at", "channel", "attempt", "outcome", "status_code", "error"], "text", out)
    return 0


TEST_RULE = "crisis-monitor-test"


def sample_alert(channel: str) -> Any:
    import uuid

    from monitor.types import Alert

    now = datetime.now(UTC)
    snippet = "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes (a test alert)."
    # Under a clearly marked rule id, not a real rule's: a receiver that routes or counts by rule
    # never takes the test for a real airspace alert.
    return Alert(id=f"test-{uuid.uuid4()}", created_at=now, rule=TEST_RULE,
                 rule_title="crisis-monitor test alert (not a real rule)", severity="high",
                 tags=("airspace", "test"), item_title="crisis-monitor test alert",
                 item_url="https://example.org/crisis-monitor-test", published_at=now, feed="crisis-monitor",
                 terms=("violated … airspace", "mig 31"), entities=("russia", "mig-31", "estonia"), snippet=snippet,
                 highlights=tuple((snippet.index(w), snippet.index(w) + len(w)) for w in ("MiG-31", "violated")),
                 channel=channel)


def alerts_test(config_path: str | None, name: str, out: TextIO) -> int:
    """Send a sample alert through the real channel, not the outbox, and say what happened."""
    import asyncio

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


def stories_list(config_path: str | None, rule: str | None, since: str | None, fmt: str, out: TextIO,
                 limit: int = DEFAULT_LIMIT) -> int:
    """The stories a rule matched (``rule``, or any), last seen newest first."""
    from monitor.store import views

    moment = _since(since)
    config = load_file(config_path, secrets=False)
    with _opened(config) as store:
        if rule:
            _check_rule(config, store, rule)

        def fetch(n: int | None) -> Iterator[dict[str, Any]]:
            for row in views.iter_stories(store, rule, moment, n):
                yield row if fmt == "json" else {**row, "publishers": len(row["publishers"]),
                                                 "alerts": _kinds_text(row["alerts"])}

        return emit_limited(fetch, lambda: views.count_stories(store, rule, moment), views.STORY_COLUMNS, fmt, out,
                            limit, "stories")


def _kinds_text(kinds: dict[str, int]) -> str:
    """ "1 alert, 2 updates" (kinds with none left out); "-" when nothing was sent."""
    return ", ".join(count(n, kind) for kind, n in kinds.items() if n) or "-"


def stories_show(config_path: str | None, story_id: str, fmt: str, out: TextIO) -> int:
    """One story: its items, publishers, timeline, rules and the alerts sent with their deliveries."""
    import json

    from monitor.listing import cell, table
    from monitor.store import views

    if not story_id.isdigit():
        raise InputError(f"stories show: {story_id!r} is not a story id", "story ids are whole numbers; "
                         "see them with: crisis-monitor stories list")
    config = load_file(config_path, secrets=False)
    with _opened(config) as store:
        found = views.story_detail(store, int(story_id))
    if found is None:
        raise InputError(f"stories show: no story {story_id} in the database",
                         "see the ids with: crisis-monitor stories list")
    if fmt == "json":
        print(json.dumps(found, ensure_ascii=False, indent=1), file=out)
        return 0
    print(f"story {found['id']}: {cell(found['title'])}", file=out)
    print(f"{count(found['items'], 'item')} from {count(len(found['publishers']), 'publisher')}, first seen "
          f"{cell(found['first_seen_at'])}, last seen {cell(found['last_seen_at'])}", file=out)
    print(f"publishers: {cell(found['publishers'])}", file=out)
    print(f"rules: {cell(found['rules']) if found['rules'] else '(none)'}", file=out)
    print(f"alerts: {_kinds_text(found['alerts'])}", file=out)
    silent = sorted(set(found["rules"]) - {a["rule"] for a in found["alert_list"]})
    if silent:  # held by the rule's gate (min_sources), or its matching items were too old to alert
        print(f"matched without an alert yet: {cell(silent)} (held until enough publishers carry the story, "
              "or its items were older than max_item_age)", file=out)
    print("\nitems:", file=out)
    table(found["item_list"], ["first_seen_at", "feed", "publisher", "rules", "title", "url"], out)
    print("\ntimeline:", file=out)
    table([{**e, "what": e.get("title") or e.get("rule")} for e in found["timeline"]],
          ["at", "event", "publisher", "what"], out)
    print("\nalerts sent:", file=out)
    none = [{"channel": None, "status": None, "attempts": 0, "last_error": None}]
    deliveries = [{"created_at": a["created_at"], "kind": a["kind"], "id": a["id"], "rule": a["rule"],
                   "reason": a.get("reason") or "", "channel": d["channel"], "status": d["status"],
                   "attempts": d["attempts"], "last_error": d["last_error"]}
                  for a in found["alert_list"] for d in a["deliveries"] or none]
    if deliveries:
        table(deliveries, ["created_at", "kind", "rule", "reason", "channel", "status", "attempts", "last_error",
                           "id"], out)
    else:
        print("(none)", file=out)
    return 0


def _size(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def db_prune(config_path: str | None, older_than: str | None, dry_run: bool, fmt: str, out: TextIO) -> int:
    """Prune what is older than ``older_than`` (default: ``[monitor] retention``), or with ``dry_run``
    count what would go; per table, then the alerts kept for their pending or dead deliveries."""
    import json

    from monitor.config import parse_retention, retention_problem
    from monitor.store.retention import prune

    config = load_file(config_path, secrets=False)
    if older_than is not None:
        try:
            retention = parse_retention(older_than)
        except ValueError as error:
            message, _, _ = str(error).partition("; ")
            raise InputError(f"--older-than: {message}", 'write it in days, like "180d"') from None
        if retention is None:
            raise InputError("--older-than: off prunes nothing", 'give an age, like "180d"')
        if (problem := retention_problem(retention, config.story_window)) is not None:
            raise InputError(f"--older-than: {problem[0]}", problem[1])
    elif config.retention is None:
        raise InputError(f"{config.path}: [monitor] retention is off, so db prune does not know what is old",
                         'pass --older-than 180d, or set retention = "180d" in [monitor]')
    else:
        retention = config.retention
    cutoff = datetime.now(UTC) - timedelta(seconds=retention)
    with _opened(config) as store:
        counts = prune(store, cutoff, dry_run=dry_run)
    if fmt == "json":
        print(json.dumps({"dry_run": dry_run, "older_than": format_duration(retention),
                          "cutoff": cutoff.isoformat(timespec="seconds"),
                          "rows": counts.tables(),
                          "kept_alerts": counts.kept_alerts}), file=out)
        return 0
    verb = "would go" if dry_run else "went"
    print(f"first seen before {cutoff:%Y-%m-%d %H:%M} UTC ({format_duration(retention)} ago): what {verb}", file=out)
    table([{"table": row["table"], verb: row["rows"]} for row in counts.rows()], ["table", verb], out)
    if counts.kept_alerts:
        print(f"kept: {count(counts.kept_alerts, 'alert')} with pending or dead deliveries, with their stories, items "
              "and matches (see crisis-monitor alerts list --status dead)", file=out)
    if dry_run:
        print("dry run: nothing was deleted", file=out)
    return 0


def db_vacuum(config_path: str | None, out: TextIO) -> int:
    """SQLite: VACUUM, to give the pages pruned rows freed back to the file system. PostgreSQL:
    VACUUM (ANALYZE), leaving the rest to the server's autovacuum."""
    from sqlalchemy.exc import OperationalError

    from monitor.store.retention import vacuum

    config = load_file(config_path, secrets=False)
    with _opened(config) as store:
        try:
            done = vacuum(store)
        except OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise InputError(f"db vacuum: {config.display_database}: {reason}",
                             "a daemon writing without pause keeps SQLite busy: try again, or stop it for the "
                             "vacuum; SQLite needs free disk space as large as the database"
                             if store.engine.dialect.name == "sqlite" else
                             "VACUUM needs the tables' owner (the user that created them)") from None
    if done.dialect == "sqlite":
        print(f"vacuumed {config.display_database}: {_size(done.before)} -> {_size(done.after)}", file=out)
    else:
        print(f"VACUUM (ANALYZE) of crisis-monitor's tables done: the space of deleted rows is reusable; the database "
              f"stays {_size(done.after)} on disk (autovacuum keeps doing this; VACUUM FULL, which locks each table, "
              "would give space back)", file=out)
    return 0
