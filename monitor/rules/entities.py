"""The entity gazetteer: ``rules/entities/*.yaml`` loaded into a lookup by id, group and type.

Pure apart from reading the files it is given. ``@name`` in a query means any
alias of the entity, the group or the type called ``name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from monitor.errors import QueryError, RuleError, SourceLocation
from monitor.rules import yamlsrc
from monitor.rules.query import Phrase, Word, phrase

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_KEYS = {"id", "name", "type", "groups", "aliases", "description"}


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    type: str
    groups: tuple[str, ...]
    aliases: tuple[Word | Phrase, ...]
    location: SourceLocation = field(compare=False, default=SourceLocation(""))


@dataclass
class Gazetteer:
    """Entities by id, and the names (id, group, type) ``@name`` may use."""

    entities: dict[str, Entity] = field(default_factory=dict)

    def resolve(self, name: str) -> list[Entity]:
        """The entities ``@name`` stands for; empty when the name is unknown."""
        if name in self.entities:
            return [self.entities[name]]
        return [e for e in self.entities.values() if name in e.groups or name == e.type]

    def names(self) -> set[str]:
        out = set(self.entities)
        for entity in self.entities.values():
            out.update(entity.groups)
            out.add(entity.type)
        return out


def _strings(source: yamlsrc.Source, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
    if not isinstance(node, yaml.SequenceNode):
        raise source.error(node, f"{what} must be a list")
    out: list[tuple[str, yaml.Node]] = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not isinstance(yamlsrc.value(item), str | int):
            raise source.error(item, f"{what}: every entry must be a string")
        out.append((str(yamlsrc.value(item)), item))
    return out


def _entity(source: yamlsrc.Source, node: yaml.Node) -> Entity:
    entries = yamlsrc.mapping(source, node, "an entity")
    for key, (key_node, _) in entries.items():
        if key not in _KEYS:
            raise source.error(key_node, f"unknown key {key!r} in entity",
                               f"allowed keys: {', '.join(sorted(_KEYS))}")
    for required in ("id", "aliases"):
        if required not in entries:
            raise source.error(node, f"entity lacks {required!r}")
    id_node = entries["id"][1]
    entity_id = str(yamlsrc.value(id_node))
    if not ID_RE.match(entity_id):
        raise source.error(id_node, f"entity id {entity_id!r} must be lower case letters, digits, '-'")
    aliases: list[Word | Phrase] = []
    for text, alias_node in _strings(source, entries["aliases"][1], "aliases"):
        try:
            aliases.append(phrase(text))
        except QueryError as error:
            raise source.error(alias_node, f"alias: {error.message}", error.hint) from None
    groups = [g for g, _ in _strings(source, entries["groups"][1], "groups")] \
        if "groups" in entries else []
    for group, group_node in zip(groups, entries["groups"][1].value if groups else [], strict=False):
        if not ID_RE.match(group):
            raise source.error(group_node, f"group {group!r} must be lower case letters, digits, '-'")
    kind = str(yamlsrc.value(entries["type"][1])) if "type" in entries else "thing"
    name = str(yamlsrc.value(entries["name"][1])) if "name" in entries else entity_id
    return Entity(entity_id, name, kind, tuple(groups), tuple(aliases), source.at(id_node))


def load_entity_file(path: Path, gazetteer: Gazetteer) -> list[RuleError]:
    """Add a file's entities to ``gazetteer``; return every problem found."""
    source = yamlsrc.Source(str(path), path.read_text(encoding="utf-8"))
    try:
        root = yamlsrc.compose(source)
    except RuleError as error:
        return [error]
    if root is None:
        return []
    try:
        top = yamlsrc.mapping(source, root, "an entity file")
    except RuleError as error:
        return [error]
    if set(top) != {"entities"}:
        return [RuleError(source.at(root), "an entity file has one key, 'entities'",
                          "see rules/entities/countries.yaml")]
    items = top["entities"][1]
    if not isinstance(items, yaml.SequenceNode):
        return [source.error(items, "'entities' must be a list")]
    errors: list[RuleError] = []
    for item in items.value:
        try:
            entity = _entity(source, item)
        except RuleError as error:
            errors.append(error)
            continue
        if entity.id in gazetteer.entities:
            first = gazetteer.entities[entity.id].location
            errors.append(RuleError(entity.location, f"duplicate entity id {entity.id!r}",
                                    f"first defined at {first}"))
            continue
        gazetteer.entities[entity.id] = entity
    return errors


def check_names(gazetteer: Gazetteer) -> list[RuleError]:
    """An entity id that is also a group or type name would make ``@name`` ambiguous."""
    shared: set[str] = set()
    for entity in gazetteer.entities.values():
        shared.update(entity.groups)
        shared.add(entity.type)
    return [RuleError(e.location, f"entity id {e.id!r} is also a group or type name",
                      "rename the entity or the group so @name is unambiguous")
            for e in gazetteer.entities.values() if e.id in shared]
