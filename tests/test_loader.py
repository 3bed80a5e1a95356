"""Rule and entity files: every problem reported as file:line:col with a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import RuleSetError
from monitor.rules.loader import check_folder, load_folder

ENTITIES = """\
entities:
  - {id: estonia, name: Estonia, type: country, groups: [nato-member], aliases: [Estonia, Estonian]}
  - {id: mig-31, name: MiG-31, type: aircraft, groups: [military-aircraft], aliases: [MiG-31]}
"""

GOOD = """\
id: good
title: A good rule
severity: high
query: >
  (violat* NEAR/6 airspace)
  AND @military-aircraft
examples:
  match: ["MiG-31 jets violated Estonian airspace."]
"""


def make(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "entities").mkdir()
    (tmp_path / "entities" / "base.yaml").write_text(ENTITIES)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    _, _, errors = check_folder(make(tmp_path, files))
    return [str(e).replace(str(tmp_path) + "/", "") for e in errors]


def test_good_rule_loads(tmp_path: Path) -> None:
    specs, gazetteer = load_folder(make(tmp_path, {"good.yaml": GOOD}))
    assert [s.id for s in specs] == ["good"]
    assert "estonia" in gazetteer.entities
    assert specs[0].examples_match[0].content.startswith("MiG-31")


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD + "colour: red\n", "x.yaml:9:1: unknown key 'colour'"),
    (GOOD.replace("severity: high", "severity: severe"), "x.yaml:3:11: severity 'severe' is not one of"),
    (GOOD + "cooldown: soon\n", "x.yaml:9:11: cooldown: 'soon' is not a duration"),
    (GOOD + "title: again\n", "x.yaml:9:1: duplicate key 'title' (first on line 2)"),
    (GOOD.replace("@military-aircraft", "@militray-aircraft"),
     "x.yaml:6:7: unknown entity, group or type '@militray-aircraft' (hint: did you mean @military-aircraft?)"),
    (GOOD.replace("AND @military", "AND /a(b/ AND @military"), "x.yaml:6:9: invalid regular expression"),
    (GOOD.replace("NEAR/6 airspace", "NEAR/6"), "x.yaml:5:18: expected a term after NEAR/6, found ')'"),
    ("id: q\ntitle: t\nseverity: low\nquery: 'jets NEAR/3'\n", "x.yaml:4:20: expected a term after NEAR/3"),
    ("id: Bad_Id\ntitle: t\nseverity: low\nquery: jets\n", "x.yaml:1:5: id 'Bad_Id' must be lower case"),
    ("id: q\ntitle: t\nquery: jets\n", "x.yaml:1:1: missing required key 'severity'"),
    ("id: q\ntitle: t\nseverity: low\nquery: jets\nweights: {jets: 2}\n", "weights and threshold go together"),
    ("id: q\ntitle: t\nseverity: low\nquery: jets\nfields: [body]\n", "x.yaml:5:9: unknown field 'body'"),
    ("id: q\n  title: [\n", "x.yaml:2:8: invalid YAML"),
])
def test_each_problem_is_located(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, {"x.yaml": text})
    assert any(expected in p for p in found), found


def test_all_problems_of_all_files_in_one_run(tmp_path: Path) -> None:
    found = problems(tmp_path, {
        "a.yaml": GOOD,
        "b.yaml": GOOD,  # duplicate id
        "c.yaml": GOOD.replace("severity: high", "severity: 9") + "extra: 1\n",
    })
    assert any(p.startswith("b.yaml:1:5: duplicate rule id 'good'") for p in found), found
    assert any(p.startswith("c.yaml:3:11: severity 9") for p in found), found
    assert any(p.startswith("c.yaml:9:1: unknown key 'extra'") for p in found), found


def test_bad_entity_file(tmp_path: Path) -> None:
    folder = make(tmp_path, {"good.yaml": GOOD})
    (folder / "entities" / "more.yaml").write_text(
        "entities:\n  - {id: estonia, aliases: [Eesti]}\n  - {id: x, aliases: [ab*], colour: 1}\n")
    with pytest.raises(RuleSetError) as caught:
        load_folder(folder)
    text = str(caught.value)
    assert "more.yaml:2:10: duplicate entity id 'estonia'" in text
    assert "more.yaml:3:29: unknown key 'colour' in entity" in text


def test_shipped_rules_check_clean() -> None:
    from tests.conftest import RULES

    specs, gazetteer, errors = check_folder(RULES)
    assert errors == []
    assert {"article-4", "airspace-violation", "shoot-down"} <= {s.id for s in specs}
    assert len(specs) >= 6 and len(gazetteer.entities) >= 100
    for spec in specs:
        assert spec.examples_match and spec.examples_no_match and spec.falsepositives and spec.references
        assert not spec.channels, "shipped rules route by severity and tags, not by channel"
