"""sentence:(…): one sentence satisfies the inner query, NOT inside it read in that sentence only;
sentence/n:(…): n consecutive sentences read together; sentence boundaries; /regex/ on RE2."""

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


@pytest.mark.parametrize(("query", "text", "expected"), [
    # the intruder named in one sentence, the violation in the next
    ("sentence/2:(drone AND violated NEAR/3 airspace)",
     "A Russian drone crossed from Belarus. It violated Polish airspace for ten minutes.", True),
    ("sentence:(drone AND violated NEAR/3 airspace)",
     "A Russian drone crossed from Belarus. It violated Polish airspace for ten minutes.", False),
    # two sentences, not three
    ("sentence/2:(drone AND airspace)", "A drone flew. The army watched. Airspace was closed.", False),
    ("sentence/3:(drone AND airspace)", "A drone flew. The army watched. Airspace was closed.", True),
    # NOT reads the whole window: a denial in the next sentence silences it
    ("sentence/2:(drone AND entered AND NOT denied)", "A drone entered. Moscow denied it.", False),
    ("sentence/2:(drone AND entered AND NOT denied)",
     "A drone entered. Moscow denied it. Later a drone entered.", False),  # both windows hold 'denied'
    ("sentence/2:(drone AND entered AND NOT denied)",
     "A drone entered. Moscow denied it. Jets flew. Later a drone entered.", True),
    # NEAR counts words across the boundary
    ("sentence/2:(drone NEAR/3 entered)", "It was a drone. It entered.", True),
    # fewer sentences than the window: the field is one window
    ("sentence/3:(drone AND entered)", "A drone entered.", True),
    ("sentence/2:(drone AND entered)", "A drone flew.", False),
])
def test_sentence_window(query: str, text: str, expected: bool) -> None:
    assert fires(query, text) is expected


def test_sentence_window_hits_syntax_and_errors() -> None:
    doc = Document(id="d", title="Drone alert", content="Jets scrambled. A drone entered. Nobody denied it.")
    (match,) = rules("sentence/2:(jets AND drone)").match(doc)
    assert match.terms == ("jets", "drone")  # placed in the field, as sentence:( ) hits are
    assert not rules("sentence/2:(title:(drone) AND jets)").match(doc)  # a window is one field's
    window = parse("sentence/2:(a OR b)")
    assert isinstance(window, Sentence) and window.size == 2 and parse("sentence:(a)").size == 1  # type: ignore[union-attr]
    for bad, message in (("sentence/4:(a)", "1 to 3 sentences, not 4"), ("sentence/0:(a)", "not 0"),
                         ("sentence/x:(a)", "malformed sentence window")):
        with pytest.raises(QueryError, match=message):
            parse(bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=30), st.sampled_from([2, 3]),
       st.sampled_from(["a AND NOT b", "a NEAR/4 c", '"a b" OR (c AND NOT not)', "a AND b AND c",
                        "(a OR b) NEAR/3f c AND NOT (not NEAR/1 c)"]))
def test_sentence_window_equals_the_query_on_each_window_alone(content: list[str], size: int, inner: str) -> None:
    # The definition, by brute force: the inner query holds on the text of some n consecutive
    # sentences (those with a word), or of all of them when there are fewer.
    doc = Document(id="d", content=" ".join(content))
    spans = [(start, end) for start, end in sentence_spans(doc.content) if Field(doc.content[start:end]).tokens]
    windows = [spans[i:i + size] for i in range(max(len(spans) - size + 1, 1))] if spans else []
    brute = [fires(inner, doc.content[w[0][0]:w[-1][1]]) for w in windows]
    assert bool(rules(f"sentence/{size}:({inner})").match(doc)) == any(brute)


def test_regex_runs_on_re2_and_cannot_stall() -> None:
    ruleset = rules("/(a+)+$/")
    regex = ruleset.rules[0].root
    assert isinstance(regex, nodes.RegexNode) and isinstance(regex.pattern, re2._Regexp)
    # Python's backtracking re takes exponential time here (2^40 steps); RE2 is linear in the text.
    assert not ruleset.match(Document(id="d", content="a" * 40 + "!"))
    assert ruleset.match(Document(id="d", content="x " + "a" * 100_000))
