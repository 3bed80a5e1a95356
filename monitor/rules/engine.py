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
from typing import TypeVar

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
from monitor.rules.presearch import Check, Clause, Necessary
from monitor.rules.rarity import frequency
from monitor.stories.policy import StoryPolicy
from monitor.text import cut_snippet, token_form
from monitor.types import FIELDS, Document, Match

_CACHE_LIMIT = 500_000
_MAX_PAIRS = 16  # pairs of terms a rule may be indexed under (else under its rarest clause alone)
_NONE: frozenset[str] = frozenset()
_SNIPPET_TOKENS = 60
_N = TypeVar("_N", bound=CNode)
_Entry = tuple[int, frozenset[int], frozenset[int] | None, Check | None]  # see RuleSet._by_term


class TermIndex:
    """Exact words and prefixes, each with an id; maps a document's tokens to term ids."""

    def __init__(self) -> None:
        self.exact: dict[str, int] = {}
        self.prefixes: dict[int, dict[str, int]] = {}
        self.texts: list[str] = []
        self._cache: dict[str, tuple[int, ...]] = {}  # the tokens that match some term
        self._seen: set[str] = set()  # every token looked up since the cache was last cleared
        self._prefix_tokens: dict[int, set[str]] = {}  # prefix term -> the tokens seen that match it
        self._watch: dict[int, list[CNode]] = {}  # term -> the OR alternatives that need it (DocView.live)
        self._watching: set[CNode] = set()  # those nodes (by identity: a set, as ids do not survive a pickle)
        self._words: dict[int, list[CNode]] = {}  # term -> the OR and entity nodes that hold when it is present
        self._worded: set[CNode] = set()
        self.watched = 0

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

    def watch(self, nodes: Iterable[CNode]) -> None:
        """Make DocView.live report each of ``nodes`` when its needs are met."""
        for node in nodes:
            if node.needs is not None and node not in self._watching:
                self._watching.add(node)
                self.watched += 1
                for term in node.needs:
                    self._watch.setdefault(term, []).append(node)

    def watch_words(self, node: CNode, words: frozenset[int]) -> None:
        """Make DocView.live report ``node`` as worded when one of ``words`` is present."""
        if node not in self._worded:
            self._worded.add(node)
            self.watched += 1
            for term in words:
                self._words.setdefault(term, []).append(node)

    def live(self, present: set[int]) -> tuple[set[CNode], set[CNode]]:
        """The watched nodes whose needs ``present`` meets, and the worded ones: one pass each over
        the terms, in C."""
        watch, words = self._watch, self._words
        return (set(chain.from_iterable(map(watch.__getitem__, watch.keys() & present))),
                set(chain.from_iterable(map(words.__getitem__, words.keys() & present))))

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
        self.necessary: Necessary | None = None  # set by RuleSet, for sentence:( ) prefilters

    def alias(self, alias: q.Word | q.Phrase) -> TermNode | PhraseNode:
        if isinstance(alias, q.Word):
            return TermNode(self.terms.add(alias))
        return self._rarest(PhraseNode(tuple(self.terms.add(w) for w in alias.words)))

    def node(self, ast: q.Node) -> CNode:
        return self._rarest(self._node(ast))

    def _rarest(self, node: _N) -> _N:
        """``node`` needing the rarest of the term sets it needs (nodes take the first)."""
        options = node.options()
        if len(options) > 1:
            node.needs = min(options, key=lambda terms: sum(map(self.term_cost, terms)))
        return node

    def _node(self, ast: q.Node) -> CNode:
        if isinstance(ast, q.Word | q.Phrase):
            return self.alias(ast)
        if isinstance(ast, q.EntityRef):
            if ast.name not in self._entity_nodes:
                self._entity_nodes[ast.name] = AnyOfNode([self.alias(a) for a in self.aliases(ast.name)],
                                                            self.terms)
            return self._entity_nodes[ast.name]
        if isinstance(ast, q.Sentence | q.Clause):
            return self._named(ast)
        if isinstance(ast, q.And):
            return AndNode([self.node(c) for c in ast.children])
        if isinstance(ast, q.Or):
            return OrNode([self.node(c) for c in ast.children], self.terms)
        if isinstance(ast, q.Not):
            return NotNode(self.node(ast.child))
        if isinstance(ast, q.Near):
            return NearNode(self.node(ast.left), self.node(ast.right), ast.distance, ast.ordered)
        if isinstance(ast, q.Scope):
            return ScopeNode(FIELDS.index(ast.field), self.node(ast.child))
        if isinstance(ast, q.Regex):
            return RegexNode(ast.pattern)
        if isinstance(ast, q.Meta):
            return MetaNode(ast.kind, ast.value)
        raise ValueError(f"{ast!r} was not resolved (rules with $names load through monitor.rules.loader)")

    def _named(self, ast: q.Sentence | q.Clause) -> CNode:
        if isinstance(ast, q.Sentence):
            # Terms one of which the inside needs, to refuse a document without any at once.
            clauses = self.necessary.of(ast.child) if self.necessary is not None else []
            trigger = self.necessary.best(clauses).terms if self.necessary is not None and clauses else None
            return SentenceNode(self.node(ast.child), trigger, ast.size)
        key = (ast.name, id(ast.body))
        if key not in self._clause_nodes:
            self._clause_nodes[key] = ClauseNode(ast.name, self.node(ast.body))
        return self._clause_nodes[key]

    def aliases(self, name: str) -> list[q.Word | q.Phrase]:
        return [a for e in self.gazetteer.resolve(name) for a in e.aliases]

    def term_cost(self, term: int) -> float:
        """About how common a term is in text, to index a rule under its rarest clause."""
        text = self.terms.texts[term]
        return frequency(text.rstrip("*"), prefix=text[-1] == "*")


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
        # term -> the rules indexed under it alone, each with the terms it needs all of, a group of terms
        # it needs one of (or None), and the rest of its check if it has more (tested only when those
        # terms are present); and, by a second term, the rules indexed under the pair: a rule with a
        # second clause is reached only when a term of each is present, so a common word (one of the
        # three a rule needs) does not bring every rule that names it to its check. Most rules reached
        # are turned away by set operations alone.
        self._by_term: dict[int, tuple[list[_Entry], dict[int, list[_Entry]]]] = {}
        self._always: list[int] = []  # the rules that need no term
        necessary = compiler.necessary = Necessary(self.terms.add, compiler.aliases, compiler.term_cost)
        for number, spec in enumerate(specs):
            scope = tuple(sorted({FIELDS.index(f) for f in spec.fields}))
            scope = ALL_FIELDS if scope == ALL_FIELDS else scope  # the fast paths test for it by identity
            weights = [(compiler.node(ast), weight) for _, ast, weight in spec.weights]
            self.rules.append(CompiledRule(spec, compiler.node(spec.query), scope, weights))
            clauses = necessary.of(spec.query, scope)
            if not clauses:
                self._always.append(number)
                continue
            check = Check.of(clauses)
            group = check.any_of[0] if check.any_of else None
            entry = (number, check.every, group, check if len(check.any_of) > 1 or check.scoped else None)
            best = necessary.best(clauses)
            second = self._second(necessary, clauses, best, spec.query)
            for term in best.terms:
                alone, pairs = self._by_term.setdefault(term, ([], {}))
                if second is None:
                    alone.append(entry)
                else:
                    for other in second.terms:
                        pairs.setdefault(other, []).append(entry)
        self._entities: dict[int, list[tuple[TermNode | PhraseNode, str]]] = {}
        self._alias_terms: dict[int, list[tuple[frozenset[int], str]]] = {}  # first term -> an alias's terms, entity
        for entity in self.gazetteer.entities.values():
            for alias in entity.aliases:
                node = compiler.alias(alias)
                first = node.term if isinstance(node, TermNode) else node.terms[0]
                self._entities.setdefault(first, []).append((node, entity.id))
                terms = frozenset([node.term] if isinstance(node, TermNode) else node.terms)
                self._alias_terms.setdefault(first, []).append((terms, entity.id))

    def _second(self, necessary: Necessary, clauses: list[Clause], best: Clause, query: q.Node) -> Clause | None:
        """The clause a rule is indexed under beside ``best``: the rarest of the others, preferring one
        that is not another word of a phrase ``best`` is a word of (those come together); None when
        there is none, or when the pairs would be too many."""
        others = [c for c in clauses if c.terms.isdisjoint(best.terms)]
        if not others:
            return None
        phrases = [frozenset(map(self.terms.add, node.words)) for node in q.walk(query) if isinstance(node, q.Phrase)]
        if phrases:
            others = [c for c in others if not any(best.terms | c.terms <= words for words in phrases)] or others
        second = min(others, key=necessary.cost)
        return second if len(best.terms) * len(second.terms) <= _MAX_PAIRS else None

    def policies(self) -> dict[str, StoryPolicy]:
        """Each rule's story policy (gate, updates, cooldown, surge), by rule id."""
        return {rule.spec.id: rule.spec.stories for rule in self.rules}

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, view: DocView) -> list[int]:
        """The rules worth evaluating on ``view``: those whose necessary terms it holds."""
        present = view.present
        found = set(self._always)
        by_term = self._by_term
        for term in by_term.keys() & present:
            alone, pairs = by_term[term]
            for second in pairs.keys() & present:
                found.update([number for number, every, group, rest in pairs[second]
                              if every <= present and (group is None or not group.isdisjoint(present))
                              and (rest is None or rest.passes(view))])
            if alone:
                found.update([number for number, every, group, rest in alone
                              if every <= present and (group is None or not group.isdisjoint(present))
                              and (rest is None or rest.passes(view))])
        return sorted(found)

    def view(self, doc: Document) -> DocView:
        """``doc`` as this rule set reads it (its fields' display text included)."""
        return DocView(self.terms, doc)

    def match(self, doc: Document, snippets: bool = True) -> list[Match]:
        """The rules that fire on ``doc``, each with its match. ``snippets=False`` leaves out what
        only a snippet needs (the text cut around the first hit, its highlights and the entities
        it names: the match's ``snippet`` is "" and those are empty), for outputs that show none."""
        return self.match_view(self.view(doc), snippets)

    def match_view(self, view: DocView, snippets: bool = True) -> list[Match]:
        out = []
        for number in self.candidates(view):
            found = self._evaluate(self.rules[number], view, snippets)
            if found is not None:
                out.append(found)
        return out

    def fired(self, doc: Document) -> list[str]:
        """The ids of the rules that fire on ``doc``, in rule order, with no match built: what a
        backtest counts (it builds the matches of the few items it shows)."""
        view = self.view(doc)
        return [rule.spec.id for rule in map(self.rules.__getitem__, self.candidates(view))
                if rule.root.holds(view, rule.scope) and self._reaches_threshold(rule, view)]

    @staticmethod
    def _reaches_threshold(rule: CompiledRule, view: DocView) -> bool:
        if not rule.weights:
            return True
        score = sum(weight for node, weight in rule.weights if node.holds(view, rule.scope))
        return score >= (rule.spec.threshold or 0.0)

    def _evaluate(self, rule: CompiledRule, view: DocView, snippets: bool = True) -> Match | None:
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
        return self._build_match(rule, view, hits, score, snippets)

    def _build_match(self, rule: CompiledRule, view: DocView, hits: list[Hit],
                     score: float, snippets: bool) -> Match:
        hits.sort()  # by field, first token, last token
        terms = tuple(dict.fromkeys(h.label for h in hits))
        snippet, highlights = self._snippet(view, hits) if snippets else ("", [])
        spec = rule.spec
        clauses: list[str] = []
        if rule.root.named:
            rule.root.clauses(view, rule.scope, clauses)
        entities = self.entities_in(view, rule.scope)
        return Match(rule=spec.id, severity=spec.severity, title=spec.title, terms=terms,
                     entities=entities, snippet=snippet,
                     highlights=tuple(highlights), score=score, tags=spec.tags,
                     clauses=tuple(dict.fromkeys(clauses)),
                     snippet_entities=self._named_in(snippet, entities) if snippets else ())

    def _named_in(self, snippet: str, entities: tuple[str, ...]) -> tuple[str, ...]:
        """Which of a document's ``entities`` its snippet names: what an alert shows of them. An
        alias counts when all its words are among the snippet's (a few hundred characters, whose
        tokens were looked up already), so this is set operations, not a search."""
        present, _ = self.terms.present(token_form(snippet).split())
        named = {entity for first in self._alias_terms.keys() & present
                 for terms, entity in self._alias_terms[first] if terms <= present}
        return tuple(e for e in entities if e in named)

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
