"""YAML with source positions: every value keeps the line and column it came from.

Pure. PyYAML composes the node graph (which carries marks); this module
rejects duplicate keys, builds plain values, and maps an offset inside a
scalar, such as a column in a folded ``query: >`` block, back to its
line and column in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from monitor.errors import RuleError, SourceLocation


@dataclass(frozen=True)
class Source:
    """A YAML file's path and text."""

    path: str
    text: str

    def at(self, node: yaml.Node) -> SourceLocation:
        mark = node.start_mark
        return SourceLocation(self.path, mark.line + 1, mark.column + 1)

    def error(self, node: yaml.Node, message: str, hint: str = "") -> RuleError:
        return RuleError(self.at(node), message, hint)

    def inside(self, node: yaml.Node, offset: int) -> SourceLocation:
        """The file position of character ``offset`` (0-based) of a scalar's value."""
        start, end = node.start_mark, node.end_mark
        style = getattr(node, "style", None)
        if style in ("|", ">"):
            lines = self.text[start.index:end.index].split("\n")[1:]
            first_line = start.line + 2
        else:
            lines = self.text[start.index:end.index].split("\n")
            first_line = start.line + 1
        if len(lines) <= 1 and style not in ("|", ">"):
            quote = 1 if style in ('"', "'") else 0
            return SourceLocation(self.path, start.line + 1, start.column + 1 + quote + offset)
        indents = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
        indent = min(indents) if indents else 0
        consumed = 0
        for number, line in enumerate(lines):
            content = line.strip() if number == 0 and style not in ("|", ">") else line[indent:]
            column = (start.column if number == 0 and style not in ("|", ">") else indent)
            if not line.strip():
                continue
            if offset <= consumed + len(content):
                quote = 1 if number == 0 and style in ('"', "'") else 0
                return SourceLocation(self.path, first_line + number,
                                      column + quote + offset - consumed + 1)
            consumed += len(content) + 1
        return self.at(node)


def _yaml_hint(source: Source, mark: Any) -> str:
    """The hint for a YAML error: a query value that starts with a quote and goes on after it (YAML
    reads ``query: "shot down" NEAR/5 drone`` as a quoted string, then stray text) is the common trap."""
    lines = source.text.split("\n")
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    key, colon, value = line.strip().partition(": ")
    value = value.strip()
    if colon and value[:1] in ('"', "'") and 0 < value.find(value[0], 1) < len(value) - 1:
        key = key.strip("- ")
        return (f"YAML reads a value that starts with a quote as one quoted string: write '{key}: >' and the "
                f"query indented on the next line, or quote the whole of it: {key}: '{value}'")
    return "check indentation and quoting"


def compose(source: Source) -> yaml.Node | None:
    """The node tree of a one-document YAML file; duplicate keys are errors."""
    try:
        loader = yaml.SafeLoader(source.text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = SourceLocation(source.path, mark.line + 1, mark.column + 1) if mark else \
            SourceLocation(source.path)
        raise RuleError(where, f"invalid YAML: {error.problem or error.context}", _yaml_hint(source, mark)) from None
    except yaml.YAMLError as error:
        raise RuleError(SourceLocation(source.path), f"invalid YAML: {error}") from None
    if node is not None:
        _reject_duplicates(source, node)
    return node


def _reject_duplicates(source: Source, node: yaml.Node) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, yaml.Node] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    first = seen[key.value].start_mark.line + 1
                    raise source.error(key, f"duplicate key {key.value!r} (first on line {first})",
                                       "keep one of them")
                seen[key.value] = key
            _reject_duplicates(source, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicates(source, item)


def value(node: yaml.Node) -> Any:
    """The plain Python value of a node (SafeLoader semantics)."""
    return SafeConstructor().construct_document(node)


def mapping(source: Source, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's entries by key: key -> (key node, value node)."""
    if not isinstance(node, yaml.MappingNode):
        raise source.error(node, f"{what} must be a mapping of keys to values")
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, item in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise source.error(key, f"{what}: keys must be plain words")
        entries[str(key.value)] = (key, item)
    return entries
