"""Checks of one YAML file's values, each problem kept with its file:line:col.

Pure apart from what it is given. Rule files and ``rules/lib/`` files share these: strings,
choices, durations, queries (parsed, with unknown @entities and regular expressions RE2
cannot compile reported at their column) and examples.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import yaml

from monitor.errors import QueryError, RuleError
from monitor.rules import yamlsrc
from monitor.rules.entities import Gazetteer
from monitor.rules.query import EntityRef, Node, Regex, is_positional, parse, walk
from monitor.rules.regex import regex_problem
from monitor.types import FIELDS, Document
from monitor.units import parse_duration

EXAMPLE_KEYS = {"title", "summary", "content", "feed", "tags"}


@dataclass
class FileCheck:
    """Collects the problems of one rule file while its keys are checked."""

    source: yamlsrc.Source
    gazetteer: Gazetteer
    errors: list[RuleError] = field(default_factory=list)

    def fail(self, node: yaml.Node, message: str, hint: str = "") -> None:
        self.errors.append(self.source.error(node, message, hint))

    def text(self, node: yaml.Node, key: str) -> str | None:
        raw = yamlsrc.value(node)
        if isinstance(raw, str) and raw.strip():
            return raw
        self.fail(node, f"{key} must be a non-empty string")
        return None

    def strings(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        raw = yamlsrc.value(node)
        if isinstance(raw, str):
            raw = [raw]
        if isinstance(raw, list) and all(isinstance(x, str) and x for x in raw):
            return tuple(raw)
        self.fail(node, f"{key} must be a list of strings")
        return ()

    def choice(self, node: yaml.Node, key: str, allowed: tuple[str, ...]) -> str | None:
        raw = yamlsrc.value(node)
        if raw in allowed:
            return str(raw)
        self.fail(node, f"{key} {raw!r} is not one of {', '.join(allowed)}")
        return None

    def fields(self, node: yaml.Node) -> tuple[str, ...]:
        fields = self.strings(node, "fields")
        for name in fields:
            if name not in FIELDS:
                self.fail(node, f"unknown field {name!r}", f"fields are {', '.join(FIELDS)}")
        return fields

    def number(self, node: yaml.Node, key: str) -> float | None:
        raw = yamlsrc.value(node)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        self.fail(node, f"{key} must be a number")
        return None

    def duration(self, node: yaml.Node, key: str) -> float | None:
        try:
            return parse_duration(yamlsrc.value(node))
        except ValueError as error:
            self.fail(node, f"{key}: {error}")
            return None

    def query(self, node: yaml.Node, text: str, key: str = "query") -> Node | None:
        try:
            ast = parse(text)
        except QueryError as error:
            self.errors.append(RuleError(self.source.inside(node, error.column - 1),
                                         error.message, error.hint))
            return None
        for part in walk(ast):
            if isinstance(part, EntityRef) and not self.gazetteer.resolve(part.name):
                close = difflib.get_close_matches(part.name, self.gazetteer.names(), 1)
                hint = f"did you mean @{close[0]}?" if close else \
                    "define it in rules/entities/, or use an entity id, group or type"
                self.errors.append(RuleError(self.source.inside(node, part.column - 1),
                                             f"unknown entity, group or type '@{part.name}'", hint))
            if isinstance(part, Regex):
                self.regex(node, part)
        return ast

    def regex(self, node: yaml.Node, part: Regex) -> None:
        """A ``/regex/`` RE2 can compile, or an error at its column (at the fault when Python's
        ``re`` can place it) with a hint for what RE2 leaves out."""
        problem = regex_problem(part.pattern)
        if problem is None:
            return
        offset = 0
        try:
            re.compile(part.pattern)
        except re.error as error:
            offset = error.pos or 0
            problem = error.msg
            hint = "the pattern is RE2 syntax on normalised text"
        else:  # valid for Python, not for RE2: lookarounds, backreferences, possessive quantifiers
            hint = ("RE2 (linear time) has no lookarounds (?=, (?!, (?<=, no backreferences \\1 and no "
                    "possessive quantifiers; \\b is an ASCII word boundary: prefer terms, NEAR and NOT")
        self.errors.append(RuleError(self.source.inside(node, part.column + offset),
                                     f"invalid regular expression: {problem}", hint))

    def weights(self, node: yaml.Node) -> tuple[tuple[str, Node, float], ...]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, 'weights must be a mapping of terms to numbers, as {"shot down": 3}')
            return ()
        out = []
        for key_node, value_node in node.value:
            term, weight = yamlsrc.value(key_node), yamlsrc.value(value_node)
            if not isinstance(weight, int | float) or isinstance(weight, bool):
                self.fail(value_node, f"weight of {term!r} must be a number")
                continue
            # A weight key is one term; several words without quotes are a phrase, as in DESIGN.md.
            text = str(term)
            if " " in text.strip() and not text.lstrip().startswith(('"', "(", "@", "/")):
                text = f'"{text}"'
            ast = self.query(key_node, text, "weights")
            if ast is not None and not is_positional(ast):
                self.fail(key_node, f"weight key {term!r} must be one word, phrase or @entity")
            elif ast is not None:
                out.append((str(term), ast, float(weight)))
        return tuple(out)

    def examples(self, node: yaml.Node, rule_id: str) -> tuple[tuple[Document, ...], ...]:
        entries = self.mapping(node, "examples")
        found: dict[str, list[Document]] = {"match": [], "no_match": []}
        for key, (key_node, value_node) in entries.items():
            if key not in found:
                self.fail(key_node, f"unknown key {key!r} in examples", "use match and no_match")
                continue
            if not isinstance(value_node, yaml.SequenceNode):
                self.fail(value_node, f"examples.{key} must be a list")
                continue
            for number, item in enumerate(value_node.value, 1):
                doc = self.example(item, f"{rule_id} {key} #{number}")
                if doc is not None:
                    found[key].append(doc)
        return tuple(found["match"]), tuple(found["no_match"])

    def example(self, node: yaml.Node, doc_id: str) -> Document | None:
        raw = yamlsrc.value(node)
        if isinstance(raw, str):
            return Document(id=doc_id, content=raw)
        if isinstance(raw, dict) and raw and set(raw) <= EXAMPLE_KEYS:
            tags = raw.get("tags") or ()
            return Document(id=doc_id, title=str(raw.get("title", "")),
                            summary=str(raw.get("summary", "")),
                            content=str(raw.get("content", "")), feed=str(raw.get("feed", "")),
                            tags=tuple(str(t) for t in tags))
        self.fail(node, "an example is a string or a mapping of "
                  f"{', '.join(sorted(EXAMPLE_KEYS))}")
        return None

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        try:
            return yamlsrc.mapping(self.source, node, what)
        except RuleError as error:
            self.errors.append(error)
            return {}


