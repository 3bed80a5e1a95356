"""A rule file's story keys (issue 15): parsed into RuleSpec.stories, every bad value located with a hint,
the JSON Schema in step with the loader, and `rules check` warning of keys that do nothing."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from monitor.rules import schemas
from monitor.rules.lint import rule_warnings
from monitor.rules.loader import load_folder
from monitor.rules.yamlsrc import Source, compose, value
from monitor.stories.policy import DEFAULT_POLICY, StoryPolicy
from monitor.stories.surge import SurgeSpec
from tests.conftest import run_cli
from tests.test_loader import GOOD, make, problems


def policy_of(tmp_path: Path, extra: str) -> StoryPolicy:
    specs, _ = load_folder(make(tmp_path, {"x.yaml": GOOD + extra}))
    return specs[0].stories


def test_a_rule_without_story_keys_has_the_default_policy(tmp_path: Path) -> None:
    assert policy_of(tmp_path, "") is DEFAULT_POLICY


def test_every_story_key_is_read(tmp_path: Path) -> None:
    policy = policy_of(tmp_path, "min_sources: 3\nwithin: 2h\ntiers: [wire, official]\nmin_official: 1\n"
                                 "updates: [5, 12]\ncooldown: 10m\n"
                                 "surge: {window: 30m, factor: 4, min_count: 8, min_publishers: 3, max_p: 0.01,"
                                 " warmup: 3, baseline_windows: 48, cooldown: 2h}\n")
    assert policy == StoryPolicy(min_sources=3, within=7200, tiers=("official", "wire"), min_official=1,
                                 updates=(5, 12), cooldown=600,
                                 surge=SurgeSpec(window=1800, factor=4, min_count=8, min_publishers=3, max_p=0.01,
                                                 warmup=3, baseline_windows=48, cooldown=7200))
    assert policy.gated


@pytest.mark.parametrize(("extra", "surge"), [
    ("surge: true\n", SurgeSpec()),
    ("surge: false\n", None),
    ("surge: {}\n", SurgeSpec()),
    ("surge: {window: 2h}\n", SurgeSpec(window=7200)),
])
def test_surge_true_false_or_settings(tmp_path: Path, extra: str, surge: SurgeSpec | None) -> None:
    assert policy_of(tmp_path, extra).surge == surge


def test_an_empty_ladder_and_a_single_tier(tmp_path: Path) -> None:
    policy = policy_of(tmp_path, "updates: []\ntiers: official\n")
    assert policy.updates == () and policy.tiers == ("official",) and policy.gated


def test_cooldown_is_the_story_policys(tmp_path: Path) -> None:
    specs, _ = load_folder(make(tmp_path, {"x.yaml": GOOD + "cooldown: 2h\n"}))
    assert specs[0].stories.cooldown == 7200
    assert not hasattr(specs[0], "cooldown")  # one place only: RuleSpec.stories


@pytest.mark.parametrize(("extra", "expected"), [
    ("min_sources: 0\n", "x.yaml:9:14: min_sources must be a whole number of at least 1, not 0 (hint: as in "
                         "min_sources: 2)"),
    ("min_sources: two\n", "x.yaml:9:14: min_sources must be a whole number of at least 1, not 'two'"),
    ("min_sources: 2.5\n", "x.yaml:9:14: min_sources must be a whole number"),
    ("min_sources: true\n", "x.yaml:9:14: min_sources must be a whole number"),
    ("min_official: -1\n", "x.yaml:9:15: min_official must be a whole number of at least 0, not -1"),
    ("within: soon\n", "x.yaml:9:9: within: 'soon' is not a duration"),
    ("within: 0h\n", "x.yaml:9:9: within: '0h' is not a positive duration"),
    ("cooldown: 5\n", "x.yaml:9:11: cooldown: 5 is not a duration"),
    ("tiers: [wire, offical]\n", "x.yaml:9:8: tiers: unknown tier 'offical' (hint: did you mean 'official'?)"),
    ("tiers: [blogs]\n", "x.yaml:9:8: tiers: unknown tier 'blogs' (hint: tiers are official, wire, media, other)"),
    ("tiers: {wire: 1}\n", "x.yaml:9:8: tiers must be a list of tiers"),
    ("updates: [3, 3, 10]\n", "x.yaml:9:10: updates must rise strictly, not [3, 3, 10] (hint: as in updates: [3, 10])"),
    ("updates: [10, 3]\n", "x.yaml:9:10: updates must rise strictly"),
    ("updates: [1, 3]\n", "x.yaml:9:10: updates must be a list of publisher counts of at least 2, not [1, 3]"),
    ("updates: 3\n", "x.yaml:9:10: updates must be a list of publisher counts of at least 2, not 3 (hint: as in "
                     "updates: [3, 10, 30]; [] sends no ladder updates)"),
    ("surge: often\n", "x.yaml:9:8: surge must be true, false or a mapping of its settings"),
    ("surge: {windw: 1h}\n", "x.yaml:9:9: unknown key 'windw' in surge (hint: did you mean 'window'?)"),
    ("surge: {window: hourly}\n", "x.yaml:9:17: surge.window: 'hourly' is not a duration"),
    ("surge: {factor: 0.5}\n", "x.yaml:9:17: surge.factor must be at least 1, not 0.5"),
    ("surge: {factor: big}\n", "x.yaml:9:17: surge.factor must be a number"),
    ("surge: {max_p: 0}\n", "x.yaml:9:16: surge.max_p must be above 0 and at most 1, not 0"),
    ("surge: {min_count: 0}\n", "x.yaml:9:20: surge.min_count must be a whole number of at least 1, not 0"),
    ("surge: {warmup: 5, baseline_windows: 3}\n",
     "x.yaml:9:8: surge.warmup 5 is more than surge.baseline_windows 3, so the surge never fires"),
    ("surge:\n  window: 1h\n  cooldwn: 2h\n", "x.yaml:11:3: unknown key 'cooldwn' in surge (hint: did you mean "
                                             "'cooldown'?)"),
    ("min_source: 2\n", "x.yaml:9:1: unknown key 'min_source' (hint: did you mean 'min_sources'?)"),
])
def test_each_bad_story_value_is_one_located_line(tmp_path: Path, extra: str, expected: str) -> None:
    found = problems(tmp_path, {"x.yaml": GOOD + extra})
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "\n" not in found[0]


def test_every_bad_story_key_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, {"x.yaml": GOOD + "min_sources: 0\nupdates: [4, 2]\nsurge: {factor: 0}\n"})
    assert [p.split(": ")[0] for p in found] == ["x.yaml:9:14", "x.yaml:10:10", "x.yaml:11:17"], found


def _document(extra: str) -> object:
    return value(compose(Source("x.yaml", GOOD + extra)))  # type: ignore[arg-type]


@pytest.mark.parametrize("extra", [
    "min_sources: 2\nwithin: 6h\ntiers: [official, wire]\nmin_official: 1\nupdates: [3, 10, 30]\ncooldown: 30m\n"
    "surge: {window: 1h, factor: 3, min_count: 5, min_publishers: 2, max_p: 0.001, warmup: 2, baseline_windows: 24,"
    " cooldown: 6h}\n",
    "tiers: wire\nupdates: []\nsurge: true\n",
])
def test_the_schema_takes_what_the_loader_takes(tmp_path: Path, extra: str) -> None:
    assert problems(tmp_path, {"x.yaml": GOOD + extra}) == []
    assert list(jsonschema.Draft202012Validator(schemas.rule_schema()).iter_errors(_document(extra))) == []


@pytest.mark.parametrize(("extra", "where"), [
    ("min_sources: 0\n", "$.min_sources"),
    ("min_official: -1\n", "$.min_official"),
    ("within: soon\n", "$.within"),
    ("tiers: [blogs]\n", "$.tiers"),
    ("updates: [1]\n", "$.updates[0]"),
    ("surge: often\n", "$.surge"),
    ("surge: {windw: 1h}\n", "$.surge"),
    ("surge: {factor: 0.5}\n", "$.surge"),
])
def test_the_schema_refuses_what_the_loader_refuses(tmp_path: Path, extra: str, where: str) -> None:
    assert len(problems(tmp_path, {"x.yaml": GOOD + extra})) == 1
    errors = jsonschema.Draft202012Validator(schemas.rule_schema()).iter_errors(_document(extra))
    assert {e.json_path for e in errors} == {where}


def warnings(tmp_path: Path, extra: str, poll: float | None = None) -> list[str]:
    specs, _ = load_folder(make(tmp_path, {"x.yaml": GOOD + extra}))
    return [str(w).replace(str(tmp_path) + "/", "") for w in rule_warnings(specs, poll=poll)]


@pytest.mark.parametrize(("extra", "poll", "expected"), [
    ("min_official: 1\n", None, "x.yaml:9:1: warning: min_official 1 does nothing while min_sources is 1"),
    ("min_sources: 2\nmin_official: 2\n", None, "x.yaml:10:1: warning: min_official 2 is not below min_sources 2"),
    ("min_sources: 2\ntiers: [wire]\nmin_official: 3\n", None,  # an official publisher counts in any tiers
     "x.yaml:11:1: warning: min_official 3 is not below min_sources 2"),
    ("tiers: [wire]\nmin_official: 1\n", None,  # one publisher of any counted tier, official included, suffices
     "x.yaml:10:1: warning: min_official 1 is not below min_sources 1, so it never releases an alert sooner "
     "(hint: raise min_sources above 1, or drop min_official)"),
    ("min_sources: 3\nupdates: [3, 10]\n", None, "x.yaml:10:1: warning: updates [3] are not above min_sources 3"),
    ("min_sources: 2\nwithin: 5m\n", 600.0, "x.yaml:10:1: warning: within 5m is shorter than the feeds' poll "
                                            "interval 10m"),
    ("surge: {window: 5m}\n", 900.0, "x.yaml:9:1: warning: surge.window 5m is shorter than the feeds' poll "
                                     "interval 15m"),
])
def test_story_keys_that_do_nothing_warn(tmp_path: Path, extra: str, poll: float | None, expected: str) -> None:
    found = warnings(tmp_path, extra, poll)
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize(("extra", "poll"), [
    ("", 300.0),
    ("min_sources: 2\nmin_official: 1\nwithin: 1h\nupdates: [3, 10]\nsurge: true\n", 300.0),
    ("min_sources: 2\nwithin: 5m\n", None),         # no config: no poll interval to compare with
])
def test_sound_story_keys_do_not_warn(tmp_path: Path, extra: str, poll: float | None) -> None:
    assert warnings(tmp_path, extra, poll) == []


def test_rules_check_warns_of_a_gate_shorter_than_the_poll_interval(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    folder = make(tmp_path / "rules", {"x.yaml": GOOD + "min_sources: 2\nwithin: 2m\n"})
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = "{folder}"\ndatabase = "sqlite:///{tmp_path}/m.db"\npoll_interval = "10m"\n'
                      '[[feeds]]\nname = "a"\nurl = "https://example.org/a.xml"\n'
                      '[[feeds]]\nname = "b"\nurl = "https://example.org/b.xml"\ninterval = "5m"\n')
    result = run_cli("rules", "check", "--config", str(config), str(folder))
    assert result.returncode == 0, result.stderr
    assert "x.yaml:10:1: warning: within 2m is shorter than the feeds' poll interval 5m" in result.stdout
    assert "1 warning" in result.stderr
