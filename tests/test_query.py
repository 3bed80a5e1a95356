"""The query parser: structure, precedence, and errors that point at the right column."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import QueryError
from monitor.rules.query import And, EntityRef, Meta, Near, Not, Or, Phrase, Regex, Scope, Word, parse


def test_precedence_not_near_and_or() -> None:
    tree = parse("a OR b AND c NEAR/3 d AND NOT e")
    assert isinstance(tree, Or)
    right = tree.children[1]
    assert isinstance(right, And)
    assert isinstance(right.children[1], Near)
    assert isinstance(right.children[2], Not)
    with pytest.raises(QueryError, match="left side of NEAR/3"):
        parse("NOT c NEAR/3 d")  # NOT binds tighter than NEAR, and NEAR takes no negation


def test_terms() -> None:
    tree = parse('violat* AND "shoot* down" AND MiG-31 AND @nato AND /art\\.? ?4/ AND feed:nato-news')
    assert isinstance(tree, And)
    word, phrase, split, entity, regex, meta = tree.children
    assert word == Word("violat", True, 1)
    assert isinstance(phrase, Phrase) and [w.prefix for w in phrase.words] == [True, False]
    assert isinstance(split, Phrase) and [w.token for w in split.words] == ["mig", "31"]
    assert entity == EntityRef("nato", 42)
    assert isinstance(regex, Regex) and regex.pattern == "art\\.? ?4"
    assert meta == Meta("feed", "nato-news", 68)


def test_bare_not_is_and_not() -> None:
    tree = parse("drone NOT hobby")
    assert isinstance(tree, And) and isinstance(tree.children[1], Not)


def test_field_scope_and_ordered_near() -> None:
    tree = parse("title:(jet OR jets) AND violat* NEAR/5f airspace")
    assert isinstance(tree, And)
    assert isinstance(tree.children[0], Scope) and tree.children[0].field == "title"
    near = tree.children[1]
    assert isinstance(near, Near) and near.ordered and near.distance == 5


@pytest.mark.parametrize(("query", "column", "fragment"), [
    ("", 1, "empty query"),
    ("article 4", 9, "no operator"),
    ("a and b", 3, "upper case"),
    ("a AND", 6, "expected a term after AND"),
    ("violat* NEAR/5", 15, "expected a term after NEAR/5"),
    ("(a OR b", 1, "unclosed"),
    ("a OR b)", 7, "unbalanced"),
    ('"open phrase', 1, "unterminated phrase"),
    ("ab*", 1, "at least 3 letters"),
    ("a*b", 1, "may only end"),
    ("a NEAR b", 3, "malformed proximity"),
    ("a NEAR/0 b", 3, "distance"),
    ("a NEAR/3 (b AND c)", 3, "right side"),
    ("@ AND b", 1, "entity name"),
    ("()", 2, "empty parentheses"),
    ("feed: AND x", 1, "needs a name"),
    ("(drone or missile) AND attack", 8, "operators are upper case: write OR"),
    ("x AND (drone and missile)", 14, "operators are upper case: write AND"),
    ("titel:(drone OR jet)", 1, "unknown field 'titel:' (hint: did you mean 'title'?)"),
])
def test_errors_point_at_the_column(query: str, column: int, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.column == column
    assert fragment in str(caught.value)


_ALPHABET = st.sampled_from(['a', 'b', 'violat*', '"x y"', '(', ')', ' AND ', ' OR ', ' NOT ', ' NEAR/3 ',
                             '@nato', 'title:', '/re/', '*', '"', ' ', 'é', 'and', 'feed:x'])


@given(st.lists(_ALPHABET, max_size=12).map("".join))
def test_parser_raises_only_query_errors_on_token_soup(query: str) -> None:
    try:
        parse(query)
    except QueryError as error:
        assert 1 <= error.column <= len(query) + 1


@given(st.text(max_size=40))
def test_parser_raises_only_query_errors_on_any_text(query: str) -> None:
    try:
        parse(query)
    except QueryError as error:
        assert error.column >= 1
