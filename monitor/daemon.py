"""The daemon: APScheduler wiring, the dispatcher loop, signals, reload and graceful stop.

``Runtime`` is what ``run`` and ``poll`` share: config, store, fetcher, the rules in
force, the pipeline and the dispatcher. ``Daemon`` adds the long-running parts:
one scheduler job per feed, SIGHUP and rule-file changes reloading rules and the feed
list (an invalid rule set is logged and the old one stays), and SIGTERM/SIGINT
stopping intake, waiting up to ``stop_timeout`` for polls in flight, then cancelling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from monitor import metrics
from monitor.config import Config, FeedSpec, load_file
from monitor.errors import ConfigError, MonitorError, RuleSetError
from monitor.feeds.fetch import Fetcher
from monitor.notify.dispatch import Dispatcher
from monitor.pipeline import ActiveRules, Pipeline, PollSummary, now_utc
from monitor.routing import Router, check_channels
from monitor.rules.cache import compiled_rules
from monitor.sdnotify import SystemdNotifier
from monitor.store.outage import DatabaseWatch, outage_reason
from monitor.store.outbox import Outbox
from monitor.store.repo import Store
from monitor.store.surges import SurgeOutcome, SurgeRule, Surges
from monitor.types import FEED_STATUSES
from monitor.units import format_duration
from monitor.workers import WorkerPool

if TYPE_CHECKING:  # the scheduler and the web stack are imported by the daemon only: `poll` starts faster
    from monitor.store.retention import PruneCounts
    from monitor.web.server import WebServer

log = logging.getLogger("monitor.daemon")

WATCH_EVERY = 2.0
# What a reload cannot change in a running daemon, with the names users know them by.
RESTART_KEYS = {"database": "[monitor] database", "parse_workers": "[monitor] parse_workers",
                "http": "[http]", "web_listen": "[web] listen"}
DISPATCH_EVERY = 5.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")
GRACEFUL_WEB = 3.0  # seconds a web request in flight gets at stop
PRUNE_JOB = "db:retention"  # a job id no feed can have (feed names have no ":")
PRUNE_EVERY = 86400.0  # [monitor] retention prunes daily...
PRUNE_FIRST = 600.0  # ... the first time this long after start, once start-up's polls are done
PRUNE_PAUSE = 0.05  # seconds between two batches: polls and deliveries take the write lock in between
SURGE_JOB = "db:surges"  # likewise
UPDATES_JOB = "db:updates"  # sends the ladder updates a cooldown held back
UPDATES_EVERY = 60.0
SURGE_EVERY = 300.0  # the surge job's pace: every 5 min, or a sixth of the shortest surge window
SURGE_EVERY_MIN = 10.0


def load_active(config: Config) -> ActiveRules:
    """The rules of ``config``, compiled and routed; RuleSetError listing every problem."""
    rules = compiled_rules(config.rules)  # from the on-disk cache while the rule files are unchanged
    check_channels(rules.specs, config.channels)
    return ActiveRules(rules.rule_set, Router(config.channels, rules.specs), rules.blob)


def surge_rules(active: ActiveRules) -> list[SurgeRule]:
    """The rules in force that watch for surges, each with the channels its messages go to."""
    return [SurgeRule(spec.id, spec.title, spec.severity, spec.tags, spec.stories.surge,
                      tuple(active.router.channels_for(spec.id, spec.severity, spec.tags)))
            for spec in (rule.spec for rule in active.rule_set.rules) if spec.stories.surge is not None]


def surge_every(rules: list[SurgeRule]) -> float:
    """Seconds between surge checks: a sixth of the shortest window, at most 5 min, at least 10 s."""
    return max(SURGE_EVERY_MIN, min([SURGE_EVERY, *(rule.spec.window / 6 for rule in rules)]))


async def settle() -> None:
    """Let closed connections finish closing: a transport's close completes on a later turn of
    the loop, and a loop that ends first leaves it to the garbage collector (ResourceWarning)."""
    for _ in range(3):
        await asyncio.sleep(0)


def rules_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when any rule or entity file is edited, added or removed."""
    try:
        files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml"))
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    except OSError:
        return ()


class Runtime:
    """Everything a poll needs. Use as an async context manager."""

    def __init__(self, config: Config, clock: Callable[[], datetime] = now_utc) -> None:
        self.config = config
        self.clock = clock
        self.active = load_active(config)
        self.store = Store(config.database, config.story_window, config.max_item_age)
        self.fetcher = Fetcher(config.http)
        # Parsing is the heaviest CPU step; worker processes give it the other cores.
        self.workers = WorkerPool(config.parse_workers) if config.parse_workers else None
        self.pipeline = Pipeline(config, self.store, self.fetcher, lambda: self.active, self.workers, clock=clock)
        self.outbox = Outbox(self.store)
        self.surges = Surges(self.store)
        self.dispatcher = Dispatcher(config, self.outbox, clock)
        self.store.sync_feeds(config.feeds, clock(), config.poll_interval)

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.dispatcher.close()
        await self.pipeline.close()
        await self.fetcher.close()
        if self.workers is not None:
            self.workers.shutdown()
        self.store.close()
        await settle()

    async def poll_all(self, feeds: list[FeedSpec]) -> list[PollSummary]:
        """One forced poll of each feed, concurrently, and a surge check (a `poll` from cron gets surges
        too), then deliver what they alerted."""
        claims = await asyncio.to_thread(self.store.claim_many, [f.name for f in feeds], self.clock(),
                                         self.pipeline.lease, True)
        results = await asyncio.gather(*(self.pipeline.poll(spec, state=claims[spec.name])
                                         for spec in feeds if spec.name in claims))
        await self.surge_pass()
        await self.update_pass()
        await self.dispatcher.run_once()
        return [r for r in results if r is not None]

    async def update_pass(self) -> int:
        """Write the ladder updates a rule's cooldown held back and that are now due; how many."""
        active, now = self.active, self.clock()
        return await asyncio.to_thread(self.store.send_owed_updates, now, active.specs, active.router)

    async def surge_pass(self) -> list[tuple[SurgeRule, SurgeOutcome]]:
        """One surge check of each rule that watches for surges, at the clock's time; a surge alert
        it writes waits in the outbox for the dispatcher."""
        rules = surge_rules(self.active)
        if not rules:
            return []
        now, max_age = self.clock(), self.config.max_item_age
        outcomes = await asyncio.to_thread(lambda: [(rule, self.surges.check(rule, now, max_age)) for rule in rules])
        for rule, outcome in outcomes:
            if outcome.alert_id is not None:
                decision = outcome.decision
                log.info("surge of %s: %d stories against a baseline of %.2f", rule.id, decision.count,
                         decision.baseline, extra={"event": "surge", "rule": rule.id, "count": decision.count,
                                                   "alert": outcome.alert_id})
        return outcomes


class Daemon:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self.stopping = asyncio.Event()
        self.wake_dispatcher = asyncio.Event()
        self.running: set[asyncio.Task[object]] = set()
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.systemd = SystemdNotifier()
        self.web: WebServer | None = None

    async def run(self) -> int:
        config = load_file(self.config_path)
        async with Runtime(config) as runtime:
            self.runtime = runtime
            self.database = DatabaseWatch(runtime.store.probe_write, on_back=self._database_back)
            self._install_signals()
            for spec in config.feeds:
                self._schedule(spec, runtime.store.next_poll_at(spec.name) or now_utc())
            self._schedule_prune()
            self._schedule_surges()
            self._schedule_updates()
            self.scheduler.start()
            web = await self._start_web(config)
            log.info("started", extra={"event": "start", "feeds": len(config.feeds),
                                       "rules": len(runtime.active.rule_set.rules),
                                       "database": config.display_database})
            self.systemd.ready(await self.status())
            tasks = [asyncio.create_task(self._dispatch_loop()), asyncio.create_task(self._watch_rules()),
                     asyncio.create_task(self._watchdog())]
            await self.stopping.wait()
            self.systemd.stopping()
            # The web server winds down (in min(stop_timeout, 3 s) + 1 s) while polls in flight finish.
            await asyncio.gather(*([web.close()] if web is not None else []), self._stop(tasks))
            await self.database.close()
        self.systemd.close()
        log.info("stopped", extra={"event": "stop"})
        return 0

    # --- health, metrics, systemd ------------------------------------------------------------

    async def status(self) -> str:
        """One line for `systemctl status`: feeds, failing ones, pending alerts."""
        feeds = await asyncio.to_thread(self.runtime.store.feeds)
        configured = {f.name for f in self.runtime.config.feeds}
        failing = sum(1 for f in feeds if f["name"] in configured and f["status"] in ("error", "gone"))
        pending = await asyncio.to_thread(self.runtime.outbox.pending)
        return f"{len(configured)} feeds ({failing} failing), {pending} alerts pending"

    async def _watchdog(self) -> None:
        """WATCHDOG=1 from the loop itself: if the loop hangs, the pings stop and systemd restarts us."""
        interval = self.systemd.watchdog_interval or 30.0
        while not self.stopping.is_set():
            try:
                status = await asyncio.wait_for(self.status(), interval)
            except Exception:  # the database is slow or down: still alive, say so
                status = "database not answering"
            self.systemd.watchdog(status)
            await asyncio.sleep(interval)

    async def healthy(self) -> bool:
        if self.database.down:  # the probe tries it; /healthz need not wait on it too
            return False
        return await asyncio.to_thread(self.runtime.store.ping)

    async def refresh_metrics(self) -> None:
        metrics.OUTBOX.set(await asyncio.to_thread(self.runtime.outbox.pending))
        feeds = await asyncio.to_thread(self.runtime.store.feeds)
        configured = {f.name for f in self.runtime.config.feeds}
        counts = Counter(f["status"] for f in feeds if f["name"] in configured)
        for status in FEED_STATUSES:
            metrics.FEEDS.labels(status).set(counts.get(status, 0))

    async def _start_web(self, config: Config) -> WebServer | None:
        if not config.web_listen:
            return None
        from monitor.web.app import build_app
        from monitor.web.context import WebContext
        from monitor.web.server import WebServer, split_listen

        ctx = WebContext(store=self.runtime.store, config=lambda: self.runtime.config,
                         active=lambda: self.runtime.active, healthy=self.healthy,
                         refresh_metrics=self.refresh_metrics, clock=self.runtime.clock,
                         wake_dispatcher=self.wake_dispatcher.set, websub=self.runtime.pipeline.websub)
        web = WebServer(config.web_listen, build_app(ctx), graceful=min(config.stop_timeout, GRACEFUL_WEB))
        try:
            await web.start()
        except OSError as error:
            raise ConfigError(f"{config.path}: web.listen: cannot listen on {config.web_listen}: {error.strerror}",
                              "use a free port, or remove [web] listen") from None
        self.web = web
        if split_listen(config.web_listen)[0] not in LOOPBACK and config.web_token is None:
            log.warning("the dashboard on %s is open to the network without a token: set [web] token, or listen "
                        "on 127.0.0.1 and reach it through an SSH tunnel", config.web_listen)
        return web

    # --- jobs --------------------------------------------------------------------------------

    def _schedule(self, spec: FeedSpec, when: datetime) -> None:
        """Run the feed's job at ``when`` (the poll's own jittered, adaptive next_poll_at), then every
        interval as a fallback should a poll end without rescheduling. No trigger jitter on top:
        schedule.jitter already spread ``when`` by ±10%, and a new feed is polled at once."""
        interval = spec.interval or self.runtime.config.poll_interval
        first = max(when, now_utc())
        from apscheduler.triggers.interval import IntervalTrigger

        # next_run_time sets the first run itself: an IntervalTrigger whose start_date is already a
        # moment past would otherwise wait a whole interval.
        trigger = IntervalTrigger(seconds=interval, start_date=first, timezone=UTC)
        self.scheduler.add_job(self._poll_job, trigger, args=[spec.name], id=spec.name, name=f"poll {spec.name}",
                               next_run_time=first, replace_existing=True, coalesce=True, max_instances=1,
                               misfire_grace_time=None)

    async def _poll_job(self, name: str) -> None:
        task = asyncio.current_task()
        if task is None or self.stopping.is_set():
            return
        self.running.add(task)
        try:
            spec = next((f for f in self.runtime.config.feeds if f.name == name), None)
            if spec is None or self.database.down:  # held: polled again once the database is back
                return
            try:
                summary = await self.runtime.pipeline.poll(spec)
                when = summary.next_poll_at if summary else self.runtime.store.next_poll_at(name)
            except Exception as error:
                if (reason := outage_reason(error)) is None:
                    raise
                self.database.lost(reason)  # the feed has not failed: it waits for the database
                return
            if summary is not None and summary.alerts:
                self.wake_dispatcher.set()
            if when is not None and not self.stopping.is_set():
                self._reschedule(spec, when)
        except asyncio.CancelledError:  # at stop, past stop_timeout: the feed was released, nothing to report
            pass
        except Exception:
            log.exception("poll of %s failed unexpectedly; retrying at the next interval", name)
        finally:
            self.running.discard(task)

    def _schedule_prune(self) -> None:
        """The daily retention job, when ``[monitor] retention`` is set (and none when it is not)."""
        if self.runtime.config.retention is None:
            if self.scheduler.get_job(PRUNE_JOB) is not None:
                self.scheduler.remove_job(PRUNE_JOB)
            return
        if self.scheduler.get_job(PRUNE_JOB) is not None:
            return  # it reads the retention when it runs
        from apscheduler.triggers.interval import IntervalTrigger

        first = now_utc() + timedelta(seconds=PRUNE_FIRST)
        self.scheduler.add_job(self._prune_job, IntervalTrigger(seconds=PRUNE_EVERY, start_date=first, timezone=UTC),
                               id=PRUNE_JOB, name="retention", next_run_time=first, replace_existing=True,
                               coalesce=True, max_instances=1, misfire_grace_time=None)

    async def _prune_job(self) -> PruneCounts | None:
        """Prune what is older than ``[monitor] retention``, a batch (one short transaction) at a time, with
        a pause between batches; a stop ends it after the batch under way. The counts, or None if it did
        not run (off, stopping, database down, or failed)."""
        from monitor.store.retention import PruneCounts, batches

        retention = self.runtime.config.retention
        task = asyncio.current_task()
        if retention is None or task is None or self.stopping.is_set() or self.database.down:
            return None
        self.running.add(task)
        started = time.monotonic()
        total = PruneCounts()
        try:
            steps = batches(self.runtime.store, now_utc() - timedelta(seconds=retention))
            while not self.stopping.is_set():
                counts = await asyncio.to_thread(next, steps, None)
                if counts is None:
                    break
                total.add(counts)
                for table, rows in counts.tables().items():
                    metrics.PRUNED.labels(table).inc(rows)
                await asyncio.sleep(PRUNE_PAUSE)
        except Exception as error:
            if (reason := outage_reason(error)) is not None:
                self.database.lost(reason)
            else:
                log.exception("retention: pruning failed; it runs again in a day")
            return None
        finally:
            self.running.discard(task)
        log.info("retention: pruned %d items, %d matches, %d alerts, %d stories older than %s in %d batches "
                 "(%.1f s); kept %d alerts with pending or dead deliveries", total.items, total.matches, total.alerts,
                 total.stories, format_duration(retention), total.batches, time.monotonic() - started,
                 total.kept_alerts, extra={"event": "prune", "items": total.items, "alerts": total.alerts,
                                           "stories": total.stories, "kept_alerts": total.kept_alerts})
        return total

    def _schedule_surges(self) -> None:
        """The surge job, at the pace the rules in force need (again after each reload)."""
        self._schedule_every(SURGE_JOB, "surges", surge_every(surge_rules(self.runtime.active)), self._surge_job)

    def _schedule_updates(self) -> None:
        """The job that sends updates a cooldown held back: every half of the shortest cooldown, 1 s to 1 min."""
        cooldowns = [rule.spec.stories.cooldown for rule in self.runtime.active.rule_set.rules]
        every = min(max(min(cooldowns, default=UPDATES_EVERY) / 2, 1.0), UPDATES_EVERY)
        self._schedule_every(UPDATES_JOB, "story updates", every, self._updates_job)

    def _schedule_every(self, job_id: str, name: str, every: float, job: Callable[[], Awaitable[None]]) -> None:
        """``job`` every ``every`` seconds, unless it already runs at that pace; one run at a time."""
        from apscheduler.triggers.interval import IntervalTrigger

        existing = self.scheduler.get_job(job_id)
        if existing is not None and getattr(existing.trigger, "interval", None) == timedelta(seconds=every):
            return
        self.scheduler.add_job(job, IntervalTrigger(seconds=every, timezone=UTC), id=job_id, name=name,
                               replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=None)

    async def _updates_job(self) -> None:
        async def sent() -> bool:
            return bool(await self.runtime.update_pass())

        await self._store_job(sent, "story updates failed; trying again at the next pass")

    async def _surge_job(self) -> None:
        async def sent() -> bool:
            return any(outcome.alert_id is not None for _, outcome in await self.runtime.surge_pass())

        await self._store_job(sent, "surge check failed; trying again at the next one")

    async def _store_job(self, run: Callable[[], Awaitable[bool]], failed: str) -> None:
        """A periodic job that writes alerts to the store: skipped while stopping or while the database is
        down, waited for by a stop (as a poll is), an outage handed to the watch; the dispatcher woken
        when ``run`` wrote something to send."""
        task = asyncio.current_task()
        if task is None or self.stopping.is_set() or self.database.down:
            return
        self.running.add(task)
        try:
            wrote = await run()
        except Exception as error:
            if (reason := outage_reason(error)) is None:
                log.exception(failed)
            else:
                self.database.lost(reason)
            return
        finally:
            self.running.discard(task)
        if wrote:
            self.wake_dispatcher.set()

    async def _database_back(self) -> None:
        """Give back the claims the outage kept, and poll the feeds it held back now."""
        await asyncio.to_thread(self.runtime.pipeline.release_held)
        for spec in self.runtime.config.feeds:
            self._reschedule(spec, now_utc())
        self.wake_dispatcher.set()

    def _reschedule(self, spec: FeedSpec, when: datetime) -> None:
        if self.scheduler.get_job(spec.name) is not None:
            self._schedule(spec, when)

    async def _dispatch_loop(self) -> None:
        while not self.stopping.is_set():
            if not await self.database.wait_up(self.stopping):
                break
            try:
                await self.runtime.dispatcher.run_once()
            except Exception as error:
                if (reason := outage_reason(error)) is None:
                    log.exception("dispatcher pass failed; trying again")
                else:
                    self.database.lost(reason)
                    continue
            self.wake_dispatcher.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake_dispatcher.wait(), DISPATCH_EVERY)

    # --- reload ------------------------------------------------------------------------------

    async def _watch_rules(self) -> None:
        folder = self.runtime.config.rules
        seen = rules_signature(folder)
        while not self.stopping.is_set():
            await asyncio.sleep(WATCH_EVERY)
            current = rules_signature(folder)
            if current != seen:
                seen = current
                log.info("rule files changed; reloading", extra={"event": "reload"})
                self.reload_rules(self.runtime.config)

    def reload_rules(self, config: Config) -> bool:
        try:
            active = load_active(config)
        except RuleSetError as error:
            metrics.RELOAD_ERRORS.inc()
            for problem in error.errors:
                log.error("rule reload failed: %s", problem, extra={"event": "reload_error"})
            log.error("the previous rules stay in force (%d rules)", len(self.runtime.active.rule_set.rules))
            return False
        except MonitorError as error:
            metrics.RELOAD_ERRORS.inc()
            log.error("rule reload failed: %s; the previous rules stay in force", error)
            return False
        self.runtime.active = active
        if self.scheduler.running:  # the surge and update jobs follow the new rules' windows and cooldowns
            self._schedule_surges()
            self._schedule_updates()
        log.info("rules reloaded", extra={"event": "reload", "rules": len(active.rule_set.rules)})
        return True

    def reload(self) -> None:
        """SIGHUP: re-read config.toml (feeds and channels routing) and the rules."""
        try:
            config = load_file(self.config_path)
        except MonitorError as error:
            metrics.RELOAD_ERRORS.inc()
            log.error("config reload failed: %s; the previous config stays in force", error)
            return
        old = self.runtime.config
        for key, name in RESTART_KEYS.items():
            if getattr(config, key) != getattr(old, key):
                log.warning("%s changed: it takes effect after a restart (systemctl restart crisis-monitor)", name)
        config = replace(config, **{key: getattr(old, key) for key in RESTART_KEYS})
        dispatcher = None
        if (config.channels, config.delivery) != (old.channels, old.delivery):
            try:  # built before anything changes: a channel it cannot build (ca_file) refuses the reload
                dispatcher = Dispatcher(config, self.runtime.outbox, self.runtime.clock)
            except MonitorError as error:
                metrics.RELOAD_ERRORS.inc()
                log.error("config reload failed: %s; the previous config stays in force", error)
                return
        if not self.reload_rules(config):
            if dispatcher is not None:
                asyncio.get_running_loop().create_task(dispatcher.close())
            return
        if dispatcher is not None:
            asyncio.get_running_loop().create_task(self._swap_dispatcher(dispatcher, len(config.channels)))
        self.runtime.config = self.runtime.pipeline.config = config
        self.runtime.store.sync_feeds(config.feeds, now_utc(), config.poll_interval)
        names = {f.name for f in config.feeds}
        for job in self.scheduler.get_jobs():
            if job.id not in names and job.id not in (PRUNE_JOB, SURGE_JOB, UPDATES_JOB):
                job.remove()
        self._schedule_prune()
        for spec in config.feeds:
            self._schedule(spec, self.runtime.store.next_poll_at(spec.name) or now_utc())
        log.info("config reloaded", extra={"event": "reload", "feeds": len(config.feeds)})

    async def _swap_dispatcher(self, dispatcher: Dispatcher, channels: int) -> None:
        """New channels, routes or retry settings: a new dispatcher; the old one's clients close."""
        old = self.runtime.dispatcher
        self.runtime.dispatcher = dispatcher
        self.wake_dispatcher.set()
        await old.close()
        log.info("channels reloaded", extra={"event": "reload", "channels": channels})

    # --- signals and stop --------------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        """Polls in flight get ``stop_timeout`` to finish; then they are cancelled (their feeds
        released for the next poll, here or in another daemon) and workers still busy on them
        (a feed that keeps the parser going for good) are killed: a stop always ends."""
        log.info("stopping: no new polls; waiting for %d in flight", len(self.running), extra={"event": "stopping"})
        deadline = time.monotonic() + self.runtime.config.stop_timeout
        # Paused, not shut down: APScheduler's shutdown cancels the jobs running at once.
        self.scheduler.pause()
        self.wake_dispatcher.set()
        pending = set(self.running)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.runtime.config.stop_timeout)
        if pending:
            log.warning("stopping: polls still running after stop_timeout (%g s) cancelled: %d; their feeds are "
                        "released for the next poll", self.runtime.config.stop_timeout, len(pending),
                        extra={"event": "stopping"})
        for task in [*pending, *tasks]:
            task.cancel()
        await asyncio.gather(*pending, *tasks, return_exceptions=True)
        self.scheduler.shutdown(wait=False)
        if self.runtime.workers is not None:
            killed = await asyncio.to_thread(self.runtime.workers.stop, max(0.0, deadline - time.monotonic()))
            if killed:
                log.warning("stopping: parse workers still busy (stuck on a feed) killed: %d", killed,
                            extra={"event": "stopping"})
