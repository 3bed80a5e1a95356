"""Stories in every channel (issue 15): an alert, its updates and a surge as the webhook, Slack, email
and the console show them. Payloads are unit-tested here; then each goes through the real channel
to a real receiver on 127.0.0.1 (an HTTP server for the webhook and Slack, aiosmtpd for email),
where an update is its own message and threads under its story's first alert."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from slack_sdk.models.blocks import Block

from monitor.config import ChannelSpec, load
from monitor.notify.console import console_line
from monitor.notify.email import EmailNotifier, message, message_id
from monitor.notify.payload import email_bodies, slack_group_message, slack_message, subject, webhook_body
from monitor.notify.slack import SlackNotifier
from monitor.notify.story import counted, update_line, window_text
from monitor.notify.webhook import WebhookNotifier
from monitor.types import StoryRef, SurgeRef, SurgeTop
from tests.feedserver import FeedServer
from tests.test_delivery import Inbox, free_port, settled
from tests.test_payload import ALERT, HOSTILE, NOW, readme_verify

STORY = StoryRef(id=42, publishers=("err.ee", "reuters.com"), items=3, first_seen_at=NOW - timedelta(hours=2),
                 last_seen_at=NOW)
FIRST = replace(ALERT, id="a-first", story=STORY)
SEVEN = ("err.ee", "reuters.com", "apnews.com", "bbc.co.uk", "lrt.lt", "tvp.pl", "yle.fi")
UPDATE = replace(ALERT, id="a-update", created_at=NOW + timedelta(hours=1), kind="update", thread="a-first",
                 reason="now 7 sources", item_title="Estonia summons Russian envoy over jets",
                 item_url="https://reuters.example/estonia-envoy",
                 story=replace(STORY, publishers=SEVEN, items=9, last_seen_at=NOW + timedelta(hours=1)))
SURGE = replace(ALERT, id="a-surge", kind="surge", story=STORY,
                surge=SurgeRef(count=14, baseline=2.25, window=3600.0, publishers=9, top=(
                    SurgeTop(42, "Jets over Estonia", "https://n.example/1", 7),
                    SurgeTop(43, "Drones over Poland", "https://n.example/2", 4))))


def test_every_webhook_body_says_its_type_and_story() -> None:
    story = {"id": 42, "publishers": ["err.ee", "reuters.com"], "items": 3,
             "first_seen_at": "2025-09-19T08:12:00Z", "last_seen_at": "2025-09-19T10:12:00Z"}
    first = json.loads(webhook_body(FIRST))
    assert first["type"] == "alert" and first["story"] == story
    assert "reason" not in first and "thread" not in first and "surge" not in first
    update = json.loads(webhook_body(UPDATE))
    assert update["type"] == "update" and update["id"] == "a-update" and update["thread"] == "a-first"
    assert update["reason"] == "now 7 sources"
    assert update["story"]["id"] == 42 and update["story"]["publishers"] == list(SEVEN)  # the same story, grown
    assert update["story"]["items"] == 9 and update["story"]["last_seen_at"] == "2025-09-19T11:12:00Z"
    surge = json.loads(webhook_body(SURGE))
    assert surge["type"] == "surge" and surge["surge"] == {
        "count": 14, "baseline": 2.25, "window": 3600.0, "publishers": 9,
        "top": [{"id": 42, "title": "Jets over Estonia", "url": "https://n.example/1", "publishers": 7},
                {"id": 43, "title": "Drones over Poland", "url": "https://n.example/2", "publishers": 4}]}
    assert webhook_body(UPDATE) == webhook_body(UPDATE)  # a retry sends the very same bytes


def test_the_update_line_names_the_sources_capped_and_any_other_reason() -> None:
    assert update_line(UPDATE) == ("now 7 sources: err.ee, reuters.com, apnews.com, bbc.co.uk, lrt.lt, tvp.pl "
                                   "+1 more")
    higher = replace(UPDATE, reason="higher severity: critical", story=STORY)
    assert update_line(higher) == "higher severity: critical · now 2 sources: err.ee, reuters.com"
    assert update_line(replace(UPDATE, story=replace(STORY, publishers=("err.ee",)))).startswith("now 1 source: ")
    assert [window_text(s) for s in (3600, 1800, 5400, 172800, 45)] == ["1h", "30m", "1h30m", "2d", "45s"]
    assert counted([FIRST, FIRST]) == "2 alerts"
    assert counted([FIRST, UPDATE, UPDATE, SURGE]) == "1 alert, 2 updates, 1 surge"


def test_slack_update_is_a_short_message_and_a_surge_names_rule_count_baseline_and_top() -> None:
    for alert in (FIRST, UPDATE, SURGE):
        for block in slack_message(alert)["blocks"]:
            Block.parse(block).validate_json()
    update = slack_message(UPDATE)
    assert update["text"] == ("[HIGH] Update: now 7 sources: err.ee, reuters.com, apnews.com, bbc.co.uk, lrt.lt, "
                              "tvp.pl +1 more — Estonia summons Russian envoy over jets")
    head = update["blocks"][0]["text"]["text"]
    assert "*HIGH* · Update · Airspace violation" in head
    assert "<https://reuters.example/estonia-envoy|Estonia summons Russian envoy over jets>" in head
    assert "violated" not in json.dumps(update)  # no snippet: the analyst has the story already
    assert len(json.dumps(update)) < len(json.dumps(slack_message(FIRST)))
    assert "Story 42: 2 sources (err.ee, reuters.com), 3 items" in json.dumps(slack_message(FIRST))
    surge = slack_message(SURGE)
    assert surge["text"] == "[HIGH] Surge: Airspace violation: 14 stories in 1h (baseline 2.2), 9 publishers"
    text = json.dumps(surge)
    assert "<https://n.example/1|Jets over Estonia> (7 sources)" in text and "Drones over Poland" in text
    grouped = slack_group_message([FIRST, UPDATE])
    assert grouped["text"] == "[HIGH] Airspace violation: 1 alert, 1 update"
    assert "update: now 7 sources" in json.dumps(grouped)


def test_slack_escapes_publishers_titles_and_reasons_of_updates_and_surges() -> None:
    story = replace(STORY, publishers=("<!channel>", "a&b", "<https://evil.example|bank>"))
    update = replace(UPDATE, item_title=HOSTILE, reason="<!here>", story=story)
    surge = replace(SURGE, surge=replace(SURGE.surge, top=(SurgeTop(1, HOSTILE, "https://n.example/a|b>c", 2),)))
    for alert in (update, surge, replace(FIRST, story=story)):
        text = json.dumps([slack_message(alert), slack_group_message([alert, alert])])
        for raw in ("<!channel>", "<!here>", "<https://evil", "<script>"):
            assert raw not in text, (alert.kind, raw)
    assert "&lt;!channel&gt;" in json.dumps(slack_message(update))
    assert "<https://n.example/a%7Cb%3Ec|" in json.dumps(slack_message(surge))


def test_email_subjects_and_bodies_say_update_and_surge() -> None:
    assert subject([FIRST]) == "[HIGH] Airspace violation: Jets over Estonia"
    assert subject([UPDATE]) == ("[HIGH] Update: now 7 sources: err.ee, reuters.com, apnews.com, bbc.co.uk, "
                                 "lrt.lt, tvp.pl +1 more — Estonia summons Russian envoy over jets")
    assert subject([SURGE]) == "[HIGH] Surge: Airspace violation: 14 stories in 1h (baseline 2.2), 9 publishers"
    assert subject([FIRST, UPDATE]) == "[HIGH] Airspace violation: 1 alert, 1 update"  # a digest
    text, html = email_bodies([UPDATE])
    assert "Update · Airspace violation" in text and "now 7 sources: err.ee" in text
    assert "Story 42: 7 sources" in text and "https://reuters.example/estonia-envoy" in text
    text, html = email_bodies([replace(SURGE, surge=replace(SURGE.surge, top=(SurgeTop(1, HOSTILE, "x", 2),)))])
    assert "14 stories in 1h (baseline 2.2)" in text and HOSTILE in text
    assert "<script>" not in html and "&lt;script&gt;" in html and 'href="x"' not in html
    text, html = email_bodies([FIRST, UPDATE, SURGE])
    assert text.count("Airspace violation") == 3 and "<b>MiG-31</b>" in html


def test_email_message_ids_come_from_the_alert_and_updates_reply_to_the_first() -> None:
    sender, to = "cm@example.org", ["duty@example.org"]
    first, again = message([FIRST], sender, to), message([FIRST], sender, to)
    assert first["Message-ID"] == again["Message-ID"] == "<crisis-monitor.a-first@example.org>"
    update = message([UPDATE], sender, to)
    assert update["Message-ID"] == "<crisis-monitor.a-update@example.org>"
    assert update["In-Reply-To"] == update["References"] == first["Message-ID"]
    assert first["In-Reply-To"] is None and message([SURGE], sender, to)["In-Reply-To"] is None
    digest = message([FIRST, UPDATE], sender, to)
    assert digest["Message-ID"] == message([UPDATE, FIRST], sender, to)["Message-ID"] != first["Message-ID"]
    assert digest["In-Reply-To"] is None
    assert message_id("x y>\r\nBcc: z", "a@b.example") == "<crisis-monitor.x-y---Bcc--z@b.example>"


def test_the_console_line_starts_with_the_kind() -> None:
    assert console_line(FIRST).startswith("ALERT HIGH airspace-violation: Jets over Estonia <")
    assert console_line(FIRST).endswith("; story 42]")
    assert console_line(UPDATE) == ("UPDATE HIGH airspace-violation: Estonia summons Russian envoy over jets — now 7 "
                                    "sources: err.ee, reuters.com, apnews.com, bbc.co.uk, lrt.lt, tvp.pl +1 more "
                                    "[story 42]")
    assert console_line(SURGE) == ("SURGE HIGH airspace-violation: 14 stories in 1h (baseline 2.2), 9 publishers "
                                   "[top: Jets over Estonia (7 sources); Drones over Poland (4 sources)]")
    assert "\x1b" not in console_line(replace(UPDATE, reason="\x1b[31mred", story=replace(STORY, publishers=(
        "\x1b[2Jx",))))


# --- through the real channels ---------------------------------------------------------------

def channel(text: str, tmp_path: Path) -> ChannelSpec:
    return load(text, tmp_path / "config.toml", {}).channels[0]


def test_the_webhook_receiver_gets_each_message_with_its_own_key_and_the_story_id(
        feed_server: FeedServer, tmp_path: Path) -> None:
    spec = channel(f'[[channels]]\nname = "hook"\ntype = "webhook"\nurl = "{feed_server.url("/hook")}"\n'
                   'secret = "s3cret"\n', tmp_path)

    async def send() -> list[Any]:
        notifier = WebhookNotifier(spec, "test")
        try:
            return [await notifier.send(a) for a in (FIRST, UPDATE, SURGE)]
        finally:
            await notifier.close()

    assert settled(send()) == [None, None, None]
    posts = feed_server.acknowledged
    assert [s.headers["idempotency-key"] for s in posts] == ["a-first", "a-update", "a-surge"]
    bodies = [json.loads(s.body) for s in posts]
    assert [b["type"] for b in bodies] == ["alert", "update", "surge"]
    assert {b["story"]["id"] for b in bodies} == {42} and bodies[1]["thread"] == "a-first"
    verify = readme_verify()  # the signature scheme is unchanged
    for seen in posts:
        headers = {"X-Crisis-Monitor-Timestamp": seen.headers["x-crisis-monitor-timestamp"],
                   "X-Crisis-Monitor-Signature": seen.headers["x-crisis-monitor-signature"]}
        assert verify(b"s3cret", headers, seen.body)


def test_a_slack_receiver_gets_the_update_as_a_short_message(feed_server: FeedServer, tmp_path: Path) -> None:
    spec = channel(f'[[channels]]\nname = "slack"\ntype = "slack"\nurl = "{feed_server.url("/slack")}"\n', tmp_path)

    async def send() -> list[Any]:
        notifier = SlackNotifier(spec, "test")
        try:
            return [await notifier.send(a) for a in (FIRST, UPDATE, SURGE)]
        finally:
            await notifier.close()

    assert settled(send()) == [None, None, None]
    messages = [json.loads(s.body) for s in feed_server.acknowledged]
    assert [m["text"].split(":")[0] for m in messages] == ["[HIGH] Airspace violation", "[HIGH] Update",
                                                           "[HIGH] Surge"]
    assert messages[1]["text"].startswith("[HIGH] Update: now 7 sources: err.ee, reuters.com")
    for sent in messages:
        for block in sent["blocks"]:
            Block.parse(block).validate_json()


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def test_an_emailed_update_threads_under_its_first_alert(smtp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    spec = channel(f'[[channels]]\nname = "mail"\ntype = "email"\nhost = "127.0.0.1"\nport = {port}\n'
                   'from = "crisis-monitor@example.org"\nto = ["duty@example.org"]\n', tmp_path)

    async def send() -> list[Any]:
        notifier = EmailNotifier(spec)
        return [await notifier.send(a) for a in (FIRST, FIRST, UPDATE, SURGE)]  # the first one retried

    assert settled(send()) == [None] * 4
    first, retried, update, surge = inbox.messages
    assert first["Message-ID"] == retried["Message-ID"] == "<crisis-monitor.a-first@example.org>"
    assert update["In-Reply-To"] == first["Message-ID"] and update["References"] == first["Message-ID"]
    assert update["Message-ID"] not in (first["Message-ID"], surge["Message-ID"])
    assert update["Subject"].startswith("[HIGH] Update: now 7 sources: err.ee, reuters.com")
    assert update["Subject"].endswith(" — Estonia summons Russian envoy over jets")
    assert surge["Subject"] == "[HIGH] Surge: Airspace violation: 14 stories in 1h (baseline 2.2), 9 publishers"
    body = update.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "now 7 sources" in body and "a-update" in body


def test_the_readme_update_body_has_the_fields_sent() -> None:
    from tests.conftest import ROOT

    block = re.search(r"<!-- webhook-update -->\n```json\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README lost its update body example"
    shown, sent = json.loads(block.group(1)), json.loads(webhook_body(UPDATE))
    assert shown.keys() == sent.keys() and shown["type"] == "update"
    for key in ("rule", "item", "matched", "story"):
        assert shown[key].keys() == sent[key].keys(), key
