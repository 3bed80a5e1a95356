"""Rule files (``rules/*.yaml``) to validated ``RuleSpec`` values, with every problem located.

Pure apart from reading the files it is given. A folder holds one rule per
file, a gazetteer under ``entities/`` and shared named clauses under ``lib/``.
Loading a folder collects every problem of every file before failing, so
``rules check`` can print them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import MonitorError, RuleError, RuleSetError, SourceLocation
from monitor.rules import yamlsrc
from monitor.rules.clauses import ClauseExamples, Resolver, clause_examples, load_library, read_definitions
from monitor.rules.entities import ID_RE, Gazetteer, check_names, load_entity_file
from monitor.rules.filecheck import FileCheck
from monitor.rules.query import Meta, Node, walk
from monitor.rules.storykeys import STORY_KEYS, story_policy
from monitor.stories.policy import DEFAULT_POLICY, StoryPolicy
from monitor.types import FIELDS, SEVERITIES, Document

STATUSES = ("stable", "test", "experimental")
_KEYS = {"id", "title", "description", "status", "severity", "tags", "query", "fields",
         "weights", "threshold", "channels", "references", "falsepositives",
         "examples", "define", *STORY_KEYS}


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
    stories: StoryPolicy = DEFAULT_POLICY  # the story keys (issue 15): gate, updates, cooldown, surge
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    examples_match: tuple[Document, ...] = ()
    examples_no_match: tuple[Document, ...] = ()
    clause_examples: tuple[ClauseExamples, ...] = field(default=(), compare=False)  # its define:'s examples
    location: SourceLocation = field(default=SourceLocation(""), compare=False)
    channels_location: SourceLocation | None = field(default=None, compare=False)  # of the channels list
    query_location: SourceLocation | None = field(default=None, compare=False)
    # the query's own feed:/tag: terms (not those of its $clauses), where they are written
    meta_places: tuple[tuple[str, str, SourceLocation], ...] = field(default=(), compare=False)
    story_places: tuple[tuple[str, SourceLocation], ...] = field(default=(), compare=False)  # story key -> where


def _build(check: FileCheck, root: yaml.Node, library: Resolver) -> RuleSpec | None:
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
    resolver = _local_clauses(check, entries, library)
    values: dict[str, Any] = {}
    for key, (_, node) in entries.items():
        if key in _KEYS and key not in STORY_KEYS:
            values[key] = _value_of(check, key, node, values)
    values["stories"] = story_policy(check, entries)
    values["story_places"] = tuple((key, check.source.at(entries[key][0])) for key in STORY_KEYS if key in entries)
    _resolve(check, entries, resolver, values)
    if len(check.errors) or not all(values.get(k) for k in ("id", "title", "severity", "query")):
        return None
    if ("weights" in values) != ("threshold" in values):
        check.fail(root, "weights and threshold go together", "set both, or neither")
        return None
    values.pop("examples", None)
    values.pop("define", None)
    channels_at = check.source.at(entries["channels"][1]) if "channels" in entries else None
    return RuleSpec(location=check.source.at(entries["id"][1]), channels_location=channels_at, **values)


def _local_clauses(check: FileCheck, entries: dict[str, tuple[yaml.Node, yaml.Node]],
                   library: Resolver) -> Resolver:
    """A resolver of the rule's own ``define:`` (library names behind it)."""
    local = read_definitions(check, entries["define"][1]) if "define" in entries else {}
    for name, definition in local.items():
        if name in library.definitions:
            check.errors.append(RuleError(definition.location, f"clause '${name}' is also defined in rules/lib/",
                                          f"at {library.definitions[name].location}; rename one"))
    return Resolver(local, check.errors, library)


def _resolve(check: FileCheck, entries: dict[str, tuple[yaml.Node, yaml.Node]], resolver: Resolver,
             values: dict[str, Any]) -> None:
    """Replace the ``$names`` of the query and the weights by their clauses."""
    if values.get("query") is not None:
        values["query"] = resolver.resolve(values["query"], check.source, entries["query"][1])
    if values.get("weights"):
        keys = {str(yamlsrc.value(key)): key for key, _ in entries["weights"][1].value}
        weights = [(term, resolver.resolve(ast, check.source, keys[term]), weight)
                   for term, ast, weight in values["weights"]]
        values["weights"] = tuple((t, a, w) for t, a, w in weights if a is not None)
    resolver.resolve_all()
    values["clause_examples"] = clause_examples(resolver, values.get("fields") or FIELDS)


def _value_of(check: FileCheck, key: str, node: yaml.Node, values: dict[str, Any]) -> Any:
    if key == "id":
        rule_id = check.text(node, key)
        if rule_id is not None and not ID_RE.match(rule_id):
            check.fail(node, f"id {rule_id!r} must be lower case letters, digits and '-'")
        return rule_id
    if key == "query":
        text = check.text(node, key)
        values["query_text"] = (text or "").strip()
        query = check.query(node, text) if text else None
        if query is not None:
            values["query_location"] = check.source.at(node)
            values["meta_places"] = tuple((m.kind, m.value, check.source.inside(node, m.column - 1))
                                          for m in walk(query, clauses=False) if isinstance(m, Meta))
        return query
    if key == "define":
        return None  # read first, by _local_clauses
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
    }
    return simple[key]() if key in simple else check.strings(node, key)


def load_rule_file(path: Path, gazetteer: Gazetteer,
                   library: Resolver | None = None) -> tuple[RuleSpec | None, list[RuleError]]:
    """One rule file: the rule, or every problem found in it. ``library``: the ``rules/lib/``
    clauses it may use (none if not given)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, [RuleError(SourceLocation(str(path)), f"cannot read: {error}")]
    check = FileCheck(yamlsrc.Source(str(path), text), gazetteer)
    try:
        root = yamlsrc.compose(check.source)
    except RuleError as error:
        return None, [error]
    if root is None:
        return None, [RuleError(SourceLocation(str(path), 1, 1), "empty rule file")]
    spec = _build(check, root, library or Resolver({}, []))
    return (None if check.errors else spec), check.errors


def rule_files(directory: Path) -> list[Path]:
    """Rule files of a folder: ``*.yaml``/``*.yml`` below it, except under ``entities/`` and ``lib/``."""
    skip = (directory / "entities", directory / "lib")
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml")
                  and p.is_file() and not any(folder in p.parents for folder in skip))


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
    library, library_errors = load_library(directory / "lib", gazetteer)
    errors.extend(library_errors)
    specs: list[RuleSpec] = []
    seen: dict[str, SourceLocation] = {}
    for path in rule_files(directory):
        spec, file_errors = load_rule_file(path, gazetteer, library)
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
