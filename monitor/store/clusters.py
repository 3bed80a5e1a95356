"""Story assignment in the write path: which story each new matching item joins (issue 15).

The decision itself is pure (``monitor.stories.cluster.StoryIndex``); this module keeps the index
true to the store. ``story_signatures`` holds the signature of every clustered item seen in the
window; a store keeps an in-memory index of them and, inside each write transaction, first reads
the rows other daemons added since (their item ids are greater: they were all written under the
same lock), then assigns, then writes its own rows. So every daemon decides over the same
candidates, in one order:

- on PostgreSQL the transaction takes ``pg_advisory_xact_lock`` before it writes anything (two
  daemons seeing copies of one story at the same moment take turns, and the second joins the
  story the first made);
- on SQLite the write transaction is exclusive already (BEGIN IMMEDIATE).

If the transaction fails, the index may hold what was never committed: it is dropped, and read
again from the store by the next write. Rows older than the window are deleted as they leave it,
so the table (and the index) hold one window of clustered items.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, text
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from monitor.store.tables import SignatureRow
from monitor.stories.cluster import Assignment, StoryIndex
from monitor.stories.signature import Signature, decode, encode

log = logging.getLogger("monitor.stories")
SIGNATURES: Table = SignatureRow.__table__  # type: ignore[attr-defined]
# One lock for every daemon sharing a PostgreSQL database (pg_advisory_xact_lock takes a bigint).
LOCK_KEY = 0x63_6D_5F_73_74_6F_72_79  # "cm_story"
PRUNE_EVERY = timedelta(minutes=10)


class Clusters:
    """The window's signatures as an index, kept in step with ``story_signatures``."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._index: StoryIndex | None = None
        self._last_item = 0  # the greatest item id read into the index
        self._pruned_at: datetime | None = None

    def reset(self) -> None:
        """Forget the index (after a failed transaction): the next write reads it again."""
        self._index = None
        self._last_item = 0

    def lock(self, session: Session) -> None:
        """Take the stories lock for this transaction (PostgreSQL; SQLite's write lock is enough)."""
        if session.get_bind().dialect.name == "postgresql":
            session.connection().execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})

    def place(self, session: Session, signed: Sequence[tuple[int, Signature]], now: datetime,
              new_story: Callable[[int], int]) -> dict[int, tuple[int, Assignment]]:
        """The story of each ``(key, signature)``, in order: ``key`` -> (story id, why).

        An item joins the story the index decides on, the ones placed before it included;
        otherwise ``new_story(key)`` makes one. Call under ``lock``.
        """
        index = self._read(session, now)
        placed: dict[int, tuple[int, Assignment]] = {}
        for key, sig in signed:
            decided = index.assign(sig)
            story = decided.story_id if decided.story_id is not None else new_story(key)
            index.add(story, sig)
            placed[key] = (story, decided)
        return placed

    def remember(self, session: Session, rows: Sequence[tuple[int, int, Signature]]) -> None:
        """Write the signatures of items just placed: (item id, story id, signature)."""
        if not rows:
            return
        session.connection().execute(sa_insert(SIGNATURES), [
            {"item_id": item_id, "story_id": story_id, "seen_at": sig.seen_at, "signature": encode(sig)}
            for item_id, story_id, sig in rows])
        self._last_item = max(self._last_item, max(item_id for item_id, _, _ in rows))

    def _read(self, session: Session, now: datetime) -> StoryIndex:
        """The index, with the rows other daemons wrote since it was last read."""
        cutoff = now - timedelta(seconds=self.window)
        connection = session.connection()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY or now < self._pruned_at:
            connection.execute(delete(SIGNATURES).where(SIGNATURES.c.seen_at < cutoff))
            self._pruned_at = now
        if self._index is None:
            self._index = StoryIndex(self.window)
            self._last_item = 0
        index = self._index
        query = (sa_select(SIGNATURES.c.item_id, SIGNATURES.c.story_id, SIGNATURES.c.signature)
                 .where(SIGNATURES.c.item_id > self._last_item, SIGNATURES.c.seen_at >= cutoff)
                 .order_by(SIGNATURES.c.item_id))
        for item_id, story_id, data in connection.execute(query):
            self._last_item = item_id
            try:
                sig = decode(bytes(data))
            except ValueError as error:  # written by another version: it is not a candidate
                log.warning("story signature unreadable", extra={"event": "stories", "item": item_id,
                                                                  "error": str(error)})
                continue
            index.add(story_id, sig)
        index.prune(now)
        return index

