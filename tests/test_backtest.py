"""``rules backtest``: a rule set over stored items (SQLite and PostgreSQL) or files, and the diff per rule
against a folder or a git revision."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from monitor import backtest as bt
from tests.conftest import run_cli
from tests.feedserver import FeedServer, Route
from tests.helpers import make_config, poll_once
from tests.test_evidence import DEMO
from tests.test_store import database, rss  # noqa: F401 (the fixture, on SQLite and PostgreSQL)

ITEMS = [("g1", "Jets shot down a drone", "https://n.example/1", "Polish jets shot down a drone on Monday."),
         ("g2", "Poland downed a drone", "https://n.example/2", "Air defence downed a drone near Lublin."),
         ("g3", "Weather", "https://n.example/3", "Rain in Warsaw; a drone filmed it."),
         ("g4", "They tried", "https://n.example/4", "Gunners tried to shoot down a drone and missed.")]


def copy_rules(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(DEMO, folder)
    return folder


def loosen(folder: Path) -> None:
    """The rule changed: it reads every field, and the sentence negation is gone."""
    rule = folder / "downing.yaml"
    text = rule.read_text().replace("fields: [title, content]\n", "").replace(
        'AND NOT ("attempted to" OR "tried to" OR "failed to")', "")
    rule.write_text(text.replace('no_match: ["They tried to shoot down the drone.", ', 'no_match: ['))


def stored(feed_server: FeedServer, tmp_path: Path, database: str) -> Path:  # noqa: F811
    feed_server.routes["/f"] = Route(rss(*ITEMS))
    config = make_config(tmp_path, {"f": feed_server.url("/f")}, database, rules=DEMO)
    poll_once(config)
    return config.path


def test_backtest_of_stored_items_against_a_folder(feed_server: FeedServer, tmp_path: Path,
                                                   database: str) -> None:  # noqa: F811
    config = stored(feed_server, tmp_path, database)
    plain = run_cli("rules", "backtest", "--config", str(config), "--format", "json")
    assert plain.returncode == 0, plain.stderr
    report = json.loads(plain.stdout)
    assert report["items"] == 4
    [rule] = report["rules"]
    assert rule["matched"] == 2 and [m["title"] for m in rule["matches"]] == [ITEMS[0][1], ITEMS[1][1]]
    assert rule["matches"][0]["clauses"] == ["shot-down-aircraft", "shoot-down-verb", "aircraft"]
    loose = copy_rules(tmp_path, "loose")
    loosen(loose)
    diff = json.loads(run_cli("rules", "backtest", "--config", str(config), "--rules", str(loose),
                              "--against", str(DEMO), "--format", "json").stdout)
    [rule] = diff["rules"]
    assert (rule["status"], rule["baseline"], rule["matched"], rule["new"], rule["gone"]) == ("changed", 2, 3, 1, 0)
    assert rule["new_items"][0]["title"] == "They tried" and "shoot down" in rule["new_items"][0]["snippet"]
    back = run_cli("rules", "backtest", "--config", str(config), "--rules", str(DEMO), "--against", str(loose))
    assert "downing (changed): 3 -> 2 items, 0 newly match, 1 no longer match" in back.stdout
    assert "  - " in back.stdout and "They tried (f)" in back.stdout
    same = run_cli("rules", "backtest", "--config", str(config), "--against", str(DEMO), "--since", "1h")
    assert "downing: unchanged (2 items match)" in same.stdout


def test_backtest_against_a_git_revision(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    rules = copy_rules(repo, "rules")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "rules"], check=True)
    loosen(rules)
    corpus = tmp_path / "items.jsonl"
    corpus.write_text("".join(json.dumps({"id": g, "title": t, "text": x}) + "\n" for g, t, _, x in ITEMS))
    result = run_cli("rules", "backtest", str(corpus), "--rules", str(rules), "--against", "HEAD")
    assert result.returncode == 0, result.stderr
    assert "downing (changed): 2 -> 3 items, 1 newly match, 0 no longer match" in result.stdout
    assert "  + " in result.stdout and "They tried (g4)" in result.stdout
    missing = run_cli("rules", "backtest", str(corpus), "--rules", str(rules), "--against", "no-such-rev")
    assert missing.returncode == 1 and "git has no rules at that revision" in missing.stderr
    outside = copy_rules(tmp_path, "outside")
    lost = run_cli("rules", "backtest", str(corpus), "--rules", str(outside), "--against", "HEAD~1")
    assert lost.returncode == 1 and "is not in a git checkout" in lost.stderr, lost.stderr


def test_only_rules_that_changed_are_matched_twice() -> None:
    current, baseline = bt.load(DEMO), bt.load(DEMO)
    same = bt.plan(current, baseline)
    assert [r.spec.id for r in same.rule_set.rules] == ["downing"] and same.status == {"downing": "same"}
    nothing = bt.plan(current, ([], baseline[1]))
    assert nothing.status == {"downing": "added"} and len(nothing.rule_set.rules) == 1


def test_the_rules_that_fire_are_the_rules_that_match() -> None:
    import yaml

    from monitor.scan import load_rules
    from monitor.types import Document
    from tests.conftest import ROOT, RULES

    rule_set = load_rules(RULES)
    cases = yaml.safe_load((ROOT / "tests" / "data" / "core_rules_eval.yaml").read_text(encoding="utf-8"))["cases"]
    docs = [Document(id=str(n), content=str(case["text"])) for n, case in enumerate(cases)]
    assert [rule_set.fired(d) for d in docs] == [[m.rule for m in rule_set.match(d)] for d in docs]
    assert sum(map(bool, map(rule_set.fired, docs))) > 100  # and many fire


def test_a_baseline_with_other_entities_matches_every_rule_twice(tmp_path: Path) -> None:
    other = copy_rules(tmp_path, "other")
    entities = other / "entities" / "base.yaml"
    entities.write_text(entities.read_text().replace("aliases: [MiG-31]", "aliases: [MiG-31, MiG-31K]"))
    corpus = tmp_path / "items.jsonl"
    corpus.write_text("".join(json.dumps({"id": g, "title": t, "text": x}) + "\n" for g, t, _, x in ITEMS))
    result = run_cli("rules", "backtest", str(corpus), "--rules", str(DEMO), "--against", str(other))
    assert result.returncode == 0, result.stderr
    assert "downing (changed): 2 -> 2 items, 0 newly match, 0 no longer match" in result.stdout
