"""The WebSub callback route, ``/websub/<token>``, for the web app (see INTERFACE-web).

GET is a hub verifying a subscription (answered with its challenge), POST a hub pushing new
content (taken only with a valid signature). The route is public (a hub cannot send the
dashboard's token or a CSRF token): each request proves itself with the subscription's
unguessable token in the path, and a push with the HMAC of its body. A body larger than
``[http] max_bytes`` is refused before it is read whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.feeds.hubs import WebSub

if TYPE_CHECKING:
    from monitor.web.context import WebContext

PREFIX = "/websub/"


async def _body(request: Request, cap: int) -> bytes | None:
    """The request body, or None past ``cap`` bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            return None
        parts.append(chunk)
    return b"".join(parts)


def websub_routes(websub: WebSub) -> list[BaseRoute]:
    async def callback(request: Request) -> Response:
        token = request.path_params["token"]
        if request.method == "GET":
            status, text = await websub.verify(token, dict(request.query_params))
            return PlainTextResponse(text, status_code=status)
        body = await _body(request, websub.pipeline.config.http.max_bytes)
        if body is None:
            return PlainTextResponse("body larger than max_bytes", status_code=413)
        headers = {key.lower(): value for key, value in request.headers.items()}
        status, text = await websub.deliver(token, body, headers)
        return PlainTextResponse(text, status_code=status)

    return [Route(PREFIX + "{token}", callback, methods=["GET", "POST"], name="websub")]


def routes(ctx: WebContext) -> list[BaseRoute]:
    """The web app's hook (``EXTRA_ROUTES``): the callback when WebSub is on (``[web] public_url``)."""
    return websub_routes(ctx.websub) if ctx.websub is not None else []
