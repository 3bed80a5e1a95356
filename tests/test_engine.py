"""Matching semantics of the compiled engine, checked against a brute-force evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.rules import engine, nodes
from monitor.rules.engine import RuleSet
from monitor.rules.entities import Entity, Gazetteer
from monitor.rules.loader import RuleSpec
from monitor.rules.nodes import DocView
from monitor.rules.query import parse, phrase
from monitor.types import Document

GAZETTEER = Gazetteer({
    "estonia": Entity("estonia", "Estonia", "country", ("nato-member",), (phrase("Estoni*"), phrase("Tallinn"))),
    "mig-31": Entity("mig-31", "MiG-31", "aircraft", ("military-aircraft",), (phrase("MiG-31"),)),
    "drone-generic": Entity("drone-generic", "drone", "drone", (), (phrase("drone*"), phrase("Drohne*"))),
})


def rules(*queries: str, **extra: object) -> RuleSet:
    specs = [RuleSpec(id=f"r{i}", title="t", severity="high", query=parse(q), **extra)  # type: ignore[arg-type]
             for i, q in enumerate(queries)]
    return RuleSet(specs, GAZETTEER)


def fires(query: str, content: str = "", **doc: object) -> bool:
    return bool(rules(query).match(Document(id="d", content=content, **doc)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("query", "text", "expected"), [
    ("violat*", "Jets violated the border", True),
    ("violat*", "a violin", False),
    ('"shoot down"', "the shoot-down of a drone", True),
    ('"shoot down"', "shoot the ball down", False),
    ('"shoot* down"', "shooting down drones", True),
    ("mig-31", "three MiG 31 jets", True),
    ("jets NEAR/2 airspace", "jets violated airspace", True),
    ("jets NEAR/1 airspace", "jets violated airspace", False),
    ("airspace NEAR/2 jets", "jets violated airspace", True),
    ("airspace NEAR/2f jets", "jets violated airspace", False),
    ("jets NEAR/2f airspace", "jets violated airspace", True),
    ('(jets OR drones) NEAR/3 "estonian airspace"', "drones entered Estonian airspace", True),
    ("drones AND NOT hobby", "hobby drones", False),
    ("drones NOT hobby", "military drones", True),
    ("@nato-member", "Tallinn said", True),
    ("@estonia", "Estonian jets", True),
    ("@military-aircraft NEAR/3 violat*", "a MiG-31 violated", True),
    ("@drone", "Drohnen über Polen", True),
    ("/art(icle)? ?4\\b/", "under art 4 of the treaty", True),
    ("/art(icle)? ?4\\b/", "article 45", False),
    ("and", "drones and jets", True),
])
def test_semantics(query: str, text: str, expected: bool) -> None:
    assert fires(query, text) is expected


def test_phrases_and_near_do_not_cross_fields() -> None:
    assert not fires('"estonian airspace"', title="Estonian", content="airspace closed")
    assert not fires("estonian NEAR/5 airspace", title="Estonian", content="airspace closed")
    assert fires("estonian AND airspace", title="Estonian", content="airspace closed")


def test_near_a_term_inside_the_other_side() -> None:
    # "Within n tokens, either order": a helicopter between "flew" and "territory" is within any
    # distance of that span; but a term is never near itself, nor a span that shares its ends.
    text = "flew a Belarusian helicopter some 300 metres into Lithuanian territory"
    assert fires("helicopter NEAR/1 (flew NEAR/9 territory)", text)
    assert not fires("helicopter NEAR/1f (flew NEAR/9 territory)", text)  # not before the span
    assert not fires("shot NEAR/3 \"shot down\"", "shot down")
    assert not fires("drone* NEAR/5 drones", "drones")
    match = rules("helicopter NEAR/1 (flew NEAR/9 territory)").match(Document(id="d", content=text))[0]
    assert match.terms == ("flew … territory",) and match.highlights == ((0, len(text)),)


def test_field_scope_feed_and_tag() -> None:
    assert fires("title:(drone*)", title="Drones over base", content="nothing")
    assert not fires("title:(drone*)", title="Nothing", content="drones")
    assert fires("drones AND feed:nato-news", "drones", feed="NATO-News")
    assert not fires("drones AND tag:official", "drones", tags=("blog",))
    only_titles = rules("drones", fields=("title",))
    assert not only_titles.match(Document(id="d", content="drones"))


def test_weights_and_threshold() -> None:
    weighted = rules("drone* OR jets", weights=(("shot down", parse('"shot down"'), 3.0),
                                                 ("intercepted", parse("intercepted"), 1.0)),
                     threshold=3.0)
    assert weighted.match(Document(id="d", content="drones were shot down"))[0].score == 3.0
    assert not weighted.match(Document(id="d", content="drones were intercepted"))


def test_match_reports_terms_entities_and_snippet() -> None:
    ruleset = rules("(violat* NEAR/6 airspace) AND @military-aircraft")
    doc = Document(id="d", title="Incursion",
                   content="On Friday three Russian MiG-31 jets violated Estonian airspace for 12 minutes.")
    (match,) = ruleset.match(doc)
    assert match.terms == ("mig 31", "violated … airspace")
    assert match.entities == ("mig-31", "estonia")
    assert "violated Estonian airspace" in match.snippet
    assert [match.snippet[s:e] for s, e in match.highlights] == ["MiG-31", "violated Estonian airspace"]


WORDS = ["drones", "drone", "jets", "violated", "airspace", "estonian", "shot", "down", "hobby", "tallinn",
         "mig", "31"]
QUERIES = ["drone*", '"shot down"', "jets NEAR/3 airspace", "violat* NEAR/2f airspace AND NOT hobby",
           "@estonia AND (jets OR drone*)", "NOT hobby", "(shot NEAR/1f down) OR @mig-31",
           "title:(jets) OR summary:(drones)", "/mig 31/ AND airspace"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=25), st.lists(st.sampled_from(WORDS), max_size=4))
def test_indexed_matching_equals_evaluating_every_rule(content: list[str], title: list[str]) -> None:
    ruleset = rules(*QUERIES)
    doc = Document(id="d", title=" ".join(title), content=" ".join(content))
    view = DocView(ruleset.terms, doc)
    brute = [r.spec.id for r in ruleset.rules if r.root.holds(view, r.scope)]
    assert [m.rule for m in ruleset.match(doc)] == brute


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=25), st.lists(st.sampled_from(WORDS), max_size=4),
       st.lists(st.sampled_from(WORDS), max_size=6))
def test_positions_by_scans_and_by_one_index_give_the_same_matches(content: list[str], title: list[str],
                                                                   summary: list[str]) -> None:
    # A document is scanned for the positions of a few tokens, then indexed once when asked for
    # many (nodes._SCANS); either way the matches, terms and snippets must be the same.
    doc = Document(id="d", title=" ".join(title), summary=" ".join(summary), content=" ".join(content))
    found = {}
    for scans in (0, 3, 10**9):  # indexed at once, indexed after three scans, never indexed
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(nodes, "_SCANS", scans)
            found[scans] = rules(*QUERIES).match(doc)
            view = DocView(rules(*QUERIES).terms, doc)
            view._matched = set(view.fields[0].tokens + view.fields[1].tokens + view.fields[2].tokens)
            for token in sorted(view._matched):
                assert view._positions_of(token) == [
                    base + i for base, field in zip(view.bases, view.fields, strict=True)
                    for i, t in enumerate(field.tokens) if t == token]
    assert found[0] == found[3] == found[10**9]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "x"]), max_size=40), st.integers(1, 6), st.booleans(),
       st.sampled_from(["a", '"a b"', '"a b c"', "(a OR \"b c\")", "(a NEAR/1 b)", "(a NEAR/3 b)"]))
def test_near_pairs_every_left_with_every_right_within_the_distance(tokens: list[str], distance: int,
                                                                     ordered: bool, left: str) -> None:
    # The definition, by brute force: all pairs of a left span and a right span that do not
    # overlap, the right one after the left (or before, if unordered) by at most the distance;
    # unordered, also those where one span lies strictly inside the other.
    ruleset = rules(f"{left} NEAR/{distance}{'f' if ordered else ''} (b OR \"c a\" OR x)")
    near, every = ruleset.rules[0].root, nodes.ALL_FIELDS
    assert isinstance(near, nodes.NearNode)
    view = DocView(ruleset.terms, Document(id="d", content=" ".join(tokens)))
    lefts, rights = near.left.spans(view, every), near.right.spans(view, every)
    expected = [(a, b) for a in lefts for b in rights
                if 0 < b[0] - a[1] <= distance or (not ordered and 0 < a[0] - b[1] <= distance)
                or (not ordered and (b[0] < a[0] <= a[1] < b[1] or a[0] < b[0] <= b[1] < a[1]))]
    assert near.pairs(view, every, first_only=False) == expected
    assert near.pairs(view, every, first_only=True) == expected[:1]


def test_a_rule_set_matching_many_documents_matches_as_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tokens are looked up once and remembered; when the memory is full it starts again with
    # the document at hand. Neither may change what matches, or the terms and snippets reported.
    monkeypatch.setattr(engine, "_CACHE_LIMIT", 12)
    shared = rules(*QUERIES)
    texts = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(0, len(WORDS), 2)] + [" ".join(WORDS)] * 2
    sizes = []
    for number, text in enumerate(texts):
        doc = Document(id=str(number), title=text[:31], content=text + f" n{number}")
        assert shared.match(doc) == rules(*QUERIES).match(doc)
        sizes.append(len(shared.terms._seen))
    assert max(sizes) <= 12 + len(WORDS) + 2 and sizes != sorted(sizes)  # it was bounded, and restarted


@pytest.mark.parametrize("fields", [("content", "title"), ("summary", "content", "title")])
def test_fields_in_any_order_match_as_in_document_order(fields: tuple[str, ...]) -> None:
    doc = Document(id="d", title="Tallinn says drones crossed", summary="Estonian jets scrambled",
                   content="A drone was seen over Tallinn; Estonia protested.")
    queries = ["drone* AND @estonia", "jets NEAR/2 scrambled", "Tallinn"]
    in_order = tuple(f for f in ("title", "summary", "content") if f in fields)
    assert rules(*queries, fields=fields).match(doc) == rules(*queries, fields=in_order).match(doc)
    assert rules(*queries, fields=fields).match(doc)  # and they match something
