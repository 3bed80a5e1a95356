"""The real-text evaluation set (tests/data/realtext_eval/) is well-formed, and its script counts right.

No quality floor here: the set measures the rules, it does not gate them (bench/eval_realtext.py
prints the figures, and each batch file keeps the score it got blind, before any rule change).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import DATA

SET = DATA / "realtext_eval"
CORE = ("article-4", "airspace-violation", "shoot-down")
# The 24 official EU languages, the other languages the issue names, and a few neighbours' languages.
LANGUAGES = {
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "it", "lt", "lv", "mt",
    "nl", "pl", "pt", "ro", "sk", "sl", "sv", "ru", "uk", "be", "tr", "ar", "he", "fa", "ca", "nb", "sr",
}


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_realtext", DATA.parent.parent / "bench" / "eval_realtext.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def batches() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) | {"file": path.name}
            for path in sorted(SET.glob("*.yaml"))]


def squash(text: str) -> str:
    return " ".join(text.split()).casefold()


CASES = [case | {"batch": batch["batch"]} for batch in batches() for case in batch["cases"]]


def test_batches_have_unique_ids_and_cases() -> None:
    names = [batch["batch"] for batch in batches()]
    assert names and len(names) == len(set(names))
    assert all(batch["cases"] for batch in batches())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_is_well_formed(case: dict[str, Any]) -> None:
    assert set(case) <= {"id", "lang", "text", "source", "labels", "note", "batch"}, case["id"]
    assert case["id"].startswith(case["batch"].lower() + "-")
    assert case["lang"] in LANGUAGES
    assert re.match(r"https?://[^\s/]+\.[^\s/]+/?\S*$", case["source"]), case["source"]
    assert isinstance(case["text"], str) and case["text"].strip()
    assert set(case["labels"]) == set(CORE)
    assert set(case["labels"].values()) <= {"match", "no_match"}


def test_ids_and_texts_are_unique_and_new() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    texts = [squash(case["text"]) for case in CASES]
    assert len(texts) == len(set(texts)), [c["id"] for c in CASES if texts.count(squash(c["text"])) > 1]
    old = {squash(c["text"]) for c in yaml.safe_load((DATA / "core_rules_eval.yaml").read_text("utf-8"))["cases"]}
    assert not [case["id"] for case in CASES if squash(case["text"]) in old]


def test_blind_scores_name_the_commit_they_were_measured_on() -> None:
    for batch in batches():
        blind = batch.get("blind")
        if blind:
            assert re.fullmatch(r"[0-9a-f]{7,40}", blind["main_commit"]), batch["file"]
            assert set(blind["scores"]["all"]) == set(CORE), batch["file"]


def test_the_script_counts_hits_misses_and_false_alarms(rule_set) -> None:  # type: ignore[no-untyped-def]
    script = load_script()
    none = dict.fromkeys(CORE, "no_match")
    cases = [
        {"id": "t-1", "lang": "en", "text": "Turkish F-16s shot down a Russian Su-24 bomber over the border.",
         "labels": none | {"shoot-down": "match"}},
        {"id": "t-2", "lang": "pl", "text": "Ala ma kota.", "labels": none | {"shoot-down": "match"}},
        {"id": "t-3", "lang": "pl", "text": "Ala ma psa.", "labels": none},
    ]
    tally = script.score(rule_set, cases)
    count = tally.get("shoot-down", "all")
    assert (count.tp, count.fp, count.fn, count.cases) == (1, 0, 1, 3)
    assert tally.get("shoot-down", "en").recall() == 1.0 and tally.get("shoot-down", "other").recall() == 0.0
    assert tally.get("article-4", "all").precision() is None
    assert tally.get("shoot-down", "lang:pl").cases == 2
