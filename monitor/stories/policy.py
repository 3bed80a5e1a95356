"""What a rule asks of a story before and after its first alert (issue 15): the corroboration gate,
the update ladder, the cooldown between messages, and the surge settings.

The keys are a rule file's ``min_sources``, ``within``, ``tiers``, ``min_official``, ``updates``,
``cooldown`` and ``surge`` (see DESIGN.md, "Stories"); all are optional, and a rule that sets none
alerts on the first matching item of a story, as before stories existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.stories.surge import SurgeSpec

TIERS = ("official", "wire", "media", "other")
DEFAULT_UPDATES = (3, 10, 30)
DEFAULT_WITHIN = 6 * 3600.0
DEFAULT_COOLDOWN = 30 * 60.0


@dataclass(frozen=True)
class StoryPolicy:
    """``min_sources`` publishers (counting only ``tiers``, all when empty) must carry the story
    within ``within`` seconds of the rule's first match in it before the first alert; ``min_official``
    official publishers (0: off) release it alone. Afterwards an update goes out each time the
    story's publishers reach a rung of ``updates``, at most one per ``cooldown`` seconds.
    ``surge`` (None: off) watches the rule's matching stories per window."""

    min_sources: int = 1
    within: float = DEFAULT_WITHIN
    tiers: tuple[str, ...] = ()
    min_official: int = 0
    updates: tuple[int, ...] = DEFAULT_UPDATES
    cooldown: float = DEFAULT_COOLDOWN
    surge: SurgeSpec | None = None

    @property
    def gated(self) -> bool:
        """Whether the first alert may wait for corroboration."""
        return self.min_sources > 1 or bool(self.tiers)


DEFAULT_POLICY = StoryPolicy()
