"""How well story clustering groups labelled items: pairwise and B-cubed precision and recall.

Pure: the labelled items come in as parsed data (``tests/data/stories_eval.yaml`` read by
``bench/stories_eval.py`` and ``tests/test_cluster.py``), scores go out. The items run through
``StoryIndex`` as a daemon would see them, oldest first, each assigned and then added.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.rules.engine import RuleSet
from monitor.stories.cluster import DEFAULT_THRESHOLDS, Signature, StoryIndex, Thresholds, publisher_of, signature
from monitor.types import Document


@dataclass(frozen=True)
class Labelled:
    """An item of the labelled set, with what the shipped rules found in it."""

    event: str
    half: str
    batch: int  # 1: the first set; 2: written later, scored blind with the code of the time before any change
    doc: Document
    publisher: str
    seen_at: datetime
    entities: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def labelled_items(data: Mapping[str, Any], rules: RuleSet) -> list[Labelled]:
    """The items of a parsed labelled file, oldest first, with their entities and matching rules."""
    items = []
    for number, raw in enumerate(data["items"]):
        published = datetime.fromisoformat(raw["published"].replace("Z", "+00:00"))
        doc = Document(id=raw.get("guid", f"eval-{number}"), title=raw["title"], summary=raw.get("summary", ""),
                       content=raw.get("content", ""), feed=raw["feed"], url=raw["url"], published_at=published)
        view = rules.view(doc)
        matched = tuple(match.rule for match in rules.match_view(view))
        items.append(Labelled(raw["event"], raw["half"], raw.get("batch", 1), doc,
                              publisher_of(raw["url"], raw.get("publisher")),
                              published, rules.entities_in(view), matched))
    return sorted(items, key=lambda item: item.seen_at)


def signatures(items: Iterable[Labelled]) -> list[Signature]:
    return [signature(item.doc, item.entities, item.publisher, item.seen_at) for item in items]


def cluster(signed: Sequence[Signature], window: float, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[int]:
    """The story id each signature ends in, streamed oldest first (as given) through one index."""
    index = StoryIndex(window, thresholds)
    stories: list[int] = []
    for sig in signed:
        index.prune(sig.seen_at)
        story = index.assign(sig).story_id
        if story is None:
            story = len(stories)  # a new story takes the number of the item that opened it
        index.add(story, sig)
        stories.append(story)
    return stories


def _pairs(count: int) -> int:
    return count * (count - 1) // 2


def pairwise(labels: Sequence[Hashable], clusters: Sequence[Hashable]) -> Scores:
    """Of the pairs put in one story, the share that are one event; of the pairs of one event, the share put
    in one story (1.0 when there are no pairs to get right)."""
    together = sum(_pairs(n) for n in Counter(zip(labels, clusters, strict=True)).values())
    predicted = sum(_pairs(n) for n in Counter(clusters).values())
    actual = sum(_pairs(n) for n in Counter(labels).values())
    return Scores(together / predicted if predicted else 1.0, together / actual if actual else 1.0)


def bcubed(labels: Sequence[Hashable], clusters: Sequence[Hashable]) -> Scores:
    """B-cubed: per item, the share of its story that is its event (precision) and of its event that is in
    its story (recall), averaged over the items."""
    cells = Counter(zip(labels, clusters, strict=True))
    by_label, by_cluster = Counter(labels), Counter(clusters)
    precision = sum(cells[(lab, clu)] / by_cluster[clu] for lab, clu in zip(labels, clusters, strict=True))
    recall = sum(cells[(lab, clu)] / by_label[lab] for lab, clu in zip(labels, clusters, strict=True))
    count = len(labels) or 1
    return Scores(precision / count, recall / count)


def alerts(items: Sequence[Labelled], stories: Sequence[int]) -> tuple[int, int]:
    """Alerts without stories (one per item and matching rule) and with them (one per rule and story)."""
    before = sum(len(item.rules) for item in items)
    after = len({(rule, story) for item, story in zip(items, stories, strict=True) for rule in item.rules})
    return before, after
