"""Rule files (``rules/*.yaml``) to validated ``RuleSpec`` values, with every problem located.

Pure apart from reading the files it is given. A folder holds one rule per
file and a gazetteer under ``entities/``. Loading a folder collects every
problem of every file before failing, so ``rules check`` can print them all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import MonitorError, QueryError, RuleError, RuleSetError, SourceLocation
from monitor.rules import yamlsrc
from monitor.rules.entities import ID_RE, Gazetteer, check_names, load_entity_file
from monitor.rules.query import EntityRef, Node, Regex, is_positional, parse, walk
from monitor.types import FIELDS, SEVERITIES, Document
from monitor.units import parse_duration

STATUSES = ("stable", "test", "experimental")
_EXAMPLE_KEYS = {"title", "summary", "content", "feed", "tags"}
_KEYS = {"id", "title", "description", "status", "severity", "tags", "query", "fields",
         "weights", "threshold", "channels", "cooldown", "references", "falsepositives",
         "examples"}


@dataclass(frozen=True)
class RuleSpec:
    """A rule as its file states it, validated, with its query parsed."""

    id: str
    title: str
    severity: str
    query: Node
    query_text: str = ""
    description: str = ""
    status: str = "stable"
    tags: tuple[str, ...] = ()
    fields: tuple[str, ...] = FIELDS
    weights: tuple[tuple[str, Node, float], ...] = ()
    threshold: float | None = None
    channels: tuple[str, ...] = ()
    cooldown: float | None = None
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    examples_match: tuple[Document, ...] = ()
    examples_no_match: tuple[Document, ...] = ()
    location: SourceLocation = field(default=SourceLocation(""), compare=False)
    channels_location: SourceLocation | None = field(default=None, compare=False)  # of the channels list


@dataclass
class _FileCheck:
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
                try:
                    re.compile(part.pattern)
                except re.error as error:
                    where = self.source.inside(node, part.column + (error.pos or 0))
                    self.errors.append(RuleError(where, f"invalid regular expression: {error.msg}",
                                                 "the pattern is Python re syntax on normalised text"))
        return ast

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
        if isinstance(raw, dict) and raw and set(raw) <= _EXAMPLE_KEYS:
            tags = raw.get("tags") or ()
            return Document(id=doc_id, title=str(raw.get("title", "")),
                            summary=str(raw.get("summary", "")),
                            content=str(raw.get("content", "")), feed=str(raw.get("feed", "")),
                            tags=tuple(str(t) for t in tags))
        self.fail(node, "an example is a string or a mapping of "
                  f"{', '.join(sorted(_EXAMPLE_KEYS))}")
        return None

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        try:
            return yamlsrc.mapping(self.source, node, what)
        except RuleError as error:
            self.errors.append(error)
            return {}


def _build(check: _FileCheck, root: yaml.Node) -> RuleSpec | None:
    entries = check.mapping(root, "a rule file")
    if not entries:
        return None
    for key, (key_node, _) in entries.items():
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, 1)
            check.fail(key_node, f"unknown key {key!r}",
                       f"did you mean {close[0]!r}?" if close else
                       f"allowed keys: {', '.join(sorted(_KEYS))}")
    for required in ("id", "title", "severity", "query"):
        if required not in entries:
            check.fail(root, f"missing required key {required!r}")
    values: dict[str, Any] = {}
    for key, (_, node) in entries.items():
        if key in _KEYS:
            values[key] = _value_of(check, key, node, values)
    if len(check.errors) or not all(values.get(k) for k in ("id", "title", "severity", "query")):
        return None
    if ("weights" in values) != ("threshold" in values):
        check.fail(root, "weights and threshold go together", "set both, or neither")
        return None
    values.pop("examples", None)
    channels_at = check.source.at(entries["channels"][1]) if "channels" in entries else None
    return RuleSpec(location=check.source.at(entries["id"][1]), channels_location=channels_at, **values)


def _value_of(check: _FileCheck, key: str, node: yaml.Node, values: dict[str, Any]) -> Any:
    if key == "id":
        rule_id = check.text(node, key)
        if rule_id is not None and not ID_RE.match(rule_id):
            check.fail(node, f"id {rule_id!r} must be lower case letters, digits and '-'")
        return rule_id
    if key == "query":
        text = check.text(node, key)
        values["query_text"] = (text or "").strip()
        return check.query(node, text) if text else None
    if key == "examples":
        values["examples_match"], values["examples_no_match"] = \
            check.examples(node, str(values.get("id", "rule")))
        return None
    simple: dict[str, Callable[[], Any]] = {
        "title": lambda: check.text(node, key),
        "description": lambda: check.text(node, key),
        "severity": lambda: check.choice(node, key, SEVERITIES),
        "status": lambda: check.choice(node, key, STATUSES),
        "fields": lambda: check.fields(node),
        "weights": lambda: check.weights(node),
        "threshold": lambda: check.number(node, key),
        "cooldown": lambda: check.duration(node, key),
    }
    return simple[key]() if key in simple else check.strings(node, key)


def load_rule_file(path: Path, gazetteer: Gazetteer) -> tuple[RuleSpec | None, list[RuleError]]:
    """One rule file: the rule, or every problem found in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, [RuleError(SourceLocation(str(path)), f"cannot read: {error}")]
    check = _FileCheck(yamlsrc.Source(str(path), text), gazetteer)
    try:
        root = yamlsrc.compose(check.source)
    except RuleError as error:
        return None, [error]
    if root is None:
        return None, [RuleError(SourceLocation(str(path), 1, 1), "empty rule file")]
    spec = _build(check, root)
    return (None if check.errors else spec), check.errors


def rule_files(directory: Path) -> list[Path]:
    """Rule files of a folder: ``*.yaml``/``*.yml`` below it, except under ``entities/``."""
    entities = directory / "entities"
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml")
                  and p.is_file() and entities not in p.parents)


def load_gazetteer(directory: Path) -> tuple[Gazetteer, list[RuleError]]:
    gazetteer = Gazetteer()
    errors: list[RuleError] = []
    entities = directory / "entities"
    if entities.is_dir():
        for path in sorted(entities.rglob("*.y*ml")):
            errors.extend(load_entity_file(path, gazetteer))
    errors.extend(check_names(gazetteer))
    return gazetteer, errors


def check_folder(directory: Path) -> tuple[list[RuleSpec], Gazetteer, list[RuleError]]:
    """Every rule and entity of a folder, and every problem found, in file order."""
    if not directory.is_dir():
        raise MonitorError(f"rules folder {directory} not found",
                           "pass --rules DIR, or set [monitor] rules in config.toml")
    gazetteer, errors = load_gazetteer(directory)
    specs: list[RuleSpec] = []
    seen: dict[str, SourceLocation] = {}
    for path in rule_files(directory):
        spec, file_errors = load_rule_file(path, gazetteer)
        errors.extend(file_errors)
        if spec is None:
            continue
        if spec.id in seen:
            errors.append(RuleError(spec.location, f"duplicate rule id {spec.id!r}",
                                    f"{seen[spec.id]} uses it already"))
            continue
        seen[spec.id] = spec.location
        specs.append(spec)
    return specs, gazetteer, errors


def load_folder(directory: Path) -> tuple[list[RuleSpec], Gazetteer]:
    """Every rule and the gazetteer of a folder; RuleSetError listing all problems if any."""
    specs, gazetteer, errors = check_folder(directory)
    if errors:
        raise RuleSetError(errors)
    return specs, gazetteer
