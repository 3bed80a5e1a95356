"""Sentence boundaries of readable text, for ``sentence:(…)``.

Pure. A sentence ends at ``.`` ``!`` ``?`` ``…`` (or ``。！？؟``), after any closing quotes or
brackets, when white space or the end of the text follows; and at a line break. Not at:

- a ``.`` after a known abbreviation (``Gen.``, ``No.``, ``Art.``, ``Mr.``, ``approx.`` …) or after
  a single letter (``U.S.``, ``J. Smith``, ``z.B.``): titles, numbers and initials, not ends;
- a ``.``, ``…`` or line break followed by a lower-case letter (``e.g. the``, a wrapped line);
- a number of one or two digits before a month name (``am 3. Oktober``, a German date);
- a ``.`` with no white space after it (``3.5``, ``nato.int``).

What is left is cheap (one regular-expression scan) and errs towards longer sentences, so a
scoped negation reads a little more text rather than missing the words it is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Where a sentence may end: the punctuation (group 1), closers, then white space or the end;
# or a line break. Group "next" is the first character after the white space, if any.
_BOUNDARY_RE = re.compile(
    r"(?P<stop>[.!?…؟]+)[\"'”’»)\]]*(?:\s+|$)"
    r"|(?P<unspaced>[。！？]+)[\"'”’»)\]」』]*\s*"  # scripts written without spaces: no space needed
    r"|(?P<line>[ \t]*(?:\r\n|\r|\n|\u2028|\u2029)\s*)")
# Where a boundary can start: its punctuation or a line break (with the spaces and tabs before it).
# Python's regular expressions try every alternative of _BOUNDARY_RE at every character; a character
# class is found by a quick scan, so the text is scanned for these and _BOUNDARY_RE tried only there.
_START_RE = re.compile("[.!?…؟。！？\r\n\u2028\u2029]")
_BREAKS = "\r\n\u2028\u2029"
_WORD_RE = re.compile(r"\w+")
_ABBREVIATIONS = """
mr mrs ms dr prof gen lt col maj capt cpt sgt cpl adm brig cmdr cdr gov sen rep rev hon pres
st mt ft no nos nr art arts para paras sec fig figs vol vols ch pp vs etc approx ca cf est dept
inc ltd co corp jr sr ed eds al
jan feb mar apr jun jul aug sep sept oct nov dec
bzw usw vgl ggf abs ziff str hr fr dipl ing
ul pl im tzw ok np itd ppłk płk mjr kpt
"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS.split())
_MONTH_NAMES = """
januar februar marz april mai juni juli august september oktober november dezember janner
january february march may june july october december
"""
_MONTHS = frozenset(_MONTH_NAMES.split())


def _is_stop(text: str, found: re.Match[str]) -> bool:
    """Whether the candidate boundary ``found`` ends a sentence (see the module docstring)."""
    after = text[found.end():found.end() + 1]
    if found.group("unspaced") is not None:
        return True
    if found.group("line") is not None:
        return not after.islower()
    stop = found.group("stop")
    if stop[-1] in "!?؟":
        return True
    if after.islower():
        return False
    if stop == ".":
        before = _word_before(text, found.start())
        if before:
            folded = before.casefold()
            if (len(before) == 1 and before.isalpha()) or folded in ABBREVIATIONS:
                return False
            if before.isdigit() and len(before) <= 2 and _next_word(text, found.end()) in _MONTHS:
                return False
    return True


def _word_before(text: str, end: int) -> str:
    """The word that ends at ``end`` (found by stepping back over it, not by a search from the start
    of the text, which would make splitting a long text quadratic)."""
    start = end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    return text[start:end]


def _next_word(text: str, start: int) -> str:
    found = _WORD_RE.match(text, start)
    return found.group(0).casefold().replace("ä", "a") if found else ""


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, in order; together they cover all of it
    (the white space after a sentence ends it). Empty text has no sentences."""
    if not text:
        return []
    spans: list[tuple[int, int]] = []
    start = 0
    for found in _boundaries(text):
        if found.end() > start and _is_stop(text, found):
            spans.append((start, found.end()))
            start = found.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _boundaries(text: str) -> Iterator[re.Match[str]]:
    """``_BOUNDARY_RE.finditer(text)``, tried only where a boundary can start (see _START_RE)."""
    position = 0
    while True:
        candidate = _START_RE.search(text, position)
        if candidate is None:
            return
        start = candidate.start()
        if candidate.group() in _BREAKS:  # a line break's boundary starts at the spaces and tabs before it
            while start > position and text[start - 1] in " \t":
                start -= 1
        found = _BOUNDARY_RE.match(text, start)
        if found is None:
            position = candidate.start() + 1
            continue
        yield found
        position = found.end()  # (never empty: every alternative takes a character)
