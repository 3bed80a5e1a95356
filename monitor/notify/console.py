"""The console channel: one readable line per alert on stdout (the journal under systemd).

The line starts with its kind: ``ALERT`` (the first of a rule on a story), ``UPDATE`` (what changed:
"now 7 sources: …") or ``SURGE`` (the count against the rule's baseline)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from monitor.notify import evidence, story
from monitor.notify.base import SendFailure, plain
from monitor.types import Alert


def console_line(alert: Alert) -> str:
    if alert.kind == "surge" and alert.surge is not None:
        tops = "; ".join(f"{plain(t.title) or '(no title)'} ({t.publishers} sources)"
                         for t in alert.surge.top[:story.MAX_TOP])
        line = f"SURGE {alert.severity.upper()} {alert.rule}: {plain(story.surge_line(alert.surge))}"
        return line + (f" [top: {tops}]" if tops else "")
    if alert.kind == "update":
        line = f"UPDATE {alert.severity.upper()} {alert.rule}: {plain(alert.item_title) or '(no title)'}"
        line += f" — {plain(story.update_line(alert))}"
        if alert.story is not None:
            line += f" [story {alert.story.id}]"
        return line
    line = f"ALERT {alert.severity.upper()} {alert.rule}: {plain(alert.item_title) or '(no title)'}"
    if alert.item_url:
        line += f" <{plain(alert.item_url)}>"
    line += f" [feed {plain(alert.feed)}"
    if alert.clauses:
        line += f"; why: {evidence.why(alert)}"
    line += f"; terms: {evidence.terms(alert)}"
    if alert.snippet_entities:
        line += f"; entities: {evidence.entities(alert)}"
    if alert.story is not None:
        line += f"; story {alert.story.id}"
    return line + "]"


class ConsoleNotifier:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, alert: Alert) -> SendFailure | None:
        stream = self.stream or sys.stdout
        try:
            print(console_line(alert), file=stream, flush=True)
        except OSError as error:
            return SendFailure(f"cannot write to the console: {error}", retryable=True)
        return None

    async def send_group(self, alerts: Sequence[Alert]) -> SendFailure | None:
        first = alerts[0]
        stream = self.stream or sys.stdout
        try:
            print(f"ALERTS {first.severity.upper()} {first.rule}: {story.counted(alerts)}", file=stream)
            for alert in alerts:
                print("  " + console_line(alert), file=stream)
            stream.flush()
        except OSError as error:
            return SendFailure(f"cannot write to the console: {error}", retryable=True)
        return None

    async def close(self) -> None:
        return None
