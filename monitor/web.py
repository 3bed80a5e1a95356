"""The optional ``[web] listen`` endpoint: ``/healthz`` and ``/metrics`` (Prometheus text format).

A deliberately small HTTP/1.1 server on asyncio streams: two GET routes, no keep-alive, no
request bodies. ``/healthz`` answers 200 while the event loop runs and the database
answers within 2 s, 503 otherwise; being answered at all proves the loop is alive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.metrics import REGISTRY

log = logging.getLogger("monitor.web")
HEALTH_TIMEOUT = 2.0


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class WebServer:
    def __init__(self, listen: str, healthy: Callable[[], Awaitable[bool]],
                 refresh: Callable[[], Awaitable[None]]) -> None:
        self.host, self.port = split_listen(listen)
        self.healthy, self.refresh = healthy, refresh
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = list(self.server.sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("web endpoint listening", extra={"event": "web", "listen": f"{self.host}:{self.port}"})

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, kind, body = await self._route(method, path.split("?")[0])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status, kind, body = "400 Bad Request", "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        try:
            writer.write(head.encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/healthz":
            try:
                ok = await asyncio.wait_for(self.healthy(), HEALTH_TIMEOUT)
            except Exception:  # a health check says unhealthy; it never raises
                ok = False
            return ("200 OK", "text/plain", b"ok\n") if ok else ("503 Service Unavailable", "text/plain",
                                                                 b"database not answering\n")
        if path == "/metrics":
            await self.refresh()
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        return "404 Not Found", "text/plain", b"try /healthz or /metrics\n"
