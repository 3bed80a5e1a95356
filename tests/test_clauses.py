"""Named clauses: define: in a rule, rules/lib/ definitions, $name, and the clauses a match reports."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from monitor.errors import RuleSetError
from monitor.rules.clauses import clause_examples, load_library
from monitor.rules.engine import RuleSet
from monitor.rules.loader import check_folder, load_folder
from monitor.scan import run_examples
from monitor.types import Document

ENTITIES = """\
entities:
  - {id: drone-generic, name: drone, type: drone, aliases: ["drone*", "Drohne*"]}
  - {id: mig-31, name: MiG-31, type: aircraft, groups: [military-aircraft], aliases: [MiG-31]}
"""

LIB = """\
description: shoot-down words
define:
  shoot-down-verb:
    description: shot down, in two languages
    query: >
      ((shot OR shoot) NEAR/2f down) OR abgeschossen
    examples:
      match: ["They shot it down.", "Die Drohne wurde abgeschossen."]
      no_match: ["He shot the ball and fell down later on the pitch."]
  aircraft: "@drone OR @aircraft OR jet*"
"""

RULE = """\
id: downing
title: Downing
severity: high
define:
  shot-down-aircraft: >
    $shoot-down-verb NEAR/8 $aircraft
  downed-drone:
    query: downed NEAR/4f @drone
    examples:
      match: ["Poland downed two drones."]
      no_match: ["The drone downed a tree."]
query: >
  $shot-down-aircraft OR $downed-drone
examples:
  match: ["A MiG-31 was shot down."]
  no_match: ["Shot a film."]
"""


def folder(tmp_path: Path, rules: dict[str, str], lib: dict[str, str] | None = None) -> Path:
    (tmp_path / "entities").mkdir(exist_ok=True)
    (tmp_path / "entities" / "base.yaml").write_text(ENTITIES)
    for name, text in (lib or {}).items():
        (tmp_path / "lib").mkdir(exist_ok=True)
        (tmp_path / "lib" / name).write_text(text)
    for name, text in rules.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def problems(directory: Path) -> list[str]:
    _, _, errors = check_folder(directory)
    return [str(e).replace(str(directory) + "/", "") for e in errors]


def test_clauses_from_the_rule_and_the_library_match_and_are_reported(tmp_path: Path) -> None:
    specs, gazetteer = load_folder(folder(tmp_path, {"downing.yaml": RULE}, {"shoot.yaml": LIB}))
    assert [s.id for s in specs] == ["downing"]  # lib/ holds no rules
    rule_set = RuleSet(specs, gazetteer)
    [match] = rule_set.match(Document(id="d", content="Two jets were shot down over the sea."))
    assert match.clauses == ("shot-down-aircraft", "shoot-down-verb", "aircraft")
    assert match.terms == ("jets … shot down",)
    [match] = rule_set.match(Document(id="d", content="Polish forces downed a drone; no jet was lost."))
    assert match.clauses == ("downed-drone",)  # the clause that held, not the one that did not
    assert not rule_set.match(Document(id="d", content="He shot the ball down the pitch."))


def test_a_clause_is_compiled_once_for_every_rule_that_uses_it(tmp_path: Path) -> None:
    other = RULE.replace("id: downing", "id: other").replace("shot-down-aircraft", "sda")
    specs, gazetteer = load_folder(folder(tmp_path, {"a.yaml": RULE, "b.yaml": other}, {"shoot.yaml": LIB}))
    rule_set = RuleSet(specs, gazetteer)
    first, second = (rule.root for rule in rule_set.rules)
    verb_a = first.children[0].child.left  # type: ignore[attr-defined]
    verb_b = second.children[0].child.left  # type: ignore[attr-defined]
    assert verb_a is verb_b and verb_a.name == "shoot-down-verb"


def test_clause_examples_run_by_rules_test(tmp_path: Path) -> None:
    directory = folder(tmp_path, {"downing.yaml": RULE}, {"shoot.yaml": LIB})
    specs, gazetteer = load_folder(directory)
    library, errors = load_library(directory / "lib", gazetteer)
    assert errors == []
    out = io.StringIO()
    failures, total = run_examples(RuleSet(specs, gazetteer), out, clause_examples(library))
    assert (failures, total) == (0, 2 + 3 + 2), out.getvalue()
    broken = RULE.replace('no_match: ["The drone downed a tree."]', 'no_match: ["Poland downed a drone."]')
    directory = folder(tmp_path, {"downing.yaml": broken}, {"shoot.yaml": LIB})
    specs, gazetteer = load_folder(directory)
    out = io.StringIO()
    failures, _ = run_examples(RuleSet(specs, gazetteer), out, clause_examples(library))
    assert failures == 1
    assert out.getvalue() == (f"{directory}/downing.yaml: FAIL $downed-drone: example no_match matched: "
                              "'Poland downed a drone.'\n")


@pytest.mark.parametrize(("rule", "lib", "expected"), [
    (RULE.replace("$downed-drone\n", "$downed-drones\n"), LIB,
     "downing.yaml:13:26: unknown clause '$downed-drones' (hint: did you mean $downed-drone?)"),
    (RULE, LIB.replace('aircraft: "@drone', 'aircraft: "$shoot-down-verb AND @drone'),
     "downing.yaml:6:29: NEAR cannot take $aircraft: it is not a word, phrase, @entity, NEAR or (… OR …) group"),
    (RULE, LIB.replace('aircraft: "@drone', 'aircraft: "$aircraft OR @drone'),
     "lib/shoot.yaml:10:14: clause cycle: $aircraft -> $aircraft"),
    (RULE.replace("downed NEAR/4f @drone", "downed NEAR/4f $shot-down-aircraft OR $x"), LIB,
     "downing.yaml:8:50: unknown clause '$x' (hint: define it under define: or in rules/lib/)"),
    (RULE.replace("  downed-drone:", "  aircraft: jets\n  downed-drone:"), LIB,
     "downing.yaml:7:3: clause '$aircraft' is also defined in rules/lib/ (hint: at lib/shoot.yaml:10:3"),
    (RULE.replace("  downed-drone:", "  Bad_Name: jets\n  downed-drone:"), LIB,
     "downing.yaml:7:3: clause name 'Bad_Name' must be lower case"),
    (RULE.replace("    query: downed", "    quer: downed"), LIB,
     "downing.yaml:8:5: unknown key 'quer' in clause 'downed-drone' (hint: did you mean 'query'?)"),
    (RULE, LIB.replace("description: shoot", "colour: red\ndescription: shoot"),
     "lib/shoot.yaml:1:1: unknown key 'colour' in a rules/lib file"),
    (RULE, LIB.replace("abgeschossen", "abgeschossen AND"),
     "lib/shoot.yaml:6:57: expected a term after AND"),
    (RULE, LIB.replace("abgeschossen", "abgeschossen AND"),
     "downing.yaml:6:5: clause '$shoot-down-verb' has errors (hint: see lib/shoot.yaml:3:3)"),
])
def test_clause_problems_are_located(tmp_path: Path, rule: str, lib: str, expected: str) -> None:
    found = problems(folder(tmp_path, {"downing.yaml": rule}, {"shoot.yaml": lib} if lib else {}))
    assert any(p.startswith(expected) for p in found), found


def test_a_cycle_through_two_clauses_names_both(tmp_path: Path) -> None:
    lib = "define:\n  a: x OR $b\n  b: y OR $a\n"
    found = problems(folder(tmp_path, {"downing.yaml": RULE}, {"shoot.yaml": LIB, "cycle.yaml": lib}))
    assert "lib/cycle.yaml:3:11: clause cycle: $a -> $b -> $a" in [p.split(" (hint")[0] for p in found], found


def test_a_name_defined_in_two_lib_files_is_an_error(tmp_path: Path) -> None:
    more = "define: {aircraft: x}"
    found = problems(folder(tmp_path, {"downing.yaml": RULE}, {"shoot.yaml": LIB, "more.yaml": more}))
    assert "lib/shoot.yaml:10:3: clause '$aircraft' is defined twice (hint: first at lib/more.yaml:1:10; " \
        "rename one)" in found


def test_a_rule_with_errors_in_its_clauses_does_not_load(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError):
        load_folder(folder(tmp_path, {"downing.yaml": RULE.replace("$aircraft", "$aircarft")}, {"shoot.yaml": LIB}))
