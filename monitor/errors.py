"""The exceptions users can cause, and how they print.

    MonitorError            anything a user can fix; printed as one line plus a hint
     +-- ConfigError        config.toml: bad key, value or reference
     +-- RuleError          a rule or entity file: carries a SourceLocation
     |    +-- QueryError    a query that does not parse (column inside the query)
     +-- InputError         a document `scan` cannot read
     +-- UsageError         a command line that does not say what to do (exit status 2)

The CLI catches MonitorError at its edge and prints ``str(error)``; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A place in a file: 1-based line and column (0 means unknown)."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.path}:{self.line}:{self.column}"
        if self.line:
            return f"{self.path}:{self.line}"
        return self.path


class MonitorError(Exception):
    """An error the user can fix. ``hint`` says how."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message


class UsageError(MonitorError):
    """A command line that does not say what to do (the CLI exits 2, as for argparse's own errors)."""


class ConfigError(MonitorError):
    """A problem in config.toml."""


class InputError(MonitorError):
    """A document or corpus that cannot be read."""


class RuleError(MonitorError):
    """A problem in a rule or entity file, at ``location``."""

    def __init__(self, location: SourceLocation, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {super().__str__()}"


class QueryError(MonitorError):
    """A query syntax error at 1-based ``column`` of the query text.

    The rule loader turns it into a RuleError at the file position of that column.
    """

    def __init__(self, column: int, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.column = column

    def __str__(self) -> str:
        return f"column {self.column}: {super().__str__()}"


class RuleSetError(MonitorError):
    """Several RuleErrors found in one pass over a rules folder."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = sorted(errors, key=lambda e: e.location)
        first = self.errors[0] if self.errors else None
        super().__init__(str(first) if first else "invalid rule set")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def did_you_mean(name: str, known: Sequence[str], what: str) -> str:
    """A hint for an unknown name: the closest known one, else (some of) the known ones."""
    import difflib

    close = difflib.get_close_matches(name, known, 1, 0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if not known:
        return f"no {what} configured"
    shown = ", ".join(sorted(known)[:10])
    return f"{what}: {shown}" + (f" and {len(known) - 10} more" if len(known) > 10 else "")
