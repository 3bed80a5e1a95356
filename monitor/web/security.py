"""The dashboard's guards: security headers, the optional ``[web] token``, CSRF, and the login page.

- Every response carries a Content-Security-Policy without inline script or style, so a
  feed title that slipped past escaping still could not run.
- With a token set, every path but ``/healthz``, ``/login``, ``/static/`` and the public
  prefixes (callbacks other services post to) needs ``Authorization: Bearer <token>``
  or the session cookie that ``/login`` sets (an HMAC of the token, never the token).
- A POST needs the CSRF token (double submit: the ``cm_csrf`` cookie, SameSite=Strict,
  and the same value in the form or the ``X-CSRF-Token`` header), and a request from another
  site (``Sec-Fetch-Site``, else ``Origin``) is refused; a bearer-token request is exempt
  (browsers never add that header).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
SESSION_COOKIE = "cm_session"
CSRF_COOKIE = "cm_csrf"
OPEN_PATHS = ("/healthz", "/login")
OPEN_PREFIXES = ("/static/",)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def session_value(token: str) -> str:
    """The login cookie's value: proves the token was given without being the token."""
    return hmac.new(token.encode(), b"crisis-monitor dashboard session", hashlib.sha256).hexdigest()


def bearer_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def authorized(request: Request, token: str | None) -> bool:
    if token is None or bearer_ok(request, token):
        return True
    return hmac.compare_digest(request.cookies.get(SESSION_COOKIE, "").encode(), session_value(token).encode())


def _same_origin(request: Request) -> bool:
    """Not sent from another site: by the browser's Sec-Fetch-Site, else by Origin against Host."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


async def posted_form(request: Request) -> dict[str, str]:
    """The POSTed form once its CSRF token checks out; 403 otherwise."""
    form = await request.form()
    given = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
    expected = request.cookies.get(CSRF_COOKIE, "")
    token = getattr(request.state, "token", None)
    exempt = token is not None and bearer_ok(request, token)
    if not exempt and (not expected or not hmac.compare_digest(given.encode(), expected.encode())
                       or not _same_origin(request)):
        raise HTTPException(403, "CSRF check failed: reload the page and try again")
    return {key: value for key, value in form.items() if isinstance(value, str)}


class Guard(BaseHTTPMiddleware):
    """Headers, token and the CSRF cookie for every request; ``token`` is read per request (reload)."""

    def __init__(self, app: Any, token: Callable[[], str | None], public: Collection[str] = ()) -> None:
        super().__init__(app)
        self.token = token
        self.public = tuple(public)

    def _open(self, path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or path.startswith(self.public)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        token = self.token()
        request.state.token = token
        path = request.url.path
        if not self._open(path) and not authorized(request, token):
            response = _refuse(request)
        else:
            fresh = request.cookies.get(CSRF_COOKIE) is None
            request.state.csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
            response = await call_next(request)
            if fresh and response.headers.get("content-type", "").startswith("text/html"):
                response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict",
                                    secure=request.url.scheme == "https")
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        return response


def _refuse(request: Request) -> Response:
    path = request.url.path
    if path.startswith("/api/") or path == "/metrics" or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"error": "a token is required: Authorization: Bearer <[web] token>"}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="crisis-monitor"'})
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def local_path(target: str | None) -> str:
    """A redirect target that stays on this site (no ``//host`` or ``http:`` tricks)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login(request: Request, render: Callable[..., Response]) -> Response:
    """GET: the token form; POST: the session cookie for the right token, and back to ``next``."""
    token: str | None = request.state.token
    if token is None:
        return RedirectResponse("/", status_code=303)
    if request.method == "GET":
        return render(request, "login.html", {"next": local_path(request.query_params.get("next")), "error": ""})
    form = await posted_form(request)
    target = local_path(form.get("next"))
    if not hmac.compare_digest(form.get("token", "").encode(), token.encode()):
        return render(request, "login.html", {"next": target, "error": "That is not the token."}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, session_value(token), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=30 * 86400)
    return response


def forbidden(_: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return PlainTextResponse(f"{error.detail}\n", status_code=error.status_code)
