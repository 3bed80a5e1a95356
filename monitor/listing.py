"""How the CLI prints a listing: a text table or a JSON array, at most ``--limit`` rows, and a line on
stderr when rows were left out ("showing 1,000 of 4,500; use --limit").

``emit_limited`` asks its ``fetch`` for one row more than the limit, so it knows the output was cut
without counting; only then does it call ``count`` for the total. JSON is written one object at a
time, so ``--limit 0 --format json`` streams a store of any size without holding it in memory (a
text table needs every row to size its columns, so it holds the rows it prints).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, TextIO

DEFAULT_LIMIT = 1000
Fetch = Callable[[int | None], Iterable[dict[str, Any]]]
_STAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def limit_option(parser: argparse.ArgumentParser, what: str = "rows") -> None:
    """Add ``--limit N`` (default 1000; 0: all) to a listing command."""
    parser.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT, metavar="N",
                        help=f"at most N {what}, newest first (default: {DEFAULT_LIMIT:,}; 0: all); "
                        "stderr says when more were left out")


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; 0 means all")
    return number


def count(number: int, noun: str, plural: str = "") -> str:
    """ "1 feed", "2 feeds", "1,000 matches": a number with its noun in the right number."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def stamp(value: str) -> str:
    """An ISO 8601 time for a text table: to the second, without microseconds."""
    found = _STAMP_RE.match(value)
    if not found:
        return value
    day, clock, zone = found.groups()
    return f"{day} {clock}{'Z' if zone in (None, 'Z', '+00:00') else zone}"


def cell(value: Any) -> str:
    """A value as a table cell: ``-`` for none, lists joined, times to the second, no markup."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("title") or value)
    if isinstance(value, str) and _STAMP_RE.match(value):
        return stamp(value)
    from monitor.notify.base import plain

    return plain(str(value))


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: a longer one is cut at a word boundary when one is
    near the end (else inside a word, as for a URL) and ends with "…"."""
    if len(text) <= width:
        return text
    head = text[:width - 1]
    space = head.rfind(" ")
    if space >= width * 2 // 3:
        head = head[:space]
    return head.rstrip(" ,;") + "…"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO, width: int = 60) -> None:
    """A plain text table; long cells are cut to ``width`` characters, ending with "…"."""
    cells = [[cut(cell(row.get(c)), width) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)


def write_json(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """One JSON array, written an object at a time (as ``json.dump(rows, indent=1)`` would print it)."""
    count = 0
    for row in rows:
        body = json.dumps(row, ensure_ascii=False, indent=1).replace("\n", "\n ")
        out.write(("[\n " if count == 0 else ",\n ") + body)
        count += 1
    out.write("\n]\n" if count else "[]\n")
    return count


def emit(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str, out: TextIO) -> int:
    """Every row of ``rows`` as a table (``(none)`` when empty) or a JSON array; exit status 0."""
    if fmt == "json":
        write_json(rows, out)
        return 0
    held = list(rows)
    if held:
        table(held, columns, out)
    else:
        print("(none)", file=out)
    return 0


def emit_limited(fetch: Fetch, count: Callable[[], int], columns: Sequence[str], fmt: str, out: TextIO,
                 limit: int, what: str = "rows", err: TextIO | None = None) -> int:
    """At most ``limit`` rows (0: all) of ``fetch`` as ``emit`` prints them; exit status 0.

    ``fetch(n)`` yields the rows in order, at most ``n`` of them (``None``: all); it is asked for
    ``limit + 1`` so a cut is seen without counting. When rows were left out, ``count()`` gives the
    total for one line on ``err`` (default stderr): "showing 1,000 of 4,500 items; use --limit".
    """
    rows = iter(fetch(limit + 1 if limit else None))
    shown = islice(rows, limit) if limit else rows
    emit(shown, columns, fmt, out)
    more = bool(limit) and next(rows, None) is not None
    getattr(rows, "close", lambda: None)()  # a store generator ends its read now, before the count
    if more:
        print(f"showing {limit:,} of {count():,} {what}; use --limit N for more, --limit 0 for all",
              file=err or sys.stderr)
    return 0
