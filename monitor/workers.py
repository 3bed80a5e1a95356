"""The worker processes that parse feeds and match their items, replaced whole when one hangs.

A task that overruns its deadline (a feed that sends feedparser into a loop it never leaves)
would hold its worker for good, and the next polls of that feed would take the others one by
one. A process pool cannot cancel a running task, so the pool is replaced: new workers take
the next tasks at once, the old ones are killed, and the tasks still on them fail as
``WorkerLost`` (their feeds are polled again at their next interval).
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from monitor import metrics
from monitor.errors import MonitorError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
T = TypeVar("T")


class WorkerLost(MonitorError):
    """A worker task that did not finish: it overran its deadline, or its worker was replaced."""


def worker_init() -> None:
    """In each worker: die with the daemon. A SIGKILLed daemon must not leave workers behind
    (they would hold its stdout, and its journal stream, open)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's to handle
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the daemon died before prctl took effect
            os._exit(0)


class WorkerPool:
    """``size`` worker processes (spawned, so they share no state with the daemon's threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.restarts = 0
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_init)

    async def run(self, deadline: float, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker; WorkerLost if it takes longer than ``deadline`` seconds
        (the pool is then replaced) or its worker was killed under it."""
        executor = self.executor
        future = asyncio.get_running_loop().run_in_executor(executor, function, *args)
        try:
            return await asyncio.wait_for(future, deadline)
        except TimeoutError:
            self.replace(executor)
            raise WorkerLost(f"took longer than {deadline:g} s; its worker was stopped",
                             "the feed is tried again at its next poll") from None
        except BrokenProcessPool:
            raise WorkerLost("its worker was stopped (another task overran its deadline, or it crashed)",
                             "the feed is tried again at its next poll") from None

    def replace(self, stuck: ProcessPoolExecutor) -> None:
        """New workers for ``stuck`` (unless already replaced), and the old ones killed."""
        if stuck is not self.executor:
            return
        self.executor = self._start()
        self.restarts += 1
        metrics.WORKER_RESTARTS.inc()
        # Private, but the only handle on the processes: a pool cannot cancel a running task.
        processes = list(getattr(stuck, "_processes", {}).values())
        for process in processes:
            process.kill()
        stuck.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """The current workers' process ids (started on first use)."""
        return sorted(getattr(self.executor, "_processes", {}))

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
