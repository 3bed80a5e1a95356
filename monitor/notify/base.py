"""The Notifier interface: ``send(alert)`` returns None on success or a SendFailure that
says whether trying again could help (the shape of Alertmanager's ``Notify``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from monitor.types import Alert

# C0 and C1 control characters (ESC among them) except tab and newline: feed text must
# never move a terminal's cursor or recolour a journal line.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: str) -> str:
    """Feed text safe for a terminal or log line: no control characters, one line."""
    return " ".join(_CONTROL_RE.sub("", text).split())


@dataclass(frozen=True)
class SendFailure:
    error: str
    retryable: bool
    retry_after: float | None = None
    status_code: int | None = None  # the receiver's answer (HTTP or SMTP), when it gave one


class Notifier(Protocol):
    async def send(self, alert: Alert) -> SendFailure | None: ...

    async def close(self) -> None: ...
