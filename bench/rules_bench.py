"""Rule-engine throughput: documents/second at 100, 1,000 and 10,000 rules, against a naive loop.

Generates rules (phrases, wildcards, NEAR, entity references) and 20,000 documents of ~2,000
characters from one Zipf-distributed vocabulary, then reports:
- documents/s of RuleSet.match (normalisation included) on one core, per rule count, with the
  rules evaluated and the matches made per document (the work that grows with the rule count);
- the same for a naive loop that runs one compiled regex per term per rule (on a sample);
- the shipped rules on the seed corpus (long real articles, not ASCII): documents/s;
- `crisis-monitor scan` end to end on a JSON-lines file at 1,000 rules;
- `crisis-monitor --help` wall time.
Run: python bench/rules_bench.py [--docs 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from monitor.rules.engine import RuleSet
from monitor.rules.entities import Entity, Gazetteer
from monitor.rules.loader import RuleSpec
from monitor.rules.query import Near, Phrase, Word, parse, phrase, walk
from monitor.types import Document

SEED = 20250919


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words)


def documents(rng: random.Random, words: list[str], count: int) -> list[Document]:
    weights = [1 / (rank + 1) for rank in range(len(words))]
    out = []
    for number in range(count):
        body = rng.choices(words, weights, k=300)
        text = " ".join(body)[:2000]
        out.append(Document(id=f"d{number}", title=" ".join(body[:8]), content=text))
    return out


def gazetteer(rng: random.Random, words: list[str]) -> Gazetteer:
    entities = {}
    for number in range(200):
        aliases = (phrase(rng.choice(words[2000:])), phrase(" ".join(rng.sample(words[500:], 2))))
        entities[f"e{number}"] = Entity(f"e{number}", f"E{number}", "thing", (f"g{number % 20}",), aliases)
    return Gazetteer(entities)


def rule_queries(rng: random.Random, words: list[str], count: int) -> list[str]:
    pool = words[3000:]  # rules name specific words (names, places, jargon), not the commonest ones
    out = []
    for _ in range(count):
        a, b, c, d = rng.sample(pool, 4)
        shape = rng.randrange(4)
        if shape == 0:
            out.append(f'"{a} {b}" OR {c[:4]}*')
        elif shape == 1:
            out.append(f"({a} NEAR/5 {b}) AND NOT {c}")
        elif shape == 2:
            out.append(f"@g{rng.randrange(20)} AND ({a} OR {b[:4]}*)")
        else:
            out.append(f'{a} AND ({b} OR "{c} {d}")')
    return out


def compile_rules(queries: list[str], gaz: Gazetteer) -> RuleSet:
    return RuleSet([RuleSpec(id=f"r{i}", title="t", severity="low", query=parse(q))
                    for i, q in enumerate(queries)], gaz)


def rate(fn, docs: list[Document]) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for doc in docs:
        fn(doc)
    return len(docs) / (time.perf_counter() - start)


def naive(rule_set: RuleSet):  # type: ignore[no-untyped-def]
    """One regex per term per rule, every rule, every document: what the index replaces."""
    compiled = []
    for rule in rule_set.rules:
        patterns = []
        for node in walk(rule.spec.query):
            if isinstance(node, Word):
                patterns.append(re.compile(r"\b" + re.escape(node.token) + (r"\w*" if node.prefix else r"\b")))
            elif isinstance(node, Phrase):
                patterns.append(re.compile(r"\b" + r"\W+".join(re.escape(w.token) for w in node.words)))
            elif isinstance(node, Near):
                continue
        compiled.append(patterns)

    def match(doc: Document) -> int:
        from monitor.text import normalize

        text = normalize(f"{doc.title}\n{doc.content}")
        return sum(1 for patterns in compiled if any(p.search(text) for p in patterns))

    return match


def shipped_rate() -> tuple[float, int]:
    """The shipped rules on the seed articles: real text, long, with quotes and dashes outside ASCII."""
    from monitor.cli import packaged
    from monitor.scan import load_rules

    rule_set = load_rules(packaged("rules"))
    seeds = [Document(id=path.name, content=path.read_text(encoding="utf-8"))
             for path in sorted(packaged("seeds").glob("*.txt"))]
    rule_set.match(seeds[0])
    return rate(rule_set.match, seeds * 100), sum(len(d.content) for d in seeds) // len(seeds)


def scan_rate(queries: list[str], docs: list[Document], tmp: Path) -> float:
    rules = tmp / "rules"
    (rules / "entities").mkdir(parents=True)
    for i, query in enumerate(queries):
        (rules / f"r{i}.yaml").write_text(json.dumps({"id": f"r{i}", "title": "t", "severity": "low",
                                                      "query": query.replace("@g", "@g")}))
    entities = [{"id": f"e{i}", "groups": [f"g{i % 20}"], "aliases": [f"alias{i}x"]} for i in range(200)]
    (rules / "entities" / "e.yaml").write_text(json.dumps({"entities": entities}))
    corpus = tmp / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "title": d.title, "content": d.content}) + "\n"
                              for d in docs))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "monitor", "scan", str(corpus), "--rules", str(rules),
                    "--format", "jsonl"], check=True, stdout=subprocess.DEVNULL)
    return len(docs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000)
    args = parser.parse_args()
    rng = random.Random(SEED)
    words = vocabulary(rng)
    docs = documents(rng, words, args.docs)
    gaz = gazetteer(rng, words)
    print(f"{len(docs)} documents, mean {sum(len(d.content) for d in docs) // len(docs)} characters")
    rates = {}
    for count in (100, 1000, 10000):
        rule_set = compile_rules(rule_queries(rng, words, count), gaz)
        rule_set.match(docs[0])
        rates[count] = rate(rule_set.match, docs)
        found = [rule_set.match(d) for d in docs[:2000]]
        matched = sum(map(bool, found)) / 20
        # What grows with the rule count: the rules evaluated, and the matches built, per document.
        candidates = sum(len(rule_set.candidates(rule_set.view(d))) for d in docs[:2000]) / 2000
        per_doc = sum(map(len, found)) / 2000
        sample = docs[: max(200, 20000 // count)]
        naive_rate = rate(naive(rule_set), sample)
        print(f"{count:6d} rules: {rates[count]:8.0f} docs/s indexed | {naive_rate:8.1f} docs/s naive "
              f"| {rates[count] / naive_rate:6.1f}x | {matched:.0f}% of documents match "
              f"| per document {candidates:.1f} rules evaluated, {per_doc:.1f} matches")
    print(f"10,000 rules keep {rates[10000] / rates[100]:.0%} of the rate at 100 rules")
    shipped, size = shipped_rate()
    print(f"shipped rules on the seed articles (mean {size} characters): {shipped:.0f} docs/s")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"scan end to end, 1,000 rules: {scan_rate(rule_queries(rng, words, 1000), docs, Path(tmp)):.0f} docs/s")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "monitor", "--help"], check=True, stdout=subprocess.DEVNULL)
    print(f"crisis-monitor --help: {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
