"""The normaliser: HTML to text, folding, tokens, and properties that hold for any input."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import Field, display_text, fold, fold_char, normalize, tokens


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
])
def test_tokens(raw: str, expected: list[str]) -> None:
    assert tokens(normalize(raw)) == expected


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


@given(st.text())
def test_fold_is_idempotent(raw: str) -> None:
    once = fold(raw)
    assert fold(once) == once


# Each character folds alone, up to canonical order: normalisation sorts a run of combining marks
# by combining class (U+0951 then U+064B becomes U+064B U+0951), a cross-character effect of
# Unicode itself, like conjoining Hangul jamo (left out of the alphabet), not of our folding.
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], max_codepoint=0x10FF), max_size=60))
def test_fold_works_character_by_character(raw: str) -> None:
    folded = "".join(fold_char(c) for c in raw)
    assert fold(raw) == unicodedata.normalize("NFC", folded)
    assert len(fold(raw)) == len(folded)  # so offsets still map one to one


def test_fold_orders_combining_marks_canonically() -> None:
    assert fold("\u0951\u064b") == "\u064b\u0951" == unicodedata.normalize("NFC", "\u0951\u064b")
