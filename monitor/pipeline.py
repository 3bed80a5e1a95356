"""Poll one feed: claim -> fetch -> parse -> dedupe -> match -> store. Decides nothing itself.

The decisions are the pure modules': ``dedupe`` (what is new, what may alert),
``schedule`` (when next), the rule engine (what matches). Each step's failure becomes
the feed's status and ``last_error``; no exception from one feed reaches another.
Parsing and matching run in a worker (they are CPU work), the store in a thread, where
the polls that finish while one write is under way are written together (``GroupCommit``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import html
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from monitor import metrics
from monitor.config import Config, FeedSpec
from monitor.dedupe import Known, document_hash, newly_matched, plan, story_key, too_old
from monitor.feeds.articles import Articles, full_texts
from monitor.feeds.fetch import Fetcher, FetchResult
from monitor.feeds.hubs import WebSub
from monitor.feeds.parse import ParsedFeed, parse_feed
from monitor.routing import Router
from monitor.rules.cache import rule_set_of
from monitor.rules.engine import RuleSet
from monitor.rules.loader import RuleSpec
from monitor.rules.nodes import DocView
from monitor.schedule import Bounds, backoff, healthy_interval, is_stale, jitter
from monitor.store.outage import outage_reason
from monitor.store.repo import PollRecord, PollWrite, Store
from monitor.store.subscriptions import Subscriptions
from monitor.stories.publisher import publisher_of
from monitor.stories.signature import signature
from monitor.types import Document, FeedState, FeedUpdate, FullText, ItemWrite
from monitor.workers import WorkerLost, WorkerPool

log = logging.getLogger("monitor.poll")
T = TypeVar("T")
# How long parsing or matching one feed may take in a worker before the worker is replaced.
WORKER_DEADLINE = 60.0


@dataclass(frozen=True)
class ActiveRules:
    """The rule set in force and the router built from it; swapped whole on reload.

    ``blob`` is the compiled rule set pickled (monitor.rules.cache): what a worker process reads
    its own copy from (once per ``generation``, a digest of the blob), without compiling again.
    """

    rule_set: RuleSet
    router: Router
    blob: bytes = b""

    @cached_property
    def specs(self) -> dict[str, RuleSpec]:
        """The rules by id (the store reads their story policies)."""
        return {rule.spec.id: rule.spec for rule in self.rule_set.rules}

    @cached_property
    def generation(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()[:16]


# A worker process's compiled rules, by generation (see prepare_in_worker).
_worker_rules: tuple[str, RuleSet] | None = None


def prepare_in_worker(generation: str, blob: bytes | None, docs: list[Document], known: dict[str, Known],
                      feed: str, now: datetime, max_item_age: float,
                      texts: Mapping[str, FullText] | None = None) -> list[ItemWrite] | None:
    """prepare_items in a worker process, with the rules it compiled for ``generation``.

    The rules (about 1 MB pickled) are sent only when needed: without ``blob``, a worker
    that has not read this generation yet returns None, and is asked again with it.
    """
    global _worker_rules
    if _worker_rules is None or _worker_rules[0] != generation:
        if blob is None:
            return None
        _worker_rules = (generation, rule_set_of(blob))
    return prepare_items(docs, known, _worker_rules[1], feed, now, max_item_age, texts)


@dataclass(frozen=True)
class PollSummary:
    feed: str
    status: str
    new_items: int = 0
    updated_items: int = 0
    matches: int = 0
    alerts: int = 0
    error: str = ""
    warning: str = ""
    next_poll_at: datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return sum(self.timings.values())


def now_utc() -> datetime:
    return datetime.now(UTC)


def prepare_items(docs: list[Document], known: dict[str, Known], rules: RuleSet, feed: str,
                  now: datetime, max_item_age: float, texts: Mapping[str, FullText] | None = None) -> list[ItemWrite]:
    """The writes for a poll's documents: new ones with all their matches, changed ones with
    the matches that are new for them. Only recent items get alert rules. Pure.

    ``texts`` are the article texts of new items (feeds with ``full_text``): the rules read
    them after the item's own content, and they are stored apart from it."""
    split = plan(docs, known)
    writes: list[ItemWrite] = []
    texts = texts or {}
    for doc in split.new:
        full = texts.get(doc.id)
        view = rules.view(_with_full_text(doc, full))
        found = tuple(rules.match_view(view))
        published = doc.published_at or now
        alert = () if too_old(published, now, max_item_age) else tuple(m.rule for m in found)
        stored = _as_text(view) if full is None or not full.text else _as_text(rules.view(doc))
        # Only items a rule matched are clustered: they are the ones alerts are about, and signing
        # every item would add most of a cycle's cost again (bench/ingest_bench.py)
        signed = signature(doc, rules.entities_in(view), "", now) if found else None
        writes.append(ItemWrite(stored, story_key(doc, feed), document_hash(doc), published, found, alert,
                                full_text=full, signature=signed))
    for doc, seen in split.changed:
        view = rules.view(doc)
        now_matching = rules.match_view(view)
        fresh = newly_matched((m.rule for m in now_matching), seen.rules)
        matches = tuple(m for m in now_matching if m.rule in fresh)
        published = doc.published_at or now
        alert = () if too_old(published, now, max_item_age) else tuple(m.rule for m in matches)
        writes.append(ItemWrite(_as_text(view), story_key(doc, feed), document_hash(doc), published,
                                matches, alert, item_id=seen.item_id))
    return writes


class GroupCommit:
    """Writes polls to the store, several per transaction.

    A poll that finishes while a write is under way waits for it, and every poll waiting
    then is written in the next transaction: one thread hop and one commit for all of
    them. If that transaction fails, each poll of it is written alone, so one poll's
    failure (an integrity race, a value the database refuses) stays that poll's.
    """

    MAX_BATCH = 64

    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: list[tuple[PollWrite, asyncio.Future[PollRecord]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, poll: PollWrite) -> PollRecord:
        future: asyncio.Future[PollRecord] = asyncio.get_running_loop().create_future()
        # A poll cancelled while it waits no longer reads its outcome; this does, so a failed
        # write is not reported again as "never retrieved" (the poll's cancellation was logged).
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._waiting.append((poll, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # Shielded: a poll cancelled at shutdown leaves its write to finish, not half done.
        return await asyncio.shield(future)

    async def _write(self) -> None:
        while self._waiting:
            batch = self._waiting[:self.MAX_BATCH]
            del self._waiting[:self.MAX_BATCH]
            if len(batch) > 1:
                try:
                    records = await asyncio.to_thread(self.store.record_many, [poll for poll, _ in batch])
                except Exception:
                    pass  # written alone below: the others go in, the failing one fails alone
                else:
                    for (_, future), record in zip(batch, records, strict=True):
                        if not future.done():
                            future.set_result(record)
                    continue
            await self._write_alone(batch)

    async def _write_alone(self, batch: list[tuple[PollWrite, asyncio.Future[PollRecord]]]) -> None:
        for poll, future in batch:
            try:
                result = await asyncio.to_thread(self.store.record_many, [poll])
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result[0])

    async def close(self) -> None:
        """Wait for the writes under way and queued."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


def _published(write: ItemWrite, publisher: str, tier: str) -> ItemWrite:
    """``write`` with its feed's publisher and tier, in its signature too."""
    signed = write.signature and dataclasses.replace(write.signature, publisher=publisher)
    return dataclasses.replace(write, publisher=publisher, tier=tier, signature=signed)


def _with_full_text(doc: Document, full: FullText | None) -> Document:
    """``doc`` as the rules read it: its content, then the article's text (plain text, escaped,
    since content is HTML)."""
    if full is None or not full.text:
        return doc
    return replace(doc, content=f"{doc.content}\n<p>{html.escape(full.text, quote=False)}</p>")


def _as_text(view: DocView) -> Document:
    """The document to store: its fields as display text (made once, for matching too)."""
    title, summary, content = (field.display for field in view.fields)
    return replace(view.doc, title=title, summary=summary, content=content)


class Pipeline:
    def __init__(self, config: Config, store: Store, fetcher: Fetcher, rules: Callable[[], ActiveRules],
                 workers: WorkerPool | None = None, clock: Callable[[], datetime] = now_utc) -> None:
        """``workers`` parse and match (processes use the other cores; None: a thread, no deadline)."""
        self.config, self.store, self.fetcher = config, store, fetcher
        self.rules, self.workers, self.clock = rules, workers, clock
        self.worker_deadline = WORKER_DEADLINE
        self.writes = GroupCommit(store)
        self.articles = Articles(fetcher)
        self.websub = WebSub(self, config.web_public_url) if config.web_public_url else None
        self.unreleased: dict[str, str | None] = {}  # feed -> claim token, kept by a lost database

    async def close(self) -> None:
        await self.writes.close()

    def bounds(self, spec: FeedSpec) -> Bounds:
        if self.websub is not None and self.websub.pushing(spec.name):  # polling is the safety net
            return Bounds(self.config.max_interval, self.config.max_interval, self.config.max_interval)
        return Bounds(spec.interval or self.config.poll_interval, self.config.min_interval, self.config.max_interval)

    @property
    def lease(self) -> float:
        """How long a claim holds: a poll that takes longer was surely lost (crash, kill)."""
        return self.config.http.timeout * 3 + 60

    async def poll(self, spec: FeedSpec, force: bool = False, state: FeedState | None = None) -> PollSummary | None:
        """Poll ``spec`` if it is due (always with ``force``); None if not due or claimed elsewhere.
        ``state`` is a claim already taken (``Store.claim_many``)."""
        now = self.clock()
        if state is None:
            state = await asyncio.to_thread(self.store.claim, spec.name, now, self.lease, force)
        if state is None:
            return None
        try:
            return await self._poll(spec, state, now)
        except BaseException:  # cancelled at shutdown, or a bug: let the next poll (here or elsewhere) have it
            try:
                self.store.release(spec.name, state.claimed_by)
            except Exception as error:
                if outage_reason(error) is None:
                    raise
                # The database is gone: give the claim back once it returns, rather than leave
                # the feed unpolled until its lease runs out.
                self.unreleased[spec.name] = state.claimed_by
            raise

    def release_held(self) -> None:
        """Give back the claims a lost database kept polls from releasing."""
        while self.unreleased:
            name, token = next(iter(self.unreleased.items()))
            self.store.release(name, token)
            del self.unreleased[name]

    async def _poll(self, spec: FeedSpec, state: FeedState, now: datetime) -> PollSummary:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        fetched = await self.fetcher.fetch(state.url, state.etag, state.last_modified)
        timings["fetch"] = time.perf_counter() - started
        if fetched.status in ("error", "gone"):
            return await self._save(spec, state, self._failed(spec, state, fetched, now), [], timings, now)
        digest = hashlib.sha256(fetched.body).hexdigest() if fetched.status == "ok" else None
        if digest is None or digest == state.body_hash:
            await self._after_poll(spec, state, None, now)
            update = self._healthy(spec, state, fetched, now, new_items=0, ttl=None, status="not_modified")
            return await self._save(spec, state, update, [], timings, now)
        return await self._ingest(spec, state, fetched, digest, now, timings)

    async def _in_worker(self, function: Callable[..., T], *args: Any) -> T:
        if self.workers is None:
            return await asyncio.get_running_loop().run_in_executor(None, function, *args)
        return await self.workers.run(self.worker_deadline, function, *args)

    async def _ingest(self, spec: FeedSpec, state: FeedState, fetched: FetchResult, digest: str, now: datetime,
                      timings: dict[str, float]) -> PollSummary:
        started = time.perf_counter()
        parsed = await self._parse(spec, fetched.body, fetched.headers, fetched.url)
        timings["parse"] = time.perf_counter() - started
        if parsed.problem:
            failed = replace(fetched, status="error", error=parsed.problem, retry_after=None)
            return await self._save(spec, state, self._failed(spec, state, failed, now), [], timings, now)
        await self._after_poll(spec, state, parsed, now)
        try:
            writes = await self._writes(spec, state, parsed, now, timings)
        except WorkerLost as lost:
            failed = replace(fetched, status="error", error=f"matching {lost}", retry_after=None)
            return await self._save(spec, state, self._failed(spec, state, failed, now), [], timings, now)
        new = sum(1 for w in writes if w.item_id is None)
        update = self._healthy(spec, state, fetched, now, new_items=new, ttl=parsed.ttl, status="ok")
        update = replace(update, body_hash=digest, warning=parsed.warning or None, title=parsed.title or None)
        return await self._save(spec, state, update, writes, timings, now)

    async def _parse(self, spec: FeedSpec, body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
        try:
            parsed: ParsedFeed = await self._in_worker(parse_feed, body, headers, url, spec.name)
        except WorkerLost as lost:
            parsed = ParsedFeed([], problem=f"parsing {lost}")
        return parsed

    async def _writes(self, spec: FeedSpec, state: FeedState, parsed: ParsedFeed, now: datetime,
                      timings: dict[str, float]) -> list[ItemWrite]:
        """The items of a parsed feed to write, with their article texts (``full_text``) and matches."""
        started = time.perf_counter()
        known = await asyncio.to_thread(self.store.known_items, state.id, [d.id for d in parsed.documents])
        texts = None
        if spec.full_text:
            texts = await full_texts(self.articles, parsed.documents, known, state.url, spec.full_text_selector, now,
                                     self.config.max_item_age, self._in_worker)
            timings["full_text"] = time.perf_counter() - started
            started = time.perf_counter()
        writes = await self._prepare(spec, parsed, known, self.rules(), now, texts)
        timings["match"] = time.perf_counter() - started
        return [_published(w, publisher_of(w.doc.url, spec.publisher or None), spec.tier) for w in writes]

    async def _after_poll(self, spec: FeedSpec, state: FeedState, parsed: ParsedFeed | None, now: datetime) -> None:
        """WebSub's part of a poll; whatever goes wrong there, the poll goes on."""
        if self.websub is None:
            return
        try:
            await self.websub.after_poll(spec, state, parsed, now)
        except Exception:  # a bug or a store hiccup in WebSub must not fail the poll: it is logged
            log.exception("websub", extra={"event": "websub", "feed": spec.name})

    async def ingest_push(self, spec: FeedSpec, body: bytes, headers: Mapping[str, str]) -> PollSummary:
        """A feed body a WebSub hub pushed: parsed, matched and stored as a poll's would be, leaving
        the feed's fetch state and schedule alone."""
        now = self.clock()
        timings: dict[str, float] = {}
        state = await asyncio.to_thread(Subscriptions(self.store).feed_state, spec.name)
        if state is None:  # configured after this daemon started: it has no row yet
            return PollSummary(spec.name, "error", error="the feed is not in the store yet")
        parsed = await self._parse(spec, body, headers, state.url)
        if parsed.problem:
            return PollSummary(spec.name, "error", error=parsed.problem)
        try:
            writes = await self._writes(spec, state, parsed, now, timings)
        except WorkerLost as lost:
            return PollSummary(spec.name, "error", error=f"matching {lost}")
        active = self.rules()
        record = await self.writes.record(PollWrite(state.id, None, writes, active.router, now, active.specs))
        log.info("push", extra={"event": "push", "feed": spec.name, "new_items": record.new_items,
                                "matches": record.matches, "alerts": record.alerts})
        return PollSummary(spec.name, "pushed", record.new_items, record.updated_items, record.matches,
                           record.alerts, timings=timings)

    async def _prepare(self, spec: FeedSpec, parsed: ParsedFeed, known: dict[str, Known], active: ActiveRules,
                       now: datetime, texts: Mapping[str, FullText] | None = None) -> list[ItemWrite]:
        args = (parsed.documents, known, spec.name, now, self.config.max_item_age, texts)
        if self.workers is None or not active.blob or not parsed.documents:
            return await self._in_worker(prepare_items, parsed.documents, known, active.rule_set, spec.name, now,
                                         self.config.max_item_age, texts)
        prepared = await self._in_worker(prepare_in_worker, active.generation, None, *args)
        if prepared is None:  # that worker has yet to compile these rules
            prepared = await self._in_worker(prepare_in_worker, active.generation, active.blob, *args)
        assert prepared is not None
        return prepared

    def _failed(self, spec: FeedSpec, state: FeedState, fetched: FetchResult, now: datetime) -> FeedUpdate:
        failures = state.consecutive_failures + 1
        bounds = self.bounds(spec)
        delay = bounds.high if fetched.status == "gone" else backoff(bounds, failures, fetched.retry_after)
        if fetched.retry_after is None:
            delay = jitter(delay, random.uniform(-1, 1))
        return FeedUpdate(status=fetched.status, polled_at=now, next_poll_at=now + timedelta(seconds=delay),
                          interval=state.interval, consecutive_failures=failures, quiet_polls=state.quiet_polls,
                          last_error=fetched.error, url=fetched.permanent_url)

    def _healthy(self, spec: FeedSpec, state: FeedState, fetched: FetchResult, now: datetime, new_items: int,
                 ttl: float | None, status: str) -> FeedUpdate:
        quiet = 0 if new_items else state.quiet_polls + 1
        hints = [h for h in (ttl, fetched.max_age) if h]
        interval = healthy_interval(self.bounds(spec), state.interval, new_items, quiet, max(hints, default=None))
        if not new_items and is_stale(now, state.last_new_item_at, state.added_at, self.config.stale_after):
            status = "stale"
        delay = jitter(interval, random.uniform(-1, 1))
        return FeedUpdate(status=status, polled_at=now, next_poll_at=now + timedelta(seconds=delay),
                          interval=interval, quiet_polls=quiet, etag=fetched.etag, last_modified=fetched.last_modified,
                          url=fetched.permanent_url, success=True, new_items=bool(new_items))

    async def _save(self, spec: FeedSpec, state: FeedState, update: FeedUpdate, writes: list[ItemWrite],
                    timings: dict[str, float], now: datetime) -> PollSummary:
        started = time.perf_counter()
        active = self.rules()
        record = await self.writes.record(PollWrite(state.id, update, writes, active.router, now, active.specs))
        timings["store"] = time.perf_counter() - started
        metrics.POLLS.labels(update.status).inc()
        if "fetch" in timings:
            metrics.FETCH_SECONDS.observe(timings["fetch"])
        metrics.ITEMS.inc(record.new_items)
        metrics.ALERTS.inc(record.alerts)
        for write in writes:
            for match in write.matches:
                metrics.MATCHES.labels(match.rule).inc()
        summary = PollSummary(spec.name, update.status, record.new_items, record.updated_items, record.matches,
                              record.alerts, update.last_error or "", update.warning or "", update.next_poll_at,
                              timings)
        log.info("poll", extra={"event": "poll", "feed": spec.name, "status": summary.status,
                                "new_items": summary.new_items, "matches": summary.matches,
                                "alerts": summary.alerts, "duration": round(summary.duration, 3),
                                "error": summary.error})
        return summary
