"""The presearcher: which rules are worth evaluating on a document, from the terms it holds.

Pure. Each query is reduced to what is necessary for it to hold, as a conjunction of clauses, each
clause a set of terms one of which must be present (in a given scope of fields). For a word, its term;
a phrase, each of its words; an entity, any of its aliases (each by its rarest word); AND and NEAR,
all their children's clauses; OR, for each choice of one clause per child their union (or, when
there are many choices, the union of each child's rarest clause); NOT, a regex,
``feed:`` and ``tag:`` contribute nothing (a rule with no clause is evaluated on every document).
A field scope restricts its inner clauses to that field.

A rule is indexed under its rarest clause (the way Lucene Monitor and the Elasticsearch percolator
prune); a document reaches it through a term it holds, and then passes only if every other clause
holds too: set operations on the document's terms, in C, before any rule is evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

from monitor.rules import query as q
from monitor.rules.nodes import ALL_FIELDS, DocView
from monitor.types import FIELDS

Scope = tuple[int, ...]
_MAX_CHOICES = 8  # clauses an OR may need, one per choice of a clause from each side


@dataclass(frozen=True)
class Clause:
    """At least one of ``terms`` is in the document, within the fields ``scope``."""

    terms: frozenset[int]
    scope: Scope = ALL_FIELDS


def _joined(scopes: list[Scope]) -> Scope:
    merged = tuple(sorted(set().union(*scopes)))
    return ALL_FIELDS if merged == ALL_FIELDS else merged


class Necessary:
    """Queries -> the clauses necessary for them to hold; ``cost`` ranks clauses, rarest first."""

    def __init__(self, term: Callable[[q.Word], int], aliases: Callable[[str], list[q.Word | q.Phrase]],
                 cost: Callable[[int], float]) -> None:
        self.term, self.aliases, self.term_cost = term, aliases, cost

    def cost(self, clause: Clause) -> float:
        """About how often a document holds the clause: the sum over its terms."""
        return sum(map(self.term_cost, clause.terms)) * (1 if clause.scope is ALL_FIELDS else 0.5)

    def best(self, clauses: list[Clause]) -> Clause:
        return min(clauses, key=self.cost)

    def of(self, ast: q.Node, scope: Scope = ALL_FIELDS) -> list[Clause]:
        """The clauses ``ast`` needs within ``scope``; [] if nothing is necessary."""
        if isinstance(ast, q.Word):
            return [Clause(frozenset([self.term(ast)]), scope)]
        if isinstance(ast, q.Phrase):
            return [Clause(frozenset([self.term(word)]), scope) for word in ast.words]
        if isinstance(ast, q.EntityRef):
            return self._entity(ast.name, scope)
        if isinstance(ast, q.And):
            return [clause for child in ast.children for clause in self.of(child, scope)]
        if isinstance(ast, q.Near):
            return self.of(ast.left, scope) + self.of(ast.right, scope)
        if isinstance(ast, q.Or):
            return self._either(ast.children, scope)
        if isinstance(ast, q.Scope):
            return self.of(ast.child, (FIELDS.index(ast.field),))
        if isinstance(ast, q.Clause):  # a named clause needs what its body needs
            return self.of(ast.body, scope)
        if isinstance(ast, q.Sentence):  # what one sentence needs, the document has
            return self.of(ast.child, scope)
        return self._other(ast, scope)

    def _entity(self, name: str, scope: Scope) -> list[Clause]:
        alternatives = [self.of(alias, scope) for alias in self.aliases(name)]
        if not alternatives or not all(alternatives):
            return []
        return [self._union([self.best(clauses) for clauses in alternatives])]

    def _either(self, children: tuple[q.Node, ...], scope: Scope) -> list[Clause]:
        # (a AND b) OR c needs (a OR c) and (b OR c): one clause per choice of a clause from each
        # side, while there are few; else only the union of each side's rarest clause.
        options = []
        for child in children:
            clauses = self.of(child, scope)
            if not clauses:
                return []  # one side needs nothing: neither does the OR
            options.append(clauses)
        if math.prod(map(len, options)) > _MAX_CHOICES:
            options = [[self.best(clauses)] for clauses in options]
        return list(dict.fromkeys(self._union(list(choice)) for choice in product(*options)))

    @staticmethod
    def _union(clauses: list[Clause]) -> Clause:
        return Clause(frozenset().union(*(c.terms for c in clauses)), _joined([c.scope for c in clauses]))

    @staticmethod
    def _other(ast: q.Node, scope: Scope) -> list[Clause]:
        # NOT, /regex/, feed: and tag: need nothing; so does any node this module does not know
        # (evaluating a rule too often is slow, skipping one that holds would be wrong).
        return []


@dataclass(frozen=True)
class Check:
    """A rule's clauses in the form cheapest to test: terms all present, groups each met, scoped ones."""

    every: frozenset[int]
    any_of: tuple[frozenset[int], ...]
    scoped: tuple[Clause, ...]

    @classmethod
    def of(cls, clauses: list[Clause]) -> Check:
        # A term needed in a field is needed in the document: scoped clauses are tested as the
        # others first (set operations), then in their fields.
        every = frozenset(t for c in clauses if len(c.terms) == 1 for t in c.terms)
        any_of = tuple(dict.fromkeys(c.terms for c in clauses if len(c.terms) > 1 and c.terms.isdisjoint(every)))
        scoped = tuple(dict.fromkeys(c for c in clauses if c.scope is not ALL_FIELDS))
        return cls(every, any_of, scoped)

    def passes(self, view: DocView) -> bool:
        present = view.present
        if not self.every <= present:
            return False
        for terms in self.any_of:
            if terms.isdisjoint(present):
                return False
        return all(any(view.in_fields(term, clause.scope) for term in clause.terms & present)
                   for clause in self.scoped)
