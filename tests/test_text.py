"""The normaliser: HTML to text, folding, tokens, and properties that hold for any input."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import text
from monitor.text import Field, cut_snippet, display_text, fold, fold_char, normalize, spaced, tokens


@pytest.mark.parametrize(("raw", "expected"), [
    ("shoot-down", ["shoot", "down"]),
    ("MiG-31", ["mig", "31"]),
    ("Šakalienė", ["sakaliene"]),
    ("Łódź", ["lodz"]),
    ("Straße", ["strasse"]),
    ("ＮＡＴＯ", ["nato"]),
    ("Эстония", ["эстония"]),
    ("<p>Article&nbsp;4</p><p>consultations</p>", ["article", "4", "consultations"]),
    ("<b>air</b>space", ["airspace"]),
    ("<script>alert('x')</script>drones", ["drones"]),
    ("Russia&#8217;s jets", ["russia", "s", "jets"]),
    ("a_b", ["a", "b"]),
    # vowel points and the tatweel are optional in Arabic and Hebrew: a vocalised word is one token;
    # the hamza, written or left out on a seat (أ or ا, ئ or ي), folds like a diacritic
    ("طائرة مسيّرة", ["طايرة", "مسيرة"]),
    ("أسقط إسقاط", ["اسقط", "اسقاط"]),
    ("يُسقِط", ["يسقط"]),
    ("مسيـرة", ["مسيرة"]),
    ("הָרַחְפָן", ["הרחפן"]),
])
def test_tokens(raw: str, expected: list[str]) -> None:
    assert tokens(normalize(raw)) == expected


# What a regular expression read wrongly and an HTML parser reads as a browser does.
@pytest.mark.parametrize(("raw", "expected"), [
    ('<a title="a > b" href="/x?a=1&amp;b=2">Drones</a> over Poland', "Drones over Poland"),
    ("<img alt='jets > drones'>Jets scrambled", "Jets scrambled"),
    ("<!-- a comment with <p>markup</p> and > signs --> Jets scrambled", "Jets scrambled"),
    ("Jets<!-- unclosed comment runs to the end <p>hidden", "Jets"),
    ("<template><p>Not shown</p></template>Shown", "Shown"),
    ("<script>if (a > b && c < d) { x = '</p>'; }</script>Jets", "Jets"),
    ("<style>p > b { color: red }</style><p>Jets</p>", "Jets"),
    ("<noscript><p>Enable JavaScript</p></noscript>Jets", "Jets"),
    ("<p>Unclosed <b>bold <i>italic", "Unclosed bold italic"),
    ("<p>One<p>Two<li>Three</li>Four</div>", "One Two Three Four"),
    ("<div data-x='&quot;>&lt;'>Text</div>", "Text"),
    ("<b>air</b>space <br/>and<br>more", "airspace and more"),
    ("AT&T &copy; Russia&#8217;s <i>x</i>", "AT&T © Russia’s x"),
    ("a < b and c > d", "a < b and c > d"),
    ("<![CDATA[<b>Drones</b> downed]]>", "Drones downed"),
    ("&lt;p&gt;Double &amp;amp; escaped&lt;/p&gt;", "Double & escaped"),
    ("<meta charset='latin1'><p>Łódź é</p>", "Łódź é"),
    ("<!-- only a comment -->", ""),
])
def test_html_is_read_by_a_parser(raw: str, expected: str) -> None:
    assert display_text(raw) == expected


_MARKUP = st.sampled_from(["<", ">", "<p>", "</p>", "<b>", "</b>", "&amp;", "&", "<!--", "-->", "<script>",
                           "</script>", "<template>", "\x00", "\x01", "\ufffe", "a", " ", "é", "<![CDATA[", "]]>",
                           "&lt;p&gt;", "<br/>", '"', "=", "<a href='", "\r", "&#1;", "&#0;", "<?", "<!DOCTYPE html>",
                           "<meta charset='latin1'>", "<?xml version='1.0' encoding='utf-16'?>", "\ud800"])


@given(st.lists(_MARKUP | st.text(max_size=3), max_size=40).map("".join))
def test_any_markup_reads_as_text_without_raising(raw: str) -> None:
    field = Field.from_raw(raw)
    assert field.display == display_text(raw) and field.normalised == normalize(raw)


def test_display_text_collapses_space_and_keeps_case() -> None:
    assert display_text("  <p>Three  Russian\nMiG-31s</p> ") == "Three Russian MiG-31s"


def test_snippet_maps_back_to_display_text_with_diacritics() -> None:
    field = Field.from_raw("Dovilė Šakalienė warned that Russian jets violated Lithuanian airspace.")
    index = field.tokens.index("violated")
    snippet, spans = field.snippet([(index, index)], width=40)
    assert [snippet[s:e] for s, e in spans] == ["violated"]
    assert snippet.startswith("…") and snippet.strip("…") in field.display


@given(st.text(alphabet=st.sampled_from("aé ß\n\tX-1\u00a0.ﬁ\u0301Ł"), max_size=700), st.data())
def test_a_snippet_highlights_the_tokens_asked_for(raw: str, data: st.DataObject) -> None:
    field = Field.from_raw(raw)
    if not field.tokens:
        return
    first = data.draw(st.integers(0, len(field.tokens) - 1))
    last = data.draw(st.integers(first, min(first + 3, len(field.tokens) - 1)))
    snippet, spans = field.snippet([(first, last)], width=data.draw(st.integers(20, 240)))
    assert snippet.strip("…") in field.display
    if spans:  # a span longer than the window is left unmarked
        start, end = spans[0]
        assert tokens(fold(snippet[start:end])) == field.tokens[first:last + 1]


def _display_offset(text: str, offset: int) -> int:
    """Where a token boundary of readable text falls in its display text, by definition."""
    shown = len(" ".join(text[:offset].split()))
    return shown + (shown > 0 and offset < len(text) and text[offset - 1].isspace())


def _expected_snippet(field: Field, token_spans: list[tuple[int, int]],
                      width: int) -> tuple[str, list[tuple[int, int]]]:
    spans = [field.raw_span(first, last) for first, last in token_spans]
    return cut_snippet(field.display, [(_display_offset(field.text, start), _display_offset(field.text, end))
                                       for start, end in spans], width)


@pytest.mark.parametrize("raw", [
    "Russian jets  violated\n\nEstonian airspace, the\tministry said. " * 12,
    " ".join(["Russian jets violated Estonian airspace, the ministry said."] * 12),
    "  \n" + "MiG-31  \t\n " * 40 + " \u00a0",
    "Šakalienė: " + "drones\u2029\u2029over Łódź; " * 25,
])
def test_snippets_at_every_token_and_width_are_the_display_text_cut(raw: str) -> None:
    # Every window edge falls at each place once: where the text starts or ends, and exactly
    # on the width, where an off-by-one would show.
    field = Field.from_raw(raw)
    for index in range(0, len(field.tokens), 3):
        spans = [(index, index), (index, min(index + 2, len(field.tokens) - 1))]
        for width in range(3, 130):
            expected = _expected_snippet(field, spans, width)
            assert field.snippet(spans, width) == expected  # tokens placed from those placed before
            assert Field.from_raw(raw).snippet(spans, width) == expected  # from the ends of the text


_PIECES = ["ab", "c", "Zé", " ", "  ", "\n", "\t \n", "-", "1", ".", "\u2029", " \u00a0 "]


@given(st.lists(st.sampled_from(_PIECES), min_size=30, max_size=300).map("".join), st.data())
def test_a_snippet_is_the_display_text_cut_around_its_first_span(raw: str, data: st.DataObject) -> None:
    # Field.snippet collapses white space only near the first span; it must give exactly what
    # cutting the whole display text gives.
    field = Field.from_raw(raw)
    if not field.tokens:
        return
    firsts = sorted(data.draw(st.lists(st.integers(0, len(field.tokens) - 1), min_size=1, max_size=4)))
    token_spans = [(first, min(first + data.draw(st.integers(0, 2)), len(field.tokens) - 1)) for first in firsts]
    width = data.draw(st.integers(3, 150))
    assert field.snippet(token_spans, width) == _expected_snippet(field, token_spans, width)


@given(st.text())
def test_normalise_never_raises_and_tokens_are_letters_or_digits(raw: str) -> None:
    for token in tokens(normalize(raw)):
        assert token and all(c.isalnum() for c in token)


@given(st.text())
def test_tokens_and_their_offsets_are_the_runs_of_alphanumerics(raw: str) -> None:
    field = Field.from_raw(raw)
    assert field.display == display_text(raw) and field.normalised == normalize(raw)
    runs = list(re.finditer(r"[^\W_]+", field.normalised))
    assert field.tokens == [run.group() for run in runs]
    assert field.token_starts() == [run.start() for run in runs]
    # raw_span places tokens in the readable text from one another, in any order. (One character
    # may fold to several tokens: "½" is "1⁄2".)
    odd_first = [*range(1, len(runs), 2), *range(0, len(runs), 2)]
    spans = {i: field.raw_span(i, i) for i in odd_first}
    for i, (start, end) in spans.items():
        assert start < end and field.tokens[i] in tokens(fold(field.text[start:end]))
    ordered = [spans[i] for i in range(len(runs))]
    assert ordered == sorted(ordered)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=80)
       | st.lists(st.sampled_from(["a", " ", "ß", "é", "e\u0301", "\u0301", "½", "ﬁ", "İ", "Ł", "’"]),
                  max_size=40).map("".join))
def test_a_token_form_offset_maps_to_the_character_it_came_from(raw: str) -> None:
    # The plain definition: each character of the readable text, repeated once per character
    # of its folded form (zero times for a mark that folds away), then the end of the text.
    field = Field(raw)
    by_character = [i for i, char in enumerate(raw) for _ in fold_char(char)] + [len(raw)]
    assert [field._raw_offset(offset) for offset in range(len(by_character))] == by_character


@given(st.text())
def test_fold_is_idempotent(raw: str) -> None:
    once = fold(raw)
    assert fold(once) == once


# Each character folds alone, up to canonical order: normalisation sorts a run of combining marks
# by combining class (U+0951 then U+093C becomes U+093C U+0951), a cross-character effect of
# Unicode itself, like conjoining Hangul jamo (left out of the alphabet), not of our folding.
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], max_codepoint=0x10FF), max_size=60))
def test_fold_works_character_by_character(raw: str) -> None:
    folded = "".join(fold_char(c) for c in raw)
    assert fold(raw) == unicodedata.normalize("NFC", folded)
    assert len(fold(raw)) == len(folded)  # so offsets still map one to one


# Most text is ASCII with a few quotes, dashes and accented letters: such text is folded run by
# run of characters outside ASCII, and must come out as the whole text folded at once does.
_ODD = st.sampled_from(["’", "“", "—", "é", "e\u0301", "\u0301", "ß", "İ", "Ł", "½", "ﬁ", "\u0951\u093c", "\u0651", "Ꭰ",
                        "ǅ", "\u212b", "ﬀ", "ΐ", "ς", "\u0345", "\u0338", "ł"]) | st.characters(
    exclude_categories=["Cs"], min_codepoint=0x80)
_MOSTLY_ASCII = st.lists(st.tuples(st.text(alphabet=st.characters(max_codepoint=0x7f), min_size=40, max_size=60),
                                   st.lists(_ODD, max_size=3).map("".join)), max_size=6).map(
    lambda parts: "".join(a + b for a, b in parts))


@given(_MOSTLY_ASCII)
def test_text_folded_by_runs_is_the_text_folded_whole(raw: str) -> None:
    whole = text._fold_whole(raw)
    assert fold(raw) == whole
    assert Field(raw).tokens == spaced(whole).split()
    assert Field(raw)._form == spaced(whole)  # the offsets of snippets and highlights rest on it


def test_fold_orders_combining_marks_canonically() -> None:
    assert fold("\u0951\u093c") == "\u093c\u0951" == unicodedata.normalize("NFC", "\u0951\u093c")


@pytest.mark.parametrize(("cedilla", "comma_below", "folded"), [
    ("ruseşti", "rusești", "rusesti"),
    ("spaţiul", "spațiul", "spatiul"),
    ("ŞTIRI ŢARA", "ȘTIRI ȚARA", "stiri tara"),
])
def test_romanian_cedilla_and_comma_below_letters_fold_alike(cedilla: str, comma_below: str, folded: str) -> None:
    # Many Romanian sites still write the legacy cedilla letters (U+015E/F, U+0162/3) for ș and ț (U+0218-B).
    assert fold(cedilla) == fold(comma_below) == folded
    assert tokens(fold(normalize(cedilla))) == tokens(fold(normalize(comma_below))) == folded.split()
