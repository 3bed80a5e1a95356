"""What an alert says of its story, in words every channel shares. Pure: no I/O, no clock.

An update reads "now 7 sources: Reuters, AP, BBC, ERR, LRT, TVP +1 more" (its ``reason`` first when
it is not the ladder, e.g. "higher severity: critical · now 7 sources: …"); a surge reads
"14 stories in 1h (baseline 2.3), 9 publishers". Publisher names come from feeds and URLs: they
are passed through ``plain`` here, and each channel escapes them for its own format.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.notify.evidence import capped
from monitor.types import Alert, StoryRef, SurgeRef

MAX_PUBLISHERS = 6
MAX_TOP = 5
KIND_WORD = {"alert": "Alert", "update": "Update", "surge": "Surge"}


def sources(story: StoryRef) -> str:
    """"now N sources: A, B, C +2 more" (one source reads "now 1 source: A")."""
    count = len(story.publishers)
    noun = "source" if count == 1 else "sources"
    named = capped(story.publishers, MAX_PUBLISHERS)
    return f"now {count} {noun}: {named}" if named else f"now {count} {noun}"


def update_line(alert: Alert) -> str:
    """Why this update was sent, with the story's sources."""
    reason = alert.reason.strip()
    if alert.story is None:
        return reason or "update"
    line = sources(alert.story)
    if reason and not reason.startswith("now "):  # the ladder's reason is the sources count itself
        line = f"{reason} · {line}"
    return line


def window_text(seconds: float) -> str:
    """A window as the config says it: 1h, 30m, 1h30m, 2d, 45s."""
    total = round(seconds)
    if total <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out.append(f"{total // size}{unit}")
            total %= size
    return "".join(out)


def surge_line(surge: SurgeRef) -> str:
    """"14 stories in 1h (baseline 2.3), 9 publishers"."""
    noun = "story" if surge.count == 1 else "stories"
    line = f"{surge.count} {noun} in {window_text(surge.window)} (baseline {surge.baseline:.1f})"
    return f"{line}, {surge.publishers} publishers" if surge.publishers else line


def story_line(story: StoryRef) -> str:
    """"Story 42: 3 sources (A, B, C), 4 items", for the first alert of a story."""
    count = len(story.publishers)
    noun = "source" if count == 1 else "sources"
    named = capped(story.publishers, MAX_PUBLISHERS)
    items = "1 item" if story.items == 1 else f"{story.items} items"
    return f"Story {story.id}: {count} {noun} ({named}), {items}" if named else f"Story {story.id}: {items}"


def counted(alerts: Sequence[Alert]) -> str:
    """"3 alerts", or by kind: "2 alerts, 1 update, 1 surge" (for digests and grouped messages)."""
    kinds = [a.kind if a.kind in KIND_WORD else "alert" for a in alerts]
    if set(kinds) <= {"alert"}:
        return f"{len(alerts)} alerts"
    parts = []
    for kind in KIND_WORD:
        n = kinds.count(kind)
        if n:
            parts.append(f"{n} {kind}" + ("" if n == 1 else "s"))
    return ", ".join(parts)
