"""Rule-engine throughput at 100, 1,000 and 10,000 rules, on a realistic workload and on the old one.

Realistic (bench/workload.py): documents of ~2,000 characters in English words by their real frequency,
with names and jargon as multi-word units; rules of the shapes analysts write, each calibrated to fire
on 0.01 % of documents (about one match per document at 10,000 rules) and, as a second setting,
on 0.25 %. For each rule count it prints docs/s (wall clock), docs per CPU-second, rules evaluated
per document (after the presearcher), matches per document and time per match built.

The machine is shared: wall-clock figures swing (2x from day to day here). ``--instructions`` also
runs each figure under ``valgrind --tool=cachegrind`` and prints instructions per document, which
repeat exactly (with PYTHONHASHSEED=0).

Then, as before: the old uniform workload (rules that draw on one small vocabulary, ~9 matches per
document at 10,000 rules) against a naive loop of one regex per term per rule; the shipped rules on
the seed articles; ``crisis-monitor scan`` end to end at 1,000 realistic rules; ``--help`` time.
Run: python bench/rules_bench.py [--docs 10000] [--instructions]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workload import Language, RuleMaker

from monitor.rules.engine import RuleSet
from monitor.rules.entities import Entity, Gazetteer
from monitor.rules.loader import RuleSpec
from monitor.rules.query import Near, Phrase, Word, parse, phrase, walk
from monitor.types import Document

SEED = 20250919
COUNTS = (100, 1000, 10000)
SETTINGS = {"0.01%": 1e-4, "0.25%": 2.5e-3}


def compile_rules(queries: list[str], gaz: Gazetteer) -> RuleSet:
    return RuleSet([RuleSpec(id=f"r{i}", title="t", severity="low", query=parse(q))
                    for i, q in enumerate(queries)], gaz)


def rate(fn, docs: list[Document]) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for doc in docs:
        fn(doc)
    return len(docs) / (time.perf_counter() - start)


def timed(rule_set: RuleSet, docs: list[Document]) -> tuple[float, float]:
    """(docs/s by the wall clock, docs per CPU-second) of RuleSet.match, normalisation included."""
    wall, cpu = time.perf_counter(), time.process_time()
    for doc in docs:
        rule_set.match(doc)
    return len(docs) / (time.perf_counter() - wall), len(docs) / (time.process_time() - cpu)


def work(rule_set: RuleSet, docs: list[Document]) -> tuple[float, float, float, float]:
    """Per document: rules evaluated, matches; and the CPU time per match built (µs), with and
    without its snippet.

    A match's cost is timed on a fresh view of its document on which the rules that fire have
    already been evaluated once, so that what is timed is building the match (its hits, terms,
    snippet and entities), not finding that the rule holds."""
    evaluated = matches = 0
    building = {True: 0.0, False: 0.0}
    for doc in docs:
        evaluated += len(rule_set.candidates(rule_set.view(doc)))
        found = {m.rule for m in rule_set.match(doc)}
        matches += len(found)
        if not found:
            continue
        fired = [rule for rule in rule_set.rules if rule.spec.id in found]
        for snippets in building:
            view = rule_set.view(doc)
            for rule in fired:
                rule.root.holds(view, rule.scope)
            start = time.process_time()
            for rule in fired:
                rule_set._evaluate(rule, view, snippets)
            building[snippets] += time.process_time() - start
    full, bare = (building[s] / matches * 1e6 if matches else 0.0 for s in (True, False))
    return evaluated / len(docs), matches / len(docs), full, bare


# --- the old workload: one uniform vocabulary -----------------------------------------------------

def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words)


def uniform_documents(rng: random.Random, words: list[str], count: int) -> list[Document]:
    weights = [1 / (rank + 1) for rank in range(len(words))]
    out = []
    for number in range(count):
        body = rng.choices(words, weights, k=300)
        text = " ".join(body)[:2000]
        out.append(Document(id=f"d{number}", title=" ".join(body[:8]), content=text))
    return out


def uniform_gazetteer(rng: random.Random, words: list[str]) -> Gazetteer:
    entities = {}
    for number in range(200):
        aliases = (phrase(rng.choice(words[2000:])), phrase(" ".join(rng.sample(words[500:], 2))))
        entities[f"e{number}"] = Entity(f"e{number}", f"E{number}", "thing", (f"g{number % 20}",), aliases)
    return Gazetteer(entities)


def uniform_queries(rng: random.Random, words: list[str], count: int) -> list[str]:
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


def uniform_figures(docs_count: int) -> None:
    rng = random.Random(SEED)
    words = vocabulary(rng)
    docs = uniform_documents(rng, words, docs_count)
    gaz = uniform_gazetteer(rng, words)
    print(f"\nold uniform workload: {len(docs)} documents, rules on one shared vocabulary")
    rates = {}
    for count in COUNTS:
        rule_set = compile_rules(uniform_queries(rng, words, count), gaz)
        rule_set.match(docs[0])
        rates[count] = rate(rule_set.match, docs)
        evaluated, per_doc, _, _ = work(rule_set, docs[:2000])
        sample = docs[: max(200, 20000 // count)]
        naive_rate = rate(naive(rule_set), sample)
        print(f"{count:6d} rules: {rates[count]:8.0f} docs/s indexed | {naive_rate:8.1f} docs/s naive "
              f"| {rates[count] / naive_rate:6.1f}x | per document {evaluated:.1f} rules evaluated, "
              f"{per_doc:.1f} matches")
    print(f"10,000 rules keep {rates[10000] / rates[100]:.0%} of the rate at 100 rules")


# --- the realistic workload -------------------------------------------------------------------

def realistic(docs_count: int) -> tuple[Gazetteer, list[Document], dict[str, dict[int, list[str]]]]:
    rng = random.Random(SEED)
    language = Language(rng)
    docs = language.documents(rng, docs_count)
    queries = {name: {count: RuleMaker(language, rng, target).queries(count) for count in COUNTS}
               for name, target in SETTINGS.items()}
    return language.gazetteer(), docs, queries


def realistic_figures(gaz: Gazetteer, docs: list[Document], queries: dict[str, dict[int, list[str]]]) -> None:
    mean = sum(len(d.content) + len(d.title) for d in docs) // len(docs)
    print(f"realistic workload: {len(docs)} documents, mean {mean} characters")
    for name, target in SETTINGS.items():
        rates = {}
        print(f"rules calibrated to fire on {name} of documents each")
        for count in COUNTS:
            rule_set = compile_rules(queries[name][count], gaz)
            # Many matches per document make a slow figure: fewer documents will do.
            sample = docs[: max(500, int(len(docs) / max(1.0, count * target)))]
            rule_set.match(sample[0])
            rates[count], cpu = timed(rule_set, sample)
            evaluated, matches, per_match, bare = work(rule_set, sample[:2000])
            print(f"{count:6d} rules: {rates[count]:7.0f} docs/s | {cpu:7.0f} docs/CPU-s "
                  f"| per document {evaluated:6.2f} rules evaluated, {matches:6.3f} matches "
                  f"({matches / count:.4%} per rule) | {per_match:5.1f} µs per match built, "
                  f"{bare:5.1f} without its snippet")
        print(f"10,000 rules keep {rates[10000] / rates[100]:.0%} of the rate at 100 rules")


def shipped() -> tuple[RuleSet, list[Document]]:
    from monitor.cli import packaged
    from monitor.rules.loader import load_folder

    # Compiled here, not read from the compiled-rules cache: the instruction counts subtract a run
    # with no documents from one with some, and both must do the same work before matching.
    rule_set = RuleSet(*load_folder(packaged("rules")))
    seeds = [Document(id=path.name, content=path.read_text(encoding="utf-8"))
             for path in sorted(packaged("seeds").glob("*.txt"))]
    return rule_set, seeds


def shipped_figures() -> None:
    """The shipped rules on the seed articles: real text, long, with quotes and dashes outside ASCII."""
    rule_set, seeds = shipped()
    rule_set.match(seeds[0])
    wall, cpu = timed(rule_set, seeds * 40)
    size = sum(len(d.content) for d in seeds) // len(seeds)
    print(f"shipped rules ({len(rule_set)}) on the seed articles (mean {size} characters): "
          f"{wall:.0f} docs/s, {cpu:.0f} docs/CPU-s")


def write_rules(queries: list[str], gaz: Gazetteer, rules: Path) -> None:
    (rules / "entities").mkdir(parents=True)
    for i, query in enumerate(queries):
        (rules / f"r{i}.yaml").write_text(json.dumps({"id": f"r{i}", "title": "t", "severity": "low",
                                                      "query": query}))
    entities = [{"id": e.id, "groups": list(e.groups),
                 "aliases": [a.text if isinstance(a, Phrase) else a.token for a in e.aliases]}
                for e in gaz.entities.values()]
    (rules / "entities" / "e.yaml").write_text(json.dumps({"entities": entities}))


def scan_rate(queries: list[str], gaz: Gazetteer, docs: list[Document], tmp: Path,
              extra: tuple[str, ...] = ()) -> float:
    """Documents per second of ``crisis-monitor scan``, its compiled rules read from a cache of its own
    (filled by a first scan of one document, untimed: what every scan of unchanged rules does)."""
    rules, corpus = tmp / "rules", tmp / "docs.jsonl"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")}

    def run(what: list[Document]) -> float:
        corpus.write_text("".join(json.dumps({"id": d.id, "title": d.title, "content": d.content}) + "\n"
                                  for d in what))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "monitor", "scan", str(corpus), "--rules", str(rules),
                        "--format", "jsonl", *extra], check=True, stdout=subprocess.DEVNULL, env=env)
        return len(what) / (time.perf_counter() - start)
    if not rules.exists():
        write_rules(queries, gaz, rules)
        run(docs[:1])
    return run(docs)


# --- instruction counts -----------------------------------------------------------------------

def child(workload: Path, what: str, count: int) -> None:
    """Compile, warm up, then match ``count`` documents (run under cachegrind by ``instructions``);
    ``what`` ending in ``-bare``: matches without snippets (``scan --no-snippets``)."""
    snippets = not what.endswith("-bare")
    what = what.removesuffix("-bare")
    if what == "seeds":
        rule_set, docs = shipped()
        docs = docs * 10
    else:
        gaz, docs, queries = pickle.loads(workload.read_bytes())
        rule_set = compile_rules(queries[what], gaz)
    for doc in docs[-5:]:
        rule_set.match(doc, snippets)
    for doc in docs[:count]:
        rule_set.match(doc, snippets)


def instructions_per_doc(workload: Path, what: str, count: int) -> float:
    def run(docs: int) -> int:
        done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                               sys.executable, __file__, "--child", str(workload), what, str(docs)],
                              env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True)
        return int(re.search(r"I\s+refs:\s+([\d,]+)", done.stderr).group(1).replace(",", ""))  # type: ignore[union-attr]
    return (run(count) - run(0)) / count


def instruction_figures(gaz: Gazetteer, docs: list[Document], queries: dict[str, dict[int, list[str]]],
                        count: int) -> None:
    print(f"\ninstructions per document (cachegrind, PYTHONHASHSEED=0, {count} documents after a warm-up)")
    with tempfile.TemporaryDirectory() as tmp:
        workload = Path(tmp) / "workload.pickle"
        for name in SETTINGS:
            by_count = {str(n): q for n, q in queries[name].items()}
            workload.write_bytes(pickle.dumps((gaz, docs[:count + 5], by_count)))
            print(f"{name}: " + " | ".join(f"{n:,} rules {instructions_per_doc(workload, str(n), count) / 1e3:,.0f}k"
                                           for n in COUNTS))
            if name == "0.01%":
                bare = {n: instructions_per_doc(workload, f"{n}-bare", count) for n in (100, 10000)}
                print(f"{name} without snippets: " + " | ".join(f"{n:,} rules {bare[n] / 1e3:,.0f}k" for n in bare))
        print(f"shipped rules on the seed articles: {instructions_per_doc(workload, 'seeds', 10) / 1e6:.2f}M")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10000, help="realistic documents (default 10000)")
    parser.add_argument("--instructions", type=int, nargs="?", const=200, default=0, metavar="DOCS",
                        help="also count instructions per document under cachegrind, on DOCS documents (200)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], int(args.child[2]))
        return
    print("wall-clock figures on a shared machine are noisy; CPU-seconds and instructions less so")
    gaz, docs, queries = realistic(args.docs)
    realistic_figures(gaz, docs, queries)
    shipped_figures()
    with tempfile.TemporaryDirectory() as tmp:
        scan_docs = docs * max(1, 20000 // len(docs))
        print(f"scan end to end, 1,000 realistic rules (0.01%), {len(scan_docs)} documents: "
              f"{scan_rate(queries['0.01%'][1000], gaz, scan_docs, Path(tmp)):.0f} docs/s, "
              f"{scan_rate(queries['0.01%'][1000], gaz, scan_docs, Path(tmp), ('--no-snippets',)):.0f} "
              "with --no-snippets")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "monitor", "--help"], check=True, stdout=subprocess.DEVNULL)
    print(f"crisis-monitor --help: {time.perf_counter() - start:.3f} s")
    uniform_figures(min(args.docs, 20000))
    if args.instructions:
        instruction_figures(gaz, docs, queries, args.instructions)


if __name__ == "__main__":
    main()
