"""The JSON API under ``/api/``: the CLI's ``--format json`` listings, from the same store functions.

``/api/feeds`` is ``feeds status``, ``/api/items`` ``items list``, ``/api/matches``
``matches list``, ``/api/alerts`` ``alerts list`` and ``/api/stories`` the stories page's
rows; the query parameters are the CLI's options (``feed``, ``rule``, ``since``,
``status``) plus ``limit``; ``/api/stories/{id}`` is ``stories show ID --format json``. A bad
parameter is a 400 with one line saying which; an unknown story a 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.commands import feed_status_rows
from monitor.store import views
from monitor.units import parse_duration
from monitor.web.context import WebContext
from monitor.web.present import at_least

MAX_LIMIT = 10_000
STORY_FIELDS = ("id", "title", "url", "items", "publishers", "first_seen_at", "last_seen_at", "rules", "terms",
                "severities", "snippet", "alerts")


class BadParameter(ValueError):
    pass


def _since(request: Request, now: datetime) -> datetime | None:
    raw = request.query_params.get("since")
    if not raw:
        return None
    try:
        return now - timedelta(seconds=parse_duration(raw))
    except ValueError as error:
        raise BadParameter(f"since: {error}") from None


def _limit(request: Request, default: int = 1000) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadParameter(f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    return int(raw)


def _listing(fetch: Callable[[Request], Callable[[], list[dict[str, Any]]]]) -> Callable[[Request], Any]:
    """A GET endpoint returning ``fetch(request)()`` (run in a worker thread) as a JSON array."""
    async def endpoint(request: Request) -> Response:
        try:
            query = fetch(request)
        except BadParameter as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(await asyncio.to_thread(query))
    return endpoint


def routes(ctx: WebContext) -> list[BaseRoute]:
    store = ctx.store

    def feeds(_: Request) -> Callable[[], list[dict[str, Any]]]:
        return lambda: feed_status_rows(ctx.config(), store.feeds())

    def items(request: Request) -> Callable[[], list[dict[str, Any]]]:
        since, limit, feed = _since(request, ctx.clock()), _limit(request), request.query_params.get("feed")
        return lambda: store.items(since, feed, limit)

    def matches(request: Request) -> Callable[[], list[dict[str, Any]]]:
        since, limit, rule = _since(request, ctx.clock()), _limit(request), request.query_params.get("rule")
        return lambda: store.matches(since, rule, limit)

    def alerts(request: Request) -> Callable[[], list[dict[str, Any]]]:
        limit, status = _limit(request), request.query_params.get("status")
        return lambda: store.alerts(status, limit)

    def stories(request: Request) -> Callable[[], list[dict[str, Any]]]:
        rule, severity = request.query_params.get("rule"), request.query_params.get("severity")
        where = views.StoryFilter({rule} if rule else None, at_least(severity), _since(request, ctx.clock()))
        limit = _limit(request, 50)
        return lambda: [{k: row[k] for k in STORY_FIELDS} for row in views.stories(store, where, limit)]

    async def story(request: Request) -> Response:
        found = await asyncio.to_thread(views.story_detail, store, int(request.path_params["story_id"]))
        if found is None:
            return JSONResponse({"error": f"no story {request.path_params['story_id']}"}, status_code=404)
        return JSONResponse(found)

    listings: list[BaseRoute] = [Route(f"/api/{name}", _listing(fetch), name=f"api-{name}")
            for name, fetch in (("feeds", feeds), ("items", items), ("matches", matches), ("alerts", alerts),
                                ("stories", stories))]
    return [*listings, Route("/api/stories/{story_id:int}", story, name="api-story")]
