"""``rules explain`` and ``rules schema``: the rule tools behind the CLI.

Each takes plain arguments and an output stream and returns an exit status (cli.py only
parses arguments). No network; ``explain`` reads documents as ``scan`` does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from monitor.errors import InputError
from monitor.types import Document


def _stdin_documents(text: str) -> list[Document]:
    """Stdin as JSON lines when every line is an object, else as one plain-text document."""
    from monitor.documents import jsonl_documents

    lines = [line for line in text.splitlines() if line.strip()]
    if lines and all(line.lstrip().startswith("{") for line in lines):
        return list(jsonl_documents(lines, "stdin"))
    return [Document(id="stdin", content=text)]


def explain(rule_id: str, path: str, rules_dir: Path, fmt: str, out: TextIO) -> int:
    """Print ``rule_id``'s query tree over each document of ``path`` (``-``: stdin)."""
    import difflib

    from monitor.documents import read_documents
    from monitor.rules.explain import explain as explain_rule
    from monitor.rules.explain import render
    from monitor.scan import load_rules

    rule_set = load_rules(rules_dir)
    specs = {rule.spec.id: rule.spec for rule in rule_set.rules}
    if rule_id not in specs:
        close = difflib.get_close_matches(rule_id, specs, 1)
        raise InputError(f"rules explain: no rule {rule_id!r} in {rules_dir}",
                         f"did you mean {close[0]!r}?" if close else f"rules: {', '.join(sorted(specs))}")
    spec = specs[rule_id]
    documents = _stdin_documents(sys.stdin.read()) if path == "-" else list(read_documents([path]))
    records = []
    for doc in documents:
        fired, tree = explain_rule(spec, rule_set, doc)
        if fmt == "json":
            records.append({"id": doc.id, "rule": rule_id, "matched": fired, "tree": tree.record()})
            continue
        verdict = "MATCH" if fired else "no match"
        if tree.held and not fired:
            verdict += f" (the query holds, but the weights of its hits stay below the threshold {spec.threshold:g})"
        out.write(f"{doc.id}: {rule_id}: {verdict}\n")
        out.write("\n".join(render(tree, 1)) + "\n\n")
    if fmt == "json":
        json.dump(records, out, ensure_ascii=False, indent=1)
        out.write("\n")
    return 0


def backtest(config_path: str | None, rules: str | None, against: str | None, since: str | None,
             paths: list[str], fmt: str, limit: int, out: TextIO, default_rules: Path) -> int:
    """Run a rule set over the stored items (or over ``paths``) and, with ``against``, show the
    difference from that rule set, rule by rule. The rules: ``rules``, else the config's, else
    ``default_rules``."""
    from monitor import backtest as bt

    config = None
    if not paths or not rules:
        config = _config_for_backtest(config_path, need=not paths)
    rules_dir = Path(rules) if rules else config.rules if config is not None else default_rules
    current = bt.load(rules_dir)
    if against:
        with bt.baseline_folder(against, rules_dir) as folder:
            baseline = bt.load(folder)
    the_plan = bt.plan(current, baseline if against else None)
    count, results = bt.run(the_plan, _backtest_documents(config, since, paths), limit)
    if fmt == "json":
        json.dump({"items": count, "rules": [r.record() for r in results]}, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return 0
    source = ", ".join(paths) if paths else f"stored items{f' first seen within {since}' if since else ''}"
    header = f"backtest of {rules_dir}" + (f" against {against}" if against else "") + f" over {source}"
    bt.write_text(count, results, header, out)
    return 0


def _config_for_backtest(config_path: str | None, need: bool) -> Any:
    import os

    from monitor.config import find_config, load_file

    if config_path or need or find_config(None, os.environ).is_file():
        return load_file(config_path, secrets=False)
    return None


def _backtest_documents(config: Any, since: str | None, paths: list[str]) -> Iterator[Document]:
    if paths:
        from monitor.documents import read_documents

        yield from read_documents(paths)
        return
    from monitor.commands import _opened, _since

    moment = _since(since)
    with _opened(config) as store:
        yield from store.documents(moment)
