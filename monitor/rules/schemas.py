"""JSON Schemas of rule files, ``rules/lib/`` files and gazetteer files, for editors.

Pure. The schemas are built here from the loader's own constants (severities, statuses,
fields, id pattern) and shipped as files in ``monitor/schemas/`` (package data), which
yaml-language-server reads from a modeline; a test holds the files to this module and
validates every shipped rule, lib and gazetteer file against them. The loader stays the
judge: a schema cannot check a query's syntax, only that it is a string.

    python -m monitor.rules.schemas     # rewrite monitor/schemas/*.json after a change here
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.stories.policy import TIERS
from monitor.types import FIELDS, SEVERITIES

KINDS = ("rule", "lib", "entities")
FOLDER = Path(__file__).resolve().parent.parent / "schemas"
_ID = "^[a-z0-9][a-z0-9-]*$"
_DURATION = r"^\s*\d+(\.\d+)?\s*[smhdw]\s*$"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_DURATION_TEXT = 'a duration: "30s", "5m", "2h", "1d"'


def _duration(what: str = "") -> dict[str, Any]:
    return {"type": "string", "pattern": _DURATION, "description": f"{what}{': ' if what else ''}{_DURATION_TEXT}"}


def _whole(least: int, what: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": least, "description": what}


def _story_keys() -> dict[str, Any]:
    """The story keys (issue 15): the corroboration gate, the update ladder, the cooldown, the surge."""
    surge = {"type": "object", "additionalProperties": False, "properties": {
        "window": _duration("the length of a counting window (default 1h)"),
        "factor": {"type": "number", "minimum": 1, "description": "fire at factor x the baseline (default 3)"},
        "min_count": _whole(1, "fire at no fewer stories in the window (default 5)"),
        "min_publishers": _whole(1, "from at least this many publishers (default 2)"),
        "max_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                  "description": "the Poisson tail of the count must be below this (default 0.001)"},
        "warmup": _whole(0, "complete windows observed before a surge can fire (default 2)"),
        "baseline_windows": _whole(1, "the windows the baseline is the mean of (default 24)"),
        "cooldown": _duration("the least time between two surges of the rule (default 6h)")}}
    tier = {"enum": list(TIERS)}
    return {
        "min_sources": _whole(1, "publishers that must carry a story before its first alert (default 1)"),
        "within": _duration("they must arrive within this time of the rule's first match in the story (default 6h)"),
        "tiers": {"description": "count only these tiers' publishers, and official ones, for min_sources (default all)",
                  "oneOf": [tier, {"type": "array", "items": tier}]},
        "min_official": _whole(0, "this many official publishers release the first alert alone (default 0: off)"),
        "updates": {"type": "array", "items": {"type": "integer", "minimum": 2},
                    "description": "publisher counts, rising strictly, at which a story sends an update "
                    "(default [3, 10, 30]; [] for none)"},
        "cooldown": _duration("the least time between two messages (alert, update) of the rule on one story "
                              "(default 30m)"),
        "surge": {"description": "alert when the rule's matching stories per window rise well above its "
                  "baseline: true for the defaults, or its settings",
                  "oneOf": [{"type": "boolean"}, surge]},
    }


def _strings(what: str) -> dict[str, Any]:
    return {"description": what, "oneOf": [{"type": "string", "minLength": 1},
                                           {"type": "array", "items": {"type": "string", "minLength": 1}}]}


def _shared() -> dict[str, Any]:
    """Definitions rule and lib files share: a query, examples, named clauses."""
    example = {"oneOf": [
        {"type": "string", "description": "the content of a document"},
        {"type": "object", "additionalProperties": False, "minProperties": 1,
         "properties": {"title": {"type": "string"}, "summary": {"type": "string"}, "content": {"type": "string"},
                        "feed": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}]}
    query = {"type": "string", "minLength": 1,
             "description": "words, word*, \"phrases\", AND OR NOT, NEAR/n, NEAR/nf, title:( ), summary:( ), "
             "content:( ), sentence:( ), feed:name, tag:name, @entity, $clause, /regex/ (RE2)"}
    clause = {"oneOf": [
        {"$ref": "#/$defs/query"},
        {"type": "object", "additionalProperties": False, "required": ["query"],
         "properties": {"query": {"$ref": "#/$defs/query"}, "description": {"type": "string"},
                        "examples": {"$ref": "#/$defs/examples",
                                     "description": "run by `rules test` on the clause alone"}}}]}
    return {
        "query": query,
        "example": example,
        "examples": {"type": "object", "additionalProperties": False,
                     "properties": {"match": {"type": "array", "items": {"$ref": "#/$defs/example"}},
                                    "no_match": {"type": "array", "items": {"$ref": "#/$defs/example"}}}},
        "define": {"type": "object", "description": "named clauses, used as $name",
                   "propertyNames": {"pattern": _ID}, "additionalProperties": {"$ref": "#/$defs/clause"}},
        "clause": clause,
    }


def rule_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": _ID, "description": "unique, lower case letters, digits and '-'"},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 1},
        "status": {"enum": ["stable", "test", "experimental"]},
        "severity": {"enum": list(SEVERITIES)},
        "tags": _strings("tags, for routing and listing"),
        "query": {"$ref": "#/$defs/query"},
        "define": {"$ref": "#/$defs/define"},
        "fields": {"description": "the fields the query reads (default: all three)",
                   "oneOf": [{"enum": list(FIELDS)}, {"type": "array", "items": {"enum": list(FIELDS)}}]},
        "weights": {"type": "object", "additionalProperties": {"type": "number"},
                    "description": "term -> weight; with threshold, the rule fires when the weights of hit terms "
                    "sum to at least the threshold"},
        "threshold": {"type": "number"},
        "channels": _strings("channel names (default: every channel whose min_severity allows it)"),
        **_story_keys(),
        "references": _strings("links about what the rule watches"),
        "falsepositives": _strings("what may look like it but is not"),
        "examples": {"$ref": "#/$defs/examples"},
    }
    return {"$schema": _DRAFT, "title": "crisis-monitor rule file (rules/*.yaml)", "type": "object",
            "additionalProperties": False, "required": ["id", "title", "severity", "query"],
            "properties": properties, "$defs": _shared()}


def lib_schema() -> dict[str, Any]:
    return {"$schema": _DRAFT, "title": "crisis-monitor named clauses (rules/lib/*.yaml)", "type": "object",
            "additionalProperties": False, "required": ["define"],
            "properties": {"description": {"type": "string"}, "define": {"$ref": "#/$defs/define"}},
            "$defs": _shared()}


def entities_schema() -> dict[str, Any]:
    entity = {"type": "object", "additionalProperties": False, "required": ["id", "aliases"],
              "properties": {
                  "id": {"type": "string", "pattern": _ID},
                  "name": {"type": "string"},
                  "type": {"type": "string", "description": "country, aircraft, drone, …; @type names them all"},
                  "groups": {"type": "array", "items": {"type": "string", "pattern": _ID},
                             "description": "@group names every entity in it"},
                  "aliases": {"type": "array", "minItems": 1, "items": {"type": ["string", "integer"]},
                              "description": "words or phrases; a word may end with * (3+ letters before it)"},
                  "description": {"type": "string"}}}
    return {"$schema": _DRAFT, "title": "crisis-monitor gazetteer (rules/entities/*.yaml)", "type": "object",
            "additionalProperties": False, "required": ["entities"],
            "properties": {"entities": {"type": "array", "items": entity}}}


def schema(kind: str) -> dict[str, Any]:
    return {"rule": rule_schema, "lib": lib_schema, "entities": entities_schema}[kind]()


def text(kind: str) -> str:
    """The schema as its shipped file holds it."""
    return json.dumps(schema(kind), indent=2, ensure_ascii=False) + "\n"


def path(kind: str) -> Path:
    """The shipped schema file of ``kind``."""
    return FOLDER / f"{kind}.schema.json"


if __name__ == "__main__":
    FOLDER.mkdir(exist_ok=True)
    for name in KINDS:
        path(name).write_text(text(name), encoding="utf-8")
        print(path(name))
