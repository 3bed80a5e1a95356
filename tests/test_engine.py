"""Matching semantics of the compiled engine, checked against a brute-force evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.rules import engine, nodes
from monitor.rules import query as q
from monitor.rules.engine import RuleSet
from monitor.rules.entities import Entity, Gazetteer
from monitor.rules.loader import RuleSpec
from monitor.rules.nodes import DocView
from monitor.rules.query import parse, phrase
from monitor.types import FIELDS, Document
from tests.helpers import positional_queries

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

# The words of tests/test_presearch.py's queries, and some they do not name.
REFERENCE_WORDS = ["drone", "drones", "drohne", "jet", "jets", "air", "airspace", "shot", "down", "mig", "31",
                   "tallinn", "estonian", "hobby", "the"]


# --- the engine against a plain evaluation of the query tree, by the definitions ------------------

Spans = set[tuple[int, int]]


class Reference:
    """Queries read straight from their tree over a document's tokens, with none of the engine's
    indexes, memos or shortcuts: where each node is found (spans), whether it holds, and the
    spans of the hits a match reports."""

    def __init__(self, doc: Document) -> None:
        view = DocView(rules().terms, doc)
        self.fields = [f.tokens for f in view.fields]
        self.bases = view.bases

    def _tokens(self, scope: tuple[int, ...]) -> list[tuple[int, str]]:
        return [(self.bases[f] + i, t) for f in scope for i, t in enumerate(self.fields[f])]

    def _words(self, word: q.Word, scope: tuple[int, ...]) -> Spans:
        return {(p, p) for p, t in self._tokens(scope) if t == word.token or (word.prefix and t.startswith(word.token))}

    def spans(self, ast: q.Node, scope: tuple[int, ...]) -> Spans:
        if isinstance(ast, q.Word):
            return self._words(ast, scope)
        if isinstance(ast, q.Phrase):
            starts = {p for p, _ in self._words(ast.words[0], scope)}
            every = [{p for p, _ in self._words(w, nodes.ALL_FIELDS)} for w in ast.words]
            return {(p, p + len(ast.words) - 1) for p in starts
                    if all(p + k in positions for k, positions in enumerate(every))}
        if isinstance(ast, q.EntityRef):
            return set().union(*(self.spans(a, scope) for e in GAZETTEER.resolve(ast.name) for a in e.aliases))
        if isinstance(ast, q.Or):
            return set().union(*(self.spans(c, scope) for c in ast.children))
        if isinstance(ast, q.Near):
            return {(min(a[0], b[0]), max(a[1], b[1])) for a, b in self.pairs(ast, scope)}
        return set()  # AND, NOT and field scopes have no spans

    def pairs(self, ast: q.Near, scope: tuple[int, ...]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        n, ordered = ast.distance, ast.ordered
        return [(a, b) for a in self.spans(ast.left, scope) for b in self.spans(ast.right, scope)
                if 0 < b[0] - a[1] <= n or (not ordered and 0 < a[0] - b[1] <= n)
                or (not ordered and (b[0] < a[0] <= a[1] < b[1] or a[0] < b[0] <= b[1] < a[1]))]

    def holds(self, ast: q.Node, scope: tuple[int, ...]) -> bool:
        if isinstance(ast, q.And):
            return all(self.holds(c, scope) for c in ast.children)
        if isinstance(ast, q.Or):
            return any(self.holds(c, scope) for c in ast.children)
        if isinstance(ast, q.Not):
            return not self.holds(ast.child, scope)
        if isinstance(ast, q.Scope):
            return self.holds(ast.child, (FIELDS.index(ast.field),))
        return bool(self.spans(ast, scope))

    def hits(self, ast: q.Node, scope: tuple[int, ...]) -> Spans:
        if isinstance(ast, q.And):
            return set().union(*(self.hits(c, scope) for c in ast.children))
        if isinstance(ast, q.Or):
            return set().union(*(self.hits(c, scope) for c in ast.children if self.holds(c, scope)))
        if isinstance(ast, q.Scope):
            return self.hits(ast.child, (FIELDS.index(ast.field),))
        if isinstance(ast, q.Near):
            return {(min(a[0], b[0]), max(a[1], b[1])) for a, b in self.pairs(ast, scope)}
        if isinstance(ast, q.Not):
            return set()
        return self.spans(ast, scope)


def _compound() -> st.SearchStrategy[str]:

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=4).map(lambda p: "(" + " OR ".join(p) + ")"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND NOT {p[1]})"),
            st.tuples(st.sampled_from(["title", "content"]), inner).map(lambda p: f"{p[0]}:({p[1]})"),
        )
    return st.recursive(positional_queries(), extend, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(_compound(), min_size=1, max_size=4), st.lists(st.sampled_from(REFERENCE_WORDS), max_size=30),
       st.lists(st.sampled_from(REFERENCE_WORDS), max_size=5))
def test_the_engine_reads_queries_as_their_definitions(queries: list[str], content: list[str],
                                                       title: list[str]) -> None:
    # Rules compiled together share their entity and OR nodes, as a real rule set does; every
    # rule must still hold, find its spans and report its hits as its query tree says.
    ruleset = rules(*queries)
    doc = Document(id="d", title=" ".join(title), content=" ".join(content))
    view, reference = ruleset.view(doc), Reference(doc)
    for rule in ruleset.rules:
        query = rule.spec.query
        assert rule.root.holds(view, rule.scope) == reference.holds(query, rule.scope), query
        assert set(rule.root.spans(view, rule.scope)) == reference.spans(query, rule.scope), query
        if reference.holds(query, rule.scope):
            hits: list[nodes.Hit] = []
            rule.root.collect(view, rule.scope, hits)
            assert {(view.bases[h.field] + h.first, view.bases[h.field] + h.last) for h in hits} == \
                reference.hits(query, rule.scope), query
    assert [m.rule for m in ruleset.match(doc)] == [
        r.spec.id for r in ruleset.rules if reference.holds(r.spec.query, r.scope)]


def test_matches_without_snippets_differ_only_by_what_the_snippet_gives() -> None:
    ruleset = rules(*QUERIES)
    doc = Document(id="d", title="Tallinn: jets",
                   content="Three MiG-31 jets violated Estonian airspace; drones shot down.")
    full, bare = ruleset.match(doc), ruleset.match(doc, snippets=False)
    assert full and [m.rule for m in bare] == [m.rule for m in full]
    for with_snippet, without in zip(full, bare, strict=True):
        assert without.snippet == "" and without.highlights == () and without.snippet_entities == ()
        assert without.terms == with_snippet.terms and without.entities == with_snippet.entities
        assert without.clauses == with_snippet.clauses and without.score == with_snippet.score
        assert with_snippet.snippet and bool(with_snippet.highlights) == bool(with_snippet.terms)
