"""What each channel sends, built from an Alert. Pure: no I/O, no clock.

- the webhook body (DESIGN.md's JSON, UTF-8) and its HMAC-SHA256 signature: every body says its
  ``type`` (alert, update, surge) and its ``story``; an update adds ``reason`` and ``thread`` (the id of
  the story's first alert of that rule), a surge adds ``surge`` (count, baseline, top stories);
- the Slack Block Kit message, with feed text escaped (``&``, ``<``, ``>``) so no item can
  mention ``@channel`` or forge a link, and the matched terms in bold;
- the email subject and the text and HTML bodies (Jinja2 templates, HTML autoescaped).

An update or a surge is a message of its own (its own id and Idempotency-Key), shorter than an alert:
the analyst has the story already and needs to see what changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from monitor.notify import evidence, story
from monitor.notify.base import plain
from monitor.types import Alert, StoryRef, SurgeRef, iso

_templates = Environment(loader=PackageLoader("monitor.notify", "templates"),
                         autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def story_document(ref: StoryRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"id": ref.id, "publishers": list(ref.publishers), "items": ref.items,
            "first_seen_at": iso(ref.first_seen_at), "last_seen_at": iso(ref.last_seen_at)}


def surge_document(surge: SurgeRef) -> dict[str, Any]:
    return {"count": surge.count, "baseline": surge.baseline, "window": surge.window, "publishers": surge.publishers,
            "top": [{"id": t.id, "title": t.title, "url": t.url, "publishers": t.publishers} for t in surge.top]}


def webhook_document(alert: Alert) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": alert.id, "type": alert.kind, "created_at": iso(alert.created_at),
        "rule": {"id": alert.rule, "title": alert.rule_title, "severity": alert.severity, "tags": list(alert.tags)},
        "item": {"title": alert.item_title, "url": alert.item_url, "published_at": iso(alert.published_at),
                 "feed": alert.feed},
        "matched": {"clauses": list(alert.clauses), "terms": list(alert.terms), "entities": list(alert.entities),
                    "snippet": alert.snippet},
        "story": story_document(alert.story)}
    if alert.kind == "update":
        document["reason"] = alert.reason
        document["thread"] = alert.thread
    if alert.surge is not None:
        document["surge"] = surge_document(alert.surge)
    return document


def webhook_body(alert: Alert) -> bytes:
    return json.dumps(webhook_document(alert), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``."""
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_headers(alert: Alert, body: bytes, timestamp: int, secret: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": alert.id,
               "X-Crisis-Monitor-Timestamp": str(timestamp)}
    if secret:
        headers["X-Crisis-Monitor-Signature"] = sign(secret, timestamp, body)
    return headers


# --- Slack ---------------------------------------------------------------------------------

SEVERITY_EMOJI = {"info": ":information_source:", "low": ":large_blue_circle:", "medium": ":large_yellow_circle:",
                  "high": ":large_orange_circle:", "critical": ":red_circle:"}


def slack_escape(text: str) -> str:
    """Feed text for Slack mrkdwn: control characters gone, ``& < >`` escaped, so ``<!channel>``
    or ``<https://evil|bank>`` in an item reads as text."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bold_spans(snippet: str, spans: Sequence[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last or end > len(snippet) or start >= end:
            continue
        out += [slack_escape(snippet[last:start]), "*", slack_escape(snippet[start:end]).strip(), "*"]
        last = end
    out.append(slack_escape(snippet[last:]))
    return "".join(out)


def _link(url: str, text: str) -> str:
    # The URL goes inside <…|…>: it must not carry | or > of its own.
    safe = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe}|{text}>" if safe.startswith(("http://", "https://")) else text


def _header(alert: Alert) -> str:
    kind = f" · {story.KIND_WORD[alert.kind]}" if alert.kind in ("update", "surge") else ""
    emoji = SEVERITY_EMOJI.get(alert.severity, "")
    return f"{emoji} *{alert.severity.upper()}*{kind} · {slack_escape(alert.rule_title)}"


def slack_message(alert: Alert) -> dict[str, Any]:
    if alert.kind == "update":
        return _slack_update(alert)
    if alert.kind == "surge" and alert.surge is not None:
        return _slack_surge(alert, alert.surge)
    title = slack_escape(alert.item_title) or "(no title)"
    fields = [f"*Feed:* {slack_escape(alert.feed)}"]
    if alert.clauses:
        fields.append(f"*Why:* {slack_escape(evidence.why(alert))}")
    if alert.snippet_entities:
        fields.append(f"*Entities:* {slack_escape(evidence.entities(alert))}")
    if alert.published_at:
        fields.append(f"*Published:* {iso(alert.published_at)}")
    if alert.story is not None:
        fields.append(slack_escape(story.story_line(alert.story)))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{_header(alert)}\n*{_link(alert.item_url, title)}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _bold_spans(alert.snippet, alert.highlights)[:2900]
                                     or "(no snippet)"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f[:300]} for f in fields]},
    ]
    fallback = f"[{alert.severity.upper()}] {slack_escape(alert.rule_title)}: {title}"
    return {"text": fallback[:3000], "blocks": blocks}


def _slack_update(alert: Alert) -> dict[str, Any]:
    """A short message: the story's title linked, what changed ("now 7 sources: …")."""
    title = slack_escape(alert.item_title) or "(no title)"
    line = slack_escape(story.update_line(alert))
    text = f"{_header(alert)}\n*{_link(alert.item_url, title)}*\n{line}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]
    if alert.story is not None:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"story {alert.story.id} · {alert.story.items} items"}]})
    fallback = f"[{alert.severity.upper()}] Update: {line} — {title}"
    return {"text": fallback[:3000], "blocks": blocks}


def _slack_surge(alert: Alert, surge: SurgeRef) -> dict[str, Any]:
    """The rule, the count against its baseline, and the top stories linked."""
    line = slack_escape(story.surge_line(surge))
    tops = [f"• {_link(t.url, slack_escape(t.title) or '(no title)')} ({t.publishers} sources)"
            for t in surge.top[:story.MAX_TOP]]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{_header(alert)}\n{line}"}}]
    if tops:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(tops)[:2900]}})
    fallback = f"[{alert.severity.upper()}] Surge: {slack_escape(alert.rule_title)}: {line}"
    return {"text": fallback[:3000], "blocks": blocks}


def _group_line(alert: Alert) -> str:
    line = f"• {_link(alert.item_url, slack_escape(alert.item_title) or '(no title)')} ({slack_escape(alert.feed)})"
    if alert.kind == "update":
        line += f" — update: {slack_escape(story.update_line(alert))}"
    elif alert.kind == "surge" and alert.surge is not None:
        line = f"• surge: {slack_escape(story.surge_line(alert.surge))}"
    return line


def slack_group_message(alerts: Sequence[Alert]) -> dict[str, Any]:
    """One message for a burst of one rule's alerts (channel grouping)."""
    first = alerts[0]
    lines = [_group_line(a) for a in alerts[:40]]
    if len(alerts) > 40:
        lines.append(f"… and {len(alerts) - 40} more")
    counted = story.counted(alerts)
    head = (f"{SEVERITY_EMOJI.get(first.severity, '')} *{first.severity.upper()}* · "
            f"{slack_escape(first.rule_title)}: {counted}")
    return {"text": f"[{first.severity.upper()}] {slack_escape(first.rule_title)}: {counted}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": head}},
                       {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}}]}


# --- email ---------------------------------------------------------------------------------

def subject(alerts: Sequence[Alert]) -> str:
    first = alerts[0]
    tag = f"[{first.severity.upper()}]"
    if len(alerts) == 1:
        title = first.item_title or "(no title)"
        if first.kind == "update":
            text = f"{tag} Update: {story.update_line(first)} — {title}"
        elif first.kind == "surge" and first.surge is not None:
            text = f"{tag} Surge: {first.rule_title}: {story.surge_line(first.surge)}"
        else:
            text = f"{tag} {first.rule_title}: {title}"
    elif len({a.rule for a in alerts}) == 1:
        text = f"{tag} {first.rule_title}: {story.counted(alerts)}"
    else:
        top = max(alerts, key=lambda a: ("info", "low", "medium", "high", "critical").index(a.severity))
        text = f"[{top.severity.upper()}] crisis-monitor: {story.counted(alerts)}"
    return plain(text)[:180]


def _parts(alert: Alert) -> list[tuple[str, bool]]:
    """The snippet cut at the highlights: (text, highlighted)."""
    out, last = [], 0
    for start, end in sorted(alert.highlights):
        if start < last or end > len(alert.snippet) or start >= end:
            continue
        out += [(alert.snippet[last:start], False), (alert.snippet[start:end], True)]
        last = end
    out.append((alert.snippet[last:], False))
    return out


def _entry(alert: Alert) -> dict[str, Any]:
    surge = alert.surge if alert.kind == "surge" else None
    return {"alert": alert, "parts": _parts(alert), "published": iso(alert.published_at), "why": evidence.why(alert),
            "terms": evidence.terms(alert), "entities": evidence.entities(alert),
            "url_ok": alert.item_url.startswith(("http://", "https://")),
            "kind": story.KIND_WORD.get(alert.kind, "Alert"),
            "change": story.update_line(alert) if alert.kind == "update" else "",
            "story": story.story_line(alert.story) if alert.story is not None else "",
            "surge": story.surge_line(surge) if surge is not None else "",
            "top": [{"top": t, "url_ok": t.url.startswith(("http://", "https://"))}
                    for t in (surge.top[:story.MAX_TOP] if surge is not None else ())]}


def email_bodies(alerts: Sequence[Alert]) -> tuple[str, str]:
    """The text and HTML bodies for one alert or a digest of several."""
    context = {"alerts": [_entry(a) for a in alerts]}
    return _templates.get_template("email.txt").render(context), _templates.get_template("email.html").render(context)
