"""sentence:(…): one sentence satisfies the inner query, NOT inside it read in that sentence only;
sentence boundaries; /regex/ on RE2."""

from __future__ import annotations

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import QueryError
from monitor.rules import nodes, sentences
from monitor.rules.query import Sentence, parse
from monitor.rules.sentences import sentence_spans
from monitor.text import Field
from monitor.types import Document
from tests.test_engine import fires, rules


@pytest.mark.parametrize(("text", "expected"), [
    ("Article 4 and Article 5 were not on the agenda. Poland invoked Article 4.",
     ["Article 4 and Article 5 were not on the agenda. ", "Poland invoked Article 4."]),
    ("Gen. Smith said No. 4 was hit. The U.S. Army agreed!  Why? Nobody knows",
     ["Gen. Smith said No. 4 was hit. ", "The U.S. Army agreed!  ", "Why? ", "Nobody knows"]),
    ("Lt. Col. J. Doe, approx. 30 km away. Art. 4 NATO", ["Lt. Col. J. Doe, approx. 30 km away. ", "Art. 4 NATO"]),
    ("Am 3. Oktober flogen sie. Im Jahr 2024. 12 Drohnen",
     ["Am 3. Oktober flogen sie. ", "Im Jahr 2024. ", "12 Drohnen"]),
    ("Drones over Poland\nThe army said\nthey were shot down",
     ["Drones over Poland\n", "The army said\nthey were shot down"]),
    ("e.g. the jets flew 3.5 km to nato.int... and back. «Done.» Next",
     ["e.g. the jets flew 3.5 km to nato.int... and back. ", "«Done.» ", "Next"]),
    ("日本。中国！", ["日本。", "中国！"]),
    ("", []),
])
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert [text[start:end] for start, end in sentence_spans(text)] == expected


@given(st.text(st.sampled_from("ab .!?…\n\"»)A1é"), max_size=80) | st.text(max_size=80))
def test_sentences_cover_the_text_and_never_split_a_token(text: str) -> None:
    spans = sentence_spans(text)
    assert "".join(text[start:end] for start, end in spans) == text
    assert all(start < end for start, end in spans)
    assert sum(len(Field(text[start:end]).tokens) for start, end in spans) == len(Field(text).tokens)


@settings(max_examples=500)
@given(st.text(st.sampled_from("ab .!?…؟。！？\r\n\u2028\u2029 \t\"'”’»)]」』A1\u00a0\u3000"), max_size=40)
       | st.text(max_size=40))
def test_boundaries_are_the_boundary_pattern_s_matches(text: str) -> None:
    # Boundaries are looked for only where one can start: the same matches as a scan of every character.
    assert [(m.span(), m.groupdict()) for m in sentences._boundaries(text)] == \
        [(m.span(), m.groupdict()) for m in sentences._BOUNDARY_RE.finditer(text)]


@pytest.mark.parametrize(("query", "text", "expected"), [
    # negation read in one sentence, not in the whole document
    ('sentence:("article 4" AND NOT (not OR never))',
     "Article 4 and Article 5 were not on the agenda. Poland invoked Article 4.", True),
    ('sentence:("article 4" AND NOT (not OR never))', "Article 4 and Article 5 were not on the agenda.", False),
    ('"article 4" AND NOT not', "Article 4 and Article 5 were not on the agenda. Poland invoked Article 4.", False),
    ('sentence:(entered NEAR/6 airspace AND NOT ("had not" OR "did not"))',
     "The jet had not entered Polish airspace. Later a drone entered Lithuanian airspace.", True),
    ('sentence:(entered NEAR/6 airspace AND NOT ("had not" OR "did not"))',
     "The jet had not entered Polish airspace.", False),
    ('sentence:("shot down" AND NOT ("attempted to" OR "tried to"))', "They attempted to shoot down the drone.", False),
    ('sentence:("shoot down" AND NOT ("attempted to" OR "tried to"))',
     "They attempted to. Then they managed to shoot down the drone.", True),
    # every term of the inner query in one sentence
    ("sentence:(drone AND poland)", "A drone fell. Poland protested.", False),
    ("sentence:(drone AND poland)", "A drone fell, and Poland protested.", True),
    ("sentence:drone", "No drones. A drone.", True),
    ("sentence:(/drone +fell/)", "A drone fell. Poland protested.", True),
    ("sentence:(/fell +poland/)", "A drone fell. Poland protested.", False),
])
def test_sentence_scope(query: str, text: str, expected: bool) -> None:
    assert fires(query, text) is expected


def test_sentence_scope_fields_and_hits() -> None:
    ruleset = rules('sentence:(title:(drone) AND NOT fake)', 'sentence:(drone* AND poland) AND jets')
    doc = Document(id="d", title="Fake drone news. A drone over Poland", content="Jets scrambled. A drone fell.")
    first, second = ruleset.match(doc)
    assert first.rule == "r0" and first.terms == ("drone",)
    # the hits are placed in the field, not in the sentence: the snippet shows them
    assert second.terms == ("drone", "poland", "jets")
    assert not rules("sentence:(title:(drone) AND jets)").match(doc)  # no sentence has both
    assert isinstance(parse("sentence:(a OR b)"), Sentence)
    with pytest.raises(QueryError, match="left side of NEAR/3"):
        parse("sentence:(a) NEAR/3 b")


_WORDS = ["a", "b", "c", "not", ".", "!", "?", "\n", "Gen.", "No."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=30), st.lists(st.sampled_from(_WORDS), max_size=8),
       st.sampled_from(["a AND NOT b", "a NEAR/2 c", '"a b" OR (c AND NOT not)', "NOT a", "a AND b AND c",
                        "(a OR b) NEAR/3f c AND NOT (not NEAR/1 c)"]))
def test_sentence_scope_equals_the_query_on_each_sentence_alone(content: list[str], title: list[str],
                                                                inner: str) -> None:
    # The definition, by brute force: the inner query holds on a document that is one sentence
    # (a sentence has a word at least: "." alone is none).
    doc = Document(id="d", title=" ".join(title), content=" ".join(content))
    brute = [fires(inner, doc.content[start:end]) for start, end in sentence_spans(doc.content)
             if Field(doc.content[start:end]).tokens]
    brute += [fires(inner, "", title=doc.title[start:end]) for start, end in sentence_spans(doc.title)
              if Field(doc.title[start:end]).tokens]
    matches = rules(f"sentence:({inner})").match(doc)
    assert bool(matches) == any(brute)
    if matches:  # and its hits read as the tokens at their places in the document
        view = nodes.DocView(rules("x").terms, doc)
        alone = [m for start, end in sentence_spans(doc.content)
                 for m in rules(inner).match(Document(id="d", content=doc.content[start:end]))]
        alone += [m for start, end in sentence_spans(doc.title)
                  for m in rules(inner).match(Document(id="d", title=doc.title[start:end]))]
        assert set(matches[0].terms) == {t for m in alone for t in m.terms}
        assert view.fields[2].tokens == Field.from_raw(doc.content).tokens


def test_regex_runs_on_re2_and_cannot_stall() -> None:
    ruleset = rules("/(a+)+$/")
    regex = ruleset.rules[0].root
    assert isinstance(regex, nodes.RegexNode) and isinstance(regex.pattern, re2._Regexp)
    # Python's backtracking re takes exponential time here (2^40 steps); RE2 is linear in the text.
    assert not ruleset.match(Document(id="d", content="a" * 40 + "!"))
    assert ruleset.match(Document(id="d", content="x " + "a" * 100_000))
