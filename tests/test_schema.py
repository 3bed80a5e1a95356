"""The JSON Schemas for editors: shipped as package data, in step with the loader, and every shipped
rule, rules/lib and gazetteer file valid against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from monitor.rules import entities, loader, schemas
from monitor.rules.clauses import library_files
from monitor.rules.yamlsrc import Source, compose, value
from tests.conftest import ROOT, RULES, run_cli

DEMO = ROOT / "tests" / "data" / "clauses"


def load(path: Path) -> object:
    return value(compose(Source(str(path), path.read_text(encoding="utf-8"))))  # type: ignore[arg-type]


def files(kind: str) -> list[Path]:
    folders = (RULES, DEMO)
    if kind == "rule":
        return [p for folder in folders for p in loader.rule_files(folder)]
    if kind == "lib":
        return [p for folder in folders for p in library_files(folder / "lib")]
    return [p for folder in folders for p in sorted((folder / "entities").glob("*.yaml"))]


@pytest.mark.parametrize("kind", schemas.KINDS)
def test_every_shipped_file_is_valid(kind: str) -> None:
    schema = json.loads(schemas.path(kind).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    found = files(kind)
    assert found or (kind == "lib" and not (RULES / "lib").is_dir())
    for path in found:
        errors = [f"{path}: {e.json_path}: {e.message}" for e in validator.iter_errors(load(path))]
        assert errors == []


@pytest.mark.parametrize(("kind", "document", "where"), [
    ("rule", {"id": "x", "title": "t", "severity": "severe", "query": "a"}, "$.severity"),
    ("rule", {"id": "x", "title": "t", "severity": "low", "query": "a", "colour": 1}, "$"),
    ("rule", {"id": "x", "title": "t", "severity": "low", "query": "a", "define": {"Bad": "b"}}, "$.define"),
    ("lib", {"define": {"a": {"query": "x", "examples": {"match": [{"body": "x"}]}}}}, "$.define.a"),
    ("entities", {"entities": [{"id": "x"}]}, "$.entities[0]"),
])
def test_the_schemas_refuse_what_the_loader_refuses(kind: str, document: object, where: str) -> None:
    validator = jsonschema.Draft202012Validator(schemas.schema(kind))
    assert [e.json_path for e in validator.iter_errors(document)] == [where]


def test_schemas_are_in_step_with_the_loader_and_the_shipped_files() -> None:
    assert set(schemas.rule_schema()["properties"]) == loader._KEYS
    entity = schemas.entities_schema()["properties"]["entities"]["items"]
    assert set(entity["properties"]) == entities._KEYS
    for kind in schemas.KINDS:  # the files are this module's output (python -m monitor.rules.schemas)
        assert schemas.path(kind).read_text(encoding="utf-8") == schemas.text(kind)


def test_rules_schema_prints_each_schema() -> None:
    for kind in schemas.KINDS:
        result = run_cli("rules", "schema", kind)
        assert result.returncode == 0 and json.loads(result.stdout) == schemas.schema(kind)
    assert json.loads(run_cli("rules", "schema").stdout)["title"].startswith("crisis-monitor rule file")
