"""``rules suggest``: phrases and entities that set a corpus apart from general English.

Each candidate phrase (1 to 3 tokens, not starting or ending with a function
word) is scored by how much more often it occurs in the corpus than general
English leads one to expect (wordfreq's estimate), weighted by how many
documents use it:

    score = documents * log2(rate in corpus / expected rate)

Entities come from the rule folder's gazetteer, ranked by document count.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from monitor.errors import InputError
from monitor.types import Document

_FUNCTION_ZIPF = 5.6  # "said", "about", "would": words too common to start or end a phrase
_FLOOR = 1e-9  # expected rate of a phrase general English never uses


@dataclass(frozen=True)
class Suggestion:
    phrase: str
    score: float
    documents: int
    count: int


def _frequency(phrase: str, cache: dict[str, float]) -> float:
    if phrase not in cache:
        from wordfreq import word_frequency

        cache[phrase] = max(word_frequency(phrase, "en"), _FLOOR)
    return cache[phrase]


def _ngrams(tokens: list[str], common: set[str]) -> set[str]:
    found = set()
    for size in (1, 2, 3):
        for start in range(len(tokens) - size + 1):
            gram = tokens[start:start + size]
            if gram[0] in common or gram[-1] in common or (gram[-1].isdigit() and size == 1):
                continue
            if all(len(t) > 1 for t in (gram[0], gram[-1])):
                found.add(" ".join(gram))
    return found


def suggest(documents: list[Document], top: int = 20) -> list[Suggestion]:
    """The ``top`` most distinctive phrases of ``documents``."""
    from wordfreq import zipf_frequency

    from monitor.text import normalize, tokens

    if not documents:
        raise InputError("the corpus has no documents", "give files or folders that scan reads")
    texts = [tokens(normalize(f"{d.title}\n{d.summary}\n{d.content}")) for d in documents]
    total = sum(len(t) for t in texts) or 1
    vocabulary = {t for text in texts for t in text}
    common = {t for t in vocabulary if zipf_frequency(t, "en") >= _FUNCTION_ZIPF}
    per_doc: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for text in texts:
        grams = _ngrams(text, common)
        per_doc.update(grams)
        for size in (1, 2, 3):
            counts.update(" ".join(text[i:i + size]) for i in range(len(text) - size + 1)
                          if " ".join(text[i:i + size]) in grams)
    minimum = 2 if len(documents) > 2 else 1
    cache: dict[str, float] = {}
    scored = []
    for phrase, docs in per_doc.items():
        if docs < minimum or counts[phrase] < 2:
            continue
        lift = math.log2((counts[phrase] / total) / _frequency(phrase, cache))
        if lift > 1:
            scored.append(Suggestion(phrase, docs * lift, docs, counts[phrase]))
    scored.sort(key=lambda s: (-s.score, s.phrase))
    return _drop_contained(scored)[:top]


def _drop_contained(ranked: list[Suggestion]) -> list[Suggestion]:
    """Keep a phrase only if no better-ranked phrase contains it with the same documents."""
    kept: list[Suggestion] = []
    for item in ranked:
        if not any(f" {item.phrase} " in f" {k.phrase} " and k.documents >= item.documents
                   for k in kept):
            kept.append(item)
    return kept


def entity_counts(documents: list[Document], rules_dir: Path) -> list[tuple[str, int]]:
    from monitor.rules.engine import RuleSet
    from monitor.rules.loader import load_gazetteer
    from monitor.rules.nodes import DocView

    gazetteer, _ = load_gazetteer(rules_dir)
    rule_set = RuleSet([], gazetteer)
    counts: Counter[str] = Counter()
    for doc in documents:
        counts.update(rule_set.entities_in(DocView(rule_set.terms, doc)))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def print_suggestions(paths: list[str], rules_dir: Path, top: int, out: TextIO) -> int:
    from monitor.documents import read_documents

    documents = list(read_documents(paths))
    phrases = suggest(documents, top)
    out.write(f"{len(documents)} documents\n\nphrases (score, documents, occurrences):\n")
    for item in phrases:
        out.write(f"  {item.score:8.1f}  {item.documents:3d}  {item.count:4d}  \"{item.phrase}\"\n")
    entities = entity_counts(documents, rules_dir)[:top]
    if entities:
        out.write("\nentities (documents):\n")
        for entity, count in entities:
            out.write(f"  {count:3d}  @{entity}\n")
    quoted = [f'"{p.phrase}"' if " " in p.phrase else p.phrase for p in phrases[:6]]
    if quoted:
        out.write(f"\nstarting query:\n  {' OR '.join(quoted)}\n")
    return 0
