"""The dashboard's pages: stories, story, rules, rule, rule tester, feeds, outbox.

Handlers read the store in a worker thread (the store is synchronous; the event loop is
the daemon's) and hand plain dicts to the templates, which escape everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.commands import feed_status_rows
from monitor.rules.engine import RuleSet
from monitor.store import views
from monitor.types import SEVERITIES, Document
from monitor.units import parse_duration
from monitor.web.context import WebContext
from monitor.web.present import (
    FEED_SORTS,
    ExampleResult,
    at_least,
    bars,
    day_bounds,
    example_results,
    last_days,
    sort_feeds,
)
from monitor.web.security import posted_form

Render = Callable[..., Response]
SPARK_DAYS, TIMELINE_DAYS = 30, 90
MAX_PASTE = 1_000_000  # characters the rule tester takes


class ExampleCache:
    """``rules test`` results of the rule set in force, computed once per rule set (a reload makes a new one)."""

    def __init__(self) -> None:
        self.rule_set: RuleSet | None = None
        self.results: dict[str, ExampleResult] = {}

    def of(self, rule_set: RuleSet) -> dict[str, ExampleResult]:
        if rule_set is not self.rule_set:
            self.results, self.rule_set = example_results(rule_set), rule_set
        return self.results


def since_of(request: Request, now: datetime) -> tuple[datetime | None, str]:
    """``?since=24h`` as a moment, with the error to show for a value that is not a duration."""
    raw = request.query_params.get("since", "").strip()
    if not raw:
        return None, ""
    try:
        return now - timedelta(seconds=parse_duration(raw)), ""
    except ValueError as error:
        return None, f"since: {error}"


def is_partial(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") is None


class Pages:
    def __init__(self, ctx: WebContext, render: Render) -> None:
        self.ctx, self.render = ctx, render
        self.examples = ExampleCache()

    def _rules(self) -> RuleSet:
        return self.ctx.active().rule_set

    def _story_filter(self, request: Request) -> tuple[views.StoryFilter, dict[str, str], str]:
        params = {k: request.query_params.get(k, "").strip() for k in ("rule", "severity", "tag", "since")}
        since, error = since_of(request, self.ctx.clock())
        rules: set[str] | None = {params["rule"]} if params["rule"] else None
        if params["tag"]:
            tagged = {r.spec.id for r in self._rules().rules if params["tag"] in r.spec.tags}
            rules = tagged if rules is None else rules & tagged
        return views.StoryFilter(rules, at_least(params["severity"]), since), params, error

    async def stories(self, request: Request) -> Response:
        where, params, error = self._story_filter(request)
        rows = await asyncio.to_thread(views.stories, self.ctx.store, where)
        specs = [r.spec for r in self._rules().rules]
        context = {"stories": rows, "params": params, "error": error, "severities": SEVERITIES,
                   "rule_ids": sorted(s.id for s in specs), "tags": sorted({t for s in specs for t in s.tags}),
                   "query": request.url.query}
        return self.render(request, "stories.html", context, 400 if error else 200,
                           block="story_list" if is_partial(request) else None)

    async def story(self, request: Request) -> Response:
        found = await asyncio.to_thread(views.story, self.ctx.store, int(request.path_params["story_id"]))
        if found is None:
            raise HTTPException(404, "no such story")
        return self.render(request, "story.html", {"story": found})

    async def rules(self, request: Request) -> Response:
        rule_set = self._rules()
        days = last_days(self.ctx.clock(), SPARK_DAYS)
        ids = [r.spec.id for r in rule_set.rules]
        counts = await asyncio.to_thread(views.rule_days, self.ctx.store, ids, day_bounds(days))
        last = await asyncio.to_thread(views.last_matches, self.ctx.store, ids)
        results = await asyncio.to_thread(self.examples.of, rule_set)
        specs = sorted((r.spec for r in rule_set.rules), key=lambda s: (-SEVERITIES.index(s.severity), s.id))
        rows = [{"spec": s, "bars": bars(dict(zip(days, counts[s.id], strict=True)), days, 120, 24),
                 "total": sum(counts[s.id]), "last": last.get(s.id), "test": results[s.id]} for s in specs]
        return self.render(request, "rules.html", {"rows": rows, "days": days})

    async def rule(self, request: Request) -> Response:
        rule_set = self._rules()
        spec = next((r.spec for r in rule_set.rules if r.spec.id == request.path_params["rule_id"]), None)
        if spec is None:
            raise HTTPException(404, "no rule with that id is in force")
        days = last_days(self.ctx.clock(), TIMELINE_DAYS)
        per_day = (await asyncio.to_thread(views.rule_days, self.ctx.store, [spec.id], day_bounds(days)))[spec.id]
        counts = dict(zip(days, per_day, strict=True))
        recent = await asyncio.to_thread(self.ctx.store.matches, None, spec.id, 50)
        results = await asyncio.to_thread(self.examples.of, rule_set)
        source = await asyncio.to_thread(rule_source, spec.location.path)
        return self.render(request, "rule.html", {
            "spec": spec, "recent": recent, "test": results[spec.id], "days": days, "total": sum(counts.values()),
            "bars": bars(counts, days, 720, 80), "source": source})

    async def tester(self, request: Request) -> Response:
        context: dict[str, Any] = {"title": "", "text": "", "results": None, "error": ""}
        if request.method == "POST":
            form = await posted_form(request)
            context.update(title=form.get("title", ""), text=form.get("text", ""))
            if len(context["title"]) + len(context["text"]) > MAX_PASTE:
                context["error"] = f"the text is longer than {MAX_PASTE:,} characters; paste a part of it"
            else:
                doc = Document(id="pasted", title=context["title"], content=context["text"])
                matches = await asyncio.to_thread(self._rules().match, doc)
                context["results"] = [{"match": m, "clauses": list(getattr(m, "clauses", ()) or ())}
                                      for m in matches]
        return self.render(request, "tester.html", context,
                           block="results" if request.method == "POST" and is_partial(request) else None)

    async def feeds(self, request: Request) -> Response:
        key = request.query_params.get("sort", "health")
        key = key if key in FEED_SORTS else "health"
        descending = request.query_params.get("dir") == "desc"
        stored = await asyncio.to_thread(self.ctx.store.feeds)
        rows = sort_feeds(feed_status_rows(self.ctx.config(), stored), key, descending)
        return self.render(request, "feeds.html", {"rows": rows, "sort": key, "descending": descending,
                                                   "sorts": FEED_SORTS})

    async def outbox(self, request: Request) -> Response:
        store = self.ctx.store
        counts = await asyncio.to_thread(views.delivery_counts, store)
        dead = await asyncio.to_thread(store.alerts, "dead", 200)
        pending = await asyncio.to_thread(store.alerts, "pending", 200)
        return self.render(request, "outbox.html", {"counts": counts, "dead": dead, "pending": pending,
                                                    "retried": request.query_params.get("retried")})

    async def retry(self, request: Request) -> Response:
        form = await posted_form(request)
        alert_id = form.get("alert_id") or None
        count = await asyncio.to_thread(self.ctx.outbox.retry, self.ctx.clock(), alert_id, True)
        self.ctx.wake_dispatcher()
        return RedirectResponse(f"/outbox?retried={count}", status_code=303)

    async def home(self, _: Request) -> Response:
        return RedirectResponse("/stories", status_code=307)


def routes(ctx: WebContext, render: Render) -> list[BaseRoute]:
    pages = Pages(ctx, render)
    return [Route("/", pages.home), Route("/stories", pages.stories, name="stories"),
            Route("/stories/{story_id:int}", pages.story, name="story"),
            Route("/rules", pages.rules, name="rules"), Route("/rules/{rule_id}", pages.rule, name="rule"),
            Route("/tester", pages.tester, methods=["GET", "POST"], name="tester"),
            Route("/feeds", pages.feeds, name="feeds"), Route("/outbox", pages.outbox, name="outbox"),
            Route("/outbox/retry", pages.retry, methods=["POST"], name="retry")]


def rule_source(path: str) -> str:
    """The rule file as it is on disk (its named clauses are where a rule's wording lives); "" if unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8") if path else ""
    except (OSError, UnicodeDecodeError):
        return ""
