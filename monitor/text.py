"""Text normalisation: HTML to text, Unicode folding, tokens with positions.

Pure: no I/O. Rules and documents go through the same functions, so a query
term and the text it should find are always compared in the same form.

Two forms of a text are kept:
- *display* text: HTML stripped and unescaped, NFKC, white space collapsed;
  what snippets are cut from and what a person reads;
- *normalised* text: the display text case-folded with diacritics folded;
  what tokens are read from and what ``/regex/`` terms see.

A token is a run of letters and digits, so ``shoot-down`` is ``shoot down``
and ``MiG-31`` is ``mig 31``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from functools import lru_cache
from itertools import accumulate, compress, count
from operator import add

from lxml import etree

# A token is a run of characters that ``str.isalnum`` accepts; every other character separates.
# (A plain space is left out: it is its own replacement, and most separators are spaces.)
_SEPARATOR_RE = re.compile(r"[^\w ]|_")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")
_TEXT_RE = re.compile(r"\S")
# Text split at its runs of characters outside ASCII: ASCII, a run, ASCII, ..., ASCII.
_NON_ASCII_RUNS_RE = re.compile(r"([^\x00-\x7f]+)")
# Above this share of runs to characters (a text in another script), folding the text whole is cheaper.
_RUNS_SHARE = 1 / 16
_CACHED_RUN = 40  # longer runs (a text in a script without spaces) are folded each time, not kept
# Tables for ASCII text, as bytes: encoding, bytes.translate and decoding cost a third of
# what str.translate does. Separators to spaces:
_ASCII_SEPARATORS = bytes(c if chr(c).isalnum() else 32 for c in range(256))
# and straight to the tokens' form: folded (lower case), separators as spaces.
_ASCII_TOKEN_FORM = bytes(ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(256))

# Elements whose content is not text to read (code, style sheets, inert templates), and the
# block-level ones that stand apart from their neighbours: their start and end read as a space.
_DROPPED = ("script", "style", "template", "noscript")
_BLOCKS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "table", "thead",
    "tbody", "blockquote", "pre", "section", "article", "header", "footer", "aside", "nav", "hr", "dd", "dt", "dl",
    "figure", "figcaption", "img", "title", "body", "html"})
# libxml2 (2.14 and later) tokenises HTML as HTML5 does; comments and processing instructions
# are left out of the tree, and nothing is ever fetched (no DTD, no entity, no network). It is
# given UTF-8 and told so, whatever a <meta charset> or an XML declaration in the text says.
_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, default_doctype=False,
                           encoding="utf-8")
# Tags of real HTML: what double-escaped markup shows once unescaped (``<not a tag>`` is text).
_HTML_TAG_RE = re.compile(
    r"</?(?:p|br|b|i|u|s|a|em|strong|span|div|img|ul|ol|li|h[1-6]|blockquote|table|tr|td|figure|"
    r"figcaption|iframe|script|style|font|small|sup|sub|hr|pre|code)\b[^>]*>", re.I)
_CDATA_RE = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
# Combining marks of the Latin, Greek and Cyrillic scripts: the diacritics to fold; and the vowel
# points of Arabic (harakat, shadda, hamza above and below a seat, dagger alef, Quranic marks) and
# Hebrew (niqqud, cantillation), and the Arabic tatweel: optional in writing, and marks would
# otherwise split a word in two tokens (a vocalised مسيّرة, "drone", is مسيرة; أسقط is اسقط).
_MARKS_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
                       "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
                       "\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed]")
# Letters that carry a diacritic but have no Unicode decomposition. (Replaced by a regular
# expression: str.translate with a dict costs a dict lookup per character of the text.)
_LETTERS = {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŧ": "t", "þ": "th",
            "æ": "ae", "œ": "oe", "ŀ": "l"}
_LETTERS_RE = re.compile("[" + "".join(_LETTERS) + "]")


def html_to_text(raw: str) -> str:
    """Markup read by an HTML parser: the text of its nodes, entities unescaped, without
    scripts, styles, templates and comments.

    Block-level elements become white space so words on either side stay apart; inline
    elements vanish so ``<b>air</b>space`` stays one word.
    """
    if "<" not in raw:
        if "&" not in raw:
            return raw
        text = html.unescape(raw)
    else:
        text = _parsed_text(raw)
    # Double-escaped HTML (``&amp;lt;p&amp;gt;`` in a feed) still reads as markup once unescaped.
    if "&lt;" in raw and _HTML_TAG_RE.search(text):
        text = _parsed_text(text)
    return text


def _parsed_text(markup: str) -> str:
    """The text of ``markup`` as an HTML parser reads it (see html_to_text)."""
    if "<![CDATA[" in markup:  # a CDATA section in HTML is a comment; in a feed it wraps text
        markup = _CDATA_RE.sub(r"\1", markup)
    # (A lone surrogate, which only a JSON escape can make, is no character: it becomes "?".)
    root = etree.fromstring(markup.encode("utf-8", "replace"), _PARSER)
    if root is None:  # nothing but comments and white space
        return ""
    etree.strip_elements(root, *_DROPPED, with_tail=False)
    # The tree is read, not changed: text from character references (``&#1;``) may be text
    # that lxml refuses to write back into a node.
    parts: list[str] = []
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if element.tag in _BLOCKS:
            parts.append(" ")
        text = element.text if event == "start" else element.tail
        if text:
            parts.append(text)
    return "".join(parts)


def readable_text(raw: str) -> str:
    """HTML to text and NFKC; white space as it came."""
    text = html_to_text(raw)
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def display_text(raw: str) -> str:
    """The readable form of ``raw``: HTML to text, NFKC, white space collapsed."""
    return " ".join(readable_text(raw).split())


def fold(text: str) -> str:
    """Case-fold and fold diacritics. Works character by character (see fold_char)."""
    if text.isascii():
        return text.lower()
    return _by_runs(text, str.lower, _fold_run, _fold_whole)


def _fold_whole(text: str) -> str:
    # Compatibility forms may decompose to capitals (U+213B is "FAX"), so fold case in between.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    folded = unicodedata.normalize("NFC", _MARKS_RE.sub("", folded))
    return _LETTERS_RE.sub(_letter, folded) if _LETTERS_RE.search(folded) else folded


_fold_short = lru_cache(maxsize=4096)(_fold_whole)


def _letter(found: re.Match[str]) -> str:
    return _LETTERS[found.group()]


def _by_runs(text: str, ascii_form: Callable[[str], str], run_form: Callable[[str], str],
             whole_form: Callable[[str], str]) -> str:
    """``text`` with its ASCII parts and its runs of other characters each put in their form.

    Folding works character by character, and no character outside ASCII combines with an ASCII
    one before it, so a text folds as its parts do. Most text is ASCII but for quotes, dashes
    and accented letters, whose few, repeated runs fold once each (cached), not the whole text.
    """
    parts = _NON_ASCII_RUNS_RE.split(text)
    if len(parts) > len(text) * _RUNS_SHARE:  # another script: a run per word, folded whole
        return whole_form(text)
    parts[0::2] = map(ascii_form, parts[0::2])
    parts[1::2] = map(run_form, parts[1::2])
    return "".join(parts)


def _fold_run(run: str) -> str:
    return _fold_short(run) if len(run) <= _CACHED_RUN else _fold_whole(run)


def _token_form_run(run: str) -> str:
    return _token_form_short(run) if len(run) <= _CACHED_RUN else _token_form_whole(run)


def _ascii_token_form(text: str) -> str:
    """Folded with every separator a space: ``spaced(fold(text))`` of ASCII text."""
    return text.encode().translate(_ASCII_TOKEN_FORM).decode()


def token_form(text: str) -> str:
    """``spaced(fold(text))``: what a text's tokens are split from."""
    if text.isascii():
        return _ascii_token_form(text)
    return _by_runs(text, _ascii_token_form, _token_form_run, _token_form_whole)


def _token_form_whole(text: str) -> str:
    return spaced(_fold_whole(text))


_token_form_short = lru_cache(maxsize=4096)(_token_form_whole)


@lru_cache(maxsize=4096)
def fold_char(char: str) -> str:
    """``fold`` of one character; the concatenation over a text equals ``fold(text)``."""
    return fold(char)


def normalize(raw: str) -> str:
    """The normalised form of raw text or HTML."""
    return fold(display_text(raw))


def spaced(normalised: str) -> str:
    """``normalised`` with every separator character turned into one space.

    Same length as its input, so a token's offsets are the same in both, and its
    ``split()`` is the list of tokens. ASCII text takes a ``bytes.translate`` fast path.
    """
    if normalised.isascii():
        return normalised.encode().translate(_ASCII_SEPARATORS).decode()
    return _SEPARATOR_RE.sub(" ", normalised)


def tokens(normalised: str) -> list[str]:
    """The tokens of normalised text, in order."""
    return spaced(normalised).split()


def query_tokens(word: str) -> list[str]:
    """Tokens of a word or phrase written in a rule, normalised like any text."""
    return tokens(fold(unicodedata.normalize("NFKC", word)))


class Field:
    """One field of a document (title, summary or content).

    Its tokens are made at once, from the readable text (HTML stripped, NFKC) folded with
    every separator a space: the *token form*, whose ``split()`` they are. The display and
    normalised forms, and where tokens start, are made only when asked for: a snippet or
    a ``/regex/`` needs them, and most documents match no rule.
    """

    __slots__ = ("_display", "_form", "_known", "_normalised", "_padded", "_raw_starts", "_shifts", "_starts",
                 "text", "tokens")

    def __init__(self, text: str) -> None:
        """``text`` is readable text (``readable_text``): white space is collapsed later."""
        self.text = text  # readable text; raw_span gives offsets in it
        # Collapsing white space changes no token: tokens come from the text as it is.
        self._form = token_form(text)
        self.tokens: list[str] = self._form.split()
        self._display: str | None = None
        self._normalised: str | None = None
        self._starts: list[int] | None = None
        self._known: dict[int, int] = {}
        self._padded: str | None = None  # the token form with a space at each end (_form_start)
        self._shifts: list[tuple[int, int]] | None = None  # see _raw_offset
        self._raw_starts: list[int] = []

    @classmethod
    def from_raw(cls, raw: str) -> Field:
        return cls(readable_text(raw) if raw else "")

    @property
    def display(self) -> str:
        """HTML stripped and unescaped, NFKC, white space collapsed: what a person reads."""
        if self._display is None:
            self._display = " ".join(self.text.split())
        return self._display

    @property
    def normalised(self) -> str:
        """The display text folded: what ``/regex/`` terms see."""
        if self._normalised is None:
            self._normalised = fold(self.display)
        return self._normalised

    def token_starts(self) -> list[int]:
        """Where each token starts in the normalised text (to place a regex match)."""
        if self._starts is None:
            # In spaced(normalised) every separator is one space, so split(" ") yields each token
            # and an empty string per extra space; element j starts at (lengths before it) + j.
            parts = spaced(self.normalised).split(" ")
            offsets = map(add, accumulate(map(len, parts), initial=0), count())
            self._starts = list(compress(offsets, parts))
        return self._starts

    def _form_start(self, index: int) -> int:
        """Where token ``index`` starts in the token form.

        In the token form every separator is a space, so a token is found, with its spaces,
        by ``str.find`` in the form padded with a space at each end: the token ``index`` is the
        occurrence after those of the same token before it, which ``list.count`` counts. All in
        C, and nothing is made but the padded form, once.
        """
        known = self._known
        if index not in known:
            if self._padded is None:
                self._padded = f" {self._form} "
            token = self.tokens[index]
            needle = f" {token} "
            position = -1
            for _ in range(self.tokens[:index].count(token) + 1):
                position = self._padded.find(needle, position + 1)
            known[index] = position  # the padding space stands where the token starts
        return known[index]

    def _raw_offset(self, form_offset: int) -> int:
        """The offset in the readable text of a character of the token form.

        Each character folds on its own (``fold_char``), and only a character outside ASCII can
        fold to other than one character, so offsets shift only at those: the shifts are found
        with one regular-expression scan, not a loop over every character.
        """
        text = self.text
        if text.isascii():
            return form_offset  # folding ASCII keeps every offset
        if self._shifts is None:
            # For each character whose folded form is not one character long: where that form
            # starts in the token form, the character's offset, and the form's length.
            starts: list[int] = []
            shifts: list[tuple[int, int]] = []
            shift = 0
            for found in _NON_ASCII_RE.finditer(text):
                length = len(fold_char(found.group()))
                if length != 1:
                    starts.append(found.start() + shift)
                    shifts.append((found.start(), length))
                    shift += length - 1
            self._raw_starts, self._shifts = starts, shifts
        number = bisect_right(self._raw_starts, form_offset) - 1
        if number < 0:
            return min(form_offset, len(text))
        index, length = self._shifts[number]
        form_start = self._raw_starts[number]
        if form_offset < form_start + length:
            return index  # inside the folded form of that character
        return min(index + 1 + form_offset - form_start - length, len(text))

    def raw_span(self, first_token: int, last_token: int) -> tuple[int, int]:
        """(start, end) in the readable text of tokens first_token..last_token."""
        start = self._raw_offset(self._form_start(first_token))
        end = self._form_start(last_token) + len(self.tokens[last_token])
        return start, self._raw_offset(end - 1) + 1

    def snippet(self, token_spans: list[tuple[int, int]], width: int = 240) -> tuple[str, list[tuple[int, int]]]:
        """``cut_snippet`` of the display text around the first of ``token_spans`` (first and
        last token of each), and where each span falls in it.

        Only the text around the first span has its white space collapsed (``cut_window``).
        """
        return cut_window(self.text, [self.raw_span(first, last) for first, last in token_spans], width)


def cut_window(
    text: str, spans: list[tuple[int, int]], width: int = 240
) -> tuple[str, list[tuple[int, int]]]:
    """``cut_snippet`` of ``display_text`` of readable ``text``, given spans in ``text``.

    The same result, but only the part of ``text`` around the first span has its white space
    collapsed: a few hundred characters, not the whole field. ``spans`` are sorted, and each
    starts and ends on a non-white-space character (a run of tokens).
    """
    if not spans:
        return cut_snippet(" ".join(text.split()), [], width)
    first_start, first_end = spans[0]
    before, after = width // 3, width
    low = max(0, first_start - before - 16)
    high = min(len(text), max(first_start + after + 16, first_end))
    piece = text[low:high]
    if "  " in piece or not piece.isprintable():
        low, high, window = _widened(text, first_start, first_end, before, after)
    else:
        # Its only white space is single spaces (the rest is not printable), so its display
        # form is itself, but for a space at either edge.
        window = piece.strip(" ")
        low += len(piece) - len(piece.lstrip(" "))
    local = [(start, end) for start, end in spans if end <= high]
    if len(window) == len(text[low:high].rstrip()):
        # No run of white space was collapsed: offsets in the window are offsets in the text.
        local = [(start - low, end - low) for start, end in local]
    else:
        local = [(len(_collapsed(text, low, start)), len(_collapsed(text, low, end))) for start, end in local]
    # Is there text beyond the window? Found at once, without copying the rest of the document.
    more_before = _TEXT_RE.search(text, 0, low) is not None
    return _cut(window, local, width, more_before, _TEXT_RE.search(text, high) is not None)


def _widened(text: str, first_start: int, first_end: int, before: int, after: int) -> tuple[int, int, str]:
    """A window of ``text`` whose display form holds ``before`` characters before the first
    span and more than ``after`` from its start, or reaches an end of the text: its start (on
    text), its end, and that display form."""
    reach = before + 16
    while True:
        low = max(0, first_start - reach)
        head = _collapsed(text, low, first_start)
        if len(head) >= before or low == 0:
            break
        reach *= 4
    reach = after + 16
    while True:
        high = min(len(text), max(first_start + reach, first_end))
        tail = " ".join(text[first_start:high].split())
        if len(tail) > after or high == len(text):
            break
        reach *= 4
    # The first span starts on text, so nothing is lost at the seam.
    return high - len(text[low:high].lstrip()), high, head + tail


def _collapsed(text: str, start: int, end: int) -> str:
    """``text[start:end]`` as it reads in the display text, up to ``end``: white space collapsed,
    a run before ``end`` kept as one space when text follows it."""
    part = " ".join(text[start:end].split())
    if part and end < len(text) and text[end - 1].isspace():
        part += " "
    return part


def cut_snippet(
    text: str, spans: list[tuple[int, int]], width: int = 240
) -> tuple[str, list[tuple[int, int]]]:
    """A window of ``text`` around the first span, and the spans inside it, rebased.

    The window starts and ends on word boundaries and marks cuts with ``…``.
    """
    if not spans:
        return text[:width], []
    return _cut(text, spans, width, False, False)


def _cut(text: str, spans: list[tuple[int, int]], width: int, more_before: bool,
         more_after: bool) -> tuple[str, list[tuple[int, int]]]:
    """``cut_snippet`` of a text that ``text`` is part of: ``more_before`` and ``more_after`` say
    whether that text goes on beyond either end of ``text``."""
    first_start, first_end = spans[0]
    start = max(0, first_start - width // 3)
    end = min(len(text), max(first_end, start + width))
    cut_before = start > 0 or more_before
    cut_after = end < len(text) or more_after
    if cut_before:
        space = text.find(" ", start, first_start)
        start = space + 1 if space != -1 else start
    if cut_after:
        space = text.rfind(" ", first_end, end)
        end = space if space != -1 else end
    shift = cut_before - start
    inside = [(s + shift, e + shift) for s, e in spans if s >= start and e <= end]
    return ("…" if cut_before else "") + text[start:end] + ("…" if cut_after else ""), inside
