"""The rule engine: compile a rule set once, then match documents against it.

Pure. Every term of every rule and every gazetteer alias is registered once
in a ``TermIndex``. A document's tokens are looked up there (a per-token
cache makes that a subset test, an intersection and a union, all in C), which
names the terms present; each rule is indexed under a *necessary* set of
terms (one of which must be present for the rule to hold), so only the rules
whose terms occur in the document are evaluated. Matching costs about one
pass over the document's tokens plus work for those rules, not rules x terms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, filterfalse

from monitor.rules import query as q
from monitor.rules.entities import Gazetteer
from monitor.rules.loader import RuleSpec
from monitor.rules.nodes import (
    ALL_FIELDS,
    AndNode,
    AnyOfNode,
    ClauseNode,
    CNode,
    DocView,
    Hit,
    MetaNode,
    NearNode,
    NotNode,
    OrNode,
    PhraseNode,
    RegexNode,
    ScopeNode,
    SentenceNode,
    TermNode,
)
from monitor.text import cut_snippet
from monitor.types import FIELDS, Document, Match

_CACHE_LIMIT = 500_000
_NONE: frozenset[str] = frozenset()
_SNIPPET_TOKENS = 60


class TermIndex:
    """Exact words and prefixes, each with an id; maps a document's tokens to term ids."""

    def __init__(self) -> None:
        self.exact: dict[str, int] = {}
        self.prefixes: dict[int, dict[str, int]] = {}
        self.texts: list[str] = []
        self._cache: dict[str, tuple[int, ...]] = {}  # the tokens that match some term
        self._seen: set[str] = set()  # every token looked up since the cache was last cleared
        self._prefix_tokens: dict[int, set[str]] = {}  # prefix term -> the tokens seen that match it

    def add(self, word: q.Word) -> int:
        table = self.prefixes.setdefault(len(word.token), {}) if word.prefix else self.exact
        if word.token not in table:
            table[word.token] = len(self.texts)
            self.texts.append(word.token + ("*" if word.prefix else ""))
        return table[word.token]

    def lookup(self, token: str) -> tuple[int, ...]:
        found = [self.exact[token]] if token in self.exact else []
        for length, table in self.prefixes.items():
            if len(token) >= length and token[:length] in table:
                found.append(table[token[:length]])
        return tuple(found)

    def present(self, tokens: list[str]) -> tuple[set[int], set[str]]:
        """The ids of the terms that a document's tokens match, and those tokens.

        Lookups are cached per token, so the steady state is three passes in C: a subset test,
        an intersection with the tokens that match some term, and the union of their terms.
        """
        seen = self._seen
        if not seen.issuperset(tokens):
            new = set(filterfalse(seen.__contains__, tokens))
            if len(seen) + len(new) > _CACHE_LIMIT:  # start again, with this document
                self._cache.clear()
                self._prefix_tokens.clear()
                seen.clear()
                new.update(tokens)
            self._learn(new)
        cache = self._cache
        matched = cache.keys() & tokens
        return set(chain.from_iterable(map(cache.__getitem__, matched))), matched

    def tokens_of(self, term: int, matched: set[str]) -> list[str]:
        """Which of ``matched`` (a document's tokens that match some term) match ``term``."""
        text = self.texts[term]
        if text[-1] != "*":
            return [text] if text in matched else []
        return list(self._prefix_tokens.get(term, _NONE) & matched)

    def _learn(self, new: set[str]) -> None:
        """Look up tokens never seen before, and remember them."""
        texts = self.texts
        for token in new:
            terms = self.lookup(token)
            if terms:
                self._cache[token] = terms
                for term in terms:
                    if texts[term][-1] == "*":
                        self._prefix_tokens.setdefault(term, set()).add(token)
        self._seen.update(new)


class _Compiler:
    """AST -> compiled nodes, and the necessary term sets used to index rules."""

    def __init__(self, terms: TermIndex, gazetteer: Gazetteer) -> None:
        self.terms = terms
        self.gazetteer = gazetteer
        self._entity_nodes: dict[str, AnyOfNode] = {}
        self._clause_nodes: dict[tuple[str, int], ClauseNode] = {}  # by name and body: one per definition

    def alias(self, alias: q.Word | q.Phrase) -> TermNode | PhraseNode:
        if isinstance(alias, q.Word):
            return TermNode(self.terms.add(alias))
        return PhraseNode(tuple(self.terms.add(w) for w in alias.words))

    def node(self, ast: q.Node) -> CNode:
        if isinstance(ast, q.And):
            return AndNode([self.node(c) for c in ast.children])
        if isinstance(ast, q.Or):
            return OrNode([self.node(c) for c in ast.children])
        if isinstance(ast, q.Not):
            return NotNode(self.node(ast.child))
        if isinstance(ast, q.Near):
            return NearNode(self.node(ast.left), self.node(ast.right), ast.distance, ast.ordered)
        if isinstance(ast, q.Scope):
            return ScopeNode(FIELDS.index(ast.field), self.node(ast.child))
        if isinstance(ast, q.Sentence):
            return SentenceNode(self.node(ast.child), self.necessary(ast.child))
        if isinstance(ast, q.Clause):
            key = (ast.name, id(ast.body))
            if key not in self._clause_nodes:
                self._clause_nodes[key] = ClauseNode(ast.name, self.node(ast.body))
            return self._clause_nodes[key]
        return self._term(ast)

    def _term(self, ast: q.Node) -> CNode:
        if isinstance(ast, q.Word | q.Phrase):
            return self.alias(ast)
        if isinstance(ast, q.EntityRef):
            if ast.name not in self._entity_nodes:
                aliases = [a for e in self.gazetteer.resolve(ast.name) for a in e.aliases]
                self._entity_nodes[ast.name] = AnyOfNode([self.alias(a) for a in aliases])
            return self._entity_nodes[ast.name]
        if isinstance(ast, q.Regex):
            return RegexNode(ast.pattern)
        if isinstance(ast, q.Meta):
            return MetaNode(ast.kind, ast.value)
        raise ValueError(f"{ast!r} was not resolved (rules with $names load through monitor.rules.loader)")

    def necessary(self, ast: q.Node) -> frozenset[int] | None:
        """Terms one of which must be present for ``ast`` to hold; None if none must."""
        if isinstance(ast, q.Word):
            return frozenset([self.terms.add(ast)])
        if isinstance(ast, q.Phrase):
            exact = [w for w in ast.words if not w.prefix] or list(ast.words)
            return frozenset([self.terms.add(max(exact, key=lambda w: len(w.token)))])
        if isinstance(ast, q.EntityRef):
            node = self.node(ast)
            assert isinstance(node, AnyOfNode)
            return frozenset(node.by_first)
        if isinstance(ast, q.Or):
            union: set[int] = set()
            for child in ast.children:
                child_set = self.necessary(child)
                if child_set is None:
                    return None
                union.update(child_set)
            return frozenset(union)
        if isinstance(ast, q.And | q.Near):
            children = ast.children if isinstance(ast, q.And) else (ast.left, ast.right)
            options: list[frozenset[int]] = []
            for child in children:
                child_set = self.necessary(child)
                if child_set is not None:
                    options.append(child_set)
            return min(options, key=self._cost) if options else None
        if isinstance(ast, q.Scope | q.Sentence):
            return self.necessary(ast.child)
        if isinstance(ast, q.Clause):
            return self.necessary(ast.body)
        return None

    def _cost(self, terms: frozenset[int]) -> tuple[int, int]:
        # Fewer terms, and longer ones, are rarer in text: a cheaper trigger set.
        return len(terms), -min(len(self.terms.texts[t]) for t in terms)


@dataclass
class CompiledRule:
    spec: RuleSpec
    root: CNode
    scope: tuple[int, ...]
    weights: list[tuple[CNode, float]]


class RuleSet:
    """A compiled rule set. ``match(doc)`` returns the rules that fire, in rule order."""

    def __init__(self, specs: Iterable[RuleSpec], gazetteer: Gazetteer | None = None) -> None:
        self.gazetteer = gazetteer or Gazetteer()
        self.terms = TermIndex()
        compiler = _Compiler(self.terms, self.gazetteer)
        self.rules: list[CompiledRule] = []
        self._by_term: dict[int, list[int]] = {}
        self._always: list[int] = []
        for number, spec in enumerate(specs):
            scope = tuple(sorted({FIELDS.index(f) for f in spec.fields}))
            scope = ALL_FIELDS if scope == ALL_FIELDS else scope  # the fast paths test for it by identity
            weights = [(compiler.node(ast), weight) for _, ast, weight in spec.weights]
            self.rules.append(CompiledRule(spec, compiler.node(spec.query), scope, weights))
            trigger = compiler.necessary(spec.query)
            if trigger is None:
                self._always.append(number)
            else:
                for term in trigger:
                    self._by_term.setdefault(term, []).append(number)
        self._entities: dict[int, list[tuple[TermNode | PhraseNode, str]]] = {}
        for entity in self.gazetteer.entities.values():
            for alias in entity.aliases:
                node = compiler.alias(alias)
                first = node.term if isinstance(node, TermNode) else node.terms[0]
                self._entities.setdefault(first, []).append((node, entity.id))

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, view: DocView) -> list[int]:
        found = set(self._always)
        by_term = self._by_term
        for term in by_term.keys() & view.present:
            found.update(by_term[term])
        return sorted(found)

    def view(self, doc: Document) -> DocView:
        """``doc`` as this rule set reads it (its fields' display text included)."""
        return DocView(self.terms, doc)

    def match(self, doc: Document) -> list[Match]:
        return self.match_view(self.view(doc))

    def match_view(self, view: DocView) -> list[Match]:
        out = []
        for number in self.candidates(view):
            found = self._evaluate(self.rules[number], view)
            if found is not None:
                out.append(found)
        return out

    def _evaluate(self, rule: CompiledRule, view: DocView) -> Match | None:
        if not rule.root.holds(view, rule.scope):
            return None
        score = 0.0
        hits: list[Hit] = []
        rule.root.collect(view, rule.scope, hits)
        if rule.weights:
            for node, weight in rule.weights:
                if node.holds(view, rule.scope):
                    score += weight
                    node.collect(view, rule.scope, hits)
            if score < (rule.spec.threshold or 0.0):
                return None
        return self._build_match(rule, view, hits, score)

    def _build_match(self, rule: CompiledRule, view: DocView, hits: list[Hit],
                     score: float) -> Match:
        hits.sort()  # by field, first token, last token
        terms = tuple(dict.fromkeys(h.label for h in hits))
        snippet, highlights = self._snippet(view, hits)
        spec = rule.spec
        clauses: list[str] = []
        rule.root.clauses(view, rule.scope, clauses)
        return Match(rule=spec.id, severity=spec.severity, title=spec.title, terms=terms,
                     entities=self.entities_in(view, rule.scope), snippet=snippet,
                     highlights=tuple(highlights), score=score, tags=spec.tags,
                     clauses=tuple(dict.fromkeys(clauses)))

    @staticmethod
    def _snippet(view: DocView, hits: list[Hit]) -> tuple[str, list[tuple[int, int]]]:
        # The title is shown beside the snippet anyway: cut it from the body when it matched.
        for field_index in (2, 1, 0):
            in_field = [h for h in hits if h.field == field_index]
            if in_field:
                # Only hits near the first can fall inside the snippet window.
                in_field = [h for h in in_field if h.first <= in_field[0].first + _SNIPPET_TOKENS]
                return view.fields[field_index].snippet([(h.first, h.last) for h in in_field])
        return cut_snippet(view.fields[2].display or view.fields[0].display, [])

    def entities_in(self, view: DocView, scope: tuple[int, ...] = ALL_FIELDS) -> tuple[str, ...]:
        """Canonical ids of the gazetteer entities in ``view``, in order of first mention."""
        cached = view.entities.get(scope)
        if cached is None:
            cached = view.entities[scope] = self._entities_in(view, scope)
        return cached

    def _entities_in(self, view: DocView, scope: tuple[int, ...]) -> tuple[str, ...]:
        first_seen: dict[str, int] = {}
        for term in self._entities.keys() & view.present:
            for node, entity in self._entities[term]:
                position = node.first(view, scope)
                if position is not None and (entity not in first_seen or position < first_seen[entity]):
                    first_seen[entity] = position
        return tuple(sorted(first_seen, key=lambda e: (first_seen[e], e)))
