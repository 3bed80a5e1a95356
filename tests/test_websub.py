"""WebSub end to end with a hub on 127.0.0.1: discovery, subscription, the hub's verification,
signed pushes through the same parse/match/store path, renewal, and polling as the safety net;
and the pure decisions (signatures, verification, renewal) by table."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from monitor.config import Config, load
from monitor.daemon import Runtime
from monitor.feeds.websub import Subscription, pushing, renewal_due, signature_valid, verification
from monitor.store.subscriptions import Subscriptions
from monitor.web.app import build_app
from monitor.web.context import WebContext
from tests.feedserver import FeedServer, Route
from tests.helpers import AlertRow, ItemRow, items_by_feed, make_config, rows
from tests.websub_hub import Hub, get, post

NOW = datetime(2025, 9, 19, 10, 0, tzinfo=UTC)
TOKEN = "a-dashboard-token-of-some-length"


def feed(hub: str, self_url: str, *items: tuple[str, str]) -> bytes:
    entries = "".join(f"<item><guid>{guid}</guid><title>{title}</title><link>https://news.example.org/{guid}</link>"
                      f"<description>{title}</description></item>" for guid, title in items)
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
            f'<title>Pushed</title><link>https://news.example.org/</link><atom:link rel="hub" href="{hub}"/>'
            f'<atom:link rel="self" href="{self_url}"/>{entries}</channel></rss>').encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def hub():  # type: ignore[no-untyped-def]
    hub = Hub(lease_seconds=3600).start()
    yield hub
    hub.close()


class Scene:
    """A daemon's runtime with its WebSub callback served on 127.0.0.1, and a clock to move."""

    def __init__(self, config: Config, port: int) -> None:
        self.config, self.port, self.now = config, port, datetime.now(UTC)
        self.runtime = Runtime(config, clock=lambda: self.now)
        runtime = self.runtime

        async def healthy() -> bool:
            return True

        # The dashboard's own app, as the daemon serves it (its token guards all but public prefixes).
        app = build_app(WebContext(store=runtime.store, config=lambda: runtime.config, active=lambda: runtime.active,
                                   healthy=healthy, clock=runtime.clock, websub=runtime.pipeline.websub))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off", ws="none", http="h11"))

    async def __aenter__(self) -> Scene:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.should_exit = True
        await self.task
        await self.runtime.close()

    async def poll(self) -> Any:
        return (await self.runtime.poll_all(list(self.config.feeds)))[0]

    def subscription(self) -> Subscription | None:
        return Subscriptions(self.runtime.store).of_feed(1)


async def until(check: Callable[[], bool], seconds: float = 30.0, why: Callable[[], object] = str) -> None:
    for _ in range(int(seconds * 20)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting: {why()}")


def _config(tmp_path: Path, feed_server: FeedServer, port: int, public: bool = True) -> Config:
    config = make_config(tmp_path, {"pushed": feed_server.url("/feed")},
                         extra='max_interval = "1h"\n[http]\nmax_bytes = "1MB"\n')
    text = config.path.read_text()
    if public:
        text += (f'[web]\nlisten = "127.0.0.1:{port}"\ntoken = "${{WEB_TOKEN}}"\n'
                 f'public_url = "http://127.0.0.1:{port}"\n')
    config.path.write_text(text)
    return load(text, config.path, {"WEB_TOKEN": TOKEN})


def _hub_feed(feed_server: FeedServer, hub: Hub, tmp_path: Path, *items: tuple[str, str]) -> tuple[Config, int, str]:
    """A feed that advertises ``hub``, a config that follows it with WebSub on: (config, port, topic)."""
    topic = feed_server.url("/feed")
    feed_server.routes["/feed"] = Route(feed(hub.url, topic, *items))
    port = free_port()
    return _config(tmp_path, feed_server, port), port, topic


async def _subscribed(scene: Scene, hub: Hub) -> None:
    """The first poll, and the hub's verification of the subscription it made."""
    await scene.poll()
    await until(hub.verified.is_set, why=lambda: (hub.requests, hub.verifications, scene.subscription()))


def test_a_feed_with_a_hub_is_pushed_to_and_polled_only_as_a_safety_net(
        feed_server: FeedServer, hub: Hub, tmp_path: Path) -> None:
    config, port, topic = _hub_feed(feed_server, hub, tmp_path, ("old", "Weather report"))

    async def scenario() -> None:
        async with Scene(config, port) as scene:
            await _subscribed(scene, hub)
            request = hub.requests[0]
            assert request["hub.mode"] == "subscribe" and request["hub.topic"] == topic
            assert request["hub.callback"].startswith(f"http://127.0.0.1:{port}/websub/")
            assert len(request["hub.secret"]) >= 32 and request["hub.lease_seconds"] == str(10 * 86400)
            sub = scene.subscription()
            assert sub is not None and sub.state == "active" and sub.lease_seconds == 3600
            assert sub.expires_at is not None and abs((sub.expires_at - scene.now).total_seconds() - 3600) < 60
            pushed = feed(hub.url, topic, ("old", "Weather report"),
                          ("new", "Three Russian MiG-31 jets violated Estonian airspace for 12 minutes"))
            assert await asyncio.to_thread(hub.publish, topic, pushed) == [202]
            await until(lambda: len(items_by_feed(config).get("pushed", [])) == 2)
            # The feed as polled later holds the same items: nothing new, and the next poll only at
            # max_interval.
            feed_server.routes["/feed"] = Route(pushed)
            summary = await scene.poll()
            assert summary.status == "ok" and summary.new_items == 0
            assert summary.next_poll_at - scene.now >= timedelta(minutes=54)

    asyncio.run(scenario())
    assert [item.guid for item in items_by_feed(config)["pushed"]] == ["old", "new"]
    assert [alert.rule for alert in rows(config, AlertRow)] == ["airspace-violation"]


@pytest.mark.parametrize("method", ["sha1", "sha384", "sha512"])
def test_every_signature_method_of_the_spec_is_accepted(feed_server: FeedServer, hub: Hub, tmp_path: Path,
                                                        method: str) -> None:
    config, port, topic = _hub_feed(feed_server, hub, tmp_path)

    async def scenario() -> None:
        async with Scene(config, port) as scene:
            await _subscribed(scene, hub)
            await asyncio.to_thread(hub.publish, topic, feed(hub.url, topic, ("a", "Pushed item")), method=method)
            await until(lambda: len(items_by_feed(config).get("pushed", [])) == 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "md5=abc", "sha256"])
def test_a_push_without_a_valid_signature_is_acknowledged_and_ignored(
        feed_server: FeedServer, hub: Hub, tmp_path: Path, signature: str) -> None:
    config, port, topic = _hub_feed(feed_server, hub, tmp_path)

    async def scenario() -> Subscription | None:
        async with Scene(config, port) as scene:
            await _subscribed(scene, hub)
            forged = feed(hub.url, topic, ("forged", "Article 5 invoked"))
            assert await asyncio.to_thread(hub.publish, topic, forged, signature=signature) == [202]
            return scene.subscription()

    sub = asyncio.run(scenario())
    assert rows(config, ItemRow) == []
    assert sub is not None and sub.last_error == "a push with a missing or bad X-Hub-Signature was ignored"


def test_an_expired_lease_is_renewed_and_polling_goes_on(feed_server: FeedServer, hub: Hub, tmp_path: Path) -> None:
    config, port, _ = _hub_feed(feed_server, hub, tmp_path, ("a", "Quiet news"))

    async def scenario() -> None:
        async with Scene(config, port) as scene:
            await _subscribed(scene, hub)
            assert scene.runtime.pipeline.bounds(config.feeds[0]).low == 3600  # pushed: polled at max_interval
            hub.verified.clear()
            scene.now += timedelta(hours=2)  # the lease (1h) ran out, unrenewed
            summary = await scene.poll()
            assert summary.status == "not_modified"  # polling went on, at max_interval at the latest
            assert summary.next_poll_at - scene.now <= timedelta(hours=1.1)
            assert len(hub.requests) == 2  # and asked the hub again
            await until(hub.verified.is_set, why=lambda: (hub.requests, hub.verifications, scene.subscription()))
            sub = scene.subscription()
            assert sub is not None and sub.state == "active" and sub.expires_at is not None
            assert sub.expires_at > scene.now
            assert sub.token in hub.requests[1]["hub.callback"] and hub.requests[0] == hub.requests[1]

    asyncio.run(scenario())


def test_a_lease_is_renewed_before_it_runs_out(feed_server: FeedServer, hub: Hub, tmp_path: Path) -> None:
    config, port, _ = _hub_feed(feed_server, hub, tmp_path)

    async def scenario() -> None:
        async with Scene(config, port) as scene:
            await _subscribed(scene, hub)
            scene.now += timedelta(minutes=10)
            await scene.poll()
            assert len(hub.requests) == 1  # 50 minutes left of 60: not yet
            scene.now += timedelta(minutes=21)  # 29 minutes left: under half of a lease this short
            await scene.poll()
            assert len(hub.requests) == 2

    asyncio.run(scenario())


def test_the_hub_is_checked_for_its_challenge_and_topic(feed_server: FeedServer, hub: Hub, tmp_path: Path) -> None:
    config, port, topic = _hub_feed(feed_server, hub, tmp_path)

    async def scenario() -> None:
        async with Scene(config, port) as scene:
            await _subscribed(scene, hub)
            callback = hub.requests[0]["hub.callback"]

            wrong_topic = await asyncio.to_thread(get, callback, {"hub.mode": "subscribe", "hub.topic": "http://x/",
                                                                  "hub.challenge": "c", "hub.lease_seconds": "9"})
            assert wrong_topic[0] == 404
            unknown = await asyncio.to_thread(get, callback.rsplit("/", 1)[0] + "/nope",
                                              {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": "c"})
            assert unknown[0] == 404
            sub = scene.subscription()
            assert sub is not None and sub.lease_seconds == 3600  # unchanged by the false requests
            status = await asyncio.to_thread(post, callback, b"x" * 1_000_001, {"Content-Type": "application/xml"})
            assert status == 413  # past max_bytes
            # The callback is public (hubs cannot send the dashboard's token); the dashboard is not.
            dashboard = await asyncio.to_thread(get, f"http://127.0.0.1:{scene.port}/api/feeds", {})
            assert dashboard[0] in (401, 403)

    asyncio.run(scenario())


def test_a_hub_that_fails_is_noted_and_asked_again_an_hour_later(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/feed"] = Route(feed(feed_server.url("/hub"), feed_server.url("/feed")))
    feed_server.answer = lambda _: (500, 0.0)
    port = free_port()
    config = _config(tmp_path, feed_server, port)

    async def scenario() -> None:
        async with Scene(config, port) as scene:
            await scene.poll()
            sub = scene.subscription()
            assert sub is not None and sub.state == "requested" and sub.last_error == "the hub answered HTTP 500: no"
            scene.now += timedelta(minutes=30)
            await scene.poll()
            assert len(feed_server.posts) == 1
            scene.now += timedelta(minutes=31)
            await scene.poll()
            assert len(feed_server.posts) == 2 and feed_server.posts[1].path == "/hub"

    asyncio.run(scenario())


def test_without_public_url_no_hub_is_asked(feed_server: FeedServer, hub: Hub, tmp_path: Path) -> None:
    feed_server.routes["/feed"] = Route(feed(hub.url, feed_server.url("/feed"), ("a", "News")))
    config = _config(tmp_path, feed_server, 0, public=False)

    async def scenario() -> None:
        async with Runtime(config) as runtime:
            assert runtime.pipeline.websub is None
            await runtime.poll_all(list(config.feeds))

    asyncio.run(scenario())
    assert hub.requests == [] and len(rows(config, ItemRow)) == 1


# --- the pure decisions ------------------------------------------------------------------------

SUB = Subscription(1, "https://hub.example/", "https://feed.example/rss", "tok", "s3cret", state="requested")


@pytest.mark.parametrize(("header", "valid"), [
    ("sha1=" + "6b5e1a4b4b6a1ea8f3a5d7cd6ae49b0f4b14dc9b", False),
    ("sha256=b6f1b6f4b", False),
    (None, False),
    ("", False),
    ("sha257=00", False),
])
def test_signatures_that_do_not_hold(header: str | None, valid: bool) -> None:
    assert signature_valid(header, b"body", "s3cret") is valid


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512", "SHA256"])
def test_signatures_of_every_method(method: str) -> None:
    digest = hmac.new(b"s3cret", b"body", getattr(hashlib, method.lower())).hexdigest()
    assert signature_valid(f"{method}={digest}", b"body", "s3cret")
    assert not signature_valid(f"{method}={digest}", b"body!", "s3cret")
    assert not signature_valid(f"{method}={digest}", b"body", "other")


@pytest.mark.parametrize(("params", "status", "state"), [
    ({"hub.mode": "subscribe", "hub.topic": SUB.topic, "hub.challenge": "abc", "hub.lease_seconds": "600"},
     200, "active"),
    ({"hub.mode": "subscribe", "hub.topic": "https://other/", "hub.challenge": "abc", "hub.lease_seconds": "600"},
     404, None),
    ({"hub.mode": "subscribe", "hub.topic": SUB.topic, "hub.challenge": "abc"}, 400, None),
    ({"hub.mode": "subscribe", "hub.topic": SUB.topic, "hub.challenge": "abc", "hub.lease_seconds": "-5"}, 400, None),
    ({"hub.mode": "unsubscribe", "hub.topic": SUB.topic, "hub.challenge": "abc"}, 404, None),
    ({"hub.mode": "denied", "hub.topic": SUB.topic, "hub.reason": "no thanks"}, 200, "denied"),
])
def test_verification(params: dict[str, str], status: int, state: str | None) -> None:
    answer = verification(params, SUB, NOW)
    assert (answer.status, answer.state) == (status, state)
    if state == "active":
        assert answer.body == "abc" and answer.expires_at == NOW + timedelta(seconds=600)
    if state == "denied":
        assert answer.error == "the hub denied it: no thanks"
    assert verification(params, None, NOW).status == 404


def test_a_lapsed_lease_is_not_pushing() -> None:
    active = Subscription(**{**SUB.__dict__, "state": "active", "expires_at": NOW + timedelta(seconds=1)})
    assert pushing(active, NOW) and not pushing(active, NOW + timedelta(seconds=1))
    assert not pushing(Subscription(**{**SUB.__dict__, "state": "denied"}), NOW) and not pushing(None, NOW)


@pytest.mark.parametrize(("sub", "now", "due"), [
    (SUB, NOW, True),  # never asked
    (Subscription(**{**SUB.__dict__, "requested_at": NOW - timedelta(minutes=30)}), NOW, False),
    (Subscription(**{**SUB.__dict__, "requested_at": NOW - timedelta(hours=1)}), NOW, True),  # never verified
    (Subscription(**{**SUB.__dict__, "state": "active", "lease_seconds": 864000,
                     "expires_at": NOW + timedelta(days=2)}), NOW, False),
    (Subscription(**{**SUB.__dict__, "state": "active", "lease_seconds": 864000,
                     "expires_at": NOW + timedelta(hours=23)}), NOW, True),  # less than a tenth left
    (Subscription(**{**SUB.__dict__, "state": "active", "lease_seconds": 864000,
                     "expires_at": NOW - timedelta(hours=1)}), NOW, True),  # expired
    (Subscription(**{**SUB.__dict__, "state": "active", "lease_seconds": 7200,
                     "expires_at": NOW + timedelta(minutes=59)}), NOW, True),  # half of a short lease
])
def test_renewal_is_due(sub: Subscription, now: datetime, due: bool) -> None:
    assert renewal_due(sub, now, max_interval=3600) is due


@pytest.mark.parametrize(("text", "expected"), [
    ('[web]\npublic_url = "https://m.example.org"\n', "/etc/cm/c.toml:2: web.public_url: public_url without listen"),
    ('[web]\nlisten = "127.0.0.1:9464"\npublic_url = "monitor.example.org"\n',
     "/etc/cm/c.toml:3: web.public_url: not an http(s) URL"),
])
def test_public_url_is_checked(text: str, expected: str) -> None:
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load(text, Path("/etc/cm/c.toml"), {})
    assert str(caught.value).startswith(expected) and "(hint: " in str(caught.value)
    good = load('[web]\nlisten = "127.0.0.1:9464"\npublic_url = "https://m.example.org/"\n', Path("/c.toml"), {})
    assert good.web_public_url == "https://m.example.org"
