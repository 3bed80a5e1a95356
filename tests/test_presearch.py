"""The presearcher never drops a rule that holds, and does prune the ones that cannot."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.rules import rarity
from monitor.types import Document
from tests.helpers import positional_queries
from tests.test_engine import rules

WORDS = ["drone", "drones", "drohne", "jet", "jets", "air", "airspace", "shot", "down", "mig", "31",
         "tallinn", "estonian", "hobby"]
OTHERS = ["/jets? down/", "tag:x", "feed:f"]


def _queries() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND NOT {p[1]})"),
            st.tuples(st.sampled_from(["title", "summary", "content"]), inner).map(lambda p: f"{p[0]}:({p[1]})"),
        )
    return st.recursive(st.one_of(positional_queries(), st.sampled_from(OTHERS)), extend, max_leaves=5)


_TEXT = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(_queries(), min_size=1, max_size=6), _TEXT, _TEXT, _TEXT,
       st.sampled_from([("title", "summary", "content"), ("title",), ("summary", "content")]))
def test_presearch_keeps_every_rule_that_holds(queries: list[str], title: str, summary: str, content: str,
                                               fields: tuple[str, ...]) -> None:
    ruleset = rules(*queries, fields=fields)
    doc = Document(id="d", title=title, summary=summary, content=content, tags=("x",), feed="f")
    view = ruleset.view(doc)
    holding = [n for n, rule in enumerate(ruleset.rules) if rule.root.holds(view, rule.scope)]
    assert set(holding) <= set(ruleset.candidates(view))
    assert [m.rule for m in ruleset.match(doc)] == [f"r{n}" for n in holding]


def test_presearch_skips_rules_whose_necessary_terms_are_absent() -> None:
    ruleset = rules("jets AND airspace", '"shot down" OR @estonia', "title:(drones)", "drones NEAR/3 hobby",
                    "NOT hobby", "/jets/")
    def evaluated(**fields: str) -> list[int]:
        return ruleset.candidates(ruleset.view(Document(id="d", **fields)))  # type: ignore[arg-type]
    assert evaluated(content="jets over the sea and shot") == [4, 5]  # no airspace, no "down"
    assert evaluated(content="jets in airspace, Tallinn says") == [0, 1, 4, 5]
    assert evaluated(title="a hobby", content="drones") == [3, 4, 5]  # drones not in the title
    assert evaluated(title="drones", content="hobby") == [2, 3, 4, 5]


def test_rules_are_indexed_under_their_rarest_terms() -> None:
    assert rarity.frequency("airspace") < rarity.frequency("the")
    assert rarity.frequency("violat", prefix=True) > rarity.frequency("violated")
    ruleset = rules("the AND airspace AND jets", '"estonian airspace" OR (jets AND NOT the)')
    texts = ruleset.terms.texts
    keys = {texts[t]: [entry[0] for entry in alone] for t, (alone, _) in ruleset._by_term.items() if alone}
    assert keys == {"estonian": [1], "jets": [1]}
    # A rule with a second clause is indexed under a pair: its rarest term, then the next rarest.
    pairs = {(texts[t], texts[u]): [entry[0] for entry in entries]
             for t, (_, by_second) in ruleset._by_term.items() for u, entries in by_second.items()}
    assert pairs == {("airspace", "jets"): [0]}
