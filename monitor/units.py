"""Durations ("30s", "5m", "2h", "1d") and sizes ("10MB") written in config and rule files.

Pure: parsing only. Errors are ValueError with a message the caller puts
next to the file and key.
"""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> float:
    """Seconds in a duration string such as ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration; write it like \"30s\", \"5m\", \"2h\" or \"1d\"")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration; write it like \"30s\", \"5m\", \"2h\" or \"1d\"")
    return seconds


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_size(value: object) -> int:
    """Bytes in a size string such as ``"512KB"``, ``"10MB"`` or ``"1MiB"``."""
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a size; write it like \"512KB\", \"10MB\" or \"1GB\"")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    if size <= 0:
        raise ValueError(f"{value!r} is not a positive size; write it like \"512KB\", \"10MB\" or \"1GB\"")
    return size


def format_duration(seconds: float) -> str:
    """A duration as config files write it: the largest unit that divides it ("2m", "90s", "1d"),
    else the next smaller one rounded ("1.5h" is "90m")."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds)}s" if seconds < 60 or seconds % 60 else f"{int(seconds // 60)}m"
