"""What channels send, built from an alert: webhook body and signature, Slack Block Kit, email,
HTTP outcomes, and the delivery policy (quiet hours, digests, grouping)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from slack_sdk.models.blocks import Block

from monitor.config import ChannelSpec, DeliverySettings
from monitor.notify.dispatch import retry_delay
from monitor.notify.http import failure, outcome
from monitor.notify.payload import email_bodies, sign, slack_message, subject, webhook_body, webhook_headers
from monitor.notify.policy import Postpone, Send, decide, digest_due, quiet_until
from monitor.types import Alert
from tests.conftest import ROOT

NOW = datetime(2025, 9, 19, 10, 12, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|Your bank> & <script>alert(1)</script>"
ALERT = Alert(id="3f1c", created_at=NOW, rule="airspace-violation", rule_title="Airspace violation",
              severity="high", tags=("airspace",), item_title="Jets over Estonia", item_url="https://n.example/1",
              published_at=NOW - timedelta(minutes=5), feed="nato-news", terms=("violated … airspace", "mig 31"),
              entities=("estonia", "mig-31"), snippet="Three MiG-31 jets violated Estonian airspace.",
              highlights=((6, 12), (18, 26)), channel="ops")


def readme_verify():  # type: ignore[no-untyped-def]
    """The receiver snippet of the README, as a function."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- webhook-verify -->\n```python\n(.*?)```", text, re.S)
    assert code, "the README lost its webhook verification snippet"
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)
    return namespace["verify"]


def test_webhook_body_is_the_documented_document() -> None:
    body = json.loads(webhook_body(ALERT))
    assert body == {
        "id": "3f1c", "type": "alert", "created_at": "2025-09-19T10:12:00Z",
        "rule": {"id": "airspace-violation", "title": "Airspace violation", "severity": "high", "tags": ["airspace"]},
        "item": {"title": "Jets over Estonia", "url": "https://n.example/1", "published_at": "2025-09-19T10:07:00Z",
                 "feed": "nato-news"},
        "matched": {"clauses": [], "terms": ["violated … airspace", "mig 31"], "entities": ["estonia", "mig-31"],
                    "snippet": "Three MiG-31 jets violated Estonian airspace."},
        "story": None}  # an alert made before stories (or `alerts test`) has none


def test_webhook_signature_verifies_with_the_readme_snippet() -> None:
    body = webhook_body(ALERT)
    timestamp = int(datetime.now(UTC).timestamp())
    headers = webhook_headers(ALERT, body, timestamp, "s3cret")
    assert headers["Idempotency-Key"] == "3f1c" and headers["X-Crisis-Monitor-Timestamp"] == str(timestamp)
    verify = readme_verify()
    assert verify(b"s3cret", headers, body)
    assert not verify(b"wrong", headers, body)
    assert not verify(b"s3cret", headers, body.replace(b"Estonia", b"Latvia"))
    stale = webhook_headers(ALERT, body, timestamp - 3600, "s3cret")
    assert not verify(b"s3cret", stale, body)
    assert "X-Crisis-Monitor-Signature" not in webhook_headers(ALERT, body, timestamp, None)
    assert sign("k", 1, b"{}") == "sha256=" + __import__("hmac").new(b"k", b"1.{}", "sha256").hexdigest()


def test_slack_message_is_valid_block_kit_with_bold_terms() -> None:
    message = slack_message(ALERT)
    for block in message["blocks"]:
        Block.parse(block).validate_json()
    text = json.dumps(message)
    assert "*MiG-31*" in text and "*violated*" in text
    assert "<https://n.example/1|Jets over Estonia>" in message["blocks"][0]["text"]["text"]
    assert message["text"].startswith("[HIGH] Airspace violation: Jets over Estonia")


def test_slack_escapes_feed_text() -> None:
    hostile = replace(ALERT, item_title=HOSTILE, snippet=HOSTILE, feed="<@U123>", highlights=(),
                      item_url="https://n.example/a|b>c")
    text = json.dumps(slack_message(hostile))
    for raw in ("<!channel>", "<https://evil", "<script>", "<@U123>"):
        assert raw not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text
    assert "<https://n.example/a%7Cb%3Ec|" in text


def test_email_subject_and_autoescaped_html() -> None:
    assert subject([ALERT]) == "[HIGH] Airspace violation: Jets over Estonia"
    assert subject([ALERT, replace(ALERT, id="2")]) == "[HIGH] Airspace violation: 2 alerts"
    text, html = email_bodies([replace(ALERT, item_title=HOSTILE)])
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>MiG-31</b>" in html
    assert HOSTILE in text and "*MiG-31*" in text and "https://n.example/1" in text


def test_http_outcomes() -> None:
    def answer(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers, request=httpx.Request("POST", "https://h.example/"))

    assert outcome(answer(200)) is None and outcome(answer(204)) is None
    for status in (408, 429, 500, 502, 503):
        result = outcome(answer(status))
        assert result is not None and result.retryable, status
    for status in (400, 401, 403, 404, 410, 422):
        result = outcome(answer(status))
        assert result is not None and not result.retryable, status
    limited = outcome(answer(429, **{"Retry-After": "120"}))
    assert limited is not None and limited.retry_after == 120
    assert failure(httpx.ConnectError("refused")).retryable
    assert failure(httpx.ReadTimeout("slow")).retryable
    assert not failure(httpx.UnsupportedProtocol("ftp")).retryable


def test_retry_delay_grows_with_jitter_to_a_cap() -> None:
    settings = DeliverySettings(attempts=8, backoff=30, max_backoff=3600)
    assert [retry_delay(settings, n, None, 1.0) for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay(settings, 1, None, 0.0) == 15  # jitter spreads over the upper half
    assert retry_delay(settings, 20, None, 1.0) == 3600
    assert retry_delay(settings, 1, 600, 1.0) == 600  # Retry-After wins when longer


@pytest.mark.parametrize(("now", "window", "zone", "until"), [
    ("2025-09-19T23:30", (22 * 60, 7 * 60), "UTC", "2025-09-20T07:00"),
    ("2025-09-19T03:00", (22 * 60, 7 * 60), "UTC", "2025-09-19T07:00"),
    ("2025-09-19T12:00", (22 * 60, 7 * 60), "UTC", None),
    ("2025-09-19T12:30", (12 * 60, 13 * 60), "UTC", "2025-09-19T13:00"),
    ("2025-09-19T20:00", (22 * 60, 7 * 60), "Europe/Tallinn", "2025-09-20T04:00"),  # 23:00 in Tallinn (UTC+3)
    ("2025-09-19T05:00", (22 * 60, 7 * 60), "Europe/Tallinn", None),                # 08:00 in Tallinn
])
def test_quiet_hours(now: str, window: tuple[int, int], zone: str, until: str | None) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    expected = datetime.fromisoformat(until).replace(tzinfo=UTC) if until else None
    assert quiet_until(moment, window, zone) == expected


def test_only_critical_alerts_pass_quiet_hours() -> None:
    channel = ChannelSpec("c", "console", quiet_hours=(22 * 60, 7 * 60))
    night = datetime(2025, 9, 19, 23, 0, tzinfo=UTC)
    critical = replace(ALERT, id="c", severity="critical")
    actions = decide(channel, [ALERT, critical], night, {}, groupable=True)
    assert actions == [Postpone((ALERT,), datetime(2025, 9, 20, 7, 0, tzinfo=UTC)), Send((critical,))]


def test_digest_holds_alerts_to_the_end_of_their_period() -> None:
    channel = ChannelSpec("mail", "email", options={"digest": 900.0})
    early, late = replace(ALERT, id="a", created_at=NOW), replace(ALERT, id="b", created_at=NOW + timedelta(minutes=1))
    due = digest_due(NOW, 900)
    assert due == datetime(2025, 9, 19, 10, 15, tzinfo=UTC)
    assert decide(channel, [early, late], NOW + timedelta(minutes=2), {}, True) == [
        Postpone((early,), due), Postpone((late,), due)]
    assert decide(channel, [early, late], due, {}, True) == [Send((early, late))]


def test_grouping_turns_a_burst_into_one_message() -> None:
    channel = ChannelSpec("s", "slack", group_window=600, group_max=2)
    burst = [replace(ALERT, id=str(n), created_at=NOW) for n in range(5)]
    actions = decide(channel, burst, NOW, {}, groupable=True)
    assert actions == [Send((burst[0],)), Send((burst[1],)),
                       Postpone(tuple(burst[2:]), NOW + timedelta(seconds=600))]
    # At the window's end the held three go as one, whether or not the two sent alone are still
    # counted in the window by then (one moment later they no longer are).
    for recent in ({"airspace-violation": 2}, {}):
        later = decide(channel, burst[2:], NOW + timedelta(seconds=600), recent, True)
        assert later == [Send(tuple(burst[2:]))]
    # A new alert of the same rule meanwhile starts a burst of its own.
    new = replace(ALERT, id="new", created_at=NOW + timedelta(seconds=599))
    assert decide(channel, [*burst[2:], new], NOW + timedelta(seconds=600), {}, True) == [
        Send(tuple(burst[2:])), Send((new,))]
    assert decide(channel, burst, NOW, {}, groupable=False) == [Send((a,)) for a in burst]  # webhooks


def test_routing_by_severity_tags_and_rule_channels() -> None:
    from monitor.routing import Router
    from monitor.rules.loader import RuleSpec
    from monitor.rules.query import parse

    channels = [ChannelSpec("all", "console"), ChannelSpec("urgent", "console", min_severity="high"),
                ChannelSpec("east", "console", tags=("nato-east",))]
    specs = [RuleSpec(id="pinned", title="P", severity="low", query=parse("x"), channels=("east",))]
    route = Router(channels, specs)
    high = replace(ALERT, severity="high", tags=("airspace",))
    assert route(_match(high)) == ["all", "urgent"]
    assert route(_match(replace(high, severity="medium", tags=("nato-east",)))) == ["all", "east"]
    assert route(_match(replace(high, rule="pinned", severity="info"))) == ["east"]


def _match(alert: Alert):  # type: ignore[no-untyped-def]
    from monitor.types import Match

    return Match(alert.rule, alert.severity, alert.rule_title, alert.terms, alert.entities, alert.snippet,
                 tags=alert.tags)
