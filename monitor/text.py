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
from functools import lru_cache
from itertools import accumulate, compress, count
from operator import add

# A token is a run of characters that ``str.isalnum`` accepts; every other character separates.
_SEPARATOR_RE = re.compile(r"[\W_]")
_ASCII_SEPARATORS = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})
# ASCII text straight to its tokens' form: folded (lower case) with separators as spaces.
_ASCII_TOKEN_FORM = str.maketrans({chr(c): chr(c).lower() if chr(c).isalnum() else " " for c in range(128)})

_DROP_RE = re.compile(
    r"<(script|style|template|noscript|head)\b[^>]*>.*?</\1\s*>|<!--.*?(?:-->|$)",
    re.S | re.I,
)
_BLOCK_RE = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|td|th|table|thead|tbody|blockquote|pre|section|"
    r"article|header|footer|aside|nav|hr|dd|dt|dl|figure|figcaption|img|title|body|html)\b[^>]*>",
    re.I,
)
_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>|<![^>]*>|<\?[^>]*>")
# Tags of real HTML: what double-escaped markup shows once unescaped (``<not a tag>`` is text).
_HTML_TAG_RE = re.compile(
    r"</?(?:p|br|b|i|u|s|a|em|strong|span|div|img|ul|ol|li|h[1-6]|blockquote|table|tr|td|figure|"
    r"figcaption|iframe|script|style|font|small|sup|sub|hr|pre|code)\b[^>]*>", re.I)
_CDATA_RE = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
# Combining marks of the Latin, Greek and Cyrillic scripts: the diacritics to fold.
_MARKS_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Letters that carry a diacritic but have no Unicode decomposition.
_LETTERS = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŧ": "t", "þ": "th",
     "æ": "ae", "œ": "oe", "ŀ": "l"}
)


def html_to_text(raw: str) -> str:
    """Strip tags, drop scripts, styles and comments, and unescape entities.

    Block-level tags become white space so words on either side stay apart;
    inline tags vanish so ``<b>air</b>space`` stays one word.
    """
    if "<" not in raw and "&" not in raw:
        return raw
    text = _CDATA_RE.sub(r"\1", raw)
    text = _DROP_RE.sub(" ", text)
    text = _BLOCK_RE.sub(" ", text)
    text = html.unescape(_TAG_RE.sub("", text))
    # Double-escaped HTML (``&amp;lt;p&amp;gt;`` in a feed) still reads as markup once unescaped.
    if "&lt;" in raw and _HTML_TAG_RE.search(text):
        text = html.unescape(_TAG_RE.sub("", _BLOCK_RE.sub(" ", _DROP_RE.sub(" ", text))))
    return text


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
    # Compatibility forms may decompose to capitals (U+213B is "FAX"), so fold case in between.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    folded = _MARKS_RE.sub("", folded)
    return unicodedata.normalize("NFC", folded).translate(_LETTERS)


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
    ``split()`` is the list of tokens. ASCII text takes ``str.translate``'s fast path.
    """
    if normalised.isascii():
        return normalised.translate(_ASCII_SEPARATORS)
    return _SEPARATOR_RE.sub(" ", normalised)


def tokens(normalised: str) -> list[str]:
    """The tokens of normalised text, in order."""
    return spaced(normalised).split()


def query_tokens(word: str) -> list[str]:
    """Tokens of a word or phrase written in a rule, normalised like any text."""
    return tokens(fold(unicodedata.normalize("NFKC", word)))


class Field:
    """One field of a document (title, summary or content).

    Its tokens are made at once. The display and normalised forms, and where tokens
    start, are made only when asked for: a snippet or a ``/regex/`` needs them, and most
    documents match no rule.
    """

    __slots__ = ("_char_map", "_display", "_known", "_normalised", "_spaced", "_starts", "_text", "tokens")

    def __init__(self, text: str) -> None:
        """``text`` is readable text (``readable_text``): white space is collapsed later."""
        self._text = text
        # Collapsing white space changes no token: tokens come from the text as it is.
        self.tokens: list[str] = (text.translate(_ASCII_TOKEN_FORM) if text.isascii()
                                  else spaced(fold(text))).split()
        self._display: str | None = None
        self._normalised: str | None = None
        self._spaced: str | None = None
        self._starts: list[int] | None = None
        self._known: dict[int, int] = {}
        self._char_map: list[int] | None = None

    @classmethod
    def from_raw(cls, raw: str) -> Field:
        return cls(readable_text(raw) if raw else "")

    @property
    def display(self) -> str:
        """HTML stripped and unescaped, NFKC, white space collapsed: what a person reads."""
        if self._display is None:
            self._display = " ".join(self._text.split())
        return self._display

    @property
    def normalised(self) -> str:
        """The display text folded: what tokens are read from and ``/regex/`` terms see."""
        if self._normalised is None:
            self._normalised = fold(self.display)
        return self._normalised

    @property
    def spaced(self) -> str:
        if self._spaced is None:
            self._spaced = spaced(self.normalised)
        return self._spaced

    def token_starts(self) -> list[int]:
        """The offset in the normalised text where each token starts."""
        if self._starts is None:
            # In ``spaced`` every separator is one space, so split(" ") yields each token and an
            # empty string per extra space; element j starts at (lengths before it) + j.
            parts = self.spaced.split(" ")
            offsets = map(add, accumulate(map(len, parts), initial=0), count())
            self._starts = list(compress(offsets, parts))
        return self._starts

    def token_start(self, index: int) -> int:
        """Where token ``index`` starts in the normalised text.

        A snippet needs a few tokens near one another: each is found from the nearest one
        found before it, by a split that stops there, rather than by placing every token.
        """
        if self._starts is not None:
            return self._starts[index]
        known = self._known
        if index not in known:
            before = max((i for i in known if i < index), default=None)
            base, offset = (0, 0) if before is None else (before, known[before])
            rest = self.spaced[offset:] if offset else self.spaced
            # split(None, n) leaves token base+n (and what follows) as its last part.
            known[index] = offset + len(rest) - len(rest.split(None, index - base)[-1])
        return known[index]

    def display_offset(self, normalised_offset: int) -> int:
        """The offset in the display text of a character of the normalised text."""
        if self.display.isascii():
            return normalised_offset
        if self._char_map is None:
            char_map: list[int] = []
            for index, char in enumerate(self.display):
                char_map.extend([index] * len(fold_char(char)))
            char_map.append(len(self.display))
            self._char_map = char_map
        return self._char_map[min(normalised_offset, len(self._char_map) - 1)]

    def display_span(self, first_token: int, last_token: int) -> tuple[int, int]:
        """Display-text (start, end) covering tokens first_token..last_token."""
        start = self.display_offset(self.token_start(first_token))
        end_token = self.token_start(last_token) + len(self.tokens[last_token])
        return start, self.display_offset(end_token - 1) + 1


def cut_snippet(
    text: str, spans: list[tuple[int, int]], width: int = 240
) -> tuple[str, list[tuple[int, int]]]:
    """A window of ``text`` around the first span, and the spans inside it, rebased.

    The window starts and ends on word boundaries and marks cuts with ``…``.
    """
    if not spans:
        return text[:width], []
    first_start, first_end = spans[0]
    start = max(0, first_start - width // 3)
    end = min(len(text), max(first_end, start + width))
    if start > 0:
        space = text.find(" ", start, first_start)
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", first_end, end)
        end = space if space != -1 else end
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - start
    inside = [(s + shift, e + shift) for s, e in spans if s >= start and e <= end]
    return prefix + text[start:end] + suffix, inside
