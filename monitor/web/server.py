"""The ``[web] listen`` server: uvicorn serving the dashboard app inside the daemon's own event loop.

The daemon owns the process's signals, so uvicorn's own handlers are switched off
(``_Embedded.capture_signals``) and the daemon stops the server with ``close()``. The
listening socket is bound here, before uvicorn starts, so a port in use is a clean
``OSError`` for the daemon to turn into a config error (uvicorn itself would exit the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger("monitor.web")
# Keep-alive connections are closed at shutdown; a request still running gets this long to finish.
GRACEFUL_SHUTDOWN = 3.0


def split_listen(listen: str) -> tuple[str, int]:
    """``"host:port"``, ``":port"`` (loopback) or ``"[v6]:port"`` -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Embedded(uvicorn.Server):
    """uvicorn without signal handlers: SIGTERM and SIGHUP belong to the daemon."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class WebServer:
    """The app on ``listen``; ``start()`` returns once it accepts connections."""

    def __init__(self, listen: str, app: ASGIApp, graceful: float = GRACEFUL_SHUTDOWN) -> None:
        self.host, self.port = split_listen(listen)
        self.app = app
        self.graceful = graceful
        self.server: _Embedded | None = None
        self.task: asyncio.Task[None] | None = None
        self.sock: socket.socket | None = None

    async def start(self) -> None:
        self.sock = _bind(self.host, self.port)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, log_level="warning", access_log=False, lifespan="off",
                                http="h11", ws="none", interface="asgi3", server_header=False,
                                timeout_graceful_shutdown=int(self.graceful) or 1)
        self.server = _Embedded(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="web")
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()  # it failed to start: say why
        log.info("web endpoint listening", extra={"event": "web", "listen": f"{self.host}:{self.port}"})

    async def close(self) -> None:
        """Stop accepting, let running requests finish (bounded), then cancel what is left."""
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), self.graceful + 1)
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        finally:
            if self.sock is not None:
                self.sock.close()
