"""A realistic rule workload for bench/rules_bench.py: documents and rules that behave like real ones.

Documents (~2,000 characters) are English words drawn by their real frequency (wordfreq's list, offline,
a Zipf-like law) with multi-word units mixed in: names, places and jargon ("north atlantic council",
"shot … down") drawn from a lexicon of 60,000 units with Zipf weights of their own. A unit's words are
rare outside it, as names and jargon are in news. Some units are gapped (words fall between their
parts, as in "violated Estonian airspace"), for NEAR; entities are units under one id.

Rules take the shapes analysts write (phrases, wildcards, NEAR, AND/OR/NOT, field scopes, entities).
Each is calibrated, from the generator's own probabilities, to fire on a given share of documents
(0.01 % by default): the probability of a unit or a word in a document is known, so a rule's is a product
and sum of them, and a rule picks the units and words that bring it to the target. The bench checks
the calibration by counting the matches it gets.
"""

from __future__ import annotations

import math
import random
import re
from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate

from wordfreq import get_frequency_dict

from monitor.rules.entities import Entity, Gazetteer
from monitor.rules.query import phrase
from monitor.types import Document

CONTENT_WORDS = 275  # standalone words per document body (with the units: ~2,000 characters)
CONTENT_UNITS = 15  # unit slots per document body
TITLE_WORDS = 7  # a title: a few words and one unit
UNITS = 60_000
ENTITIES = 300
GROUPS = 30
COMMON = 6000  # the commonest words: running text; rarer ones are the lexicon's jargon


@dataclass(frozen=True)
class Unit:
    words: tuple[str, ...]
    gaps: tuple[int, ...]  # words inserted after each word but the last when it is written out

    def text(self) -> str:
        return " ".join(self.words)


class Language:
    """The generator: a vocabulary with frequencies, a lexicon of units with Zipf weights, entities."""

    def __init__(self, rng: random.Random) -> None:
        freqs = get_frequency_dict("en")
        words = [w for w in sorted(freqs, key=freqs.__getitem__, reverse=True) if re.fullmatch("[a-z]{2,}", w)]
        self.common = words[:COMMON]
        total = sum(freqs[w] for w in self.common)
        self.word_p = {w: freqs[w] / total for w in self.common}
        self._word_cum = list(accumulate(self.word_p[w] for w in self.common))
        jargon = words[COMMON:60_000]
        self.units: list[Unit] = []
        for rank in range(UNITS):
            size = 2 if rng.random() < 0.7 else 3
            gapped = rng.random() < 0.3
            gaps = tuple(rng.randint(1, 3) if gapped else 0 for _ in range(size - 1))
            # Frequent units are made of the more frequent of these words, rare ones of rarer words
            # (as in news: a rare name is spelt in rare words), each word in a few units.
            middle = rank * len(jargon) // UNITS
            near = jargon[max(0, middle - 500):middle + 500]
            self.units.append(Unit(tuple(rng.sample(near, size)), gaps))
        weights = [1 / (rank + 10) for rank in range(UNITS)]
        total = sum(weights)
        self.unit_f = [w / total for w in weights]  # the chance of one unit slot holding each unit
        self._unit_cum = list(accumulate(self.unit_f))
        self.entities = self._entities(rng)

    def _entities(self, rng: random.Random) -> list[tuple[int, ...]]:
        """Each entity: 1 to 3 units (its aliases), among the commoner ones (named often)."""
        return [tuple(rng.sample(range(50, 5000), rng.randint(1, 3))) for _ in range(ENTITIES)]

    def gazetteer(self) -> Gazetteer:
        out = {}
        for number, units in enumerate(self.entities):
            aliases = tuple(phrase(self.units[u].text()) for u in units)
            out[f"e{number}"] = Entity(f"e{number}", f"E{number}", "thing", (f"g{number % GROUPS}",), aliases)
        return Gazetteer(out)

    # --- probabilities of the things a rule asks about -------------------------------------

    def p_unit(self, unit: int, slots: int = CONTENT_UNITS + 1) -> float:
        """The chance that a document (body and title) holds ``unit``."""
        return 1 - (1 - self.unit_f[unit]) ** slots

    def p_word(self, word: str) -> float:
        return 1 - (1 - self.word_p[word]) ** (CONTENT_WORDS + TITLE_WORDS)

    def p_entity(self, number: int) -> float:
        return 1 - math.prod(1 - self.p_unit(u) for u in self.entities[number])

    def unit_near(self, rng: random.Random, p: float, gapped: bool | None = None) -> int:
        """A unit that a document holds with about probability ``p`` (within a factor of 1.5)."""
        # p_unit ~ slots * f, and f = unit_f[0] * 10 / (rank + 10): solve for the rank.
        rank = int((CONTENT_UNITS + 1) * self.unit_f[0] * 10 / p) - 10
        rank = min(max(rank, 0), UNITS - 1)
        for _ in range(200):
            pick = min(max(int(rank * math.exp(rng.uniform(-0.4, 0.4))), 0), UNITS - 1)
            if gapped is None or any(self.units[pick].gaps) == gapped:
                return pick
        return rank

    def title_unit_near(self, rng: random.Random, p: float) -> int:
        """A unit that a title (one unit slot) holds with about probability ``p``."""
        rank = int(self.unit_f[0] * 10 / p * math.exp(rng.uniform(-0.4, 0.4))) - 10
        return min(max(rank, 0), UNITS - 1)

    def word_near(self, rng: random.Random, p: float) -> str:
        """A common word that a document holds with about probability ``p``."""
        target = -math.log(1 - min(p, 0.95)) / (CONTENT_WORDS + TITLE_WORDS)  # per-word probability
        ordered = self.common  # by falling frequency
        low, high = 0, len(ordered) - 1
        while low < high:
            mid = (low + high) // 2
            if self.word_p[ordered[mid]] > target:
                low = mid + 1
            else:
                high = mid
        return ordered[min(len(ordered) - 1, max(0, low + rng.randint(-20, 20)))]

    # --- documents ----------------------------------------------------------------------------

    def _words(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.common, cum_weights=self._word_cum, k=count)

    def _unit(self, rng: random.Random) -> int:
        return min(bisect_left(self._unit_cum, rng.random() * self._unit_cum[-1]), UNITS - 1)

    def _written(self, rng: random.Random, unit: Unit) -> list[str]:
        out = []
        for word, gap in zip(unit.words, (*unit.gaps, 0), strict=True):
            out.append(word)
            out.extend(self._words(rng, gap))
        return out

    def _text(self, rng: random.Random, words: int, units: int) -> list[str]:
        tokens = self._words(rng, words)
        for _ in range(units):
            tokens[rng.randrange(len(tokens) + 1):0] = self._written(rng, self.units[self._unit(rng)])
        return tokens

    def documents(self, rng: random.Random, count: int) -> list[Document]:
        out = []
        for number in range(count):
            title = " ".join(self._text(rng, TITLE_WORDS, 1)).capitalize()
            body = " ".join(self._text(rng, CONTENT_WORDS, CONTENT_UNITS))
            cut = body.rfind(" ", 0, 2000)
            out.append(Document(id=f"d{number}", title=title, content=(body[:cut] if cut > 0 else body) + "."))
        return out


# --- rules -------------------------------------------------------------------------------------

def _quoted(unit: Unit) -> str:
    return f'"{unit.text()}"'


class RuleMaker:
    """Queries of the shapes analysts write, each calibrated to fire on ``target`` of the documents."""

    def __init__(self, language: Language, rng: random.Random, target: float) -> None:
        self.lang, self.rng, self.target = language, rng, target
        self.shapes = [self.phrase, self.phrase_and_word, self.near, self.either_but_not, self.wildcard,
                       self.title, self.entity, self.three_words]

    def queries(self, count: int) -> list[str]:
        return [self.rng.choice(self.shapes)() for _ in range(count)]

    def _unit(self, p: float, gapped: bool | None = False) -> Unit:
        return self.lang.units[self.lang.unit_near(self.rng, p, gapped)]

    def phrase(self) -> str:
        return _quoted(self._unit(self.target))

    def phrase_and_word(self) -> str:
        word = self.lang.word_near(self.rng, self.rng.uniform(0.1, 0.5))
        return f"{_quoted(self._unit(self.target / self.lang.p_word(word)))} AND {word}"

    def near(self) -> str:
        unit = self._unit(self.target, gapped=True)
        ordered = "f" if self.rng.random() < 0.3 else ""
        return f"{unit.words[0]} NEAR/{sum(unit.gaps) + 2}{ordered} {unit.words[-1]}"

    def either_but_not(self) -> str:
        word = self.lang.word_near(self.rng, 0.3)
        share = self.target / (1 - self.lang.p_word(word)) / 2
        return f"({_quoted(self._unit(share))} OR {_quoted(self._unit(share))}) AND NOT {word}"

    def wildcard(self) -> str:
        unit = self._unit(self.target)
        *head, last = unit.words
        stem = last[:max(4, len(last) - 3)]
        return f'"{" ".join(head)} {stem}*"' if len(last) > 4 else _quoted(unit)

    def title(self) -> str:
        unit = self.lang.units[self.lang.title_unit_near(self.rng, self.target)]
        return f"title:{_quoted(unit)}"

    def entity(self) -> str:
        for _ in range(20):
            number = self.rng.randrange(ENTITIES)
            share = self.lang.p_entity(number)
            if share > 10 * self.target:
                return f"@e{number} AND {_quoted(self._unit(self.target / share))}"
        return self.phrase()

    def three_words(self) -> str:
        each = self.target ** (1 / 3)
        words = {self.lang.word_near(self.rng, each) for _ in range(3)}
        return " AND ".join(sorted(words)) if len(words) == 3 else self.phrase()
