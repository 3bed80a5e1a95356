"""The command line as users run it: scan formats, rules check/test/suggest, help, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEEDS, run_cli


def test_scan_jsonl_one_line_per_document_in_input_order() -> None:
    result = run_cli("scan", str(SEEDS), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == sorted(p.name for p in SEEDS.glob("*.txt"))
    first = records[0]
    assert {"article-4", "airspace-violation", "shoot-down"} <= set(first["rules"])
    match = next(m for m in first["matches"] if m["rule"] == "article-4")
    assert set(match) == {"rule", "severity", "clauses", "terms", "entities", "snippet"}
    assert match["severity"] == "high" and "nato" in match["entities"]
    assert any("article 4" in term for term in match["terms"])
    assert records[-1]["rules"] == []


def test_scan_without_snippets_reports_the_same_matches_without_them() -> None:
    full = [json.loads(line) for line in run_cli("scan", str(SEEDS), "--format", "jsonl").stdout.splitlines()]
    result = run_cli("scan", str(SEEDS), "--format", "jsonl", "--no-snippets")
    assert result.returncode == 0, result.stderr
    bare = [json.loads(line) for line in result.stdout.splitlines()]
    for record in full:
        for match in record["matches"]:
            del match["snippet"]
    assert bare == full and any(r["matches"] for r in bare)
    text = run_cli("scan", str(SEEDS / "003_d59f3123a2c8b298.txt"), "--no-snippets").stdout
    assert "003_d59f3123a2c8b298.txt: article-4 [high]" in text and "terms:" in text
    assert "Johannes Stern" not in text and text.rstrip().endswith("1 document, 1 matched, 3 matches")


def test_scan_long_input_without_snippets_in_worker_processes() -> None:
    records = [json.loads(line) for line in
               run_cli("scan", "-", "--format", "jsonl", "--no-snippets", stdin=_long_input(600)).stdout.splitlines()]
    assert [r["id"] for r in records] == [f"d{n}" for n in range(600)]
    assert all("snippet" not in m for r in records for m in r["matches"]) and any(r["matches"] for r in records)


def test_scan_json_is_one_array() -> None:
    result = run_cli("scan", str(SEEDS / "003_d59f3123a2c8b298.txt"), "--format", "json")
    records = json.loads(result.stdout)
    assert isinstance(records, list) and records[0]["id"] == "003_d59f3123a2c8b298.txt"


def test_scan_text_piped_shows_the_snippet_as_written() -> None:
    result = run_cli("scan", str(SEEDS / "003_d59f3123a2c8b298.txt"))
    assert result.returncode == 0
    assert "003_d59f3123a2c8b298.txt: article-4 [high]" in result.stdout
    # Piped, the snippet is as written (its own markdown bold kept), with no markers around the terms (issue 21).
    assert "new war escalation **Johannes Stern** **22 September 2025** Last Friday" in result.stdout
    assert "**nato**" not in result.stdout.lower() and "\x1b[" not in result.stdout
    assert result.stdout.rstrip().endswith("1 document, 1 matched, 3 matches")


def test_scan_stdin_jsonl_and_feed_files(tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    feed.write_text("""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
      <item><guid>g1</guid><title>Russian drones shot down over Poland</title>
      <description>&lt;p&gt;Polish jets shot down several drones.&lt;/p&gt;</description></item>
      <item><guid>g2</guid><title>Weather</title><description>Sunny.</description></item>
      </channel></rss>""")
    result = run_cli("scan", str(feed), "-", "--format", "jsonl",
                     stdin='{"id": "s1", "text": "Three Russian MiG-31 jets violated Estonian airspace."}\n')
    assert result.returncode == 0, result.stderr
    records = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert list(records) == ["g1", "g2", "s1"]
    assert "shoot-down" in records["g1"]["rules"] and records["g2"]["rules"] == []
    assert "airspace-violation" in records["s1"]["rules"]


@pytest.mark.parametrize(("stdin", "fragment"), [
    ("not json\n", "<stdin>:1: invalid JSON"),
    ('{"title": "no id"}\n', '<stdin>:1: a line needs an object with an "id"'),
])
def test_scan_bad_input_is_one_line(stdin: str, fragment: str) -> None:
    result = run_cli("scan", "-", stdin=stdin)
    assert result.returncode == 1
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _long_input(count: int) -> str:
    seeds = sorted(SEEDS.glob("*.txt"))
    return "".join(json.dumps({"id": f"d{n}", "text": seeds[n % len(seeds)].read_text()}) + "\n"
                   for n in range(count))


def test_scan_long_input_in_worker_processes_keeps_order_and_matches() -> None:
    # 700 documents: several chunks, so scan hands them to worker processes.
    stdin = _long_input(700)
    result = run_cli("scan", "-", "--format", "jsonl", stdin=stdin)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == [f"d{n}" for n in range(700)]
    alone = {}
    for path in sorted(SEEDS.glob("*.txt")):
        single = run_cli("scan", str(path), "--format", "jsonl")
        alone[path.name] = json.loads(single.stdout)["matches"]
    names = sorted(alone)
    for n, record in enumerate(records):
        assert record["matches"] == alone[names[n % len(names)]]


def test_scan_bad_line_after_many_documents_is_skipped_and_the_scan_goes_on() -> None:
    # past the first chunks (matched in worker processes), then more documents after the bad line
    stdin = _long_input(600) + "not json\n" + _long_input(5)
    result = run_cli("scan", "-", "--format", "jsonl", stdin=stdin)
    assert result.returncode == 1
    assert "<stdin>:601: invalid JSON" in result.stderr and "line skipped" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == \
        [f"d{n}" for n in range(600)] + [f"d{n}" for n in range(5)]


def test_scan_missing_path_and_bad_rules(tmp_path: Path) -> None:
    result = run_cli("scan", str(tmp_path / "nope.txt"))
    assert result.returncode == 1 and "no such file or folder" in result.stderr
    (tmp_path / "bad.yaml").write_text("id: bad\ntitle: t\nseverity: high\nquery: a b\n")
    result = run_cli("scan", str(SEEDS), "--rules", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path}/bad.yaml:4:10: two terms with no operator" in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_check_ok_and_errors(tmp_path: Path) -> None:
    ok = run_cli("rules", "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for name, text in {"a.yaml": "id: a\ntitle: t\nseverity: hot\nquery: x\n",
                       "b.yaml": "id: b\ntitle: t\nseverity: low\nquery: x NEAR/3\nfoo: 1\n"}.items():
        (tmp_path / name).write_text(text)
    bad = run_cli("rules", "check", str(tmp_path))
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path}/a.yaml:3:11: severity 'hot'")
    assert any(line.startswith(f"{tmp_path}/b.yaml:4:16: expected a term after NEAR/3") for line in lines)
    assert any(line.startswith(f"{tmp_path}/b.yaml:5:1: unknown key 'foo'") for line in lines)


def test_rules_check_checks_the_channels_rules_name_against_the_config(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "paged.yaml").write_text("id: paged\ntitle: t\nseverity: high\nquery: jets\nchannels: [pager]\n")
    (tmp_path / "config.toml").write_text('[monitor]\nrules = "rules"\n')
    # The config found as the daemon finds it (./config.toml) defines no channel "pager".
    missing = run_cli("rules", "check", "rules", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stdout.splitlines() == [
        "rules/paged.yaml:5:11: channels: unknown channel 'pager' (hint: channels in config.toml: console)"]
    assert "channels, feeds and tags checked against config.toml" in missing.stderr
    (tmp_path / "paging.toml").write_text('[[channels]]\nname = "pager"\ntype = "console"\n')
    defined = run_cli("rules", "check", str(rules), "--config", str(tmp_path / "paging.toml"))
    assert defined.returncode == 0, defined.stdout
    broken = run_cli("rules", "check", str(rules), "--config", str(tmp_path / "nope.toml"))
    assert broken.returncode == 1 and "nope.toml: no such config file" in broken.stdout
    assert "Traceback" not in broken.stdout + broken.stderr


def test_rules_test_passes_on_shipped_rules_and_fails_on_a_bad_example(tmp_path: Path) -> None:
    ok = run_cli("rules", "test")
    assert ok.returncode == 0, ok.stdout
    assert "0 failed" in ok.stderr
    (tmp_path / "r.yaml").write_text("id: r\ntitle: t\nseverity: low\nquery: drones\n"
                                     "examples:\n  match: [jets]\n  no_match: [drones]\n")
    bad = run_cli("rules", "test", str(tmp_path))
    assert bad.returncode == 1
    assert "FAIL r: example match did not match: 'jets'" in bad.stdout
    assert "FAIL r: example no_match matched: 'drones'" in bad.stdout


def test_rules_suggest_on_seeds() -> None:
    result = run_cli("rules", "suggest", str(SEEDS), "--top", "15")
    assert result.returncode == 0, result.stderr
    phrases = re.findall(r'"([^"]+)"\n', result.stdout)
    assert any("airspace" in p for p in phrases), result.stdout
    assert "@nato" in result.stdout and "@russia" in result.stdout
    assert "starting query:" in result.stdout


COMMANDS = [["scan"], ["rules"], ["rules", "check"], ["rules", "test"], ["rules", "suggest"], ["rules", "explain"],
            ["rules", "backtest"], ["rules", "schema"], ["stories", "list"], ["stories", "show"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "usage: crisis-monitor" in result.stdout
    assert f"crisis-monitor {' '.join(command)}" in (ROOT / "README.md").read_text()


def test_usage_error_exits_2() -> None:
    assert run_cli("scan").returncode == 2
    assert run_cli("bogus").returncode == 2
