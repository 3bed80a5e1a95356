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

# Where a sentence may end: the punctuation (group 1), closers, then white space or the end;
# or a line break. Group "next" is the first character after the white space, if any.
_BOUNDARY_RE = re.compile(
    r"(?P<stop>[.!?…؟]+)[\"'”’»)\]]*(?:\s+|$)"
    r"|(?P<unspaced>[。！？]+)[\"'”’»)\]」』]*\s*"  # scripts written without spaces: no space needed
    r"|(?P<line>[ \t]*(?:\r\n|\r|\n|\u2028|\u2029)\s*)")
_WORD_BEFORE_RE = re.compile(r"(\w+)$")
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
        word = _WORD_BEFORE_RE.search(text, 0, found.start())
        if word is not None:
            before = word.group(1)
            folded = before.casefold()
            if (len(before) == 1 and before.isalpha()) or folded in ABBREVIATIONS:
                return False
            if before.isdigit() and len(before) <= 2 and _next_word(text, found.end()) in _MONTHS:
                return False
    return True


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
    for found in _BOUNDARY_RE.finditer(text):
        if found.end() > start and _is_stop(text, found):
            spans.append((start, found.end()))
            start = found.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans
