"""A WebSub hub on 127.0.0.1: the hub's side of the W3C spec, as much as the tests need.

A subscription request (POST, form-encoded) is recorded and answered 202; then, from another
thread as a real hub would, the hub verifies it with a GET on the callback (``hub.challenge``,
``hub.topic``, ``hub.lease_seconds``) and keeps the subscriber only if the challenge comes back.
``publish`` sends content to a topic's subscribers signed with their secrets (HMAC, the method
of the test's choice), or with whatever signature a test wants to forge.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Subscriber:
    callback: str
    topic: str
    secret: str
    lease_seconds: int


def get(url: str, params: dict[str, str]) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(params)}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: object) -> None:
        pass

    def do_POST(self) -> None:  # the stdlib's name
        hub = self.server.hub
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
        with hub.lock:
            hub.requests.append(form)
        if form.get("hub.mode") != "subscribe" or not form.get("hub.callback") or not form.get("hub.topic"):
            self.send_response(400)
            self.end_headers()
            return
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        threading.Thread(target=hub.verify, args=(form,), daemon=True).start()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: Hub


class Hub:
    def __init__(self, lease_seconds: int = 3600) -> None:
        self.lease_seconds = lease_seconds
        self.requests: list[dict[str, str]] = []
        self.subscribers: dict[str, Subscriber] = {}  # by callback
        self.verifications: list[tuple[int, str, str]] = []  # (status, body, challenge sent)
        self.lock = threading.Lock()
        self.verified = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.hub = self
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> Hub:
        self.thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def verify(self, form: dict[str, str]) -> None:
        challenge = secrets.token_hex(8)
        status, body = get(form["hub.callback"], {"hub.mode": "subscribe", "hub.topic": form["hub.topic"],
                                                  "hub.challenge": challenge,
                                                  "hub.lease_seconds": str(self.lease_seconds)})
        with self.lock:
            self.verifications.append((status, body, challenge))
            if status == 200 and body == challenge:
                self.subscribers[form["hub.callback"]] = Subscriber(form["hub.callback"], form["hub.topic"],
                                                                    form.get("hub.secret", ""), self.lease_seconds)
                self.verified.set()

    def publish(self, topic: str, body: bytes, content_type: str = "application/rss+xml", method: str = "sha256",
                signature: str | None = None) -> list[int]:
        """POST ``body`` to every subscriber of ``topic``; the status each answered."""
        statuses = []
        for subscriber in [s for s in self.subscribers.values() if s.topic == topic]:
            headers = {"Content-Type": content_type}
            if signature is None:
                digest = hmac.new(subscriber.secret.encode(), body, getattr(hashlib, method)).hexdigest()
                headers["X-Hub-Signature"] = f"{method}={digest}"
            elif signature:
                headers["X-Hub-Signature"] = signature
            statuses.append(post(subscriber.callback, body, headers))
        return statuses
