"""Alert delivery against real receivers: a webhook server on 127.0.0.1 that fails, refuses or
recovers; Slack's payload; a real SMTP server (aiosmtpd); dead deliveries retried by hand."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import json
import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from slack_sdk.models.blocks import Block

from monitor.config import Config
from monitor.daemon import Runtime
from monitor.errors import ConfigError
from tests.conftest import run_cli
from tests.feedserver import FeedServer, Route, Seen
from tests.helpers import AlertRow, DeliveryRow, distinct_events, make_config, poll_once, rows
from tests.test_payload import readme_verify
from tests.test_store import VIOLATION, rss

FAST = '[delivery]\nbackoff = "0.2s"\nmax_backoff = "0.5s"\nattempts = 30\n'


def three_items(server: FeedServer, title: str = "Jets") -> str:
    """A feed of three different airspace violations (three stories, so three alerts)."""
    server.routes["/f"] = Route(rss(*[(f"g{n}", f"{title} {n}", f"https://n.example/{n}", text)
                                      for n, (_, text) in enumerate(distinct_events(3))]))
    return server.url("/f")


def config_with(tmp_path: Path, feed: str, channel: str, extra: str = FAST) -> Config:
    return make_config(tmp_path, {"f": feed}, extra=extra + channel)


def deliver_until(config: Config, done: Callable[[], bool], seconds: float = 30) -> None:
    async def loop() -> None:
        async with Runtime(config) as runtime:
            deadline = time.monotonic() + seconds
            while not done() and time.monotonic() < deadline:
                await runtime.dispatcher.run_once()
                await asyncio.sleep(0.1)

    asyncio.run(loop())


def settled(coroutine: Any) -> Any:
    """asyncio.run(coroutine), then a few turns of the loop so closed connections finish closing."""
    from monitor.daemon import settle

    async def run() -> Any:
        try:
            return await coroutine
        finally:
            await settle()
            await asyncio.sleep(0.3)  # a TLS transport's close waits for the peer's close_notify

    return asyncio.run(run())


def keys(seen: list[Seen]) -> Counter[str]:
    return Counter(s.headers["idempotency-key"] for s in seen)


def test_a_failing_then_recovering_receiver_gets_every_alert_once(feed_server: FeedServer, tmp_path: Path) -> None:
    failures = {"left": 4}

    def answer(_: Seen) -> tuple[int, float]:
        failures["left"] -= 1
        return (500 if failures["left"] >= 0 else 200), 0.0

    feed_server.answer = answer
    channel = (f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{feed_server.url("/hook")}"\n'
               'secret = "${HOOK_SECRET}"\n')
    text = "\n".join(["[monitor]", f'rules = "{Path(__file__).resolve().parent.parent / "rules"}"',
                      "parse_workers = 0", f'database = "sqlite:///{tmp_path / "m.db"}"', FAST + channel,
                      "[[feeds]]", 'name = "f"', f'url = "{three_items(feed_server)}"'])
    from monitor.config import load

    config = load(text, tmp_path / "config.toml", {"HOOK_SECRET": "s3cret"})
    poll_once(config)
    alert_ids = {a.id for a in rows(config, AlertRow)}
    assert len(alert_ids) == 3
    deliver_until(config, lambda: set(keys(feed_server.acknowledged)) == alert_ids)
    assert keys(feed_server.acknowledged) == Counter(dict.fromkeys(alert_ids, 1))
    assert len(feed_server.posts) >= 3 + 4
    verify = readme_verify()
    for seen in feed_server.posts:
        headers = {"X-Crisis-Monitor-Timestamp": seen.headers["x-crisis-monitor-timestamp"],
                   "X-Crisis-Monitor-Signature": seen.headers["x-crisis-monitor-signature"]}
        assert verify(b"s3cret", headers, seen.body)
        assert json.loads(seen.body)["id"] == seen.headers["idempotency-key"]
    assert {d.status for d in rows(config, DeliveryRow)} == {"delivered"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_receiver_that_is_down_gets_everything_once_back(feed_server: FeedServer, tmp_path: Path) -> None:
    port = free_port()
    channel = f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:{port}/hook"\n'
    config = config_with(tmp_path, three_items(feed_server), channel)
    poll_once(config)  # every first attempt: connection refused
    deliveries = rows(config, DeliveryRow)
    assert [d.status for d in deliveries] == ["pending"] * 3
    assert all("cannot connect" in (d.last_error or "") and d.attempts == 1 for d in deliveries)
    receiver = FeedServer(port).start()
    try:
        deliver_until(config, lambda: len(keys(receiver.acknowledged)) == 3)
        assert set(keys(receiver.acknowledged)) == {a.id for a in rows(config, AlertRow)}
    finally:
        receiver.close()


def test_a_4xx_is_dead_at_once_and_alerts_retry_revives_it(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.answer = lambda _: (400, 0.0)
    channel = f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{feed_server.url("/hook")}"\n'
    config = config_with(tmp_path, three_items(feed_server), channel)
    poll_once(config)
    deliveries = rows(config, DeliveryRow)
    assert [(d.status, d.attempts) for d in deliveries] == [("dead", 1)] * 3
    assert all((d.last_error or "").startswith("HTTP 400") for d in deliveries)
    listed = json.loads(run_cli("alerts", "list", "--status", "dead", "--format", "json",
                                "--config", str(config.path)).stdout)
    assert len(listed) == 3 and {row["status"] for row in listed} == {"dead"}
    feed_server.answer = lambda _: (200, 0.0)
    result = run_cli("alerts", "retry", "--dead", "--config", str(config.path))
    assert result.returncode == 0 and "3 deliveries pending again" in result.stdout
    deliver_until(config, lambda: len(feed_server.acknowledged) == 3)
    assert {d.status for d in rows(config, DeliveryRow)} == {"delivered"}


def test_slack_gets_escaped_block_kit_no_faster_than_one_a_second(feed_server: FeedServer, tmp_path: Path) -> None:
    hostile = "&lt;!channel&gt; jets &amp; drones"  # in RSS: the title reads "<!channel> jets & drones"
    channel = f'[[channels]]\nname = "slack"\ntype = "slack"\nurl = "{feed_server.url("/slack")}"\n'
    # three different events under one hostile headline prefix
    feed_server.routes["/f"] = Route(rss(*[(f"g{n}", f"{hostile}: {title}", f"https://n.example/{n}", text)
                                           for n, (title, text) in enumerate(distinct_events(3))]))
    config = config_with(tmp_path, feed_server.url("/f"), channel)
    poll_once(config)
    posts = feed_server.posts
    assert len(posts) == 3
    for seen in posts:
        message: dict[str, Any] = json.loads(seen.body)
        for block in message["blocks"]:
            Block.parse(block).validate_json()
        assert "<!channel>" not in seen.body.decode() and "&lt;!channel&gt; jets &amp; drones" in message["text"]
    times = sorted(s.at for s in posts)
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def email_channel(port: int, extra: str = "") -> str:
    return (f'[[channels]]\nname = "mail"\ntype = "email"\nhost = "127.0.0.1"\nport = {port}\n'
            f'from = "crisis-monitor@example.org"\nto = ["duty@example.org"]\n{extra}')


def test_email_is_multipart_with_the_documented_subject(feed_server: FeedServer, tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    # Tags are stripped from feed text; what survives as text must still be escaped in HTML.
    config = config_with(tmp_path, three_items(feed_server, "Jets &lt; 5 km &amp;gt; border"), email_channel(port))
    poll_once(config)
    assert len(inbox.messages) == 3
    mail = inbox.messages[0]
    assert mail["Subject"] == "[HIGH] Military aircraft or drone violates a state's airspace: Jets < 5 km > border 0"
    assert mail["To"] == "duty@example.org" and mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "https://n.example/" in text and "violated" in text
    assert "Jets < 5" not in html and "Jets &lt; 5 km &gt; border" in html and "<b>" in html


def test_email_digest_sends_one_message_per_period(feed_server: FeedServer, tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    config = config_with(tmp_path, three_items(feed_server), email_channel(port, 'digest = "2s"\n'))
    poll_once(config)
    assert inbox.messages == [] or len(inbox.messages) == 1  # held until the period ends (unless it just did)
    deliver_until(config, lambda: {d.status for d in rows(config, DeliveryRow)} == {"delivered"}, seconds=10)
    alerts = {a.id for a in rows(config, AlertRow)}
    listed = {i.strip() for m in inbox.messages for i in m["X-Crisis-Monitor-Alerts"].split(",")}
    assert listed == alerts and len(inbox.messages) <= 2
    assert any(m["Subject"] == "[HIGH] Military aircraft or drone violates a state's airspace: 3 alerts"
               for m in inbox.messages) or len(inbox.messages) == 2


def test_alerts_test_sends_through_the_real_channel(feed_server: FeedServer, tmp_path: Path) -> None:
    channel = f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{feed_server.url("/hook")}"\n'
    config = config_with(tmp_path, three_items(feed_server), channel)
    result = run_cli("alerts", "test", "hook", "--config", str(config.path))
    assert result.returncode == 0 and "accepted" in result.stdout
    body = json.loads(feed_server.posts[0].body)
    assert body["item"]["title"] == "crisis-monitor test alert"
    assert body["rule"]["id"] == "crisis-monitor-test"  # never a real rule's id
    feed_server.answer = lambda _: (404, 0.0)
    result = run_cli("alerts", "test", "hook", "--config", str(config.path))
    assert result.returncode == 1 and "HTTP 404" in result.stdout and "will not help" in result.stdout


def certificate(folder: Path):  # type: ignore[no-untyped-def]
    """A self-signed certificate for 127.0.0.1 (made with openssl) and a server context using it."""
    import ssl
    import subprocess

    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    return cert, server_tls


def test_email_over_implicit_tls(tmp_path: Path) -> None:
    import ssl

    from monitor.commands import sample_alert
    from monitor.config import load
    from monitor.notify.email import EmailNotifier

    cert, server_tls = certificate(tmp_path)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ssl_context=server_tls)
    controller.start()
    try:
        text = (f'[[channels]]\nname = "mail"\ntype = "email"\nhost = "127.0.0.1"\nport = {controller.port}\n'
                'tls = true\nfrom = "cm@example.org"\nto = ["duty@example.org", "desk@example.org"]\n')
        channel = load(text, tmp_path / "config.toml", {}).channels[0]
        client_tls = ssl.create_default_context(cafile=str(cert))
        assert settled(EmailNotifier(channel, tls_context=client_tls).send(sample_alert("mail"))) is None
        assert len(inbox.messages) == 1 and inbox.messages[0]["To"] == "duty@example.org, desk@example.org"
        # without trusting the certificate, the send fails, and says so
        failure = settled(EmailNotifier(channel).send(sample_alert("mail")))
        assert failure is not None and "certificate" in failure.error.lower()
        # ca_file (relative to the config's folder) trusts the CA that signed the relay's certificate
        trusting = load(text + f'ca_file = "{cert.name}"\n', cert.parent / "config.toml", {}).channels[0]
        assert settled(EmailNotifier(trusting).send(sample_alert("mail"))) is None
        assert len(inbox.messages) == 2
        missing = load(text + 'ca_file = "nope.pem"\n', tmp_path / "config.toml", {}).channels[0]
        with pytest.raises(ConfigError, match=r"channel 'mail': ca_file .*nope.pem: cannot load it"):
            EmailNotifier(missing)
    finally:
        controller.stop()


# aiosmtpd warns about its own attribute while authenticating (its code, not ours)
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")
def test_email_over_starttls_with_auth(feed_server: FeedServer, tmp_path: Path) -> None:
    """STARTTLS and AUTH against a real aiosmtpd server with a self-signed certificate."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    from monitor.commands import sample_alert
    from monitor.config import load
    from monitor.notify.email import EmailNotifier

    cert, server_tls = certificate(tmp_path)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login, data.password))
        ok = data.login == b"duty" and data.password == b"pa55word"
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=server_tls,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        text = (f'[[channels]]\nname = "mail"\ntype = "email"\nhost = "127.0.0.1"\nport = {controller.port}\n'
                'starttls = true\nusername = "${SMTP_USER}"\npassword = "${SMTP_PASSWORD}"\n'
                'from = "cm@example.org"\nto = ["duty@example.org"]\n')
        config = load(text, tmp_path / "config.toml", {"SMTP_USER": "duty", "SMTP_PASSWORD": "pa55word"})
        client_tls = ssl.create_default_context(cafile=str(cert))
        notifier = EmailNotifier(config.channels[0], tls_context=client_tls)
        assert settled(notifier.send(sample_alert("mail"))) is None
        assert logins == [(b"duty", b"pa55word")] and len(inbox.messages) == 1
        bad = load(text, tmp_path / "config.toml", {"SMTP_USER": "duty", "SMTP_PASSWORD": "wrong"})
        failure = settled(EmailNotifier(bad.channels[0], tls_context=client_tls).send(sample_alert("mail")))
        assert failure is not None and not failure.retryable and "535" in failure.error
        assert "wrong" not in failure.error
    finally:
        controller.stop()


def test_a_rule_naming_an_unknown_channel_is_a_load_error(feed_server: FeedServer, tmp_path: Path) -> None:
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parent.parent / "rules", rules)
    (rules / "routed.yaml").write_text("id: routed\ntitle: Routed\nseverity: high\nquery: jets\n"
                                       "channels: [ops-pager]\n")
    config = make_config(tmp_path, {"f": three_items(feed_server)}, rules=rules)
    result = run_cli("poll", "--config", str(config.path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "routed.yaml" in result.stderr and "unknown channel 'ops-pager'" in result.stderr


def test_secrets_never_reach_the_logs(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.answer = lambda _: (500, 0.0)
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{Path(__file__).resolve().parent.parent / "rules"}"\nparse_workers = 0\n'
                      f'[[channels]]\nname = "hook"\ntype = "webhook"\n'
                      f'url = "{feed_server.url("/hook")}?token=${{TOKEN}}"\n'
                      'secret = "${HOOK_SECRET}"\n'
                      f'[[feeds]]\nname = "f"\nurl = "{three_items(feed_server)}"\n')
    import os
    import subprocess
    import sys

    env = dict(os.environ, TOKEN="tok-SECRET-1", HOOK_SECRET="hmac-SECRET-2", PYTHONIOENCODING="utf-8")
    for args in (["poll"], ["alerts", "list"], ["feeds", "status", "--format", "json"], ["alerts", "test", "hook"]):
        result = subprocess.run([sys.executable, "-m", "monitor", *args, "--config", str(config)], env=env,
                                capture_output=True, text=True, timeout=120)
        for secret in ("tok-SECRET-1", "hmac-SECRET-2"):
            assert secret not in result.stdout + result.stderr, (args, secret)
    assert any("token=tok-SECRET-1" in s.path for s in feed_server.posts)  # it was used, only not shown


def test_a_burst_of_one_rule_is_grouped_after_the_first_alerts(feed_server: FeedServer, tmp_path: Path,
                                                               smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    feed_server.routes["/f"] = Route(rss(*[(f"g{n}", f"Jets {n}", f"https://n.example/{n}", text)
                                           for n, (_, text) in enumerate(distinct_events(5))]))
    config = config_with(tmp_path, feed_server.url("/f"),
                         email_channel(port, 'group_window = "3s"\ngroup_max = 2\n'))
    poll_once(config)
    deliver_until(config, lambda: {d.status for d in rows(config, DeliveryRow)} == {"delivered"}, seconds=15)
    alerts = {a.id for a in rows(config, AlertRow)}
    assert len(alerts) == 5
    listed = [{i.strip() for i in m["X-Crisis-Monitor-Alerts"].split(",")} for m in inbox.messages]
    # The first two go alone as they come; the other three wait for the window and go as one.
    assert sorted(map(len, listed)) == [1, 1, 3] and set().union(*listed) == alerts
    grouped = next(m for m, ids in zip(inbox.messages, listed, strict=True) if len(ids) == 3)
    assert grouped["Subject"] == "[HIGH] Military aircraft or drone violates a state's airspace: 3 alerts"


def test_in_quiet_hours_only_critical_alerts_go_out_and_the_rest_wait_for_the_end(
        feed_server: FeedServer, tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    window = f"{start:%H:%M}-{end:%H:%M}"
    article_5 = "Lithuania's president called for NATO to invoke Article 5 after the missile strike on its territory."
    feed_server.routes["/f"] = Route(rss(("v", "Jets", "https://n.example/v", VIOLATION),
                                         ("a5", "Article 5", "https://n.example/a5", article_5)))
    config = config_with(tmp_path, feed_server.url("/f"),
                         email_channel(port, f'quiet_hours = "{window}"\ntimezone = "UTC"\n'))
    poll_once(config)
    assert [m["Subject"].split("]")[0] for m in inbox.messages] == ["[CRITICAL"]
    alerts = {a.id: a for a in rows(config, AlertRow)}
    waiting = [d for d in rows(config, DeliveryRow) if d.status != "delivered"]
    assert [alerts[d.alert_id].severity for d in waiting] == ["high"]
    assert waiting[0].attempts == 0  # waiting for the window is not a failed attempt
    expected = end.replace(second=0, microsecond=0)
    assert abs((waiting[0].next_attempt_at.replace(tzinfo=UTC) - expected).total_seconds()) < 60
