"""The console channel: one readable line per alert on stdout (the journal under systemd)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from monitor.notify import evidence
from monitor.notify.base import SendFailure, plain
from monitor.types import Alert


def console_line(alert: Alert) -> str:
    line = f"ALERT {alert.severity.upper()} {alert.rule}: {plain(alert.item_title) or '(no title)'}"
    if alert.item_url:
        line += f" <{plain(alert.item_url)}>"
    line += f" [feed {plain(alert.feed)}"
    if alert.clauses:
        line += f"; why: {evidence.why(alert)}"
    line += f"; terms: {evidence.terms(alert)}"
    if alert.snippet_entities:
        line += f"; entities: {evidence.entities(alert)}"
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
            print(f"ALERTS {first.severity.upper()} {first.rule}: {len(alerts)} alerts", file=stream)
            for alert in alerts:
                print("  " + console_line(alert), file=stream)
            stream.flush()
        except OSError as error:
            return SendFailure(f"cannot write to the console: {error}", retryable=True)
        return None

    async def close(self) -> None:
        return None
