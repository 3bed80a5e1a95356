"""``/regex/`` terms on RE2: linear time in the text, whatever the pattern.

Pure. A backtracking engine can take exponential time on a pattern like ``(a+)+$`` and a
long enough text, which would stall matching (inline, or in a worker); RE2 cannot. Its
syntax is Python's less lookarounds, backreferences and possessive quantifiers, and its
``\\b`` is an ASCII word boundary.
"""

from __future__ import annotations

from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is reported to the user as file:line:col, not logged by RE2


def compile_regex(pattern: str) -> Any:
    """The compiled pattern; ``re2.error`` if RE2 cannot compile it."""
    return re2.compile(pattern, _OPTIONS)


def regex_problem(pattern: str) -> str | None:
    """Why RE2 cannot compile ``pattern``, or None when it can."""
    try:
        compile_regex(pattern)
    except re2.error as error:
        message = error.args[0] if error.args else "invalid pattern"
        return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return None
