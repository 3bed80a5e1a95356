"""A lost database, told once: which errors mean "the database is unreachable", and the watch
that turns them into one line when it goes and one line when it comes back.

A PostgreSQL server restarting, SQLite locked beyond its busy timeout by another process, a
database folder made read-only, a full disk: each makes every store call fail alike, and a
daemon that reported each failure (every poll of every feed, every dispatcher pass, with its
traceback) would bury the one fact an operator needs. While the watch says the database is
down, polls and deliveries wait; a single probe (a write, since SQLite still reads when locked,
read-only or full) tries every ``probe_every`` seconds and lets them go on when it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

log = logging.getLogger("monitor.daemon")

PROBE_EVERY = 2.0  # seconds between tries of a lost database


def outage_reason(error: BaseException) -> str | None:
    """The one-line reason when ``error`` says the database cannot be used at all (connection
    lost or refused, locked, read-only, full); None for any other error, a bug included."""
    if isinstance(error, (OperationalError, InterfaceError, DisconnectionError)) or (
            isinstance(error, DBAPIError) and error.connection_invalidated):
        cause = getattr(error, "orig", None) or error
        lines = [line.strip() for line in str(cause).strip().splitlines() if line.strip()]
        return lines[0] if lines else type(cause).__name__
    return None


class DatabaseWatch:
    """Whether the database answers, as the daemon's jobs found it; ``probe`` is a blocking
    store call (run in a thread) that raises while the database is unusable; ``on_back`` runs
    once it answers again (claims to give back, polls held to resume)."""

    def __init__(self, probe: Callable[[], object], probe_every: float = PROBE_EVERY,
                 on_back: Callable[[], Awaitable[None]] | None = None) -> None:
        self.probe, self.probe_every, self.on_back = probe, probe_every, on_back
        self.up = asyncio.Event()
        self.up.set()
        self.lost_at: float | None = None
        self._prober: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return not self.up.is_set()

    def lost(self, reason: str) -> None:
        """A store call failed for ``reason``: say so once, and start probing."""
        if self.down:
            return
        self.up.clear()
        self.lost_at = time.monotonic()
        log.warning("database unreachable: %s; retrying", reason, extra={"event": "database_lost"})
        self._prober = asyncio.create_task(self._probe_until_back())

    async def wait_up(self, stopping: asyncio.Event) -> bool:
        """Wait until the database answers again (True) or the daemon stops (False)."""
        if not self.down:
            return True
        back, stop = asyncio.create_task(self.up.wait()), asyncio.create_task(stopping.wait())
        await asyncio.wait({back, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (back, stop):
            task.cancel()
        return self.up.is_set()

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self.probe_every)
            try:
                await asyncio.to_thread(self.probe)
            except Exception as error:  # still down (or down for another reason): keep quiet
                if outage_reason(error) is None:
                    log.debug("database probe: %s", error)
                continue
            break
        took = time.monotonic() - (self.lost_at or time.monotonic())
        if self.on_back is not None:
            try:
                await self.on_back()
            except Exception as error:  # lost again at once: the next failure says so
                log.debug("after the database came back: %s", error)
        log.info("database reachable again after %.0fs", took, extra={"event": "database_back"})
        self.up.set()

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
