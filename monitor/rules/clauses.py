"""Named clauses: ``define:`` in a rule, shared definitions in ``rules/lib/*.yaml``, ``$name`` in queries.

Pure apart from reading the files it is given. A definition is a query with a name (and
optionally a description and its own examples). Queries are parsed with every ``$name`` as a
``Ref``; resolving replaces each by a ``Clause`` holding the definition's tree, which every use
shares, so a clause is compiled once per rule set. Unknown names (with a did-you-mean), cycles,
and a clause that NEAR cannot take are errors at the ``$`` that causes them.

A rule sees its own definitions and the library's; a library definition sees the library's.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from monitor.errors import RuleError, SourceLocation
from monitor.rules import yamlsrc
from monitor.rules.entities import ID_RE, Gazetteer
from monitor.rules.filecheck import FileCheck
from monitor.rules.query import And, Clause, Near, Node, Not, Or, Ref, Scope, Sentence, is_positional
from monitor.types import FIELDS, Document

_DEFINITION_KEYS = {"query", "description", "examples"}
_LIB_KEYS = {"define", "description"}


@dataclass(frozen=True)
class Definition:
    """A named query as its file states it, ``$names`` in it not yet resolved."""

    name: str
    query: Node | None  # None when it has errors of its own (uses of it are errors too)
    source: yamlsrc.Source
    node: yaml.Node  # the query's scalar, to place a column of it in the file
    location: SourceLocation  # of the name
    description: str = ""
    examples_match: tuple[Document, ...] = ()
    examples_no_match: tuple[Document, ...] = ()


@dataclass(frozen=True)
class ClauseExamples:
    """A resolved clause and its own examples, which ``rules test`` runs on the clause alone."""

    clause: Clause
    location: SourceLocation
    examples_match: tuple[Document, ...]
    examples_no_match: tuple[Document, ...]
    fields: tuple[str, ...] = FIELDS


def read_definitions(check: FileCheck, node: yaml.Node) -> dict[str, Definition]:
    """The ``define:`` mapping of a rule or lib file: name -> query string, or name -> a mapping
    of ``query``, ``description`` and ``examples``. Problems go to ``check.errors``."""
    out: dict[str, Definition] = {}
    for name, (key_node, value_node) in check.mapping(node, "define").items():
        if not ID_RE.match(name):
            check.fail(key_node, f"clause name {name!r} must be lower case letters, digits and '-'")
            continue
        definition = _definition(check, name, key_node, value_node)
        if definition is not None:
            out[name] = definition
    return out


def _definition(check: FileCheck, name: str, key_node: yaml.Node, node: yaml.Node) -> Definition | None:
    description = ""
    examples: tuple[tuple[Document, ...], ...] = ((), ())
    query_node = node
    if isinstance(node, yaml.MappingNode):
        entries = check.mapping(node, f"clause {name!r}")
        for key, (inner_key, _) in entries.items():
            if key not in _DEFINITION_KEYS:
                close = difflib.get_close_matches(key, _DEFINITION_KEYS, 1)
                check.fail(inner_key, f"unknown key {key!r} in clause {name!r}",
                           f"did you mean {close[0]!r}?" if close else "use query, description and examples")
        if "query" not in entries:
            check.fail(node, f"clause {name!r} lacks 'query'")
            return Definition(name, None, check.source, node, check.source.at(key_node))
        query_node = entries["query"][1]
        if "description" in entries:
            description = check.text(entries["description"][1], "description") or ""
        if "examples" in entries:
            examples = check.examples(entries["examples"][1], f"${name}")
    text = check.text(query_node, f"clause {name!r}")
    query = check.query(query_node, text) if text else None
    return Definition(name, query, check.source, query_node, check.source.at(key_node), description, *examples)


@dataclass
class Resolver:
    """Resolves ``$names`` against ``definitions``, then ``parent``'s (a rule's resolver has the
    library's as parent). Each definition is resolved once; problems go to ``errors``."""

    definitions: dict[str, Definition]
    errors: list[RuleError]
    parent: Resolver | None = None
    _done: dict[str, Clause | None] = field(default_factory=dict)
    _stack: list[str] = field(default_factory=list)

    def names(self) -> set[str]:
        return set(self.definitions) | (self.parent.names() if self.parent else set())

    def clause(self, name: str) -> Clause | None:
        """The definition ``name`` resolved (None if it, or a clause it uses, has errors)."""
        if name not in self._done:
            self._stack.append(name)
            definition = self.definitions[name]
            body = None if definition.query is None else \
                self.resolve(definition.query, definition.source, definition.node)
            self._stack.pop()
            self._done[name] = None if body is None else Clause(name, body, 0)
        return self._done[name]

    def resolve(self, ast: Node, source: yamlsrc.Source, node: yaml.Node) -> Node | None:
        """``ast`` (parsed from the scalar ``node`` of ``source``) with each ``$name`` replaced by
        its Clause; None, with the problems in ``errors``, if any cannot be."""
        def at(column: int) -> SourceLocation:
            return source.inside(node, column - 1)

        return _rebuild(ast, lambda ref: self._use(ref, at(ref.column)), at, self.errors)

    def _use(self, ref: Ref, where: SourceLocation) -> Clause | None:
        owner: Resolver | None = self
        while owner is not None and ref.name not in owner.definitions:
            owner = owner.parent
        if owner is None:
            close = difflib.get_close_matches(ref.name, self.names(), 1)
            hint = f"did you mean ${close[0]}?" if close else "define it under define: or in rules/lib/"
            self.errors.append(RuleError(where, f"unknown clause '${ref.name}'", hint))
            return None
        if ref.name in owner._stack:
            cycle = [*owner._stack[owner._stack.index(ref.name):], ref.name]
            self.errors.append(RuleError(where, "clause cycle: " + " -> ".join(f"${n}" for n in cycle),
                                         "a clause cannot use itself, directly or through others"))
            return None
        found = owner.clause(ref.name)
        if found is None:
            self.errors.append(RuleError(where, f"clause '${ref.name}' has errors",
                                         f"see {owner.definitions[ref.name].location}"))
            return None
        return Clause(found.name, found.body, ref.column)

    def resolve_all(self) -> None:
        """Resolve every definition, used or not, so each one's problems are reported."""
        for name in self.definitions:
            self.clause(name)


def _rebuild(ast: Node, on_ref: Callable[[Ref], Clause | None], at: Callable[[int], SourceLocation],
             errors: list[RuleError]) -> Node | None:
    def again(child: Node) -> Node | None:
        return _rebuild(child, on_ref, at, errors)

    if isinstance(ast, Ref):
        return on_ref(ast)
    if isinstance(ast, And | Or):
        children = [again(child) for child in ast.children]
        return None if None in children else type(ast)(tuple(c for c in children if c is not None))
    if isinstance(ast, Not | Scope | Sentence):
        child = again(ast.child)
        if child is None:
            return None
        if isinstance(ast, Not):
            return Not(child, ast.column)
        return Scope(ast.field, child, ast.column) if isinstance(ast, Scope) else Sentence(child, ast.column, ast.size)
    if isinstance(ast, Near):
        left, right = again(ast.left), again(ast.right)
        for side in (left, right):
            if isinstance(side, Clause) and not is_positional(side.body):
                errors.append(RuleError(at(side.column), f"NEAR cannot take ${side.name}: it is not a word, "
                                        "phrase, @entity, NEAR or (… OR …) group",
                                        "use it outside the NEAR, or define a clause of terms for it"))
                return None
        if left is None or right is None:
            return None
        return Near(left, right, ast.distance, ast.ordered, ast.column)
    return ast


def clause_examples(resolver: Resolver, fields: tuple[str, ...] = FIELDS) -> tuple[ClauseExamples, ...]:
    """The resolved clauses of ``resolver``'s own definitions that carry examples."""
    out = []
    for name, definition in resolver.definitions.items():
        clause = resolver.clause(name)
        if clause is not None and (definition.examples_match or definition.examples_no_match):
            out.append(ClauseExamples(clause, definition.location, definition.examples_match,
                                      definition.examples_no_match, fields))
    return tuple(out)


def library_files(directory: Path) -> list[Path]:
    """The files of a ``rules/lib/`` folder."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_library(directory: Path, gazetteer: Gazetteer) -> tuple[Resolver, list[RuleError]]:
    """Every definition of ``directory`` (a ``rules/lib/`` folder), resolved; and every problem."""
    errors: list[RuleError] = []
    definitions: dict[str, Definition] = {}
    for path in library_files(directory):
        for name, definition in _library_file(path, gazetteer, errors).items():
            if name in definitions:
                errors.append(RuleError(definition.location, f"clause '${name}' is defined twice",
                                        f"first at {definitions[name].location}; rename one"))
                continue
            definitions[name] = definition
    resolver = Resolver(definitions, errors)
    resolver.resolve_all()
    return resolver, errors


def _library_file(path: Path, gazetteer: Gazetteer, errors: list[RuleError]) -> dict[str, Definition]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        errors.append(RuleError(SourceLocation(str(path)), f"cannot read: {error}"))
        return {}
    check = FileCheck(yamlsrc.Source(str(path), text), gazetteer, errors)
    try:
        root = yamlsrc.compose(check.source)
    except RuleError as error:
        errors.append(error)
        return {}
    if root is None:
        return {}
    entries = check.mapping(root, "a rules/lib file")
    for key, (key_node, _) in entries.items():
        if key not in _LIB_KEYS:
            check.fail(key_node, f"unknown key {key!r} in a rules/lib file",
                       "a lib file has define: (named clauses) and an optional description:")
    if "define" not in entries:
        if entries:
            check.fail(root, "a rules/lib file needs define:", "define: {name: query, …}")
        return {}
    if "description" in entries:
        check.text(entries["description"][1], "description")
    return read_definitions(check, entries["define"][1])
