"""The Starlette app: ``/healthz``, ``/metrics``, the dashboard pages, the JSON API and the static files.

Other modules add routes without touching this file's logic: a dotted path in
``EXTRA_ROUTES`` names a function ``routes(ctx) -> list[BaseRoute]`` (imported when the
app is built), and a path prefix in ``PUBLIC_PREFIXES`` is open without the token and
without CSRF (for callbacks that other services post to; they authenticate themselves).
"""

from __future__ import annotations

import asyncio
import importlib
from datetime import datetime
from typing import Any

import jinja2
from jinja2_fragments.starlette import Jinja2Blocks
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from monitor import __version__
from monitor.config import reveal
from monitor.metrics import REGISTRY
from monitor.types import iso
from monitor.web import api, pages
from monitor.web.context import WebContext
from monitor.web.present import safe_url, segments
from monitor.web.security import Guard, forbidden, login

EXTRA_ROUTES: list[str] = []
PUBLIC_PREFIXES: list[str] = []
HEALTH_TIMEOUT = 2.0


def _when(value: str | datetime | None) -> str:
    """A stored time as the pages show it: '2026-12-02 14:44 UTC'."""
    text = iso(value) if isinstance(value, datetime) else value
    return text[:16].replace("T", " ") + " UTC" if text else "-"


def _environment() -> jinja2.Environment:
    # Autoescape everywhere: every string a feed sends is hostile until escaped.
    env = jinja2.Environment(loader=jinja2.PackageLoader("monitor.web", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(when=_when, link=safe_url, segments=segments)
    env.globals.update(version=__version__)
    return env


TEMPLATES = Jinja2Blocks(env=_environment())


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200,
           block: str | None = None) -> Response:
    """A page, or with ``block`` only that block of it (the htmx partial of the same template)."""
    full = {"request": request, "csrf": request.state.csrf, "token_set": request.state.token is not None, **context}
    if block is None:
        return TEMPLATES.TemplateResponse(request, name, full, status_code=status_code)
    return TEMPLATES.TemplateResponse(request, name, full, status_code=status_code, block_name=block)


def _service_routes(ctx: WebContext) -> list[BaseRoute]:
    async def healthz(_: Request) -> Response:
        try:
            ok = await asyncio.wait_for(ctx.healthy(), HEALTH_TIMEOUT)
        except Exception:  # a health check says unhealthy; it never raises
            ok = False
        if ok:
            return PlainTextResponse("ok\n", media_type="text/plain")
        return PlainTextResponse("database not answering\n", status_code=503, media_type="text/plain")

    async def metrics(_: Request) -> Response:
        await ctx.refresh_metrics()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def login_page(request: Request) -> Response:
        return await login(request, render)

    return [Route("/healthz", healthz), Route("/metrics", metrics),
            Route("/login", login_page, methods=["GET", "POST"])]


def _extra_routes(ctx: WebContext) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for dotted in EXTRA_ROUTES:
        module, _, name = dotted.partition(":")
        routes.extend(getattr(importlib.import_module(module), name)(ctx))
    return routes


def build_app(ctx: WebContext) -> Starlette:
    """The whole web app over the daemon's ``ctx``."""
    def token() -> str | None:
        secret = ctx.config().web_token
        return reveal(secret) if secret is not None else None

    routes = [*_service_routes(ctx), *_extra_routes(ctx), *pages.routes(ctx, render), *api.routes(ctx),
              Mount("/static", StaticFiles(packages=[("monitor.web", "static")]), name="static")]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token, public=PUBLIC_PREFIXES)],
                     exception_handlers={HTTPException: forbidden})
