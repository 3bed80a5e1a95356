"""What each channel sends, built from an Alert. Pure: no I/O, no clock.

- the webhook body (DESIGN.md's JSON, UTF-8) and its HMAC-SHA256 signature;
- the Slack Block Kit message, with feed text escaped (``&``, ``<``, ``>``) so no item can
  mention ``@channel`` or forge a link, and the matched terms in bold;
- the email subject and the text and HTML bodies (Jinja2 templates, HTML autoescaped).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from monitor.notify import evidence
from monitor.notify.base import plain
from monitor.types import Alert, iso

_templates = Environment(loader=PackageLoader("monitor.notify", "templates"),
                         autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def webhook_document(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "created_at": iso(alert.created_at),
            "rule": {"id": alert.rule, "title": alert.rule_title, "severity": alert.severity, "tags": list(alert.tags)},
            "item": {"title": alert.item_title, "url": alert.item_url, "published_at": iso(alert.published_at),
                     "feed": alert.feed},
            "matched": {"clauses": list(alert.clauses), "terms": list(alert.terms), "entities": list(alert.entities),
                        "snippet": alert.snippet}}


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


def slack_message(alert: Alert) -> dict[str, Any]:
    title = slack_escape(alert.item_title) or "(no title)"
    header = f"{SEVERITY_EMOJI.get(alert.severity, '')} *{alert.severity.upper()}* · {slack_escape(alert.rule_title)}"
    fields = [f"*Feed:* {slack_escape(alert.feed)}"]
    if alert.clauses:
        fields.append(f"*Why:* {slack_escape(evidence.why(alert))}")
    if alert.snippet_entities:
        fields.append(f"*Entities:* {slack_escape(evidence.entities(alert))}")
    if alert.published_at:
        fields.append(f"*Published:* {iso(alert.published_at)}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{header}\n*{_link(alert.item_url, title)}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _bold_spans(alert.snippet, alert.highlights)[:2900]
                                     or "(no snippet)"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f[:300]} for f in fields]},
    ]
    fallback = f"[{alert.severity.upper()}] {slack_escape(alert.rule_title)}: {title}"
    return {"text": fallback[:3000], "blocks": blocks}


def slack_group_message(alerts: Sequence[Alert]) -> dict[str, Any]:
    """One message for a burst of one rule's alerts (channel grouping)."""
    first = alerts[0]
    lines = [f"• {_link(a.item_url, slack_escape(a.item_title) or '(no title)')} ({slack_escape(a.feed)})"
             for a in alerts[:40]]
    if len(alerts) > 40:
        lines.append(f"… and {len(alerts) - 40} more")
    head = (f"{SEVERITY_EMOJI.get(first.severity, '')} *{first.severity.upper()}* · "
            f"{slack_escape(first.rule_title)}: {len(alerts)} alerts")
    return {"text": f"[{first.severity.upper()}] {slack_escape(first.rule_title)}: {len(alerts)} alerts",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": head}},
                       {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}}]}


# --- email ---------------------------------------------------------------------------------

def subject(alerts: Sequence[Alert]) -> str:
    first = alerts[0]
    if len(alerts) == 1:
        text = f"[{first.severity.upper()}] {first.rule_title}: {first.item_title or '(no title)'}"
    elif len({a.rule for a in alerts}) == 1:
        text = f"[{first.severity.upper()}] {first.rule_title}: {len(alerts)} alerts"
    else:
        top = max(alerts, key=lambda a: ("info", "low", "medium", "high", "critical").index(a.severity))
        text = f"[{top.severity.upper()}] crisis-monitor: {len(alerts)} alerts"
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


def email_bodies(alerts: Sequence[Alert]) -> tuple[str, str]:
    """The text and HTML bodies for one alert or a digest of several."""
    context = {"alerts": [{"alert": a, "parts": _parts(a), "published": iso(a.published_at), "why": evidence.why(a),
                           "terms": evidence.terms(a), "entities": evidence.entities(a),
                           "url_ok": a.item_url.startswith(("http://", "https://"))} for a in alerts]}
    return _templates.get_template("email.txt").render(context), _templates.get_template("email.html").render(context)
