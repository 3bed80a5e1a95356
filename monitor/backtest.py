"""``rules backtest``: a rule set over the items already stored (or over files, as ``scan`` reads
them), and with ``--against`` the difference from another rule set, rule by rule.

The baseline is a folder, or a git revision whose ``rules/`` is read with ``git archive`` into a
temporary folder. Rules that are the same in both (same query, weights, fields; same gazetteer) give
the same matches, so only the rules that changed are matched twice: the two sets are compiled into
one rule set (the baseline's changed rules under a prefix) and each item is read once. Items come
from the store in batches and only the per-rule counts and the first ``limit`` items of each list
are kept.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monitor.errors import InputError
from monitor.rules.engine import RuleSet
from monitor.rules.entities import Gazetteer
from monitor.rules.loader import RuleSpec, load_folder
from monitor.types import Document, Match, iso

BASELINE = "\x00baseline:"  # prefix of the baseline's rule ids in a combined rule set (no rule id has it)


@dataclass
class Listing:
    """A count of items and the first ``limit`` of them (0: all), as records."""

    limit: int
    count: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, doc: Document, match: Callable[[], Match]) -> None:
        """Count ``doc``; keep its record, with ``match()`` built only then, if there is room."""
        self.count += 1
        if not self.limit or len(self.items) < self.limit:
            self.items.append(item_record(doc, match()))


@dataclass
class RuleResult:
    """One rule's outcome: its matches; with a baseline, what it gains and loses."""

    rule: str
    status: str  # "same", "changed", "added", "removed", or "" without a baseline
    matched: Listing
    baseline: int = 0
    new: Listing | None = None
    gone: Listing | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "matched": self.matched.count}
        if self.new is None or self.gone is None:
            return {**out, "matches": self.matched.items}
        return {**out, "status": self.status, "baseline": self.baseline, "new": self.new.count,
                "gone": self.gone.count, "new_items": self.new.items, "gone_items": self.gone.items}


def item_record(doc: Document, match: Match) -> dict[str, Any]:
    return {"id": doc.id, "feed": doc.feed, "title": doc.title, "url": doc.url,
            "published_at": iso(doc.published_at), "clauses": list(match.clauses), "terms": list(match.terms),
            "snippet": match.snippet}


@dataclass
class Plan:
    """What to match: one rule set, and for each rule id the ids it stands under in it."""

    rule_set: RuleSet
    current: dict[str, str]  # rule id -> id in rule_set of the rule as --rules has it
    baseline: dict[str, str] | None  # rule id -> id in rule_set of the baseline's rule; None: no baseline
    status: dict[str, str]


def plan(rules: tuple[list[RuleSpec], Gazetteer], against: tuple[list[RuleSpec], Gazetteer] | None) -> Plan:
    """The rule set that answers the backtest with the least matching."""
    specs, gazetteer = rules
    if against is None:
        return Plan(RuleSet(specs, gazetteer), {s.id: s.id for s in specs}, None, {s.id: "" for s in specs})
    old_specs, old_gazetteer = against
    old = {s.id: s for s in old_specs}
    new = {s.id: s for s in specs}
    status = {rule: ("added" if rule not in old else "removed" if rule not in new
                     else "same" if _matching(new[rule]) == _matching(old[rule]) and gazetteer == old_gazetteer
                     else "changed")
              for rule in [*new, *(r for r in old if r not in new)]}
    if gazetteer == old_gazetteer:  # one rule set: the baseline's rules that differ, under a prefix
        again = [replace(old[r], id=BASELINE + r) for r in old if status[r] in ("changed", "removed")]
        baseline = {r: (BASELINE + r if status[r] in ("changed", "removed") else r) for r in old}
        return Plan(RuleSet([*specs, *again], gazetteer), {r: r for r in new}, baseline, status)
    # Entities differ, so every rule may: two rule sets, matched one after the other.
    return Plan(_Pair(RuleSet(specs, gazetteer), RuleSet(old_specs, old_gazetteer)), {r: r for r in new},
                {r: BASELINE + r for r in old}, status)


def _matching(spec: RuleSpec) -> tuple[Any, ...]:
    """What decides which documents a rule matches (not its title, examples or routing)."""
    return spec.query, tuple(sorted(spec.fields)), spec.weights, spec.threshold


class _Pair(RuleSet):
    """Two rule sets as one: the second's matches under the baseline prefix."""

    def __init__(self, first: RuleSet, second: RuleSet) -> None:  # (compiles nothing: both are compiled)
        self.first, self.second = first, second
        self.rules = first.rules + second.rules
        self.gazetteer = first.gazetteer

    def match(self, doc: Document, snippets: bool = True) -> list[Match]:
        return self.first.match(doc, snippets) + [replace(m, rule=BASELINE + m.rule)
                                                  for m in self.second.match(doc, snippets)]

    def fired(self, doc: Document) -> list[str]:
        return self.first.fired(doc) + [BASELINE + rule for rule in self.second.fired(doc)]


def run(the_plan: Plan, documents: Iterable[Document], limit: int, workers: int | None = None,
        ) -> tuple[int, list[RuleResult]]:
    """Match every document; the number read and each rule's result, in rule order. Only which
    rules fire is found for every document (in worker processes when there are many); the matches
    of the items that are listed are built here, after."""
    from monitor.scan import fired_documents

    results = {rule: RuleResult(rule, the_plan.status[rule], Listing(limit)) for rule in the_plan.status}
    if the_plan.baseline is not None:
        for result in results.values():
            result.new, result.gone = Listing(limit), Listing(limit)
    count = 0
    for doc, fired in fired_documents(the_plan.rule_set, documents, workers):
        count += 1
        if fired:
            tally = _Tally(the_plan, doc, set(fired))
            for rule, result in results.items():
                tally.add(rule, result)
    return count, list(results.values())


class _Tally:
    """One document's part in each rule's result."""

    def __init__(self, the_plan: Plan, doc: Document, fired: set[str]) -> None:
        self.plan, self.doc, self.fired = the_plan, doc, fired
        self._matches: dict[str, Match] | None = None

    def match(self, rule_id: str) -> Callable[[], Match]:
        def build() -> Match:
            if self._matches is None:
                self._matches = {m.rule: m for m in self.plan.rule_set.match(self.doc)}
            return self._matches[rule_id]
        return build

    def add(self, rule: str, result: RuleResult) -> None:
        now = self.plan.current.get(rule)
        now = now if now in self.fired else None
        if now is not None:
            result.matched.add(self.doc, self.match(now))
        if self.plan.baseline is None or result.new is None or result.gone is None:
            return
        before = self.plan.baseline.get(rule)
        before = before if before in self.fired else None
        if before is not None:
            result.baseline += 1
        if now is not None and before is None:
            result.new.add(self.doc, self.match(now))
        elif before is not None and now is None:
            result.gone.add(self.doc, self.match(before))


# --- the baseline: a folder or a git revision -----------------------------------------------

@contextmanager
def baseline_folder(against: str, rules_dir: Path) -> Iterator[Path]:
    """``against`` as a rules folder: itself, or ``rules_dir`` as git revision ``against`` has it."""
    if Path(against).is_dir():
        yield Path(against)
        return
    folder = rules_dir.resolve()
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None:
        raise InputError(f"--against {against}: not a folder, and {rules_dir} is not in a git checkout",
                         "give a rules folder, or run from a git checkout to name a revision (HEAD~1, main, a tag)")
    root = Path(top.decode().strip()).resolve()
    prefix = folder.relative_to(root).as_posix()
    archive = _git(root, "archive", "--format=tar", against, "--", prefix)  # (a pathspec is relative to -C)
    if archive is None:
        raise InputError(f"--against {against}: git has no {prefix or 'top folder'} at that revision",
                         "name a commit, branch or tag (git log --oneline -- rules)")
    with tempfile.TemporaryDirectory(prefix="crisis-monitor-backtest-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp) / prefix


def _git(folder: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


# --- output ----------------------------------------------------------------------------------

def write_text(count: int, results: list[RuleResult], header: str, out: Any) -> None:
    out.write(f"{header}: {count} items\n")
    for result in results:
        if result.new is None or result.gone is None:
            out.write(f"\n{result.rule}: {result.matched.count} items match\n")
            _write_items(result.matched, "", out)
            continue
        if result.status == "same":
            out.write(f"\n{result.rule}: unchanged ({result.matched.count} items match)\n")
            continue
        out.write(f"\n{result.rule} ({result.status}): {result.baseline} -> {result.matched.count} items, "
                  f"{result.new.count} newly match, {result.gone.count} no longer match\n")
        _write_items(result.new, "+ ", out)
        _write_items(result.gone, "- ", out)


def _write_items(listing: Listing, mark: str, out: Any) -> None:
    from monitor.notify.base import plain

    for item in listing.items:
        when = (item["published_at"] or "")[:10]
        out.write(f"  {mark}{when} {plain(item['title']) or '(no title)'} ({item['feed'] or item['id']})\n")
        if item["clauses"]:
            out.write(f"      why: {', '.join(item['clauses'])}\n")
        out.write(f"      {plain(item['snippet'])}\n")
    if listing.count > len(listing.items):
        out.write(f"  {mark}… and {listing.count - len(listing.items)} more (--limit 0 lists all)\n")


def load(directory: Path) -> tuple[list[RuleSpec], Gazetteer]:
    return load_folder(directory)
