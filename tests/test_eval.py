"""Precision and recall of the core rules on a hand-labelled set they were not built from."""

from __future__ import annotations

import pytest
import yaml

from monitor.types import Document
from tests.conftest import DATA

CASES = yaml.safe_load((DATA / "core_rules_eval.yaml").read_text(encoding="utf-8"))["cases"]
CORE = ("article-4", "airspace-violation", "shoot-down")


def scores(rule_set, rule: str) -> tuple[float, float, list[str]]:  # type: ignore[no-untyped-def]
    tp = fp = fn = 0
    wrong = []
    for number, case in enumerate(CASES):
        fired = rule in {m.rule for m in rule_set.match(Document(id=str(number), content=case["text"]))}
        expected = rule in case["labels"]
        tp += fired and expected
        fp += fired and not expected
        fn += expected and not fired
        if fired != expected:
            wrong.append(("FP " if fired else "FN ") + case["text"][:80])
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), wrong


def test_the_set_has_positives_and_hard_negatives_for_each_rule() -> None:
    for rule in CORE:
        positives = sum(rule in c["labels"] for c in CASES)
        assert positives >= 10, rule
        assert len(CASES) - positives >= 40, rule


@pytest.mark.parametrize("rule", CORE)
def test_precision_and_recall_at_least_0_9(rule_set, rule: str) -> None:  # type: ignore[no-untyped-def]
    precision, recall, wrong = scores(rule_set, rule)
    assert precision >= 0.9 and recall >= 0.9, wrong
