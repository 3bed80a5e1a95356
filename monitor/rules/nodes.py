"""Compiled query nodes and the per-document view they are evaluated on.

Pure. A document's tokens from all fields share one position space, with a
gap of GAP positions between fields so that phrases and NEAR never reach
across a field boundary. Term positions are computed only for the terms a
candidate rule asks about.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from itertools import chain, compress, count
from typing import NamedTuple, Protocol, TypeVar

from monitor.rules.regex import compile_regex
from monitor.rules.sentences import sentence_spans
from monitor.text import Field
from monitor.types import Document

GAP = 1000
_SCANS = 8  # tokens a document is scanned for before all its matching tokens are indexed at once
ALL_FIELDS: tuple[int, ...] = (0, 1, 2)  # the scope of most rules; compiled rules use this very tuple
Span = tuple[int, int]


class Hit(NamedTuple):
    """A matched run of tokens: field index, first and last token index in it, and its text."""

    field: int
    first: int
    last: int
    label: str


class TermLookup(Protocol):
    def present(self, tokens: list[str]) -> tuple[set[int], set[str]]: ...

    def tokens_of(self, term: int, matched: set[str]) -> list[str]: ...

    watched: int  # how many nodes have been watched: a view's ``live`` sets are made again when it grows

    def live(self, present: set[int]) -> tuple[set[CNode], set[CNode]]: ...


class Watch(Protocol):
    """Where OR and entity nodes register what DocView.live finds for them (TermIndex)."""

    def watch(self, nodes: Iterable[CNode]) -> None:
        """Report each of ``nodes`` live when one of its needs is present."""

    def watch_words(self, node: CNode, words: frozenset[int]) -> None:
        """Report ``node`` worded when one of ``words`` is present."""


class DocView:
    """One document as the rules see it: tokens, the terms present, lazily built positions."""

    def __init__(self, terms: TermLookup, doc: Document, fields: list[Field] | None = None) -> None:
        self.doc = doc
        self.fields = fields or [Field.from_raw(doc.title), Field.from_raw(doc.summary),
                                 Field.from_raw(doc.content)]
        first, second, third = (f.tokens for f in self.fields)
        self.bases = (0, len(first) + GAP, len(first) + len(second) + 2 * GAP)
        self.present, self._matched = terms.present(first + second + third)  # term ids; their tokens
        self._terms = terms
        self._token_positions: dict[str, list[int]] = {}
        self._scans = 0  # tokens found by scans so far (see _positions_of)
        self._term_positions: dict[int, list[int]] = {}
        self._position_sets: dict[int, set[int]] = {}  # see position_set
        self._field_sets: list[set[str] | None] = [None, None, None]  # see in_fields
        self._hits: dict[Span, Hit] = {}  # see hit
        self.entities: dict[tuple[int, ...], tuple[str, ...]] = {}  # RuleSet.entities_in, by scope
        # What nodes hold and their spans, by method, node and scope (once_per_view).
        self.memo: dict[tuple[object, CNode, tuple[int, ...]], object] = {}
        self._pieces: dict[int, list[tuple[int, Field, tuple[int, int]]]] = {}  # see sentences()
        self._sentences: dict[tuple[int, int, int], DocView] = {}  # by field, first number and size
        self._live: tuple[set[CNode], set[CNode]] | None = None  # see live()
        self._live_for = 0

    def live(self) -> tuple[set[CNode], set[CNode]]:
        """The alternatives of OR and entity nodes whose needs this document meets, and the OR and
        entity nodes one of whose words it holds: found once, from its terms, for every such
        node of the rule set."""
        if self._live is None or self._live_for != self._terms.watched:
            self._live_for = self._terms.watched
            self._live = self._terms.live(self.present)
        return self._live

    def sentences(self, field: int, terms: frozenset[int] | None = None,
                  size: int = 1) -> list[tuple[int, DocView]]:
        """Each sentence of a field as a view of its own (that field holding the sentence only,
        the others empty), with the index of its first token in the field; with ``size`` n, each
        window of n consecutive sentences (all of them when the field has fewer) as one view.
        With ``terms``, only the sentences (windows) that hold one of them (found by their
        positions in the document). The sentences are found once, when a ``sentence:(…)`` first
        asks, and a view is made when first wanted."""
        pieces = self._pieces.get(field)
        if pieces is None:
            pieces = self._pieces[field] = self._sentence_pieces(field)
        last = max(len(pieces) - size, 0)  # the last window's first sentence
        if terms is None:
            numbers: Iterable[int] = range(last + 1)
        else:
            starts = [offset for offset, _, _ in pieces]
            base, length = self.bases[field], len(self.fields[field].tokens)
            holding = {bisect_right(starts, p - base) - 1 for term in terms & self.present
                       for p in self.positions(term) if base <= p < base + length}
            numbers = sorted({first for n in holding for first in range(max(n - size + 1, 0), min(n, last) + 1)})
        return [(pieces[n][0], self._window(field, n, size)) for n in numbers]

    def _sentence_pieces(self, field: int) -> list[tuple[int, Field, tuple[int, int]]]:
        """(first token, sentence, its span in the field's text) of each sentence with a token."""
        text = self.fields[field].text
        spans = sentence_spans(text)
        pieces = [Field(text[start:end]) for start, end in spans]
        if sum(len(p.tokens) for p in pieces) != len(self.fields[field].tokens):
            # (cannot happen: a boundary is never inside a token)
            pieces, spans = [self.fields[field]], [(0, len(text))]
        found, offset = [], 0
        for piece, span in zip(pieces, spans, strict=True):
            if piece.tokens:
                found.append((offset, piece, span))
            offset += len(piece.tokens)
        return found

    def _window(self, field: int, number: int, size: int) -> DocView:
        view = self._sentences.get((field, number, size))
        if view is None:
            pieces = self._pieces[field]
            if size == 1 or len(pieces) == 1:
                piece = pieces[number][1]
            else:  # the text from the first sentence's start to the last one's end
                end = pieces[min(number + size, len(pieces)) - 1][2][1]
                piece = Field(self.fields[field].text[pieces[number][2][0]:end])
            fields = [_EMPTY_FIELD] * 3
            fields[field] = piece
            view = self._sentences[(field, number, size)] = DocView(self._terms, self.doc, fields)
        return view

    def tokens_of(self, term: int) -> list[str]:
        """The document's distinct tokens that match ``term``."""
        return self._terms.tokens_of(term, self._matched)

    def _positions_of(self, token: str) -> list[int]:
        # Most documents are asked for a few tokens, each found by list.count and list.index
        # scans (in C) rather than by indexing every token; counting first spares the ValueError
        # that ends an index() loop, which costs more than a scan. A document asked for many
        # (a long one that many rules look at) has every token that matches a term indexed in
        # one pass instead, past _SCANS scans.
        found = self._token_positions.get(token)
        if found is None:
            if self._scans == _SCANS:
                self._index_matched()
                return self._positions_of(token)
            found = []
            if self._scans < _SCANS or token not in self._matched:
                self._scans += 1
                for base, field in zip(self.bases, self.fields, strict=True):
                    index = -1
                    for _ in range(field.tokens.count(token)):
                        index = field.tokens.index(token, index + 1)
                        found.append(base + index)
            self._token_positions[token] = found
        return found

    def _index_matched(self) -> None:
        """Positions of every token that matches some term, in one pass over each field."""
        index: dict[str, list[int]] = {}
        contains = self._matched.__contains__
        for base, field in zip(self.bases, self.fields, strict=True):
            tokens = field.tokens
            for position in compress(count(base), map(contains, tokens)):
                index.setdefault(tokens[position - base], []).append(position)
        self._token_positions = index
        self._scans += 1  # past _SCANS: the index is complete for every matching token

    def positions(self, term: int) -> list[int]:
        """Sorted positions of every token that matches ``term``."""
        cached = self._term_positions.get(term)
        if cached is None:
            tokens = self.tokens_of(term) if term in self.present else []
            cached = self._positions_of(tokens[0]) if len(tokens) == 1 else sorted(
                chain.from_iterable(self._positions_of(t) for t in tokens))
            self._term_positions[term] = cached
        return cached

    def position_set(self, term: int) -> set[int]:
        """``positions(term)`` as a set (made once per view: phrases that share a word share it)."""
        found = self._position_sets.get(term)
        if found is None:
            found = self._position_sets[term] = set(self.positions(term))
        return found

    def first_position(self, term: int, scope: tuple[int, ...]) -> int | None:
        """The first position of ``term`` in ``scope``: found by scans that stop there, or read from
        its positions once every matching token is indexed (a long document many rules look at)."""
        if term not in self.present:
            return None
        if self._scans > _SCANS:  # every matching token is indexed: its positions are at hand
            positions = self.positions(term)
            if scope is ALL_FIELDS:
                return positions[0] if positions else None
            for field_index in scope:
                base = self.bases[field_index]
                number = bisect_left(positions, base)
                if number < len(positions) and positions[number] < base + len(self.fields[field_index].tokens):
                    return positions[number]
            return None
        tokens = self.tokens_of(term)
        for field_index in scope:  # in order: compiled scopes are sorted
            field_tokens = self.fields[field_index].tokens
            found = [field_tokens.index(token) for token in tokens if token in field_tokens]
            if found:
                return self.bases[field_index] + min(found)
        return None

    def in_fields(self, term: int, scope: tuple[int, ...]) -> bool:
        """Whether ``term`` is in one of the fields ``scope``: membership in each field's set of
        tokens, made once per view when asked (a title's is a handful), no positions needed."""
        if term not in self.present:
            return False
        sets = self._field_sets
        for index in scope:
            if sets[index] is None:
                sets[index] = set(self.fields[index].tokens)
            if not sets[index].isdisjoint(self.tokens_of(term)):  # type: ignore[union-attr]
                return True
        return False

    def field_of(self, position: int) -> int:
        return bisect_right(self.bases, position) - 1

    def scoped(self, term: int, scope: tuple[int, ...]) -> list[int]:
        positions = self.positions(term)
        if scope == ALL_FIELDS:
            return positions
        return [p for p in positions if self.field_of(p) in scope]

    def has(self, term: int, scope: tuple[int, ...]) -> bool:
        if term not in self.present:
            return False
        return scope == ALL_FIELDS or bool(self.scoped(term, scope))

    def hit(self, span: Span, label: str = "") -> Hit:
        if label:
            return self._hit(span, label)
        found = self._hits.get(span)  # made once per view: the same span is a hit of many nodes and rules
        if found is None:
            found = self._hits[span] = self._hit(span, "")
        return found

    def _hit(self, span: Span, label: str) -> Hit:
        field = self.field_of(span[0])
        base = self.bases[field]
        first, last = span[0] - base, span[1] - base
        return Hit(field, first, last, label or self.label(field, first, last))

    def label(self, field: int, first: int, last: int) -> str:
        tokens = self.fields[field].tokens
        if last - first < 8:
            return " ".join(tokens[first:last + 1])
        return f"{tokens[first]} … {tokens[last]}"


_EMPTY_FIELD = Field("")
N = TypeVar("N", bound="CNode")
R = TypeVar("R")
_MISSING = object()


def once_per_view(method: Callable[[N, DocView, tuple[int, ...]], R]) -> Callable[[N, DocView, tuple[int, ...]], R]:
    """A node's answer (whether it holds, its spans) computed once per document, node and scope,
    kept in ``view.memo``: NEAR and collect ask for the same spans again, and a named clause or an
    entity serves many rules. Keyed by the node itself, which the memo keeps alive, so no other
    node can take its place (as one could take a freed node's id). It keeps the method's name, by
    which pickle finds a bound method again: compiled rules are cached pickled."""
    @wraps(method)
    def cached(node: N, view: DocView, scope: tuple[int, ...]) -> R:
        key = (method, node, scope)
        found = view.memo.get(key, _MISSING)
        if found is _MISSING:
            found = view.memo[key] = method(node, view, scope)
        return found  # type: ignore[return-value]
    return cached


class CNode:
    """A compiled query node. ``named``: whether a named clause is in it (so only those parts are
    walked for the clauses a match reports). ``needs``: terms one of which a document must hold
    for the node to hold or to have a span (None: no term is necessary); an OR evaluates only
    the children whose needs the document meets. Each node takes a default, the compiler the
    rarest of ``options()``."""

    named = False
    needs: frozenset[int] | None = None

    def options(self) -> list[frozenset[int]]:
        """Sets of terms each necessary for the node (``needs`` is one of them)."""
        return [self.needs] if self.needs is not None else []

    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        raise NotImplementedError

    def spans(self, view: DocView, scope: tuple[int, ...]) -> list[Span]:
        """Token spans where a positional node is found (empty for others)."""
        return []

    def first(self, view: DocView, scope: tuple[int, ...]) -> int | None:
        """Where the first span starts, if any."""
        spans = self.spans(view, scope)
        return spans[0][0] if spans else None

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        """Append the hits that make this node hold."""
        out.extend(view.hit(span) for span in self.spans(view, scope))

    def clauses(self, view: DocView, scope: tuple[int, ...], out: list[str]) -> None:
        """Append the names of the clauses that make this node hold (asked of a node that holds,
        only when a match is built)."""
        return None


def _needed(nodes: Iterable[CNode]) -> frozenset[int]:
    """The terms one of which a document needs for one of ``nodes`` (each needing some) to hold."""
    return frozenset(chain.from_iterable(node.needs or () for node in nodes))


def _first_option(node: CNode) -> frozenset[int] | None:
    options = node.options()
    return options[0] if options else None


class TermNode(CNode):
    def __init__(self, term: int) -> None:
        self.term = term
        self.needs = frozenset([term])

    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        return self.term in view.present if scope is ALL_FIELDS else view.has(self.term, scope)

    def spans(self, view: DocView, scope: tuple[int, ...]) -> list[Span]:
        if self.term not in view.present:
            return []
        return [(p, p) for p in view.scoped(self.term, scope)]

    def first(self, view: DocView, scope: tuple[int, ...]) -> int | None:
        return view.first_position(self.term, scope)


class PhraseNode(CNode):
    def __init__(self, terms: tuple[int, ...]) -> None:
        self.terms = terms
        self.needs = frozenset(terms[:1]) or None

    def options(self) -> list[frozenset[int]]:
        return [frozenset([term]) for term in self.terms]

    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        return all(map(view.present.__contains__, self.terms)) and bool(self._spans(view, scope))

    def spans(self, view: DocView, scope: tuple[int, ...]) -> list[Span]:
        if not all(map(view.present.__contains__, self.terms)):
            return []
        return self._spans(view, scope)

    @once_per_view
    def _spans(self, view: DocView, scope: tuple[int, ...]) -> list[Span]:
        # The phrase is looked for from its rarest word in this document: each of its positions
        # proposes a start, which the other words' positions confirm or not.
        terms, size = self.terms, len(self.terms) - 1
        if not size:
            return [(p, p) for p in view.scoped(terms[0], scope)]
        if size == 1:  # most phrases: two words, one test each (no generator, no key function)
            first, second = view.positions(terms[0]), view.positions(terms[1])
            if len(second) < len(first):
                positions = view.position_set(terms[0])
                starts = [p - 1 for p in second if p - 1 in positions]
            else:
                positions = view.position_set(terms[1])
                starts = [p for p in first if p + 1 in positions]
        else:
            rarest = min(range(len(terms)), key=lambda k: len(view.positions(terms[k])))
            others = [(k - rarest, view.position_set(t)) for k, t in enumerate(terms) if k != rarest]
            starts = [p - rarest for p in view.positions(terms[rarest])
                      if all(p + shift in positions for shift, positions in others)]
        if scope is not ALL_FIELDS:
            starts = [p for p in starts if view.field_of(p) in scope]
        return [(p, p + size) for p in starts]


class AnyOfNode(CNode):
    """Any of many terms or phrases (an entity, group or type). Its words are one set operation on
    the document's terms; its phrases are looked at only when their rarest word is present (the
    phrases the view finds ``live``)."""

    def __init__(self, alternatives: list[TermNode | PhraseNode], watch: Watch) -> None:
        self.singles = frozenset(a.term for a in alternatives if isinstance(a, TermNode))
        self.phrases = frozenset(a for a in alternatives if isinstance(a, PhraseNode))
        watch.watch(self.phrases)
        watch.watch_words(self, self.singles)
        self.needs = self.singles | _needed(self.phrases) if alternatives else None

    @once_per_view
    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        live, worded = view.live()
        if scope is ALL_FIELDS:
            if self in worded:
                return True
        elif any(view.has(term, scope) for term in self.singles & view.present):
            return True
        return any(p.holds(view, scope) for p in self.phrases & live)

    @once_per_view
    def spans(self, view: DocView, scope: tuple[int, ...]) -> list[Span]:
        found = {(p, p) for term in self.singles & view.present for p in view.scoped(term, scope)}
        for phrase in self.phrases & view.live()[0]:
            found.update(phrase.spans(view, scope))
        return sorted(found)


class AndNode(CNode):
    def __init__(self, children: list[CNode]) -> None:
        self.children = children
        self.named = any(c.named for c in children)
        # Over all fields a plain term holds when it is present: those children are tested
        # together, as one set operation, before the others.
        self.terms = frozenset(c.term for c in children if type(c) is TermNode)
        self.others = [c for c in children if type(c) is not TermNode]
        self.needs = _first_option(self)

    def options(self) -> list[frozenset[int]]:
        return [c.needs for c in self.children if c.needs is not None]

    @once_per_view
    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        if scope is not ALL_FIELDS:
            return all(c.holds(view, scope) for c in self.children)
        if not self.terms <= view.present:
            return False
        for child in self.others:  # noqa: SIM110 (a loop: no generator to make)
            if not child.holds(view, scope):
                return False
        return True

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        for child in self.children:
            child.collect(view, scope, out)

    def clauses(self, view: DocView, scope: tuple[int, ...], out: list[str]) -> None:
        for child in self.children:
            if child.named:
                child.clauses(view, scope, out)


class OrNode(CNode):
    """Any of its children. ORs within it (named clauses too) are read as its own alternatives,
    and of those only the ones the document can hold are looked at: its words by one set
    operation on the document's terms, the others when the view finds them ``live`` (their
    needs met). A lexicon of a few hundred words and phrases costs a few set operations, not
    a call per alternative. ``children`` stay as written, for the clauses a match reports."""

    def __init__(self, children: list[CNode], watch: Watch) -> None:
        self.children = children
        self.named = any(c.named for c in children)
        self.alternatives: list[CNode] = []  # children, with the alternatives of ORs among them
        for child in children:
            inner = child
            while isinstance(inner, ClauseNode):
                inner = inner.child
            self.alternatives.extend(inner.alternatives if isinstance(inner, OrNode) else [child])
        self._words: dict[int, list[TermNode]] = {}
        for alternative in self.alternatives:
            if type(alternative) is TermNode:
                self._words.setdefault(alternative.term, []).append(alternative)
        self.terms = frozenset(self._words)
        self._others = [a for a in self.alternatives if type(a) is not TermNode]  # repeats kept, as written
        self._always = list(dict.fromkeys(a for a in self._others if a.needs is None))
        self._watched = frozenset(a for a in self._others if a.needs is not None)
        self._named = [c for c in children if c.named]
        watch.watch(self._watched)
        watch.watch_words(self, self.terms)
        self.needs = None if self._always else self.terms | _needed(self._watched)

    def _live(self, view: DocView) -> Iterable[CNode]:
        """The alternatives but words that may hold on ``view`` (each once, in no order)."""
        live = self._watched & view.live()[0]
        return chain(self._always, live) if self._always else live

    @once_per_view
    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        if scope is ALL_FIELDS:
            if self in view.live()[1]:
                return True
        elif any(view.has(term, scope) for term in self.terms & view.present):
            return True
        for child in self._live(view):  # noqa: SIM110 (a loop: no generator to make)
            if child.holds(view, scope):
                return True
        return False

    @once_per_view
    def spans(self, view: DocView, scope: tuple[int, ...]) -> list[Span]:
        found = {(p, p) for term in self.terms & view.present for p in view.scoped(term, scope)}
        for child in self._live(view):
            found.update(child.spans(view, scope))
        return sorted(found)

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        # Every alternative that holds, as often as it is written (the hits are sorted later).
        for term in self.terms & view.present:
            for word in self._words[term]:
                if word.holds(view, scope):
                    word.collect(view, scope, out)
        live = view.live()[0]
        for child in self._others:
            if (child.needs is None or child in live) and child.holds(view, scope):
                child.collect(view, scope, out)

    def clauses(self, view: DocView, scope: tuple[int, ...], out: list[str]) -> None:
        for child in self._named:
            if child.holds(view, scope):
                child.clauses(view, scope, out)


class NotNode(CNode):
    def __init__(self, child: CNode) -> None:
        self.child = child  # (not named: a clause under NOT never makes a match)

    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        return not self.child.holds(view, scope)

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        return None


class NearNode(CNode):
    def __init__(self, left: CNode, right: CNode, distance: int, ordered: bool) -> None:
        self.left, self.right = left, right
        self.distance, self.ordered = distance, ordered
        self.named = left.named or right.named
        self.needs = _first_option(self)

    def options(self) -> list[frozenset[int]]:
        return [side.needs for side in (self.left, self.right) if side.needs is not None]

    def pairs(self, view: DocView, scope: tuple[int, ...], first_only: bool) -> list[tuple[Span, Span]]:
        """The (left, right) spans within the distance, by left then right: each left span is
        paired only with the right spans that start near it, found by bisection (spans are
        sorted), not with every right span of a long document.

        Spans that overlap are not near, as a rule of one term is not near itself; but without
        an order, a span that lies strictly inside the other (a drone between "flew" and
        "airspace") is within any distance of it."""
        lefts = self.left.spans(view, scope)
        rights = self.right.spans(view, scope) if lefts else []
        if not rights:
            return []
        starts = [right[0] for right in rights]
        # A right span ending before a left one starts can start this much earlier still.
        reach = 0 if self.ordered else self.distance + max([last - first for first, last in rights])
        distance, ordered = self.distance, self.ordered
        out = []
        for left in lefts:
            low = bisect_right(starts, left[1]) if ordered else bisect_left(starts, left[0] - reach)
            for right in rights[low:bisect_right(starts, left[1] + distance)]:
                if right[0] > left[1]:
                    gap = right[0] - left[1]
                elif not ordered and left[0] > right[1]:
                    gap = left[0] - right[1]
                elif not ordered and (right[0] < left[0] <= left[1] < right[1]
                                      or left[0] < right[0] <= right[1] < left[1]):
                    gap = 0
                else:
                    continue
                if gap <= distance:
                    out.append((left, right))
                    if first_only:
                        return out
        return out

    @once_per_view
    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        # Both sides must hold somewhere before their positions are worth finding.
        return (self.left.holds(view, scope) and self.right.holds(view, scope)
                and bool(self.pairs(view, scope, first_only=True)))

    @once_per_view
    def _all_pairs(self, view: DocView, scope: tuple[int, ...]) -> list[tuple[Span, Span]]:
        return self.pairs(view, scope, first_only=False)

    @once_per_view
    def spans(self, view: DocView, scope: tuple[int, ...]) -> list[Span]:
        return sorted({(min(a[0], b[0]), max(a[1], b[1])) for a, b in self._all_pairs(view, scope)})

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        for a, b in self._all_pairs(view, scope):
            first, second = sorted((a, b))
            span = (first[0], max(first[1], second[1]))
            if second[0] - first[1] > 1:  # apart, with words between them
                label = f"{view.hit(first).label} … {view.hit(second).label}"
                out.append(view.hit(span, label))
            else:
                out.append(view.hit(span))

    def clauses(self, view: DocView, scope: tuple[int, ...], out: list[str]) -> None:
        self.left.clauses(view, scope, out)
        self.right.clauses(view, scope, out)


class ScopeNode(CNode):
    def __init__(self, field: int, child: CNode) -> None:
        self.scope = (field,)
        self.child = child
        self.named = child.named
        self.needs = child.needs

    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        return self.child.holds(view, self.scope)

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        self.child.collect(view, self.scope, out)

    def clauses(self, view: DocView, scope: tuple[int, ...], out: list[str]) -> None:
        self.child.clauses(view, self.scope, out)


class RegexNode(CNode):
    def __init__(self, pattern: str) -> None:
        self.pattern = compile_regex(pattern)  # RE2: linear in the text, so no pattern can stall matching

    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        return any(self.pattern.search(view.fields[i].normalised) for i in scope)

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        for index in scope:
            field = view.fields[index]
            match = self.pattern.search(field.normalised)
            if not match or not field.tokens:
                continue
            starts = field.token_starts()
            first = max(0, bisect_right(starts, match.start()) - 1)
            last = max(first, bisect_right(starts, max(match.end() - 1, 0)) - 1)
            out.append(Hit(index, first, last, match.group(0)))


class MetaNode(CNode):
    def __init__(self, kind: str, value: str) -> None:
        self.kind, self.value = kind, value.casefold()

    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        if self.kind == "feed":
            return view.doc.feed.casefold() == self.value
        return any(tag.casefold() == self.value for tag in view.doc.tags)

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        return None


class ClauseNode(CNode):
    """A named clause (``$name``): its body, under a name that matches report.

    One per definition and rule set, shared by every rule that uses it. Its body's methods are
    bound to it directly, so the name costs nothing while matching."""

    named = True

    def __init__(self, name: str, child: CNode) -> None:
        self.name, self.child = name, child
        self.needs = child.needs
        self.holds = child.holds  # type: ignore[method-assign]
        self.spans = child.spans  # type: ignore[method-assign]
        self.first = child.first  # type: ignore[method-assign]
        self.collect = child.collect  # type: ignore[method-assign]

    def clauses(self, view: DocView, scope: tuple[int, ...], out: list[str]) -> None:
        out.append(self.name)
        self.child.clauses(view, scope, out)


class SentenceNode(CNode):
    """``sentence:(…)``: the child holds in one sentence of a field in scope, read as a document of
    its own (so a NOT inside reads that sentence only); ``sentence/n:(…)`` (``size`` n): in n
    consecutive sentences of a field, read together as one. ``trigger``: terms one of which the
    child needs, to refuse a document without any at once."""

    def __init__(self, child: CNode, trigger: frozenset[int] | None, size: int = 1) -> None:
        self.child, self.trigger, self.size = child, trigger, size
        self.named = child.named
        self.needs = child.needs  # what one sentence needs, the document has

    def _holding(self, view: DocView, scope: tuple[int, ...]) -> Iterator[tuple[int, int, DocView]]:
        """(field, first token, view) of each sentence in which the child holds."""
        if self.trigger is not None and self.trigger.isdisjoint(view.present):
            return
        terms = self.trigger if self.trigger is not None else self.child.needs
        for field in scope:
            if view.fields[field].tokens:
                for offset, sentence in view.sentences(field, terms, self.size):
                    if self.child.holds(sentence, ALL_FIELDS):
                        yield field, offset, sentence

    @once_per_view
    def holds(self, view: DocView, scope: tuple[int, ...]) -> bool:
        return next(self._holding(view, scope), None) is not None

    def collect(self, view: DocView, scope: tuple[int, ...], out: list[Hit]) -> None:
        for field, offset, sentence in self._holding(view, scope):
            hits: list[Hit] = []
            self.child.collect(sentence, ALL_FIELDS, hits)
            out.extend(Hit(field, hit.first + offset, hit.last + offset, hit.label) for hit in hits)

    def clauses(self, view: DocView, scope: tuple[int, ...], out: list[str]) -> None:
        for _, _, sentence in self._holding(view, scope):
            self.child.clauses(sentence, ALL_FIELDS, out)
