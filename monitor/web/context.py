"""What the web app may use of the running daemon: its store, config, rules in force and clock.

Callables rather than values where a reload swaps the value (config on SIGHUP, rules on a
file change), so every request sees what is in force now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from monitor.config import Config
from monitor.pipeline import ActiveRules, now_utc
from monitor.store.outbox import Outbox
from monitor.store.repo import Store


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class WebContext:
    store: Store
    config: Callable[[], Config]
    active: Callable[[], ActiveRules]
    healthy: Callable[[], Awaitable[bool]]
    refresh_metrics: Callable[[], Awaitable[None]] = _nothing
    clock: Callable[[], datetime] = now_utc
    # Called after a retry from the outbox page, so the dispatcher sends at once.
    wake_dispatcher: Callable[[], None] = lambda: None
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outbox", Outbox(self.store))
