"""A real HTTP server on 127.0.0.1 for feed and receiver tests.

Routes map a path to a ``Route``: a status, headers and a body, or a ``behaviour``
(``hang``: never answer; ``drip``: send the body a byte at a time, slowly). Every
request is recorded with its headers so tests can check what the client sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    behaviour: str = ""
    etag: str = ""


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
        owner.requests.append(seen)
        owner.on_get(seen)
        route = owner.routes.get(self.path)
        if route is None:
            self._send(404, {}, b"not found")
        elif route.behaviour == "hang":
            owner.stop_event.wait(60)
        elif route.etag and self.headers.get("If-None-Match") == route.etag:
            self._send(304, {"ETag": route.etag}, b"")
        else:
            headers = dict(route.headers)
            if route.etag:
                headers["ETag"] = route.etag
            if route.behaviour == "drip":
                self._drip(route, headers, owner.stop_event)
            else:
                self._send(route.status, headers, route.body)

    def do_POST(self) -> None:  # the stdlib's name
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
        with owner.lock:
            owner.posts.append(seen)
            status, delay = owner.answer(seen)
        if delay:
            time.sleep(delay)
        self._send(status, {"Content-Type": "text/plain"}, b"ok" if status < 300 else b"no")
        if status < 300:
            with owner.lock:
                owner.acknowledged.append(seen)

    def _head(self, status: int, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self._head(status, headers, len(body))
        self.wfile.write(body)

    def _drip(self, route: Route, headers: dict[str, str], stop: threading.Event) -> None:
        self._head(route.status, headers, len(route.body))
        try:
            for byte in route.body:
                if stop.is_set():
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FeedServer


class FeedServer:
    def __init__(self, port: int = 0) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.posts: list[Seen] = []
        self.acknowledged: list[Seen] = []
        self.lock = threading.Lock()
        # (status, delay in seconds) for each POST; tests replace it to fail, slow down or recover
        self.answer: Callable[[Seen], tuple[int, float]] = lambda _: (200, 0.0)
        # called with each GET as it arrives, before it is answered (a test may act on who asked)
        self.on_get: Callable[[Seen], None] = lambda _: None
        self.stop_event = threading.Event()
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]
