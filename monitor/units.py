"""Durations ("30s", "5m", "2h", "1d") and sizes ("10MB") written in config and rule files.

Pure: parsing only. Errors are ValueError with a message the caller puts
next to the file and key.
"""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.I)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_duration(value: object) -> float:
    """Seconds in a duration string such as ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration; write it like \"30s\", \"5m\", \"2h\" or \"1d\"")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return seconds


def parse_size(value: object) -> int:
    """Bytes in a size string such as ``"10MB"`` or ``"512KiB"``."""
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a size; write it like \"10MB\" or \"512KiB\"")
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def format_duration(seconds: float) -> str:
    """The shortest exact duration string for ``seconds``."""
    for unit in ("w", "d", "h", "m"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
