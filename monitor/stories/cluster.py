"""Which story an item belongs to: a pure, deterministic decision over the candidates in a window.

Pure: no I/O, no clock. ``StoryIndex`` holds the signatures of the items seen in the window
(``[stories] window``, default 96 h), each with its story id; ``assign`` decides, in order:

1. exact copy: the same guid, canonical URL or normalised title as a candidate;
2. near-duplicate: MinHash LSH over word shingles, estimated Jaccard >= ``near_duplicate``;
3. same event: ``((1 - w) * cosine + w * entity Jaccard) * 0.5 ** (hours apart / half-life) >=
   same_event``, where cosine is that of the hashed title+lead words and the entity Jaccard is that
   of the gazetteer entities the rules found (language-neutral, so a report in another language can
   join), a generic entity ("aircraft", "drone") counting ``generic_weight``; the cosine alone unless
   both items name a specific entity;
4. else a new story.

The answer depends only on the set of candidates, never on the order they were added: at each
step the best score wins and a tie goes to the lowest story id. So daemons that see the same
candidates (from one store) make the same decision. (Thresholds: see DEFAULT_THRESHOLDS and
bench/stories_eval.py, which measures them on labelled syndication.)
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.stories.publisher import publisher_of
from monitor.stories.signature import (
    NUM_PERM,
    Signature,
    decode,
    dot,
    encode,
    signature,
    split_features,
    stored_minhash,
)

if TYPE_CHECKING:
    from datasketch import MinHashLSH

__all__ = ["DEFAULT_THRESHOLDS", "REASONS", "Assignment", "Signature", "StoryIndex", "Thresholds", "decode",
           "encode", "publisher_of", "signature"]

_K = TypeVar("_K")
REASONS = ("guid", "url", "title", "near-duplicate", "same-event", "new")


@dataclass(frozen=True)
class Thresholds:
    """When an item joins a candidate's story.

    ``near_duplicate``: estimated Jaccard of word shingles (MinHash LSH is built for it).
    ``same_event``: least combined score ``(1 - entity_weight) * cosine + entity_weight * J``,
    J the Jaccard of the entity sets (the cosine alone when either has none), times ``0.5 ** (dt / half_life)`` for
    items ``dt`` seconds apart: reports of one event come close together, and a later event of the same
    kind (drones over Poland again two days on) reads much like it.
    ``generic_weight``: what a generic gazetteer entity (``aircraft-generic``, ``drone-generic``: nearly
    every crisis report names one) counts in the entity Jaccard, against 1 for a specific one (a state, a
    person, an aircraft type); items that do not both name a specific entity are compared by the cosine alone.
    ``max_postings``: a word or entity carried by more candidates than this is too common to
    find candidates by (like a stop word); the others still find them, and scores use all words.
    ``max_candidates``: at most this many candidates are scored, those sharing the most such words and
    entities (they bound the cost of an item when the window is full of news alike).
    """

    near_duplicate: float = 0.8
    same_event: float = 0.35
    entity_weight: float = 0.7
    half_life: float = 24 * 3600.0
    generic_weight: float = 0.1
    max_postings: int = 256
    max_candidates: int = 100


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Assignment:
    """The story an item joins (None: a new one), why (one of REASONS), and the score that decided
    (1.0 for an exact copy; for ``new``, the best score seen, below the thresholds)."""

    story_id: int | None
    reason: str
    score: float


@dataclass(frozen=True)
class _Entry:
    story_id: int
    sig: Signature
    indices: tuple[int, ...]  # sig.features split, for dot
    weights: tuple[float, ...]


class StoryIndex:
    """The signatures of the window's items, each with its story; ``assign`` reads, never writes.

    ``add`` what ``assign`` decided (or what the store holds), ``prune(now)`` to drop what left
    the window: the index holds the window's items, no more.
    """

    def __init__(self, window_seconds: float, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> None:
        self.window = timedelta(seconds=window_seconds)
        self.thresholds = thresholds
        self._entries: dict[int, _Entry] = {}
        self._exact: tuple[dict[str, set[int]], ...] = ({}, {}, {})  # guid, url, title -> slots
        self._words: dict[int, set[int]] = {}
        self._entities: dict[str, set[int]] = {}
        self._lsh: MinHashLSH | None = None
        self._hashvalues: dict[int, Any] = {}  # slot -> MinHash values (numpy), for the Jaccard estimate
        self._expiry: list[tuple[datetime, int]] = []  # (seen_at, slot), a heap
        self._next_slot = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, story_id: int, sig: Signature) -> None:
        """Index ``sig`` as an item of story ``story_id``."""
        slot = self._next_slot
        self._next_slot += 1
        self._entries[slot] = _Entry(story_id, sig, *split_features(sig.features))
        for table, key in zip(self._exact, _exact_keys(sig), strict=True):
            if key:
                table.setdefault(key, set()).add(slot)
        for index, _ in sig.features:
            self._words.setdefault(index, set()).add(slot)
        for entity in sig.entities:
            self._entities.setdefault(entity, set()).add(slot)
        if sig.minhash:
            minhash = stored_minhash(sig.minhash)
            self._lsh_index().insert(slot, minhash, check_duplication=False)
            self._hashvalues[slot] = minhash.hashvalues
        heapq.heappush(self._expiry, (sig.seen_at, slot))

    def prune(self, now: datetime) -> int:
        """Drop the signatures seen before ``now - window``; how many were dropped."""
        cutoff = now - self.window
        dropped = 0
        while self._expiry and self._expiry[0][0] < cutoff:
            _, slot = heapq.heappop(self._expiry)
            self._remove(slot)
            dropped += 1
        return dropped

    def assign(self, sig: Signature) -> Assignment:
        """The story ``sig`` belongs to, decided over the candidates within the window of it."""
        for reason, table, key in zip(REASONS[:3], self._exact, _exact_keys(sig), strict=True):
            story = self._lowest_story(table.get(key, ()) if key else (), sig.seen_at)
            if story is not None:
                return Assignment(story, reason, 1.0)
        near = self._near_duplicate(sig)
        if near is not None:
            return near
        return self._same_event(sig)

    def _live(self, slot: int, seen_at: datetime) -> bool:
        # Candidates older than the window of the item are out even before prune drops them.
        return self._entries[slot].sig.seen_at >= seen_at - self.window

    def _lowest_story(self, slots: Iterable[int], seen_at: datetime) -> int | None:
        stories = [self._entries[slot].story_id for slot in slots if self._live(slot, seen_at)]
        return min(stories) if stories else None

    def _near_duplicate(self, sig: Signature) -> Assignment | None:
        if not sig.minhash or self._lsh is None:
            return None
        import numpy as np

        query = stored_minhash(sig.minhash)
        best: tuple[float, int] | None = None  # (-jaccard, story): the least is the best
        for slot in self._lsh.query(query):
            if not self._live(slot, sig.seen_at):
                continue
            jaccard = int(np.count_nonzero(self._hashvalues[slot] == query.hashvalues)) / NUM_PERM
            if jaccard >= self.thresholds.near_duplicate:
                candidate = (-jaccard, self._entries[slot].story_id)
                best = candidate if best is None else min(best, candidate)
        return None if best is None else Assignment(best[1], "near-duplicate", -best[0])

    def _candidates(self, sig: Signature) -> list[int]:
        """Slots that share with ``sig`` words or entities carried by few enough candidates: at most
        ``max_candidates`` of them, those that share the most.

        Ties are broken by what the candidates hold, never by the order they were added in.
        """
        limit = self.thresholds.max_postings
        shared: Counter[int] = Counter()
        for postings in (*(self._words.get(i) for i, _ in sig.features),
                         *(self._entities.get(e) for e in sig.entities)):
            if postings is not None and len(postings) <= limit:
                shared.update(postings)
        if len(shared) <= self.thresholds.max_candidates:
            return list(shared)
        entries = self._entries

        def rank(slot: int) -> tuple[int, int, datetime, str, str]:
            entry = entries[slot]
            return -shared[slot], entry.story_id, entry.sig.seen_at, entry.sig.url_key, entry.sig.guid

        return heapq.nsmallest(self.thresholds.max_candidates, shared, key=rank)

    def _same_event(self, sig: Signature) -> Assignment:
        words = dict(sig.features)
        weight, half_life = self.thresholds.entity_weight, self.thresholds.half_life
        entities = _weighted(sig.entities, self.thresholds.generic_weight)
        # Farther apart than this, even identical items score below the threshold.
        reach = timedelta(seconds=half_life * math.log2(1 / self.thresholds.same_event)) \
            if 0 < self.thresholds.same_event < 1 and math.isfinite(half_life) else self.window
        best = (0.0, 0)  # (-score, story)
        for slot in self._candidates(sig):
            entry = self._entries[slot]
            if abs(sig.seen_at - entry.sig.seen_at) > reach or not self._live(slot, sig.seen_at):
                continue
            similar = _similarity(entry, entities, words, weight, self.thresholds.generic_weight)
            apart = abs((sig.seen_at - entry.sig.seen_at).total_seconds())
            best = min(best, (-similar * 0.5 ** (apart / half_life), entry.story_id))
        score = 0.0 - best[0]  # never -0.0
        if score >= self.thresholds.same_event and score > 0:
            return Assignment(best[1], "same-event", score)
        return Assignment(None, "new", score)

    def _lsh_index(self) -> MinHashLSH:
        if self._lsh is None:
            from datasketch import MinHashLSH

            self._lsh = MinHashLSH(threshold=self.thresholds.near_duplicate, num_perm=NUM_PERM)
        return self._lsh

    def _remove(self, slot: int) -> None:
        entry = self._entries.pop(slot)
        sig = entry.sig
        for table, key in zip(self._exact, _exact_keys(sig), strict=True):
            if key:
                _discard(table, key, slot)
        for index, _ in sig.features:
            _discard(self._words, index, slot)
        for entity in sig.entities:
            _discard(self._entities, entity, slot)
        if slot in self._hashvalues:
            del self._hashvalues[slot]
            assert self._lsh is not None
            self._lsh.remove(slot)


def _exact_keys(sig: Signature) -> tuple[str, str, str]:
    return sig.guid, sig.url_key, sig.title_key


def is_generic(entity: str) -> bool:
    """Whether a gazetteer entity id names a kind of thing (any aircraft, any drone) rather than one
    thing: nearly every crisis report names one, so sharing it says little of the event."""
    return entity.endswith("-generic") or entity == "military-drone"


def _weighted(entities: frozenset[str], generic_weight: float) -> dict[str, float]:
    """The entities with what each counts in the Jaccard; empty when none is specific."""
    if all(is_generic(entity) for entity in entities):
        return {}
    return {entity: generic_weight if is_generic(entity) else 1.0 for entity in entities}


def _similarity(candidate: _Entry, entities: dict[str, float], words: dict[int, float], weight: float,
                generic_weight: float) -> float:
    """``(1 - weight) * cosine + weight * weighted entity Jaccard``; the cosine alone when either item names
    no specific entity (news outside the gazetteer's world, or only "jets" and "drones", which entities can
    neither join nor part)."""
    similar = dot(candidate.indices, candidate.weights, words)
    theirs = candidate.sig.entities
    if not entities or all(is_generic(entity) for entity in theirs):
        return similar
    # fsum is exactly rounded, so the sums do not depend on the (salted) order of the sets.
    shared = math.fsum(entities[entity] for entity in theirs if entity in entities)
    theirs_only = math.fsum(generic_weight if is_generic(entity) else 1.0 for entity in theirs
                            if entity not in entities)
    return (1 - weight) * similar + weight * shared / (math.fsum(entities.values()) + theirs_only)


def _discard(table: dict[_K, set[int]], key: _K, slot: int) -> None:
    slots = table.get(key)
    if slots is not None:
        slots.discard(slot)
        if not slots:
            del table[key]
