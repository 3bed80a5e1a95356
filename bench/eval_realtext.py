"""Precision and recall of the core rules on the real-text evaluation set (tests/data/realtext_eval/).

The set is real public text (encyclopedia articles, official statements, treaty texts) that the rules
were never tuned on, written in blind batches: each batch was scored on the rules of `main` before
anyone changed them for it, and that first score is kept in the batch file's `blind:` header.
This script prints, per batch and for all batches together, P/R with counts per rule for English,
for all other languages together and per language, then the blind score each batch recorded.

Run: python bench/eval_realtext.py [--rules DIR] [--batch ID ...] [--wrong]
To score a batch blind on main at a commit and write that score into its header:
    git -C /work/main archive SHA | tar -x -C /tmp/main-SHA
    PYTHONPATH=/tmp/main-SHA python bench/eval_realtext.py --rules /tmp/main-SHA/rules \
        --record BATCH --commit SHA
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "realtext_eval"
CORE = ("article-4", "airspace-violation", "shoot-down")


@dataclass
class Count:
    """True positives, false positives and false negatives of one rule on some cases."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    cases: int = 0

    def add(self, fired: bool, expected: bool) -> None:
        self.cases += 1
        self.tp += fired and expected
        self.fp += fired and not expected
        self.fn += expected and not fired

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    def recall(self) -> float | None:
        return self.tp / self.positives if self.positives else None


@dataclass
class Tally:
    """Counts per rule, per group ("en", "other", "all" and each language)."""

    counts: dict[tuple[str, str], Count] = field(default_factory=dict)

    def add(self, rule: str, lang: str, fired: bool, expected: bool) -> None:
        for group in ("all", "en" if lang == "en" else "other", f"lang:{lang}"):
            self.counts.setdefault((rule, group), Count()).add(fired, expected)

    def get(self, rule: str, group: str) -> Count:
        return self.counts.get((rule, group), Count())

    def merge(self, other: Tally) -> None:
        for key, count in other.counts.items():
            mine = self.counts.setdefault(key, Count())
            mine.tp, mine.fp, mine.fn, mine.cases = (mine.tp + count.tp, mine.fp + count.fp, mine.fn + count.fn,
                                                     mine.cases + count.cases)

    def languages(self) -> list[str]:
        return sorted({group[5:] for _, group in self.counts if group.startswith("lang:")})


def load_batches(directory: Path = DATA) -> list[dict[str, Any]]:
    """Every batch file of the set, in the order of their names."""
    batches = []
    for path in sorted(directory.glob("*.yaml")):
        batch = yaml.safe_load(path.read_text(encoding="utf-8"))
        batch["path"] = path
        batches.append(batch)
    return batches


def expected(case: dict[str, Any], rule: str) -> bool:
    return bool(case["labels"][rule] == "match")


def score(rule_set: Any, cases: Iterable[dict[str, Any]], wrong: list[str] | None = None) -> Tally:
    from monitor.types import Document

    tally = Tally()
    for case in cases:
        fired = {m.rule for m in rule_set.match(Document(id=case["id"], content=case["text"]))}
        for rule in CORE:
            tally.add(rule, case["lang"], rule in fired, expected(case, rule))
            if wrong is not None and (rule in fired) != expected(case, rule):
                kind = "FP" if rule in fired else "FN"
                text = " ".join(case["text"].split())[:100]
                wrong.append(f"{kind} {rule:<18} {case['id']:<10} {case['lang']} {text}")
    return tally


def ratio(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.2f}"


def cell(count: Count) -> str:
    """"P/R (tp fp fn)" of one rule in one group."""
    return f"{ratio(count.precision())}/{ratio(count.recall())} ({count.tp:>3} {count.fp:>2} {count.fn:>3})"


def compact(count: Count) -> str:
    """"P 1.00 R 0.50 (tp 1, fp 0, fn 1)", as the blind score is written into a batch file."""
    p, r = count.precision(), count.recall()
    return (f"P {'-' if p is None else f'{p:.2f}'} R {'-' if r is None else f'{r:.2f}'} "
            f"(tp {count.tp}, fp {count.fp}, fn {count.fn})")


def report(title: str, tally: Tally) -> list[str]:
    lines = [title, f"{'group':<8} {'cases':>5}  " + "  ".join(f"{rule:<25}" for rule in CORE),
             f"{'':<8} {'':>5}  " + "  ".join(f"{'P/R (tp fp fn)':<25}" for _ in CORE)]
    groups = ["en", "other", "all"] + [f"lang:{lang}" for lang in tally.languages()]
    for group in groups:
        cases = tally.get(CORE[0], group).cases
        if not cases:
            continue
        name = group.replace("lang:", "  ")
        lines.append(f"{name:<8} {cases:>5}  " + "  ".join(f"{cell(tally.get(rule, group)):<25}" for rule in CORE))
    return lines


def blind_lines(batch: dict[str, Any]) -> list[str]:
    blind = batch.get("blind")
    if not blind:
        return [f"{batch['batch']}: not scored blind yet"]
    lines = [f"{batch['batch']}: blind on main {blind['main_commit']} ({blind['scored_at']})"]
    for group in ("en", "other", "all"):
        figures = blind["scores"].get(group, {})
        lines.append(f"  {group:<6}" + "  ".join(f"{rule} {figures.get(rule, '-')}" for rule in CORE))
    return lines


def blind_record(tally: Tally, commit: str) -> dict[str, Any]:
    """The blind-score header of a batch: P/R and counts per rule for en, other, all and each language."""
    scores: dict[str, dict[str, str]] = {}
    for group in ["en", "other", "all"] + [f"lang:{lang}" for lang in tally.languages()]:
        if tally.get(CORE[0], group).cases:
            scores[group.removeprefix("lang:")] = {rule: compact(tally.get(rule, group)) for rule in CORE}
    return {"main_commit": commit, "scored_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "scores": scores}


def record(batch: dict[str, Any], tally: Tally, commit: str) -> None:
    """Write the blind score into the batch file, between its header and its cases (once only)."""
    path: Path = batch["path"]
    text = path.read_text(encoding="utf-8")
    if batch.get("blind"):
        raise SystemExit(f"{path.name}: already scored blind on {batch['blind']['main_commit']}; not overwritten")
    head, sep, tail = text.partition("\ncases:")
    block = yaml.safe_dump({"blind": blind_record(tally, commit)}, allow_unicode=True, sort_keys=False, width=200)
    path.write_text(f"{head.rstrip()}\n{block}{sep.lstrip()}{tail}" if sep else text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=ROOT / "rules", help="rules folder (default: this tree's)")
    parser.add_argument("--batch", nargs="*", default=[], help="only these batches (e.g. RT1 RT2)")
    parser.add_argument("--wrong", action="store_true", help="list every case a rule got wrong")
    parser.add_argument("--record", metavar="BATCH", help="write this score into BATCH's file as its blind score")
    parser.add_argument("--commit", default="", help="the main commit the rules come from (with --record)")
    args = parser.parse_args(argv)
    from monitor.scan import load_rules

    rule_set = load_rules(args.rules)
    batches = [b for b in load_batches() if not args.batch or b["batch"] in args.batch]
    total = Tally()
    wrong: list[str] = []
    for batch in batches:
        tally = score(rule_set, batch["cases"], wrong if args.wrong else None)
        title = f"\n== batch {batch['batch']} ({len(batch['cases'])} cases), rules {args.rules}"
        print("\n".join(report(title, tally)))
        total.merge(tally)
        if args.record == batch["batch"]:
            if not args.commit:
                parser.error("--record needs --commit SHA (the main commit the rules come from)")
            record(batch, tally, args.commit)
            print(f"recorded as the blind score of {batch['batch']}")
    print("\n".join(report(f"\n== all batches ({sum(len(b['cases']) for b in batches)} cases)", total)))
    print("\n== blind scores as recorded (P/R (tp fp fn), first scored before any rule change for the batch)")
    for batch in batches:
        print("\n".join(blind_lines(batch)))
    if wrong:
        print("\n== wrong\n" + "\n".join(wrong))
    return 0


if __name__ == "__main__":
    sys.exit(main())
