"""Log set-up: ``text`` (journald friendly) or ``json`` (one object per line).

Structured fields travel in ``extra={...}``; both formats print them. Under systemd
(``JOURNAL_STREAM`` is set) the text format leaves the timestamp to the journal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from monitor.types import iso

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    def __init__(self, timestamps: bool) -> None:
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in fields(record).items() if k != "event" and v not in ("", None))
        line = f"{record.levelname.lower()} {record.getMessage()}" + (f" {extra}" if extra else "")
        if self.timestamps:
            stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            line = f"{stamp} {line}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": iso(datetime.fromtimestamp(record.created, UTC)),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                **fields(record)}
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def _not_a_busy_feed(record: logging.LogRecord) -> bool:
    """Drop APScheduler's "skipped: maximum number of running instances": a feed's job runs one
    poll at a time by design (a slow feed, or one waiting on a locked database, is simply still
    being polled), and the warning would repeat every interval."""
    return "maximum number of running instances" not in record.getMessage()


def setup(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else TextFormatter(timestamps="JOURNAL_STREAM" not in os.environ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    scheduler = logging.getLogger("apscheduler.scheduler")
    if _not_a_busy_feed not in scheduler.filters:
        scheduler.addFilter(_not_a_busy_feed)
