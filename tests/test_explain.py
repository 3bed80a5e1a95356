"""``rules explain``: a rule's query tree over a document, node by node, true or false, with hits."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.test_evidence import DEMO

TEXT = "Polish jets tried to shoot down a drone. Later a MiG-31 was shot down by Polish F-16s."


def test_explain_shows_each_node_and_the_sentence_that_held() -> None:
    result = run_cli("rules", "explain", "downing", "-", "--rules", str(DEMO), stdin=TEXT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "stdin: downing: MATCH"
    assert "  ✓ OR  [mig 31 … shot down]" in lines
    assert "    ✓ $shot-down-aircraft  [mig 31 … shot down]" in lines
    assert "      ✓ sentence:( )  (in the content: 'Later a MiG-31 was shot down by Polish F-16s.')" in lines
    assert "            ✓ $shoot-down-verb  [shot down]" in lines
    assert "                ✗ abgeschossen" in lines
    assert "    ✗ $downed-drone" in lines
    assert "        ✓ @drone  [drone]" in lines  # held, but the NEAR around it did not


def test_explain_a_miss_as_json_and_unknown_rules() -> None:
    result = run_cli("rules", "explain", "downing", "-", "--rules", str(DEMO), "--format", "json",
                     stdin="They tried to shoot down the drone.")
    [record] = json.loads(result.stdout)
    assert record["matched"] is False and record["tree"]["held"] is False
    sentence = record["tree"]["children"][0]["children"][0]
    assert sentence["node"] == "sentence:( )" and "no sentence holds it" in sentence["note"]
    jsonl = '{"id": "a", "title": "Poland downed a drone"}\n{"id": "b", "text": "Nothing here."}\n'
    records = json.loads(run_cli("rules", "explain", "downing", "-", "--rules", str(DEMO), "--format", "json",
                                 stdin=jsonl).stdout)
    assert [(r["id"], r["matched"]) for r in records] == [("a", True), ("b", False)]
    wrong = run_cli("rules", "explain", "downin", "-", "--rules", str(DEMO), stdin="x")
    assert wrong.returncode == 1 and "no rule 'downin'" in wrong.stderr and "did you mean 'downing'?" in wrong.stderr
